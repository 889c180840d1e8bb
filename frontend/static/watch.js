// The watch page: player, live counts, view reporting and (for the author) delete.

import { request } from './api.js';
import { h, setVisible } from './dom.js';
import { setBusy } from './forms.js';
import { formatDate, formatFull, plural, timeAgo } from './format.js';
import { removeFromFeed } from './feed.js';
import { connectLiveCounts } from './live-counts.js';
import { trackPlayback, viewThreshold } from './play-tracker.js';
import { getToken, getUser, subscribe } from './session.js';

export const watchView = {
  match: /^\/watch\/(?<id>\d+)\/?$/,
  mount(container, { params, navigate }) {
    const page = createWatchPage(params.id, navigate);
    container.append(page.root);
    page.load();
    return { unmount: page.destroy };
  },
};

function createWatchPage(id, navigate) {
  const root = h('article', { class: 'watch' });
  const controller = new AbortController(); // cancels requests when leaving
  const cleanups = [];
  document.title = 'minitube';

  async function load() {
    root.replaceChildren(h('p', { class: 'status-line', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading…'));
    try {
      const body = await request(`/videos/${id}`, { auth: false, signal: controller.signal });
      if (controller.signal.aborted) return;
      renderVideo(body.video);
    } catch (err) {
      if (err.name === 'AbortError') return;
      if (err.status === 404) renderNotFound();
      else renderLoadError(err);
    }
  }

  function renderNotFound() {
    document.title = 'Video not found · minitube';
    root.replaceChildren(
      h('div', { class: 'message-page' },
        h('h1', { text: 'Video not found' }),
        h('p', {}, 'It may have been deleted, or the link is wrong. ', h('a', { href: '/' }, 'Back to the videos'))),
    );
  }

  function renderLoadError(err) {
    root.replaceChildren(
      h('div', { class: 'message-page', role: 'alert' },
        h('h1', { text: "Couldn't load this video" }),
        h('p', { text: err.message }),
        h('button', { type: 'button', class: 'button', onclick: load }, 'Try again')),
    );
  }

  function renderVideo(video) {
    document.title = `${video.title} · minitube`;
    const player = h('video', {
      class: 'player',
      'data-testid': 'player',
      controls: true,
      preload: 'metadata',
      playsinline: true,
      src: video.stream_url,
      poster: video.thumbnail_url || null,
    });
    const playerError = h('p', { class: 'notice notice-error', role: 'alert', hidden: true,
      text: "This video can't be played in this browser. Its format may not be supported here." });
    player.addEventListener('error', () => setVisible(playerError, true));

    const counts = createCounts(video);
    const actions = createActions(video);

    root.replaceChildren(
      h('div', { class: 'player-frame' }, player),
      playerError,
      h('div', { class: 'watch-info' },
        h('h1', { class: 'watch-title', text: video.title }),
        h('div', { class: 'watch-bar' },
          h('p', { class: 'watch-byline' },
            h('span', { class: 'watch-author', text: video.author?.display_name || 'Unknown' }),
            h('span', { class: 'dot', 'aria-hidden': 'true', text: '·' }),
            h('time', { datetime: video.created_at, title: formatDate(video.created_at), text: timeAgo(video.created_at) })),
          counts.root,
          actions.root),
        actions.error,
        counts.goneNotice,
        video.description
          ? h('p', { class: 'watch-description', text: video.description })
          : h('p', { class: 'watch-description muted', text: 'No description.' })),
    );

    const live = connectLiveCounts(video.id, {
      getToken,
      onCounts: (data) => {
        if ('active_viewers' in data) counts.setWatching(data.active_viewers);
        if (typeof data.views === 'number') counts.setViews(data.views);
      },
      onStatus: counts.setStatus,
    });
    cleanups.push(() => live.close());

    const stopTracking = trackPlayback(player, {
      threshold: () => viewThreshold(player, video.duration_seconds),
      onReached: () => reportView(video.id, counts),
    });
    cleanups.push(stopTracking);

    // Leaving the page must stop the sound and the download: a detached
    // <video> keeps playing.
    cleanups.push(() => {
      player.pause();
      player.removeAttribute('src');
      player.load();
    });
  }

  /** "N watching now · M views", updated from the socket and the view report. */
  function createCounts(video) {
    const liveDot = h('span', { class: 'live-dot', 'aria-hidden': 'true' });
    const watching = h('span', { class: 'count', 'data-testid': 'watching-now' });
    const views = h('span', { class: 'count', 'data-testid': 'views-count' });
    const viewsWord = h('span');
    const goneNotice = h('p', { class: 'notice', role: 'status', hidden: true, text: 'This video has just been removed.' });
    let shownViews = -1;

    const setWatching = (n) => {
      // null means the server can't tell right now (e.g. Redis down).
      watching.textContent = typeof n === 'number' ? String(n) : '—';
    };
    const setViews = (n) => {
      // Counts only grow; a coalesced socket message may arrive after the
      // fresher number from our own view report, so never step back.
      if (typeof n !== 'number' || n < shownViews) return;
      shownViews = n;
      views.textContent = String(n);
      views.title = formatFull(n);
      viewsWord.textContent = ` ${plural(n, 'view')}`;
    };
    const setStatus = (status) => {
      liveDot.classList.toggle('is-live', status === 'open');
      // While disconnected the last number would be stale: show "unknown".
      if (status !== 'open') setWatching(null);
      if (status === 'gone') setVisible(goneNotice, true);
    };

    setWatching(video.active_viewers);
    setViews(Number(video.views) || 0);
    const root = h('p', { class: 'live-stats' },
      h('span', { class: 'stat' }, liveDot, watching, ' watching now'),
      h('span', { class: 'dot', 'aria-hidden': 'true', text: '·' }),
      h('span', { class: 'stat' }, views, viewsWord));
    return { root, goneNotice, setWatching, setViews, setStatus };
  }

  /**
   * The author's Delete button, shown or hidden as the signed-in user changes.
   * Deleting cannot be undone, so the first click only asks: an in-page
   * confirmation (not window.confirm, which blocks the page) with Cancel.
   */
  function createActions(video) {
    const button = h('button', { type: 'button', class: 'button button-danger button-small', hidden: true }, 'Delete');
    const confirm = h('button', { type: 'button', class: 'button button-danger button-small' }, 'Delete for good');
    const cancel = h('button', { type: 'button', class: 'button button-small' }, 'Cancel');
    const question = h('span', { class: 'confirm-text' }, 'Delete this video? This cannot be undone.');
    const confirmBox = h('div', { class: 'watch-confirm', role: 'group', 'aria-label': 'Confirm delete', hidden: true },
      question, confirm, cancel);
    const error = h('p', { class: 'notice notice-error', role: 'alert', hidden: true });
    const root = h('div', { class: 'watch-actions' }, button, confirmBox);

    const isAuthor = () => getUser()?.id === video.author?.id;
    const update = () => {
      setVisible(button, isAuthor());
      setVisible(confirmBox, false);
    };
    update();
    cleanups.push(subscribe(update));

    button.addEventListener('click', () => {
      setVisible(error, false);
      setVisible(button, false);
      setVisible(confirmBox, true);
      cancel.focus();
    });
    cancel.addEventListener('click', () => {
      setVisible(confirmBox, false);
      setVisible(button, true);
      button.focus();
    });
    confirm.addEventListener('click', async () => {
      setBusy(confirm, true, 'Deleting…');
      try {
        await request(`/videos/${video.id}`, { method: 'DELETE', signal: controller.signal });
      } catch (err) {
        if (err.name === 'AbortError') return;
        // Already gone is what we wanted; anything else stays on the page.
        if (err.status !== 404) {
          error.textContent = `Couldn't delete: ${err.message}`;
          setVisible(error, true);
          setBusy(confirm, false);
          return;
        }
      }
      removeFromFeed(video.id);
      // Replace, so Back doesn't lead to a page that no longer exists.
      navigate('/', { replace: true });
    });
    return { root, error };
  }

  /** Report the watch once; on an expired token, report it anonymously instead. */
  async function reportView(videoId, counts) {
    const path = `/videos/${videoId}/views`;
    const sentToken = Boolean(getToken());
    try {
      let body;
      try {
        body = await request(path, { method: 'POST', signal: controller.signal });
      } catch (err) {
        if (err.status !== 401 || !sentToken) throw err;
        body = await request(path, { method: 'POST', auth: false, signal: controller.signal });
      }
      if (typeof body?.views === 'number') counts.setViews(body.views);
    } catch (err) {
      // Not worth bothering the viewer about: the video still plays.
      if (err.name !== 'AbortError') console.warn('minitube: view report failed', err);
    }
  }

  function destroy() {
    controller.abort();
    for (const fn of cleanups.splice(0)) fn();
  }

  return { root, load, destroy };
}
