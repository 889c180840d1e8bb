// The signed-in state: the bearer token (persisted so a reload stays logged
// in) and the user it belongs to (fetched from /auth/me, kept in memory only).
// Views subscribe instead of reading once, because the user arrives
// asynchronously after boot and a 401 anywhere can end the session.

const STORAGE_KEY = 'minitube.token';

let token = readStoredToken();
let user = null;
const listeners = new Set();

function readStoredToken() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled (some private modes): behave as logged out
  }
}

function storeToken(value) {
  try {
    if (value) localStorage.setItem(STORAGE_KEY, value);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // Not persisting only costs a login after reload; the session still works.
  }
}

function notify() {
  for (const fn of listeners) fn({ token, user });
}

export function getToken() {
  return token;
}

export function getUser() {
  return user;
}

/** True as soon as a token is held, even before /auth/me has named the user. */
export function isLoggedIn() {
  return Boolean(token);
}

export function signIn(newToken, newUser) {
  token = newToken;
  user = newUser ?? null;
  storeToken(newToken);
  notify();
}

export function setUser(newUser) {
  user = newUser;
  notify();
}

export function signOut() {
  if (!token && !user) return;
  token = null;
  user = null;
  storeToken(null);
  notify();
}

/** Call fn on every change; returns the unsubscribe function. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// Keep tabs in step: logging out in one tab logs out the others.
window.addEventListener('storage', (event) => {
  if (event.key !== STORAGE_KEY && event.key !== null) return;
  const stored = readStoredToken();
  if (stored === token) return;
  token = stored;
  user = null;
  notify();
});
