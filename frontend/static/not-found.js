// Shown for paths the app has no view for. The server only renders the shell
// for known paths, so this is mostly reached through a mistyped in-app link.

import { h } from './dom.js';

export const notFoundView = {
  match: /^$/, // never matched directly; the router uses it as the fallback
  mount(container) {
    document.title = 'Page not found · minitube';
    container.append(
      h(
        'section',
        { class: 'page page-narrow message-page' },
        h('h1', { text: 'Page not found' }),
        h('p', {}, "There's nothing here. ", h('a', { href: '/' }, 'Back to the videos')),
      ),
    );
  },
};
