// Shared form building and error display for login, register and upload.
// Errors live in two places: next to a field (data-testid="field-error-<name>",
// tied to the input with aria-describedby) and in one form-level alert
// (data-testid="form-error", role="alert") for anything not about one field.

import { h, setVisible } from './dom.js';

let idCounter = 0;

/**
 * A labelled input (or textarea) with a hint and an error slot.
 * Returns { root, input, error, name, hintId }.
 */
export function createField({
  name,
  label,
  type = 'text',
  multiline = false,
  required = false,
  optional = false,
  hint = null,
  ...attrs
}) {
  idCounter += 1;
  const id = `field-${name}-${idCounter}`;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;

  const input = multiline
    ? h('textarea', { id, name, required, 'aria-describedby': hintId, ...attrs })
    : h('input', { id, name, type, required, 'aria-describedby': hintId, ...attrs });

  const error = h('p', { id: errorId, class: 'field-error', 'data-testid': `field-error-${name}`, hidden: true });

  const root = h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label, optional ? h('span', { class: 'optional', text: ' (optional)' }) : null),
    input,
    hint ? h('p', { id: hintId, class: 'field-hint', text: hint }) : null,
    error,
  );
  return { root, input, error, name, hintId };
}

/** The form-level alert. Hidden until there is something to say. */
export function createFormError() {
  return h('div', { class: 'form-error', role: 'alert', 'data-testid': 'form-error', hidden: true });
}

/**
 * Error display for one form.
 *   const errors = new FormErrors(formErrorEl, [field, field…]);
 *   errors.show({ message, fields }); errors.clear();
 */
export class FormErrors {
  constructor(formError, fields, extraSlots = {}) {
    this.formError = formError;
    this.slots = {};
    for (const field of fields) this.slots[field.name] = field;
    // Fields that aren't a createField (e.g. the upload drop zone) still get a slot.
    Object.assign(this.slots, extraSlots);
  }

  clear() {
    setVisible(this.formError, false);
    this.formError.textContent = '';
    for (const slot of Object.values(this.slots)) this.setFieldError(slot, null);
  }

  setFieldError(slot, message) {
    slot.error.textContent = message || '';
    setVisible(slot.error, Boolean(message));
    if (!slot.input) return;
    // Screen readers read the describedby text on focus: hint always, error when present.
    const describedBy = [slot.hintId, message ? slot.error.id : null].filter(Boolean).join(' ');
    if (describedBy) slot.input.setAttribute('aria-describedby', describedBy);
    else slot.input.removeAttribute('aria-describedby');
    if (message) slot.input.setAttribute('aria-invalid', 'true');
    else slot.input.removeAttribute('aria-invalid');
  }

  /**
   * Show errors. Field messages go next to their field; a field the form does
   * not have falls back to the form-level alert, so nothing the server said is
   * lost. `message` shows in the alert when there are no field errors, or
   * always with `alwaysMessage`. Focuses the first invalid field.
   */
  show({ message = null, fields = null } = {}, { alwaysMessage = false } = {}) {
    this.clear();
    const orphaned = [];
    let first = null;
    for (const [name, text] of Object.entries(fields || {})) {
      const slot = this.slots[name];
      const words = Array.isArray(text) ? text.join(' ') : String(text);
      if (slot) {
        this.setFieldError(slot, words); // verbatim: the server's words are the contract
        first = first || slot;
      } else {
        orphaned.push(`${name}: ${words}`);
      }
    }
    const alertLines = [];
    if (message && (alwaysMessage || !first)) alertLines.push(message);
    alertLines.push(...orphaned);
    if (alertLines.length) {
      this.formError.textContent = alertLines.join('\n');
      setVisible(this.formError, true);
    }
    if (first?.input) first.input.focus();
  }
}

/** Put a submit button into its busy state (and back), keeping the label readable. */
export function setBusy(button, busy, busyLabel) {
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = busyLabel;
  } else if (button.dataset.label) {
    button.textContent = button.dataset.label;
  }
  button.disabled = busy;
  button.setAttribute('aria-busy', String(busy));
}
