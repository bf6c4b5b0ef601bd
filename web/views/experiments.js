// PM page: the experiments loaded from experiments/, and a home preview under chosen variations.
import { gql, queries } from '../api.js';
import { currentProfile } from '../session.js';
import { h, setView, loading, errorState, emptyState, describeError } from '../ui.js';
import { renderRows } from './home.js';

const pct = (x) => `${(x * 100).toFixed(x * 100 % 1 ? 1 : 0)}%`;
const HUES = [38, 200, 330, 140, 265, 10, 90];

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function experimentCard(exp) {
  const total = exp.variations.reduce((s, v) => s + v.weight, 0) || 1;
  return h('article.experiment', { dataset: { experimentKey: exp.key } },
    h('header.exp-head',
      h('div', h('h2', exp.name ?? exp.key), h('code.exp-key', exp.key)),
      h('span.pill', `feature ${exp.featureKey}`)),
    h('dl.exp-facts',
      h('dt', 'Coverage'), h('dd', pct(exp.coverage)),
      h('dt', 'Bucketed by'), h('dd', h('code', exp.hashAttribute)),
      h('dt', 'Targeting'), h('dd', exp.condition ? h('code.cond', exp.condition) : 'Everyone')),
    h('div.weights', { 'aria-hidden': 'true' }, exp.variations.map((v, i) =>
      h('span', { style: `flex:${v.weight / total};--hue:${HUES[i % HUES.length]}`, title: `${v.key} ${pct(v.weight / total)}` }, v.key))),
    h('table.variations',
      h('thead', h('tr', h('th', '#'), h('th', 'Variation'), h('th', 'Weight'), h('th', 'Value'))),
      h('tbody', exp.variations.map((v) => h('tr', { dataset: { variation: String(v.index) } },
        h('td', v.index), h('td', h('strong', v.key), v.name && v.name !== v.key ? h('div.muted', v.name) : null),
        h('td', pct(v.weight / total)), h('td', h('pre', prettyJson(v.value))))))),
    h('div.results', { dataset: { results: 'none' } },
      h('h3', 'Results'), h('p.muted', 'No results yet: exposures and confidence intervals arrive in a later release.')));
}

function previewPanel(experiments) {
  const profile = currentProfile();
  const idInput = h('input.id-input', { type: 'text', name: 'preview-profile', value: profile?.id ?? '1', 'aria-label': 'Profile id' });
  const selects = experiments.map((exp) => h('label.preview-choice',
    h('span', exp.name ?? exp.key),
    h('select', { dataset: { experimentKey: exp.key }, 'aria-label': `Variation of ${exp.key}` },
      h('option', { value: '' }, 'As assigned'),
      exp.variations.map((v) => h('option', { value: String(v.index) }, `${v.index}: ${v.key}`)))));
  const out = h('div.preview-out', { dataset: { state: 'idle' } });
  const run = async (e) => {
    e?.preventDefault();
    const forced = selects.map((l) => l.querySelector('select'))
      .filter((s) => s.value !== '')
      .map((s) => ({ experimentKey: s.dataset.experimentKey, variation: Number(s.value) }));
    out.dataset.state = 'loading';
    out.replaceChildren(h('p.muted', 'Composing the home page…'));
    try {
      const { home } = await gql(queries.previewHome, { profileId: idInput.value.trim(), forced });
      out.dataset.state = home.rows.length ? 'ready' : 'empty';
      out.replaceChildren(
        h('table.assignments',
          h('thead', h('tr', h('th', 'Experiment'), h('th', 'Feature'), h('th', 'Variation'), h('th', 'In experiment'))),
          h('tbody', home.assignments.length
            ? home.assignments.map((a) => h('tr', h('td', a.experimentKey), h('td', a.featureKey),
              h('td', `${a.variationIndex}: ${a.variationKey}`), h('td', a.inExperiment ? 'yes' : 'no (default)')))
            : h('tr', h('td', { colspan: '4' }, 'No experiment applies to this profile.')))),
        home.rows.length ? h('div.rows.preview-rows', renderRows(home.rows)) : h('p.muted', 'This home page has no rows.'));
      out.scrollIntoView({ block: 'start', behavior: 'smooth' });
    } catch (err) {
      out.dataset.state = 'error';
      const [t, d] = describeError(err);
      out.replaceChildren(h('div.message.error', { role: 'alert' }, h('h3', t), h('p', d)));
    }
  };
  return h('section.preview',
    h('h2', 'Preview the home page'),
    h('form.preview-form', { onsubmit: run },
      h('label.preview-choice', h('span', 'Profile'), idInput),
      selects,
      h('button.btn.primary', { type: 'submit', 'data-action': 'preview' }, 'Preview')),
    out);
}

export async function experimentsView({ view, isCurrent }) {
  loading(view, 'Loading experiments…');
  let experiments;
  try {
    experiments = (await gql(queries.experiments)).experiments;
  } catch (err) {
    if (!isCurrent()) return;
    if (err.kind === 'validation') {
      setView(view, 'error', h('div.message.error', { role: 'alert' },
        h('h1', 'Experiments are not available on this server'),
        h('p', 'This Marquee server does not offer the experiments API yet, so there is nothing to list or preview. '
          + 'Upgrade the server to a version with experiments support.'),
        h('p.muted', `Server said: ${err.message}`),
        h('a.btn.primary', { href: '#/' }, 'Home')));
      view.dataset.reason = 'unavailable';
      return;
    }
    errorState(view, err, { retry: () => experimentsView({ view, isCurrent }) });
    return;
  }
  if (!isCurrent()) return;
  delete view.dataset.reason;
  if (!experiments.length) {
    emptyState(view, 'No experiments are running',
      'Add experiment definitions under experiments/ and restart the server to see them here.');
    return;
  }
  setView(view, 'ready',
    h('h1.page-title', 'Experiments', h('span.page-sub', `${experiments.length} loaded from experiments/`)),
    h('div.experiments', experiments.map(experimentCard)),
    previewPanel(experiments));
  view.querySelector('select, button')?.focus({ preventScroll: true });
}
