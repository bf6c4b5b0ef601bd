// Small DOM helpers shared by the views: element builder, title cards, rows and view states.
import { fillPoster, displayName } from './poster.js';

/** h('div.card', { href: … }, child, …) — a tiny element builder; the attributes are optional. */
export function h(tag, attrs = {}, ...children) {
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'html') el.innerHTML = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** What the UI shows for a value it does not have. */
export const NONE = '—';

/**
 * A fraction as a percentage, the one way the UI writes one: percent(0.4) → "40%".
 * `digits`: decimals shown, or 'auto' (one only when the percentage is not whole); `sign`:
 * '+', '−' or '±' in front, for lifts. A missing value is NONE.
 */
export function percent(fraction, { digits = 0, sign = false } = {}) {
  if (fraction === null || fraction === undefined) return NONE;
  const p = fraction * 100;
  const d = digits === 'auto' ? (p % 1 ? 1 : 0) : digits;
  if (!sign) return `${p.toFixed(d)}%`;
  return `${fraction > 0 ? '+' : fraction < 0 ? '−' : '±'}${Math.abs(p).toFixed(d)}%`;
}

/** The API's `MaturityRating` enum value as it is written: PG_13 → "PG-13". */
export function ratingLabel(rating) {
  return rating ? rating.replace('_', '-') : null;
}

export function ratingBadge(rating) {
  const label = ratingLabel(rating);
  return h('span.rating', { title: label ? `Rated ${label}` : 'Not rated' }, label ?? 'NR');
}

/** A focusable title card linking to the title page. */
export function titleCard(title, { reason, evidence, position, progress, onOpen } = {}) {
  const meta = h('div.card-meta',
    h('span.year', title.year ?? '—'), ratingBadge(title.maturityRating));
  const card = h('a.card', {
    href: `#/title/${encodeURIComponent(title.id)}`,
    dataset: { titleId: title.id, ...(position !== undefined ? { position: String(position) } : {}) },
    'aria-label': `${displayName(title.name)}${title.year ? ` (${title.year})` : ''}`,
    onclick: onOpen ? () => onOpen(title) : undefined,
  },
  fillPoster(h('div.poster'), title),
  h('div.card-body',
    h('div.card-title', displayName(title.name)),
    meta,
    h('div.card-genres', title.genres.join(' · ')),
    reason ? h('div.card-reason', { title: evidence?.map((e) => displayName(e.name)).join(', ') || undefined }, reason) : null));
  if (progress !== undefined) {
    card.querySelector('.poster').append(h('div.progress', h('div', { style: `width:${Math.round(progress * 100)}%` })));
  }
  return card;
}

/** A horizontally scrollable row of cards. */
export function row({ id, title, definition }, cards, { subtitle } = {}) {
  return h('section.row', { dataset: { rowId: id, rowDefinition: definition ?? '' }, 'aria-label': title },
    h('h2.row-title', title, subtitle ? h('span.row-subtitle', subtitle) : null),
    h('div.row-scroller', { role: 'list' }, cards));
}

/** Sets the main view's state hook and content. */
export function setView(view, state, ...content) {
  view.dataset.state = state;
  view.replaceChildren(...content.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

export function loading(view, label = 'Loading…') {
  const skeletonRow = () => h('div.row.skeleton',
    h('div.row-title.sk-bar'),
    h('div.row-scroller', Array.from({ length: 8 }, () => h('div.card.sk-card', h('div.poster')))));
  setView(view, 'loading', h('p.sr-only', { role: 'status' }, label), skeletonRow(), skeletonRow());
}

/** A friendly message for an ApiError (or anything thrown). */
export function describeError(err) {
  switch (err?.kind) {
    case 'network':
      return ['Marquee is unreachable', 'The server did not answer. Check that `marquee serve` is running, then retry.'];
    case 'not-found':
      return ['Not found', err.message];
    case 'bad-input':
      return ['That request was not accepted', err.message];
    case 'validation':
      return ['This server does not support that yet', err.message];
    default:
      return ['Something went wrong', err?.message ?? String(err)];
  }
}

export function errorState(view, err, { retry, title, detail } = {}) {
  const [t, d] = describeError(err);
  setView(view, 'error', h('div.message.error', { role: 'alert' },
    h('h1', title ?? t),
    h('p', detail ?? d),
    retry ? h('button.btn.primary', { onclick: retry }, 'Retry') : null,
    h('a.btn', { href: '#/' }, 'Home')));
  view.querySelector('button, a')?.focus();
}

export function emptyState(view, title, detail, ...actions) {
  setView(view, 'empty', h('div.message', h('h1', title), detail ? h('p', detail) : null, ...actions));
}

/** Renders `titles` as a wrapping grid of cards. */
export function grid(titles, opts = {}) {
  return h('div.grid', { role: 'list' }, titles.map((t) => titleCard(t, opts)));
}

export function initials(name) {
  return String(name).split(/\s+/).map((w) => w[0]).join('').slice(0, 2).toUpperCase();
}

export function avatarHue(id) {
  let n = 0;
  for (const c of String(id)) n = (n * 31 + c.charCodeAt(0)) % 360;
  return n;
}

const THUMB = 'M2 21h4V9H2v12zm21-10c0-1.1-.9-2-2-2h-6.3l1-4.6v-.3c0-.4-.2-.8-.5-1.1L14.2 2 7.6 8.6C7.2 9 7 9.5 7 10v9c0 1.1.9 2 2 2h9c.8 0 1.5-.5 1.8-1.2l3-7.1c.1-.2.2-.5.2-.7v-2z';

/** A thumbs icon (inline SVG; no emoji font needed). */
export function thumbIcon(down = false) {
  const span = h('span.icon', { 'aria-hidden': 'true' });
  span.innerHTML = `<svg viewBox="0 0 24 24" width="20" height="20"${down ? ' style="transform:rotate(180deg)"' : ''}><path fill="currentColor" d="${THUMB}"/></svg>`;
  return span;
}
