// Measures how long a <video> has actually been playing, to report a view
// once the threshold is reached. Counted in media time between consecutive
// events while playing, so pausing, buffering, a background tab or seeking
// around don't add up time that wasn't watched.

// A larger jump between two timeupdates is a seek (or a stall), not playback:
// timeupdate fires every 15–250 ms while playing.
const MAX_STEP_SECONDS = 3;

const EVENTS = ['playing', 'timeupdate', 'pause', 'ended', 'seeking', 'seeked', 'emptied'];

/**
 * Call onReached() once, when played time ≥ threshold().
 * threshold is a function because the duration is only known after metadata.
 * Returns stop().
 */
export function trackPlayback(video, { threshold, onReached }) {
  let played = 0;
  let last = null; // currentTime at the previous tick while playing, else null
  let reached = false;

  function accumulate() {
    if (last === null) return;
    const step = video.currentTime - last;
    if (step > 0 && step <= MAX_STEP_SECONDS) played += step;
    last = video.currentTime;
  }

  function check() {
    if (reached || played < threshold()) return;
    reached = true;
    stop();
    onReached(played);
  }

  function onEvent(event) {
    switch (event.type) {
      case 'playing':
        if (last === null) last = video.currentTime;
        break;
      case 'timeupdate':
        if (!video.seeking) accumulate();
        break;
      case 'pause':
      case 'ended':
        accumulate();
        last = null;
        break;
      case 'seeking':
        last = null; // the jump itself is not watching
        break;
      case 'seeked':
        if (!video.paused) last = video.currentTime;
        break;
      case 'emptied': // new source: start over
        played = 0;
        last = null;
        break;
      default:
        break;
    }
    check();
  }

  function stop() {
    for (const type of EVENTS) video.removeEventListener(type, onEvent);
  }

  for (const type of EVENTS) video.addEventListener(type, onEvent);
  return stop;
}

/**
 * The server's threshold (MINITUBE_VIEW_THRESHOLD_SECONDS, rendered into the
 * page's <meta name="minitube-view-threshold">), 30 s when absent.
 */
function configuredThreshold() {
  const meta = document.querySelector('meta[name="minitube-view-threshold"]');
  const value = meta ? Number.parseFloat(meta.content) : NaN;
  return Number.isFinite(value) && value > 0 ? value : 30;
}

/**
 * min(configured threshold, half the video), per the API's view rule. Uses
 * the element's duration once known, else the server's duration_seconds.
 */
export function viewThreshold(video, durationSeconds) {
  const limit = configuredThreshold();
  const duration = Number.isFinite(video.duration) && video.duration > 0 ? video.duration : durationSeconds;
  return typeof duration === 'number' && duration > 0 ? Math.min(limit, duration / 2) : limit;
}
