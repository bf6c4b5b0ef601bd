// Home: the rows exactly as the API composes them, in order.
import { gql, queries } from '../api.js';
import { currentProfile } from '../session.js';
import { track, setOrigin, flushEvents } from '../events.js';
import { h, row, titleCard, setView, loading, errorState, emptyState } from '../ui.js';
import { focusEl } from '../nav.js';

const FOCUS_KEY = 'marquee.homeFocus';

/** Renders API rows as card rows; shared with the experiments preview. */
export function renderRows(rows, { requestId, onOpen } = {}) {
  return rows.map((r) => row(r, r.items.map((item) => {
    return titleCard(item.title, {
      reason: item.reason,
      evidence: item.evidence,
      position: item.position,
      progress: item.progress?.fraction,
      onOpen: onOpen ? (t) => onOpen(t, r, item, requestId) : undefined,
    });
  }), { subtitle: r.items.length ? undefined : 'Nothing here yet' }));
}

export async function homeView({ view, isCurrent }) {
  const profile = currentProfile();
  loading(view, 'Loading your home page…');
  await flushEvents(); // events just sent (e.g. from the player) must shape this page
  let home;
  try {
    home = (await gql(queries.home, { profileId: profile.id })).home;
  } catch (err) {
    if (!isCurrent()) return;
    if (err.kind === 'not-found') {
      errorState(view, err, {
        title: 'This profile no longer exists',
        detail: `Profile ${profile.id} was not found. Choose another profile.`,
      });
      view.querySelector('.message').append(h('a.btn.primary', { href: '#/profiles' }, 'Choose profile'));
      return;
    }
    errorState(view, err, { retry: () => homeView({ view, isCurrent }) });
    return;
  }
  if (!isCurrent()) return;
  if (!home.rows.length) {
    emptyState(view, 'Nothing to show yet', 'There are no rows for this profile. Try browsing the catalogue.',
      h('a.btn.primary', { href: '#/browse' }, 'Browse'));
    return;
  }
  const open = (title, r, item, requestId) => {
    setOrigin(title.id, requestId);
    sessionStorage.setItem(FOCUS_KEY, JSON.stringify({ titleId: title.id, rowId: r.id }));
    track('CLICK', title.id, { requestId });
  };
  const header = h('div.home-head',
    h('h1', profile.isKids ? 'Kids' : `For ${profile.name}`, profile.isKids ? h('span.kids-badge', 'KIDS') : null),
    h('span.home-model', { title: `request ${home.requestId}` }, `model ${home.modelVersion}`));
  setView(view, 'ready', header, h('div.rows', renderRows(home.rows, { requestId: home.requestId, onOpen: open })));
  view.dataset.requestId = home.requestId;
  performance.mark('home-interactive');

  let target = null;
  try {
    const f = JSON.parse(sessionStorage.getItem(FOCUS_KEY) ?? 'null');
    if (f) target = view.querySelector(`[data-title-id="${CSS.escape(f.titleId)}"]`);
  } catch { /* ignore */ }
  target ??= view.querySelector('[data-title-id]');
  if (target) {
    target.focus({ preventScroll: true });
    if (target !== view.querySelector('[data-title-id]')) focusEl(target);
  }
}
