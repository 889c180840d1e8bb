// Entry point: wires the header to the session, restores the login from the
// stored token, and starts the router over the page views.

import { request } from './api.js';
import { h } from './dom.js';
import { startRouter, navigate } from './router.js';
import { getToken, getUser, isLoggedIn, setUser, signOut, subscribe } from './session.js';
import { feedView } from './feed.js';
import { watchView } from './watch.js';
import { uploadView } from './upload.js';
import { loginView, registerView } from './auth-views.js';
import { notFoundView } from './not-found.js';

const accountEl = document.getElementById('account');
const mainEl = document.getElementById('main');

/** Header right side: Log in / Register, or "Signed in as …" + Log out. */
function renderAccount() {
  if (!isLoggedIn()) {
    accountEl.replaceChildren(
      h('a', { class: 'nav-link', href: '/login' }, 'Log in'),
      h('a', { class: 'button button-small', href: '/register' }, 'Register'),
    );
  } else {
    const user = getUser();
    accountEl.replaceChildren(
      // While /auth/me is in flight the name is unknown; Log out works anyway.
      user
        ? h(
            'span',
            { class: 'signed-in' },
            h('span', { class: 'signed-in-label', text: 'Signed in as ' }),
            h('strong', { 'data-testid': 'current-user', text: user.display_name || user.email }),
          )
        : null,
      h('button', { type: 'button', class: 'button button-small button-quiet', 'data-testid': 'logout', onclick: logOut }, 'Log out'),
    );
  }
  markCurrentLinks(location.pathname);
}

function logOut() {
  // Tokens are stateless JWTs with no logout route: forgetting it is the logout.
  signOut();
  // Pages that only make sense signed in would now show a login prompt anyway;
  // the feed is the friendlier place to land.
  if (location.pathname === '/upload') navigate('/', { replace: true });
}

/** aria-current on header links, which also drives their "active" styling. */
function markCurrentLinks(pathname) {
  for (const link of document.querySelectorAll('.site-header a[href]')) {
    if (link.pathname === pathname) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/**
 * Ask who the stored token belongs to. A 401 signs out (inside request());
 * a network or server error keeps the token, since it may still be good.
 */
let lookingUp = null; // the token a /auth/me is in flight for, to ask only once

async function restoreUser() {
  const token = getToken();
  if (!token || getUser() || lookingUp === token) return;
  lookingUp = token;
  try {
    const body = await request('/auth/me');
    // Ignore the answer if the session changed while we waited.
    if (getToken() === token && body?.user) setUser(body.user);
  } catch {
    // Already handled: 401 cleared the session; anything else is transient.
  } finally {
    lookingUp = null;
  }
}

subscribe(() => {
  renderAccount();
  restoreUser(); // another tab may have signed in with a new token
});

renderAccount();
restoreUser();

startRouter({
  container: mainEl,
  views: [feedView, watchView, uploadView, loginView, registerView],
  notFound: notFoundView,
  afterRender: markCurrentLinks,
});
