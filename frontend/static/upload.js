// Upload: title, description and a video file (picker or drag-and-drop),
// sent with XMLHttpRequest so a progress bar can follow the bytes.

import { uploadForm } from './api.js';
import { h, setVisible } from './dom.js';
import { createField, createFormError, FormErrors, setBusy } from './forms.js';
import { formatBytes } from './format.js';
import { resetFeed } from './feed.js';
import { isLoggedIn, subscribe } from './session.js';

const TITLE_MAX = 200;
const DESCRIPTION_MAX = 5000; // the server's default limit

export const uploadView = {
  match: /^\/upload\/?$/,
  mount(container, { navigate }) {
    document.title = 'Upload · minitube';
    const root = h('section', { class: 'page page-narrow' });
    container.append(root);

    let form = null;
    let wasLoggedIn = null;
    const render = () => {
      // Re-render only when signed-in-ness flips: a later /auth/me answer
      // must not wipe what the user has typed.
      if (isLoggedIn() === wasLoggedIn) return;
      wasLoggedIn = isLoggedIn();
      form?.destroy();
      form = wasLoggedIn ? createUploadForm(navigate) : null;
      root.replaceChildren(
        h('div', { class: 'panel' },
          h('h1', { text: 'Upload a video' }),
          form ? form.root : loginPrompt()),
      );
    };
    render();
    const unsubscribe = subscribe(render);

    // A file dropped beside the zone would make the browser navigate to it,
    // throwing the form away.
    const swallowDrop = (event) => {
      if (event.dataTransfer?.types?.includes('Files')) event.preventDefault();
    };
    window.addEventListener('dragover', swallowDrop);
    window.addEventListener('drop', swallowDrop);

    return {
      unmount() {
        unsubscribe();
        window.removeEventListener('dragover', swallowDrop);
        window.removeEventListener('drop', swallowDrop);
        form?.destroy();
      },
    };
  },
};

function loginPrompt() {
  return h('p', { class: 'login-prompt' },
    'You need to be signed in to upload. ',
    h('a', { href: '/login?next=%2Fupload' }, 'Log in'),
    ' or ',
    h('a', { href: '/register?next=%2Fupload' }, 'create an account'),
    '.');
}

function createUploadForm(navigate) {
  const title = createField({ name: 'title', label: 'Title', required: true, maxlength: TITLE_MAX, autocomplete: 'off' });
  const counter = h('p', { class: 'field-hint counter', 'aria-hidden': 'true', text: `0 / ${TITLE_MAX}` });
  title.root.append(counter);
  title.input.addEventListener('input', () => {
    counter.textContent = `${title.input.value.length} / ${TITLE_MAX}`;
  });
  const description = createField({ name: 'description', label: 'Description', multiline: true, optional: true, rows: 5,
    maxlength: DESCRIPTION_MAX });
  const file = createFilePicker(title);

  const progress = h('progress', { max: 100, value: 0, 'data-testid': 'upload-progress', 'aria-label': 'Upload progress' });
  const percent = h('span', { class: 'upload-percent', 'data-testid': 'upload-percent', text: '0%' });
  const progressNote = h('span', { class: 'upload-note', role: 'status' });
  const progressBox = h('div', { class: 'upload-progress', hidden: true }, progress, h('div', { class: 'upload-progress-text' }, percent, progressNote));

  const formError = createFormError();
  const errors = new FormErrors(formError, [title, description], { file: file.slot });
  const submit = h('button', { type: 'submit', class: 'button' }, 'Upload');
  const cancel = h('button', { type: 'button', class: 'button button-quiet', hidden: true }, 'Cancel');

  const form = h('form', { class: 'form', novalidate: true },
    formError, title.root, description.root, file.root, progressBox,
    h('div', { class: 'form-actions' }, submit, cancel));

  let upload = null; // { abort } while bytes are going up

  const setProgress = (fraction) => {
    if (fraction === null) {
      progress.removeAttribute('value'); // indeterminate bar: size unknown
      percent.textContent = '…';
      return;
    }
    const value = Math.min(100, Math.floor(fraction * 100));
    progress.value = value;
    percent.textContent = `${value}%`;
  };

  const onBeforeUnload = (event) => {
    event.preventDefault();
    event.returnValue = ''; // older browsers need it set to show the prompt
  };

  const finish = () => {
    upload = null;
    window.removeEventListener('beforeunload', onBeforeUnload);
    setBusy(submit, false);
    setVisible(cancel, false);
    file.setDisabled(false);
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (upload) return;
    const values = { title: title.input.value.trim(), description: description.input.value, file: file.get() };
    const problems = validate(values);
    if (problems) {
      errors.show({ fields: problems });
      return;
    }
    errors.clear();

    const data = new FormData();
    // Text fields before the file: a streaming server can read them first.
    data.append('title', values.title);
    data.append('description', values.description);
    data.append('file', values.file, values.file.name);

    setBusy(submit, true, 'Uploading…');
    setVisible(cancel, true);
    file.setDisabled(true);
    setVisible(progressBox, true);
    setProgress(0);
    progressNote.textContent = '';
    window.addEventListener('beforeunload', onBeforeUnload);

    upload = uploadForm('/videos/upload', data, {
      onProgress: setProgress,
      onSent: () => { progressNote.textContent = 'Processing…'; },
    });
    try {
      const body = await upload.promise;
      finish();
      const id = body?.video?.id;
      resetFeed(); // the new video belongs at the top of the feed
      navigate(id !== undefined ? `/watch/${id}` : '/');
    } catch (err) {
      finish();
      setVisible(progressBox, false);
      if (err.name === 'AbortError') {
        errors.show({ message: 'Upload cancelled.' });
        return;
      }
      errors.show({ message: uploadErrorMessage(err), fields: err.fields }, { alwaysMessage: true });
    }
  });

  cancel.addEventListener('click', () => upload?.abort());

  return {
    root: form,
    // Leaving the page mid-upload cancels it: nothing would show the result.
    destroy() {
      upload?.abort();
      window.removeEventListener('beforeunload', onBeforeUnload);
    },
  };
}

/**
 * The server's upload limit (MINITUBE_MAX_UPLOAD_BYTES, rendered into the
 * page). Checked before sending: past the limit the server answers 413 and
 * closes without reading on, which browsers report as a network error.
 */
function maxUploadBytes() {
  const meta = document.querySelector('meta[name="minitube-max-upload-bytes"]');
  const value = meta ? Number.parseInt(meta.content, 10) : NaN;
  return Number.isFinite(value) && value > 0 ? value : Infinity;
}

function validate({ title, file }) {
  const problems = {};
  if (!title) problems.title = 'Give your video a title.';
  else if (title.length > TITLE_MAX) problems.title = `Keep the title under ${TITLE_MAX} characters.`;
  if (!file) problems.file = 'Choose a video file to upload.';
  else if (file.size > maxUploadBytes()) {
    problems.file = `That file is ${formatBytes(file.size)}; the limit is ${formatBytes(maxUploadBytes())}.`;
  }
  return Object.keys(problems).length ? problems : null;
}

/** The server's words, with plain-language lead-ins for the statuses people hit. */
function uploadErrorMessage(err) {
  switch (err.status) {
    case 0:
      return 'The upload was interrupted. Check your connection; a very large file may also be over the size limit.';
    case 401:
      return 'Your session has expired. Please log in again, then upload.';
    case 413:
      return `That file is too large. ${err.message}`;
    case 415:
      return err.message; // the server says what the file is and what it accepts
    default:
      return err.message;
  }
}

/**
 * The file input inside a drop zone. The zone is the input's <label>, so a
 * click, or Enter/Space on the focused input, opens the picker: keyboard and
 * mouse users get the same control, and dropping is an extra.
 */
function createFilePicker(titleField) {
  const input = h('input', { type: 'file', name: 'file', accept: 'video/*', class: 'visually-hidden', id: 'upload-file', required: true,
    'aria-describedby': 'upload-file-chosen' });
  const chosen = h('span', { class: 'dropzone-chosen', id: 'upload-file-chosen', text: 'No file chosen' });
  const zone = h('label', { class: 'dropzone', for: 'upload-file' },
    input,
    h('span', { class: 'dropzone-icon', 'aria-hidden': 'true' }),
    h('span', { class: 'dropzone-text' }, h('strong', { text: 'Choose a video' }), ' or drag it here'),
    chosen);
  const error = h('p', { class: 'field-error', id: 'upload-file-error', 'data-testid': 'field-error-file', hidden: true });
  const root = h('div', { class: 'field' }, h('span', { class: 'field-label', id: 'upload-file-label', text: 'Video file' }), zone, error);
  input.setAttribute('aria-labelledby', 'upload-file-label');

  let file = null;
  let disabled = false;

  const choose = (picked) => {
    file = picked || null;
    chosen.textContent = file ? `${file.name} · ${formatBytes(file.size)}` : 'No file chosen';
    zone.classList.toggle('has-file', Boolean(file));
    // Save typing: a file called "My trip.mp4" suggests the title "My trip".
    if (file && !titleField.input.value.trim()) {
      titleField.input.value = file.name.replace(/\.[^.]+$/, '').slice(0, TITLE_MAX);
      titleField.input.dispatchEvent(new Event('input'));
    }
  };
  input.addEventListener('change', () => choose(input.files[0]));

  zone.addEventListener('dragover', (event) => {
    if (disabled) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.classList.add('is-dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('is-dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('is-dragging');
    if (disabled || !event.dataTransfer.files.length) return;
    // Mirror the drop into the input so it and what we send never disagree.
    input.files = event.dataTransfer.files;
    choose(event.dataTransfer.files[0]);
  });

  return {
    root,
    // The slot FormErrors writes server/client "file" messages into.
    slot: { error, input, hintId: 'upload-file-chosen' },
    get: () => file,
    setDisabled: (value) => {
      disabled = value;
      input.disabled = value;
      zone.classList.toggle('is-disabled', value);
    },
  };
}
