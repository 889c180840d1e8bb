// Human-friendly formatting. The UI is English throughout, so the locale is
// pinned rather than taken from the browser: mixed-language labels read badly.

const LOCALE = 'en';
const compactNumber = new Intl.NumberFormat(LOCALE, { notation: 'compact', maximumFractionDigits: 1 });
const fullNumber = new Intl.NumberFormat(LOCALE);
const relative = new Intl.RelativeTimeFormat(LOCALE, { numeric: 'always' });
const fullDate = new Intl.DateTimeFormat(LOCALE, { dateStyle: 'medium', timeStyle: 'short' });

/** 75 → "1:15", 3725 → "1:02:05"; null/invalid → "" (the caller hides the badge). */
export function formatDuration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** 1234 → "1.2K" for dense places like cards. */
export function formatCompact(n) {
  return compactNumber.format(Number(n) || 0);
}

/** 1234 → "1,234" for titles/tooltips. */
export function formatFull(n) {
  return fullNumber.format(Number(n) || 0);
}

/** "view" / "views" by count. */
export function plural(n, singular, pluralForm = `${singular}s`) {
  return Number(n) === 1 ? singular : pluralForm;
}

const UNITS = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['week', 7 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];

/** RFC 3339 time → "3 minutes ago". Under a minute (or clock skew into the future) → "just now". */
export function timeAgo(iso, now = Date.now()) {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const seconds = (now - then) / 1000;
  for (const [unit, size] of UNITS) {
    if (seconds >= size) return relative.format(-Math.floor(seconds / size), unit);
  }
  return 'just now';
}

/** RFC 3339 time → "Dec 3, 2026, 3:46 PM" in the viewer's time zone. */
export function formatDate(iso) {
  const then = Date.parse(iso);
  return Number.isNaN(then) ? '' : fullDate.format(then);
}

/** 1536 → "1.5 MB": for showing the picked file before upload. */
export function formatBytes(bytes) {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = Number(bytes) || 0;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return i === 0 ? `${value} ${units[0]}` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}
