// Search as you type (debounced), results from `search(query, first, profileId)`: the server
// leaves out what the current profile may not see (maturity, region).
import { gql, queries } from '../api.js';
import { currentProfile } from '../session.js';
import { h, grid, describeError } from '../ui.js';

const DEBOUNCE_MS = 250;

export async function searchView({ view, params, isCurrent, onLeave }) {
  const profile = currentProfile();
  const input = h('input.search-input', {
    type: 'search', placeholder: 'Titles, e.g. Toy Story', 'aria-label': 'Search titles',
    autocomplete: 'off', spellcheck: 'false', value: params.get('q') ?? '',
  });
  const results = h('div.search-results', { 'aria-live': 'polite' });
  view.replaceChildren(h('h1.page-title', 'Search'), h('div.search-box', input), results);
  let seq = 0;
  let timer = null;

  const show = (state, ...content) => {
    view.dataset.state = state;
    results.replaceChildren(...content);
  };

  const run = async () => {
    const q = input.value.trim();
    const mine = ++seq;
    history.replaceState(null, '', q ? `#/search?q=${encodeURIComponent(q)}` : '#/search');
    if (!q) {
      show('empty', h('p.message.hint', 'Start typing to search the catalogue.'));
      return;
    }
    show('loading', h('p.muted', 'Searching…'));
    try {
      const { search } = await gql(queries.search, { query: q, first: 40, profileId: profile.id });
      if (mine !== seq || !isCurrent()) return;
      if (!search.length) {
        show('empty', h('div.message', h('h2', `No titles match “${q}”`), h('p', 'Try fewer or different words.')));
        return;
      }
      show('ready', h('p.muted', `${search.length} result${search.length === 1 ? '' : 's'} for “${q}”`), grid(search));
    } catch (err) {
      if (mine !== seq || !isCurrent()) return;
      const [t, d] = describeError(err);
      show('error', h('div.message.error', { role: 'alert' }, h('h2', t), h('p', d)));
    }
  };

  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      clearTimeout(timer);
      run();
    }
  });
  onLeave(() => clearTimeout(timer));
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
  await run();
}
