// PM page, the experiment console: every experiment with its status and results
// (`experimentReport`, with guard rails), create/edit/launch/stop/roll out (`./console.js`), the
// history, and a home preview of any profile under chosen variations (`previewHome`: pm role,
// audited).
import { gql, queries } from '../api.js';
import { consoleQueries, editorPanel, cardActions, guardRails, planForm } from './console.js';
import { currentProfile } from '../session.js';
import { h, setView, loading, errorState, describeError, percent, NONE } from '../ui.js';
import { renderRows } from './home.js';

/** How shares (weights, coverage), rates and lifts are written (see `percent`). */
const SHARE = { digits: 'auto' };
const RATE = { digits: 1 };
const LIFT = { digits: 1, sign: true };
const HUES = [38, 200, 330, 140, 265, 10, 90];

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

const STATUS = { DRAFT: 'Draft', RUNNING: 'Running', STOPPED: 'Stopped' };

function experimentCard(exp, handlers) {
  const total = exp.variations.reduce((s, v) => s + v.weight, 0) || 1;
  const phase = exp.phases.at(-1);
  return h('article.experiment', { dataset: { experimentKey: exp.key, status: exp.status } },
    h('header.exp-head',
      h('div', h('h2', exp.name ?? exp.key), h('code.exp-key', exp.key)),
      h('div.exp-pills', h(`span.pill.status.${exp.status.toLowerCase()}`, { dataset: { status: exp.status } }, STATUS[exp.status] ?? exp.status),
        h('span.pill', `feature ${exp.featureKey}`))),
    h('dl.exp-facts',
      h('dt', 'Coverage'), h('dd', percent(exp.coverage, SHARE)),
      h('dt', 'Bucketed by'), h('dd', h('code', exp.hashAttribute)),
      h('dt', 'Targeting'), h('dd', exp.condition ? h('code.cond', exp.condition) : 'Everyone'),
      exp.namespace ? [h('dt', 'Namespace'), h('dd', h('code', exp.namespace))] : null,
      h('dt', 'Phase'), h('dd', phase ? `${phase.number + 1} since ${phase.startedAt}${phase.endedAt ? `, ended ${phase.endedAt}` : ''}` : 'not launched'),
      exp.winner !== null && exp.winner !== undefined
        ? [h('dt', 'Winner'), h('dd', { dataset: { winner: String(exp.winner) } }, `${exp.winner}: ${exp.variations[exp.winner]?.key ?? ''} (rolled out)`)] : null),
    cardActions(exp, handlers),
    exp.status === 'DRAFT' ? h('div.plan-box', h('h3', 'Before launch'), planForm(exp.key)) : null,
    h('div.weights', { 'aria-hidden': 'true' }, exp.variations.map((v, i) =>
      h('span', { style: `flex:${v.weight / total};--hue:${HUES[i % HUES.length]}`, title: `${v.key} ${percent(v.weight / total, SHARE)}` }, v.key))),
    h('table.variations',
      h('thead', h('tr', h('th', '#'), h('th', 'Variation'), h('th', 'Weight'), h('th', 'Value'))),
      h('tbody', exp.variations.map((v) => h('tr', { dataset: { variation: String(v.index) } },
        h('td', v.index), h('td', h('strong', v.key), v.name && v.name !== v.key ? h('div.muted', v.name) : null),
        h('td', percent(v.weight / total, SHARE)), h('td', h('pre', prettyJson(v.value))))))),
    h('section.results', { dataset: { results: 'loading' }, 'aria-label': `Results of ${exp.key}` },
      h('h3', 'Results'), h('p.muted', 'Loading results…')));
}

// ── Results ──────────────────────────────────────────────────────────────────────────────────

const num = (n) => n.toLocaleString('en-US');
const pValue = (p) => (p < 0.001 ? '<0.001' : p.toFixed(3));
/** "p = 0.012" or "p < 0.001". */
const pText = (p) => (p === null || p === undefined ? `p = ${NONE}` : p < 0.001 ? 'p < 0.001' : `p = ${p.toFixed(3)}`);

/** The metrics a lift is reported for: [label, rate field, lift field]. */
const METRICS = [
  ['Play rate (per impression)', 'playRate', 'playRateLift'],
  ['Completion rate', 'completionRate', 'completionRateLift'],
  ['Conversion', 'conversion', 'conversionLift'],
];

/** Half-width of the shared interval-chart scale: covers every interval, at least ±5%, at most ±100%. */
function chartScale(report) {
  const ends = report.variations.flatMap((v) => METRICS.map(([, , f]) => v[f]))
    .filter(Boolean).flatMap((l) => [Math.abs(l.ciLow), Math.abs(l.ciHigh)]);
  const max = Math.max(0.05, ...ends);
  const nice = [0.05, 0.1, 0.2, 0.25, 0.5, 1].find((s) => s >= max) ?? 1;
  return nice;
}

/** A horizontal 95% interval on a ±scale axis with a zero line; coloured by significance. */
function intervalChart(lift, scale) {
  const x = (v) => ((Math.max(-scale, Math.min(scale, v)) + scale) / (2 * scale)) * 100;
  const dir = !lift.significant ? 'flat' : lift.relative > 0 ? 'up' : 'down';
  const left = x(lift.ciLow);
  const right = x(lift.ciHigh);
  const label = `${percent(lift.relative, LIFT)}, 95% CI ${percent(lift.ciLow, LIFT)} to ${percent(lift.ciHigh, LIFT)}`
    + `${lift.significant ? ', significant' : ', not significant'}`;
  return h('div.ci', { role: 'img', 'aria-label': label, title: label, dataset: { significance: dir } },
    h('span.ci-zero'),
    h(`span.ci-bar${lift.ciLow < -scale ? '.clip-l' : ''}${lift.ciHigh > scale ? '.clip-r' : ''}`,
      { style: `left:${left}%;width:${Math.max(right - left, 0.6)}%` }),
    h('span.ci-dot', { style: `left:${x(lift.relative)}%` }));
}

function ciAxis(scale) {
  const t = percent(scale);
  return h('div.ci-axis', { 'aria-hidden': 'true' }, h('span', `−${t}`), h('span', '0'), h('span', `+${t}`));
}

function liftCells(lift, scale) {
  if (!lift) {
    return [h('td.num', NONE), h('td', h('span.muted.ci-none', 'not enough data')), h('td.num', NONE)];
  }
  const dir = !lift.significant ? 'flat' : lift.relative > 0 ? 'up' : 'down';
  return [
    h('td.num', h(`strong.lift.${dir}`, percent(lift.relative, LIFT)),
      h('div.ci-range', `${percent(lift.ciLow, LIFT)} … ${percent(lift.ciHigh, LIFT)}`)),
    h('td', intervalChart(lift, scale)),
    h(`td.num${lift.significant ? '.sig' : ''}`, pValue(lift.pValue), lift.significant ? h('div.ci-range', 'significant') : null,
      lift.sequentialPValue !== undefined ? h('div.ci-range.seq', { title: 'Always-valid (sequential) p-value: safe to read at any time' }, `seq. ${pValue(lift.sequentialPValue)}`) : null),
  ];
}

function srmBanner(report, exposed) {
  const weights = report.variations.reduce((s, v) => s + v.weight, 0) || 1;
  const split = report.variations.map((v) => `${v.key} ${num(v.exposedProfiles)} (${percent(v.exposedProfiles / exposed, SHARE)}, expected ${percent(v.weight / weights, SHARE)})`);
  // After a weight change each span of the phase is checked against its own weights: name
  // the span that fails.
  const epochs = (report.srmEpochs ?? []).length > 1 ? report.srmEpochs.map((e) => {
    const n = e.firstExposedProfiles.reduce((s, x) => s + x, 0) || 1;
    const w = e.weights.reduce((s, x) => s + x, 0) || 1;
    const shares = report.variations.map((v, i) => `${v.key} ${num(e.firstExposedProfiles[i] ?? 0)} (expected ${percent((e.weights[i] ?? 0) / w, SHARE)} of ${num(n)})`);
    return h('li', { dataset: { epoch: e.startedAt } }, `From ${e.startedAt}: `, shares.join(' · '),
      e.pValue === null ? ' — too few to test' : ` — ${pText(e.pValue)}`);
  }) : null;
  return h('div.srm-warning', { role: 'alert', dataset: { srm: 'flagged' } },
    h('strong', 'Sample ratio mismatch: assignment is broken, do not trust these results.'),
    epochs
      ? [h('p', `Profiles first exposed after each weight change do not follow that change's weights (${pText(report.srmPValue)}):`), h('ul', epochs)]
      : h('p', `Exposed profiles do not follow the configured weights (${pText(report.srmPValue)}): `,
        split.join(' · '), '. Fix the assignment before reading any lift below.'));
}

function resultsContent(report) {
  const exposed = report.variations.reduce((s, v) => s + v.exposedProfiles, 0);
  if (!exposed) {
    return ['empty', [h('p.muted', 'No exposures yet: no profile has been shown a home page shaped by this experiment.')]];
  }
  const control = report.variations.find((v) => v.index === 0) ?? report.variations[0];
  const scale = chartScale(report);
  const totals = h('table.report',
    h('thead', h('tr', h('th', 'Variation'),
      h('th.num', { title: 'Profiles shown a home page under this variation' }, 'Exposed profiles'),
      h('th.num', { title: 'Home pages shown' }, 'Impres\u00adsions'),
      h('th.num', { title: 'Attributed plays' }, 'Plays'),
      h('th.num', { title: 'Attributed plays per impression' }, 'Play rate'),
      h('th.num', { title: 'Attributed completions per attributed play' }, 'Comple\u00adtion'),
      h('th.num', { title: 'Share of exposed profiles with at least one attributed play' }, 'Conver\u00adsion'))),
    h('tbody', report.variations.map((v) => h('tr', { dataset: { variation: String(v.index) } },
      h('td', h('strong', v.key), v === control && v.key !== 'control' ? h('span.tag', 'control') : null),
      h('td.num', { dataset: { metric: 'exposedProfiles' } }, num(v.exposedProfiles)),
      h('td.num', { dataset: { metric: 'impressions' } }, num(v.impressions)),
      h('td.num', { dataset: { metric: 'plays' } }, num(v.plays)),
      h('td.num', { dataset: { metric: 'playRate' } }, percent(v.playRate, RATE)),
      h('td.num', { dataset: { metric: 'completionRate' } }, percent(v.completionRate, RATE)),
      h('td.num', { dataset: { metric: 'conversion' } }, percent(v.conversion, RATE))))));
  const lifts = report.variations.filter((v) => v !== control).map((v) => h('table.lifts', { dataset: { variation: String(v.index) } },
    h('caption', h('strong', v.key), ` vs ${control.key}`),
    h('thead', h('tr', h('th', 'Metric'), h('th.num', 'Lift'), h('th.ci-head', '95% CI', METRICS.some(([, , f]) => v[f]) ? ciAxis(scale) : null), h('th.num', 'p-value'))),
    h('tbody', METRICS.map(([label, , field]) => h('tr', { dataset: { metric: field } }, h('td', label), liftCells(v[field], scale))))));
  const notes = [
    report.phase > 0 ? `Phase ${report.phase + 1} only (a new phase re-randomised).` : null,
    report.srmFlagged ? null : (report.srmEpochs ?? []).length > 1
      ? `Split matches the weights of each of ${report.srmEpochs.length} weight periods (SRM ${pText(report.srmPValue)}).`
      : `Split matches the weights (SRM ${pText(report.srmPValue)}).`,
    report.excludedProfiles ? `${num(report.excludedProfiles)} profile${report.excludedProfiles === 1 ? '' : 's'} saw more than one variation and ${report.excludedProfiles === 1 ? 'is' : 'are'} left out.` : null,
  ].filter(Boolean);
  return ['ready', [
    report.srmFlagged ? srmBanner(report, exposed) : null,
    guardRails(report),
    h('div.table-wrap', totals),
    lifts,
    notes.length ? h('p.muted.report-notes', notes.join(' ')) : null,
  ]];
}

async function loadResults(card, key, isCurrent) {
  const box = card.querySelector('.results');
  let state;
  let content;
  try {
    const { experimentReport } = await gql(queries.experimentReport, { key });
    [state, content] = resultsContent(experimentReport);
    if (experimentReport.srmFlagged) box.dataset.srm = 'flagged';
  } catch (err) {
    state = 'error';
    content = [h('p.results-error', { role: 'alert' }, err.kind === 'validation'
      ? `Results are not available on this server: ${err.message}`
      : `Could not load results: ${err.message}`)];
  }
  if (!isCurrent()) return;
  box.dataset.results = state;
  box.replaceChildren(h('h3', 'Results'), ...content.flat().filter(Boolean));
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
  let features = [];
  try {
    features = (await gql(consoleQueries.features)).features;
  } catch {
    // An older server: the console's editing is unavailable, the list still works.
  }
  if (!isCurrent()) return;
  const editorBox = h('div.editor-box');
  const reload = () => experimentsView({ view, isCurrent });
  const openEditor = (exp) => {
    const feature = exp ? features.find((f) => f.key === exp.featureKey) : null;
    editorBox.replaceChildren(editorPanel({
      edit: exp ? { exp, feature } : null,
      features,
      onSaved: () => setTimeout(reload, 400),
      onCancel: () => editorBox.replaceChildren(),
    }));
    editorBox.scrollIntoView({ block: 'start' });
    editorBox.querySelector('input:not([readonly]), select, textarea')?.focus({ preventScroll: true });
  };
  const handlers = { onChanged: reload, onEdit: openEditor };
  const newButton = h('button.btn.primary', { type: 'button', dataset: { action: 'new-experiment' }, onclick: () => openEditor(null) }, 'New experiment');
  if (!experiments.length) {
    setView(view, 'empty',
      h('h1.page-title', 'Experiments', h('span.page-sub', 'none yet')),
      h('div.message', h('h2', 'No experiments yet'), h('p', 'Create one: it starts as a draft, and runs once launched.'), newButton),
      editorBox);
    return;
  }
  const cards = experiments.map((exp) => experimentCard(exp, handlers));
  const running = experiments.filter((e) => e.status === 'RUNNING').length;
  setView(view, 'ready',
    h('h1.page-title', 'Experiments', h('span.page-sub', `${experiments.length} in the console, ${running} running`)),
    h('div.console-bar', newButton),
    editorBox,
    h('div.experiments', cards),
    previewPanel(experiments));
  view.querySelector('.preview select, .preview button')?.focus({ preventScroll: true });
  // Results load per card, after the page is usable; one failing report does not hide the others.
  await Promise.all(experiments.map((exp, i) => loadResults(cards[i], exp.key, isCurrent)));
}
