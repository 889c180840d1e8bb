// The feed: a grid of cards with infinite scroll.
//
// Its state (DOM included) lives at module level and outlives the view, so
// that going back from a video shows the same cards at the same scroll
// position instead of reloading from the top.

import { request } from './api.js';
import { h, setVisible } from './dom.js';
import { createVideoCard } from './video-card.js';

const PAGE_SIZE = 12;
// Start fetching well before the sentinel is on screen so scrolling rarely waits.
const PREFETCH_MARGIN = '800px 0px';

let feed = null;

function createFeed() {
  const grid = h('ul', { class: 'feed-grid', 'data-testid': 'feed', 'aria-label': 'Videos' });
  const loading = h('p', { class: 'status-line', 'data-testid': 'feed-loading', role: 'status', hidden: true },
    h('span', { class: 'spinner', 'aria-hidden': 'true' }), 'Loading…');
  const end = h('p', { class: 'status-line feed-end', 'data-testid': 'feed-end', hidden: true, text: "You've reached the end" });
  const empty = h('div', { class: 'empty-state', hidden: true },
    h('p', { class: 'empty-title', text: 'No videos yet' }),
    h('p', {}, 'Be the first: ', h('a', { href: '/upload' }, 'upload a video'), '.'));
  const errorText = h('span');
  const error = h('div', { class: 'status-line feed-error', role: 'alert', hidden: true },
    errorText, ' ', h('button', { type: 'button', class: 'button button-small', onclick: () => loadMore(state) }, 'Try again'));
  // Sits after the last card; when it nears the viewport the next page loads.
  const sentinel = h('div', { class: 'feed-sentinel', 'aria-hidden': 'true' });

  const root = h('section', { class: 'feed', 'aria-labelledby': 'feed-heading' },
    h('h1', { id: 'feed-heading', class: 'visually-hidden', text: 'Latest videos' }),
    grid, empty, loading, error, end, sentinel);

  const state = {
    root, grid, loading, end, empty, error, errorText, sentinel,
    seen: new Set(), // ids already shown: a card never appears twice
    cursor: null,
    done: false,
    busy: false,
    failed: false, // after an error, wait for "Try again" instead of retrying in a loop
    started: false,
    mounted: false,
    scrollY: 0,
    observer: null,
  };
  state.observer = new IntersectionObserver(
    (entries) => {
      if (state.mounted && !state.failed && entries.some((entry) => entry.isIntersecting)) loadMore(state);
    },
    { rootMargin: PREFETCH_MARGIN },
  );
  return state;
}

async function loadMore(state) {
  if (state.busy || state.done) return;
  state.busy = true;
  state.failed = false;
  state.started = true;
  setVisible(state.error, false);
  setVisible(state.loading, true);

  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (state.cursor) params.set('cursor', state.cursor);
  try {
    // No token: the feed is public, and a stale token must not break it.
    const page = await request(`/videos?${params}`, { auth: false });
    appendCards(state, page?.items || []);
    state.cursor = page?.next_cursor || null;
    state.done = !state.cursor;
  } catch (err) {
    state.failed = true;
    state.errorText.textContent = `Couldn't load videos. ${err.message}`;
    setVisible(state.error, true);
  } finally {
    state.busy = false;
    setVisible(state.loading, false);
    updateEndStates(state);
    rearm(state);
  }
}

function appendCards(state, videos) {
  const fragment = document.createDocumentFragment();
  for (const video of videos) {
    if (state.seen.has(video.id)) continue;
    state.seen.add(video.id);
    fragment.append(h('li', { class: 'feed-item' }, createVideoCard(video)));
  }
  state.grid.append(fragment);
}

function updateEndStates(state) {
  const hasCards = state.grid.childElementCount > 0;
  setVisible(state.empty, state.done && !hasCards);
  setVisible(state.end, state.done && hasCards);
}

/**
 * An IntersectionObserver only reports changes: if the sentinel is still in
 * view after a page was appended (a tall screen, a short page), no new event
 * comes. Observing afresh makes it report the current state once more.
 */
function rearm(state) {
  if (!state.mounted || state.done || state.failed) return;
  state.observer.unobserve(state.sentinel);
  state.observer.observe(state.sentinel);
}

export const feedView = {
  match: /^\/$/,
  mount(container, { fromHistory }) {
    document.title = 'minitube';
    // Back/forward returns to the kept feed where it was left; following a
    // link here (the logo) starts fresh at the top with the newest videos.
    if (!fromHistory) resetFeed();
    feed = feed || createFeed();
    const state = feed;
    container.append(state.root);
    state.mounted = true;
    if (fromHistory) window.scrollTo(0, state.scrollY);
    if (!state.started) loadMore(state);
    else rearm(state);

    return {
      unmount() {
        state.scrollY = window.scrollY;
        state.mounted = false;
        state.observer.disconnect();
      },
    };
  },
};

/** Forget a deleted video's card so the kept feed doesn't link to a dead page. */
export function removeFromFeed(id) {
  if (!feed) return;
  feed.grid.querySelector(`[data-video-id="${CSS.escape(String(id))}"]`)?.closest('li')?.remove();
  updateEndStates(feed);
}

/** Drop the kept feed (e.g. after an upload) so the next visit starts fresh, newest first. */
export function resetFeed() {
  if (!feed) return;
  feed.observer.disconnect();
  feed = null;
}
