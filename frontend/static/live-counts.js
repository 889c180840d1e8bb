// Live "watching now" / views over the active-viewers WebSocket.
// The socket is also how the server knows this viewer is watching (it times
// the view threshold from it), so it is kept open for as long as the watch
// page is, and reopened with backoff when it drops.

const RETRY_BASE_MS = 1000;
const RETRY_MAX_MS = 30000;
const CLOSE_UNKNOWN_VIDEO = 4404; // the server's "no such video": retrying can't help

function socketUrl(videoId, token) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  return `${scheme}//${location.host}/videos/${encodeURIComponent(videoId)}/active-viewers${query}`;
}

/**
 * Connect and keep connected until close() is called.
 *   onCounts({ active_viewers, views })  every message from the server
 *   onStatus('open' | 'reconnecting' | 'gone')
 * Returns { close }.
 */
export function connectLiveCounts(videoId, { getToken, onCounts, onStatus }) {
  let socket = null;
  let attempts = 0;
  let retryTimer = null;
  let stopped = false;

  function open() {
    retryTimer = null;
    // The token is read per connection so a login on another tab is picked up.
    socket = new WebSocket(socketUrl(videoId, getToken()));
    socket.addEventListener('open', () => onStatus?.('open'));
    socket.addEventListener('message', (event) => {
      attempts = 0; // a working connection resets the backoff
      const data = parseMessage(event.data);
      if (data) onCounts(data);
    });
    socket.addEventListener('close', (event) => {
      socket = null;
      if (stopped) return;
      if (event.code === CLOSE_UNKNOWN_VIDEO) {
        stopped = true;
        onStatus?.('gone');
        return;
      }
      onStatus?.('reconnecting');
      scheduleRetry();
    });
    // 'error' is always followed by 'close', which does the retrying.
  }

  function scheduleRetry() {
    // Exponential backoff with jitter, so a restarted server isn't hit by
    // every open tab in the same instant.
    const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** attempts);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempts += 1;
    retryTimer = setTimeout(open, delay);
  }

  // Coming back online: don't sit out the rest of a long backoff.
  function onOnline() {
    if (stopped || socket || !retryTimer) return;
    clearTimeout(retryTimer);
    attempts = 0;
    open();
  }
  window.addEventListener('online', onOnline);

  open();

  return {
    close() {
      stopped = true;
      window.removeEventListener('online', onOnline);
      clearTimeout(retryTimer);
      if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000, 'leaving');
      socket = null;
    },
  };
}

function parseMessage(text) {
  try {
    const data = JSON.parse(text);
    return data && typeof data === 'object' ? data : null;
  } catch {
    return null;
  }
}
