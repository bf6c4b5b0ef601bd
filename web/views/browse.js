// Browse by genre: genre list, then a paginated grid (Relay cursors via `browse`, with the
// current profile's id so the server leaves out what that profile may not see).
import { gql, queries } from '../api.js';
import { currentProfile } from '../session.js';
import { h, titleCard, setView, loading, errorState, emptyState } from '../ui.js';
import { focusEl } from '../nav.js';

const PAGE = 24;

export async function browseView(ctx) {
  if (ctx.args[0]) return genrePage(ctx, ctx.args[0]);
  const { view, isCurrent } = ctx;
  loading(view, 'Loading genres…');
  let genres;
  try {
    genres = (await gql(queries.genres)).genres;
  } catch (err) {
    if (isCurrent()) errorState(view, err, { retry: () => browseView(ctx) });
    return;
  }
  if (!isCurrent()) return;
  if (!genres.length) {
    emptyState(view, 'The catalogue is empty', 'Import a dataset to browse it.');
    return;
  }
  setView(view, 'ready',
    h('h1.page-title', 'Browse'),
    h('div.genre-grid',
      h('a.genre-tile.all', { href: '#/browse/all', dataset: { genre: '' } }, h('strong', 'Everything'), h('span', 'Most popular first')),
      genres.map((g) => h('a.genre-tile', { href: `#/browse/${encodeURIComponent(g.name)}`, dataset: { genre: g.name } },
        h('strong', g.name), h('span', `${g.titleCount} titles`)))));
  focusEl(view.querySelector('.genre-tile'));
}

async function genrePage({ view, isCurrent, onLeave }, genreArg) {
  const genre = genreArg === 'all' ? null : genreArg;
  const profile = currentProfile();
  loading(view, `Loading ${genre ?? 'the catalogue'}…`);
  let after = null;
  let shown = 0;
  const grid = h('div.grid', { role: 'list' });
  const count = h('span.page-sub');
  const more = h('button.btn.more', { 'data-action': 'load-more' }, 'Load more');
  const status = h('p.muted', { role: 'status' });

  const fetchPage = async () => {
    more.disabled = true;
    more.textContent = 'Loading…';
    const { browse } = await gql(queries.browse, { genre, first: PAGE, after, profileId: profile.id });
    if (!isCurrent()) return null;
    after = browse.pageInfo.endCursor;
    const titles = browse.edges.map((e) => e.node);
    shown += titles.length;
    grid.append(...titles.map((t) => titleCard(t)));
    count.textContent = `${browse.totalCount} title${browse.totalCount === 1 ? '' : 's'}`;
    more.hidden = !browse.pageInfo.hasNextPage;
    more.disabled = false;
    more.textContent = 'Load more';
    return browse;
  };

  try {
    await fetchPage();
  } catch (err) {
    if (isCurrent()) errorState(view, err, { retry: () => genrePage({ view, isCurrent, onLeave }, genreArg) });
    return;
  }
  if (!isCurrent()) return;
  const title = h('h1.page-title', h('a.crumb', { href: '#/browse' }, 'Browse'), ' / ', genre ?? 'Everything', count);
  if (!shown && more.hidden) {
    emptyState(view, `No titles in ${genre ?? 'the catalogue'}`, null, h('a.btn.primary', { href: '#/browse' }, 'All genres'));
    return;
  }
  more.addEventListener('click', async () => {
    const before = grid.children.length;
    try {
      await fetchPage();
      status.textContent = '';
      focusEl(grid.children[before] ?? more);
    } catch (err) {
      more.disabled = false;
      more.textContent = 'Retry';
      status.textContent = `Could not load more: ${err.message}`;
    }
  });
  // Load the next page when the button scrolls into view (infinite scroll for pointer users).
  const io = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !more.disabled && !more.hidden && document.activeElement !== more) {
      fetchPage().catch((err) => { status.textContent = `Could not load more: ${err.message}`; });
    }
  }, { rootMargin: '200px' });
  io.observe(more);
  onLeave(() => io.disconnect());
  setView(view, 'ready', title, grid, h('div.more-wrap', more, status));
  view.dataset.genre = genre ?? '';
  focusEl(grid.querySelector('[data-title-id]'));
}
