// Log in and Register. Both are one form with a few fields; register then
// logs in with the same credentials, so a new user lands signed in.

import { ApiError, rateLimitMessage, request } from './api.js';
import { h } from './dom.js';
import { createField, createFormError, FormErrors, setBusy } from './forms.js';
import { signIn } from './session.js';

const MIN_PASSWORD = 8;
// The server's limit (1–50 characters after trimming); longer names were typed, then refused.
const DISPLAY_NAME_MAX = 50;

export const loginView = {
  match: /^\/login\/?$/,
  mount(container, ctx) {
    document.title = 'Log in · minitube';
    container.append(createAuthPage('login', ctx));
  },
};

export const registerView = {
  match: /^\/register\/?$/,
  mount(container, ctx) {
    document.title = 'Register · minitube';
    container.append(createAuthPage('register', ctx));
  },
};

/** Where to go after signing in: ?next= when it is a local path, else the feed. */
function nextPath(query) {
  const next = query.get('next');
  // "//host" would be protocol-relative, i.e. another site.
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

function createAuthPage(kind, { query, navigate }) {
  const isRegister = kind === 'register';
  const email = createField({
    name: 'email', label: 'Email', type: 'email', required: true,
    autocomplete: 'email', inputmode: 'email', spellcheck: 'false', autocapitalize: 'none',
  });
  const password = createField({
    name: 'password', label: 'Password', type: 'password', required: true,
    autocomplete: isRegister ? 'new-password' : 'current-password',
    minlength: isRegister ? MIN_PASSWORD : null,
    hint: isRegister ? `At least ${MIN_PASSWORD} characters.` : null,
  });
  const displayName = isRegister
    ? createField({ name: 'display_name', label: 'Display name', optional: true, autocomplete: 'nickname', maxlength: DISPLAY_NAME_MAX,
      hint: 'Shown next to your videos.' })
    : null;
  const fields = [email, displayName, password].filter(Boolean);

  const formError = createFormError();
  const errors = new FormErrors(formError, fields);
  const submit = h('button', { type: 'submit', class: 'button button-block' }, isRegister ? 'Create account' : 'Log in');
  const next = nextPath(query);
  const otherHref = (path) => (next === '/' ? path : `${path}?next=${encodeURIComponent(next)}`);

  // novalidate: our own checks show messages in the same places as the
  // server's, instead of the browser's bubbles.
  const form = h('form', { class: 'form', novalidate: true },
    formError,
    fields.map((field) => field.root),
    submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = {
      email: email.input.value.trim(),
      password: password.input.value,
      display_name: displayName?.input.value.trim() || '',
    };
    const problems = validate(values, isRegister);
    if (problems) {
      errors.show({ fields: problems });
      return;
    }
    errors.clear();
    setBusy(submit, true, isRegister ? 'Creating account…' : 'Logging in…');
    try {
      if (isRegister) await register(values);
      const session = await logIn(values);
      signIn(session.access_token, session.user);
      navigate(next);
    } catch (err) {
      setBusy(submit, false);
      showServerError(errors, err, isRegister);
    }
  });

  return h('section', { class: 'page page-narrow' },
    h('div', { class: 'panel' },
      h('h1', { text: isRegister ? 'Create your account' : 'Log in' }),
      form,
      h('p', { class: 'form-switch' },
        isRegister
          ? ['Already have an account? ', h('a', { href: otherHref('/login') }, 'Log in')]
          : ['New here? ', h('a', { href: otherHref('/register') }, 'Create an account')])));
}

function validate({ email, password }, isRegister) {
  const problems = {};
  if (!email) problems.email = 'Enter your email address.';
  else if (!/^[^\s@]+@[^\s@]+$/.test(email)) problems.email = 'Enter a valid email address, like name@example.com.';
  if (!password) problems.password = 'Enter your password.';
  else if (isRegister && password.length < MIN_PASSWORD) problems.password = `Use at least ${MIN_PASSWORD} characters.`;
  return Object.keys(problems).length ? problems : null;
}

async function register({ email, password, display_name: displayName }) {
  const body = { email, password };
  if (displayName) body.display_name = displayName;
  try {
    await request('/auth/register', { method: 'POST', json: body, auth: false });
  } catch (err) {
    err.stage = 'register';
    throw err;
  }
}

async function logIn({ email, password }) {
  try {
    const session = await request('/auth/login', { method: 'POST', json: { email, password }, auth: false });
    if (!session?.access_token) throw new ApiError(500, { message: 'The server sent no token. Please try again.' });
    return session;
  } catch (err) {
    err.stage = 'login';
    throw err;
  }
}

function showServerError(errors, err, isRegister) {
  if (err.status === 429) {
    errors.show({ message: rateLimitMessage(err) });
  } else if (isRegister && err.stage === 'login') {
    // The account exists now; only the automatic login failed.
    errors.show({ message: `Your account was created, but logging in failed: ${err.message} Please log in.` });
  } else {
    errors.show({ message: err.message, fields: err.fields });
  }
}
