// Tiny DOM builder. Every string becomes a text node or an attribute value,
// never markup: server data (titles, names, descriptions) can hold anything,
// including "<img src=x onerror=…>", and must show literally.

/**
 * Create an element.
 *   h('a', { class: 'card', href: '/x', 'data-testid': 'video-card', onclick: fn }, 'text', childNode)
 * Props: `class`, `text` (textContent), `on<event>` (a function), anything else
 * is set with setAttribute; `true` sets an empty attribute, null/false skips it.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') {
      el.className = value;
    } else if (key === 'text') {
      el.textContent = String(value);
    } else if (key.startsWith('on')) {
      // A string here would be an inline handler, which the CSP blocks anyway.
      if (typeof value !== 'function') throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** Append children, flattening arrays and turning strings/numbers into text nodes. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Show or hide an element with the `hidden` attribute (styled as display:none). */
export function setVisible(el, visible) {
  el.hidden = !visible;
}
