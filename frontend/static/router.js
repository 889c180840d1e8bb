// Client-side router. The server renders the same shell for every page path,
// so a reload lands here too; links stay real <a href> and are intercepted
// only for paths this app knows.
//
// A view is { match: RegExp, mount(container, ctx) → { unmount() } | void }.
// ctx = { params, query, fromHistory, navigate }; fromHistory is true for
// back/forward, which is when the feed restores its scroll position.

let routes = [];
let fallback = null;
let outlet = null;
let current = null;
let onChange = () => {};

/** Start routing: render the current URL and take over link clicks and back/forward. */
export function startRouter({ container, views, notFound, afterRender }) {
  routes = views;
  fallback = notFound;
  outlet = container;
  onChange = afterRender || onChange;

  // The feed restores its own scroll from memory; the browser's own attempt
  // would fight it (and runs before the feed's DOM is back).
  if ('scrollRestoration' in history) history.scrollRestoration = 'manual';

  document.addEventListener('click', onLinkClick);
  window.addEventListener('popstate', () => render({ fromHistory: true }));
  render({ fromHistory: false, initial: true });
}

/** Go to an in-app URL. `replace` swaps the history entry instead of adding one. */
export function navigate(url, { replace = false } = {}) {
  const target = new URL(url, location.href);
  const same = target.pathname === location.pathname && target.search === location.search;
  if (same && !replace) {
    window.scrollTo(0, 0);
    return;
  }
  history[replace ? 'replaceState' : 'pushState'](null, '', target.pathname + target.search + target.hash);
  render({ fromHistory: false });
}

/** True when this app renders the path (so a link to it can be handled in-page). */
export function isAppPath(pathname) {
  return routes.some((view) => view.match.test(pathname));
}

function findView(pathname) {
  for (const view of routes) {
    const m = view.match.exec(pathname);
    if (m) return { view, params: m.groups || {} };
  }
  return { view: fallback, params: {} };
}

function render({ fromHistory, initial = false }) {
  // Unmount first: the feed records window.scrollY here, before the DOM changes.
  current?.unmount?.();
  current = null;
  outlet.replaceChildren();
  window.scrollTo(0, 0);

  const { view, params } = findView(location.pathname);
  const ctx = { params, query: new URLSearchParams(location.search), fromHistory, navigate };
  current = view.mount(outlet, ctx) || null;

  // Move focus into the new view so keyboard and screen-reader users start
  // there, not on the link they left. Not on first load: the browser's default
  // (top of page, skip link next) is right then.
  if (!initial) outlet.focus({ preventScroll: true });
  onChange(location.pathname);
}

function onLinkClick(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // new tab/window
  const link = event.target.closest?.('a[href]');
  if (!link || (link.target && link.target !== '_self') || link.hasAttribute('download')) return;
  if (link.origin !== location.origin) return;
  // In-page anchors (the skip link) keep their native behaviour.
  if (link.getAttribute('href').startsWith('#')) return;
  if (!isAppPath(link.pathname)) return;
  event.preventDefault();
  navigate(link.pathname + link.search + link.hash);
}
