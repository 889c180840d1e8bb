// HTTP helpers for the JSON API. Every error the server sends has the shape
// {"error": {"code", "message", "fields"?}}; this module turns it (and network
// failures) into one ApiError so views only ever handle one kind of failure.

import { getToken, signOut } from './session.js';

/** Plain-words fallbacks, used when a body is missing or not the JSON envelope. */
const FALLBACK_MESSAGES = {
  0: 'Could not reach the server. Check your connection and try again.',
  400: 'The request could not be understood.',
  401: 'Please log in again.',
  403: "You're not allowed to do that.",
  404: 'Not found.',
  409: 'That conflicts with something that already exists.',
  413: 'That file is too large.',
  415: "That file doesn't look like a video we can play.",
  422: 'Please check the highlighted fields.',
  429: 'Too many attempts. Please wait a moment and try again.',
  503: 'The service is temporarily unavailable. Please try again shortly.',
};

export class ApiError extends Error {
  constructor(status, { code, message, fields } = {}, retryAfterSeconds = null) {
    super(message || FALLBACK_MESSAGES[status] || `Something went wrong (HTTP ${status}).`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || (status === 0 ? 'network_error' : 'unknown_error');
    this.fields = fields && typeof fields === 'object' ? fields : null;
    this.retryAfter = retryAfterSeconds;
  }
}

/** Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value) {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.max(1, Number(trimmed));
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(1, Math.ceil((date - Date.now()) / 1000));
}

/** "Too many attempts, try again in N seconds" for a 429. */
export function rateLimitMessage(error) {
  const n = error.retryAfter;
  if (!n) return 'Too many attempts, try again in a little while.';
  return `Too many attempts, try again in ${n} ${n === 1 ? 'second' : 'seconds'}.`;
}

function parseJson(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Build the ApiError for a non-2xx answer. A 401 to a request that carried our
 * token means the token is no longer good (expired, user deleted): drop it so
 * the UI stops pretending to be signed in.
 */
export function errorFromResponse(status, bodyText, retryAfterHeader, sentToken) {
  if (status === 401 && sentToken && sentToken === getToken()) signOut();
  const body = parseJson(bodyText);
  const envelope = body && typeof body.error === 'object' && body.error ? body.error : {};
  return new ApiError(status, envelope, parseRetryAfter(retryAfterHeader));
}

function authHeaders(auth) {
  const token = auth ? getToken() : null;
  return { token, headers: token ? { Authorization: `Bearer ${token}` } : {} };
}

/**
 * fetch() a JSON route. `json` is sent as the body; `auth` adds the bearer
 * token when signed in. Resolves to the parsed body (null for 204), rejects
 * with ApiError, or with the AbortError when `signal` aborts.
 */
export async function request(path, { method = 'GET', json, auth = true, signal } = {}) {
  const { token, headers } = authHeaders(auth);
  const init = {
    method,
    signal,
    // Explicit so the anonymous-viewer cookie always travels with view reports.
    credentials: 'same-origin',
    headers: { Accept: 'application/json', ...headers },
  };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }

  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0);
  }
  const text = await response.text().catch(() => '');
  if (!response.ok) {
    throw errorFromResponse(response.status, text, response.headers.get('Retry-After'), token);
  }
  return response.status === 204 ? null : parseJson(text);
}

/**
 * POST a FormData with XMLHttpRequest, because fetch() cannot report upload
 * progress. onProgress gets a fraction 0..1 (or null when the size is unknown).
 * Returns { promise, abort }; abort() rejects the promise with an AbortError.
 */
export function uploadForm(path, formData, { onProgress, onSent } = {}) {
  const { token, headers } = authHeaders(true);
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    xhr.setRequestHeader('Accept', 'application/json');
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);

    xhr.upload.addEventListener('progress', (event) => {
      onProgress?.(event.lengthComputable && event.total > 0 ? event.loaded / event.total : null);
    });
    // Bytes are all sent but the server still checks and probes the file.
    xhr.upload.addEventListener('load', () => onSent?.());

    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(parseJson(xhr.responseText));
      } else {
        reject(errorFromResponse(xhr.status, xhr.responseText, xhr.getResponseHeader('Retry-After'), token));
      }
    });
    // A 413 may arrive while the body is still going up; browsers then often
    // report a network error instead of the answer (status 0): the upload view
    // words that case with the size limit in mind.
    xhr.addEventListener('error', () => reject(new ApiError(0)));
    xhr.addEventListener('abort', () => reject(new DOMException('Upload cancelled', 'AbortError')));
    xhr.send(formData);
  });
  return { promise, abort: () => xhr.abort() };
}
