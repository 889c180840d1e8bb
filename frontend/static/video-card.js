// One feed card: a single link to the watch page wrapping poster, title and
// meta, so the whole card is one tab stop and one click target.

import { h } from './dom.js';
import { formatCompact, formatDate, formatDuration, formatFull, plural, timeAgo } from './format.js';

/** The poster, or a neutral box when the server has none (or it fails to load). */
export function createThumbnail(video) {
  const duration = formatDuration(video.duration_seconds);
  const frame = h('div', { class: 'thumb' });
  const placeholder = () => h('div', { class: 'thumb-placeholder', 'aria-hidden': 'true' });

  if (video.thumbnail_url) {
    const img = h('img', {
      src: video.thumbnail_url,
      alt: '', // decorative: the title right below says what it is
      loading: 'lazy',
      decoding: 'async',
      width: video.width || null,
      height: video.height || null,
    });
    img.addEventListener('error', () => img.replaceWith(placeholder()), { once: true });
    frame.append(img);
  } else {
    frame.append(placeholder());
  }
  if (duration) {
    frame.append(h('span', { class: 'thumb-duration', 'aria-label': `Duration ${duration}`, text: duration }));
  }
  return frame;
}

export function createVideoCard(video) {
  const author = video.author?.display_name || 'Unknown';
  const views = Number(video.views) || 0;
  return h(
    'a',
    { class: 'card', href: `/watch/${encodeURIComponent(video.id)}`, 'data-testid': 'video-card', 'data-video-id': video.id },
    createThumbnail(video),
    h(
      'div',
      { class: 'card-body' },
      h('h2', { class: 'card-title', text: video.title }),
      h('p', { class: 'card-author', text: author }),
      h(
        'p',
        { class: 'card-meta' },
        h('span', { title: `${formatFull(views)} ${plural(views, 'view')}` }, `${formatCompact(views)} ${plural(views, 'view')}`),
        h('span', { class: 'dot', 'aria-hidden': 'true', text: '·' }),
        h('time', { datetime: video.created_at, title: formatDate(video.created_at), text: timeAgo(video.created_at) }),
      ),
    ),
  );
}
