// The PM's experiment console: create and edit an experiment (variations validated against the
// page as you type, weights, coverage, a targeting builder and the raw JSON of the feature with
// inline errors, hash attribute, namespace), launch, stop, new phase, choose a winner, the
// history with its diffs, and the pre-launch estimate. Everything goes through GraphQL (pm role):
// saveFeature, validateFeature, launchExperiment, stopExperiment, startExperimentPhase,
// chooseWinner, experimentHistory, experimentPlan.
import { gql } from '../api.js';
import { h, percent, NONE } from '../ui.js';

export const consoleQueries = {
  features: `query Features { features { key definition revision } }`,
  validate: `query Validate($key: String!, $d: JSON!) { validateFeature(key: $key, definition: $d) { path message } }`,
  save: `mutation Save($key: String!, $d: JSON!, $b: Int) { saveFeature(key: $key, definition: $d, baseRevision: $b) { revision } }`,
  launch: `mutation Launch($key: String!) { launchExperiment(key: $key) { key status } }`,
  stop: `mutation Stop($key: String!) { stopExperiment(key: $key) { key status } }`,
  phase: `mutation Phase($key: String!) { startExperimentPhase(key: $key) { key status } }`,
  winner: `mutation Winner($key: String!, $v: Int!) { chooseWinner(key: $key, variation: $v) { key status winner } }`,
  history: `query History($key: String!) { experimentHistory(key: $key, first: 50) {
    revision at author action subject changes { path before after } } }`,
  plan: `query Plan($key: String!, $mde: Float!) { experimentPlan(key: $key, mde: $mde) {
    weeklyProfiles baselineConversion profilesPerVariation profilesNeeded estimatedDays } }`,
};

/** Attributes the targeting builder knows, and the hash attributes offered. */
const HASH_ATTRIBUTES = ['id', 'accountId', 'country', 'platform'];

const parseJson = (text) => {
  try {
    return [JSON.parse(text), null];
  } catch (err) {
    return [undefined, err.message];
  }
};

/** The targeting condition the builder's fields describe (GrowthBook/MongoDB syntax), or null. */
function builtCondition(form) {
  const cond = {};
  const list = (name) => form.querySelector(`[name="${name}"]`).value.split(',').map((s) => s.trim()).filter(Boolean);
  const countries = list('t-country').map((c) => c.toUpperCase());
  if (countries.length) cond.country = { $in: countries };
  const kids = form.querySelector('[name="t-kids"]').value;
  if (kids) cond.kids = kids === 'yes';
  const platforms = list('t-platform');
  if (platforms.length) cond.platform = { $in: platforms };
  const version = form.querySelector('[name="t-version"]').value.trim();
  if (version) cond.appVersion = { $vgte: version };
  return Object.keys(cond).length ? cond : null;
}

/** Fills the builder from a condition it can express; anything else stays in the raw JSON. */
function fillBuilder(form, cond) {
  const set = (name, v) => { form.querySelector(`[name="${name}"]`).value = v ?? ''; };
  set('t-country', cond?.country?.$in?.join(', '));
  set('t-kids', cond?.kids === true ? 'yes' : cond?.kids === false ? 'no' : '');
  set('t-platform', cond?.platform?.$in?.join(', '));
  set('t-version', cond?.appVersion?.$vgte);
}

function variationRow(v = { key: '', weight: 50, value: 'null' }) {
  return h('div.var-row', { dataset: { variationRow: '' } },
    h('input', { type: 'text', name: 'v-key', value: v.key, placeholder: 'key', 'aria-label': 'Variation key', size: 12 }),
    h('label.var-weight', h('input', { type: 'number', name: 'v-weight', value: v.weight, min: 0, max: 100, step: 'any', 'aria-label': 'Weight (%)' }), '%'),
    h('textarea', { name: 'v-value', rows: 2, 'aria-label': 'Variation value (JSON)', spellcheck: 'false' }, v.value),
    h('button.btn.small', { type: 'button', 'data-action': 'remove-variation', onclick: (e) => e.target.closest('.var-row').remove() }, 'Remove'),
    h('div.field-error', { role: 'status' }));
}

/**
 * The editor: a new experiment (on a new or an existing feature), or `edit` = { exp, feature }
 * an existing one. `onSaved(key)` runs after a successful save.
 */
export function editorPanel({ edit = null, features = [], onSaved, onCancel }) {
  const exp = edit?.exp;
  const featureDef = edit?.feature ? structuredClone(edit.feature.definition) : null;
  const ruleIndex = featureDef ? (featureDef.rules ?? []).findIndex((r) => (r.key || edit.feature.key) === exp.key) : -1;
  const rule = ruleIndex >= 0 ? featureDef.rules[ruleIndex] : null;
  const baseRevision = edit?.feature?.revision ?? null;

  const field = (label, control) => h('label.field', h('span', label), control);
  const form = h('form.exp-editor', { dataset: { mode: edit ? 'edit' : 'create' }, 'aria-label': edit ? `Edit ${exp.key}` : 'New experiment' });
  const featureInput = h('input', { type: 'text', name: 'feature', list: 'feature-keys', required: true, value: edit?.feature.key ?? '', readonly: Boolean(edit), placeholder: 'home-rows' });
  const keyInput = h('input', { type: 'text', name: 'key', required: true, value: exp?.key ?? '', readonly: Boolean(edit), placeholder: 'my-experiment' });
  const nameInput = h('input', { type: 'text', name: 'name', value: rule?.name ?? '' });
  const hashSelect = h('select', { name: 'hash' }, HASH_ATTRIBUTES.map((a) => h('option', { value: a, selected: (rule?.hashAttribute ?? 'id') === a }, a)));
  const coverage = h('input', { type: 'number', name: 'coverage', min: 0, max: 100, step: 'any', value: (rule?.coverage ?? 1) * 100 });
  const ns = rule?.namespace ?? null;
  const nsName = h('input', { type: 'text', name: 'ns-name', value: ns?.[0] ?? '', placeholder: 'none' });
  const nsStart = h('input', { type: 'number', name: 'ns-start', min: 0, max: 1, step: 'any', value: ns?.[1] ?? 0 });
  const nsEnd = h('input', { type: 'number', name: 'ns-end', min: 0, max: 1, step: 'any', value: ns?.[2] ?? 1 });
  const variations = h('div.var-list');
  const vals = rule?.variations ?? [null, null];
  const weights = rule?.weights ?? vals.map(() => 1 / vals.length);
  vals.forEach((value, i) => variations.append(variationRow({
    key: rule?.meta?.[i]?.key ?? (i === 0 ? 'control' : `treatment${vals.length > 2 ? i : ''}`),
    weight: +(weights[i] * 100).toFixed(4),
    value: JSON.stringify(value),
  })));
  const builder = h('fieldset.targeting', h('legend', 'Targeting'),
    field('Countries', h('input', { type: 'text', name: 't-country', placeholder: 'US, GB' })),
    field('Kids profiles', h('select', { name: 't-kids' }, h('option', { value: '' }, 'any'), h('option', { value: 'yes' }, 'only kids'), h('option', { value: 'no' }, 'no kids'))),
    field('Platforms', h('input', { type: 'text', name: 't-platform', placeholder: 'web, tv' })),
    field('App version at least', h('input', { type: 'text', name: 't-version', placeholder: '2.1.0' })));
  const raw = h('textarea.raw-json', { name: 'raw', rows: 14, spellcheck: 'false', 'aria-label': 'Feature definition (JSON)' });
  const rawErrors = h('div.json-errors', { role: 'status', dataset: { errors: '0' } });
  const status = h('p.form-status', { role: 'status' });
  form.append(
    h('h2', edit ? `Edit ${exp.key}` : 'New experiment'),
    h('datalist', { id: 'feature-keys' }, ['home-rows', 'home-row-settings', 'home-row-order', ...features.map((f) => f.key)]
      .filter((k, i, a) => a.indexOf(k) === i).map((k) => h('option', { value: k }))),
    h('div.field-grid', field('Feature', featureInput), field('Experiment key', keyInput), field('Name', nameInput),
      field('Hash attribute', hashSelect), field('Coverage (%)', coverage)),
    h('fieldset.namespace', h('legend', 'Namespace'), field('Name', nsName), field('From', nsStart), field('To', nsEnd)),
    h('fieldset.variations', h('legend', 'Variations (values as JSON, checked against the page)'), variations,
      h('button.btn.small', { type: 'button', 'data-action': 'add-variation', onclick: () => { variations.append(variationRow({ key: `v${variations.children.length}`, weight: 0, value: 'null' })); sync(); } }, 'Add variation')),
    builder,
    h('fieldset.raw', h('legend', 'Feature definition (GrowthBook JSON; edit freely)'), raw, rawErrors),
    h('div.actions', h('button.btn.primary', { type: 'submit', 'data-action': 'save' }, edit ? 'Save changes' : 'Save draft'),
      h('button.btn', { type: 'button', 'data-action': 'cancel', onclick: () => onCancel?.() }, 'Cancel')),
    status);
  fillBuilder(form, rule?.condition ?? null);
  const rawCondition = { value: rule?.condition ?? null };

  /** The feature definition the form fields describe. */
  function composed() {
    const rows = [...variations.querySelectorAll('[data-variation-row]')];
    const values = rows.map((r) => {
      const [v, err] = parseJson(r.querySelector('[name="v-value"]').value || 'null');
      return err ? { __invalid: r.querySelector('[name="v-value"]').value } : v;
    });
    const r = {
      ...(rule ?? {}),
      key: keyInput.value.trim(),
      hashAttribute: hashSelect.value,
      coverage: Number(coverage.value) / 100,
      weights: rows.map((x) => Number(x.querySelector('[name="v-weight"]').value) / 100),
      variations: values,
      meta: rows.map((x) => ({ key: x.querySelector('[name="v-key"]').value.trim() || undefined })),
    };
    if (nameInput.value.trim()) r.name = nameInput.value.trim(); else delete r.name;
    const cond = builtCondition(form) ?? rawCondition.value;
    if (cond) r.condition = cond; else delete r.condition;
    if (nsName.value.trim()) r.namespace = [nsName.value.trim(), Number(nsStart.value), Number(nsEnd.value)]; else delete r.namespace;
    const existing = features.find((f) => f.key === featureInput.value.trim());
    const def = featureDef ?? (existing ? structuredClone(existing.definition) : { defaultValue: null, rules: [] });
    def.rules = [...(def.rules ?? [])];
    if (ruleIndex >= 0) def.rules[ruleIndex] = r; else def.rules.push(r);
    if (!('defaultValue' in def)) def.defaultValue = null;
    return def;
  }

  let timer = null;
  let seq = 0;
  /** Shows the server's verdict on the raw JSON inline: at the field the path points to, and under the editor. */
  async function validate() {
    const mine = ++seq;
    const [def, err] = parseJson(raw.value);
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
    if (err) {
      rawErrors.dataset.errors = '1';
      rawErrors.replaceChildren(h('p.error', { dataset: { path: '' } }, `Not JSON: ${err}`));
      raw.setAttribute('aria-invalid', 'true');
      return false;
    }
    let problems;
    try {
      problems = (await gql(consoleQueries.validate, { key: featureInput.value.trim() || 'feature', d: def })).validateFeature;
    } catch (e) {
      problems = [{ path: '', message: e.message }];
    }
    if (mine !== seq) return problems.length === 0;
    rawErrors.dataset.errors = String(problems.length);
    rawErrors.replaceChildren(...problems.map((p) => h('p.error', { dataset: { path: p.path } }, h('code', p.path || '(feature)'), ` ${p.message}`)));
    for (const p of problems) {
      const m = /^rules\[(\d+)\]\.variations\[(\d+)\]/.exec(p.path);
      if (m && Number(m[1]) === (ruleIndex >= 0 ? ruleIndex : (composedRuleIndex ?? -1))) {
        const row = variations.querySelectorAll('[data-variation-row]')[Number(m[2])];
        row?.querySelector('[name="v-value"]').setAttribute('aria-invalid', 'true');
        if (row) row.querySelector('.field-error').textContent = `${p.path}: ${p.message}`;
      }
    }
    if (problems.length) raw.setAttribute('aria-invalid', 'true');
    return problems.length === 0;
  }
  let composedRuleIndex = null;
  /** Form → raw JSON, then validate (debounced). */
  function sync() {
    const def = composed();
    composedRuleIndex = ruleIndex >= 0 ? ruleIndex : def.rules.length - 1;
    raw.value = JSON.stringify(def, null, 2);
    schedule();
  }
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(validate, 250);
  }
  form.addEventListener('input', (e) => (e.target === raw ? schedule() : sync()));
  form.addEventListener('change', (e) => (e.target === raw ? schedule() : sync()));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearTimeout(timer);
    if (!(await validate())) {
      status.textContent = 'Fix the errors above first.';
      return;
    }
    status.textContent = 'Saving…';
    try {
      const key = featureInput.value.trim();
      const { saveFeature } = await gql(consoleQueries.save, { key, d: JSON.parse(raw.value), b: edit ? baseRevision : null });
      status.textContent = `Saved as revision ${saveFeature.revision}.`;
      form.dataset.saved = String(saveFeature.revision);
      onSaved?.(keyInput.value.trim());
    } catch (err) {
      const path = err.errors?.[0]?.extensions?.path;
      status.textContent = `Not saved: ${err.message}`;
      if (path) rawErrors.replaceChildren(h('p.error', { dataset: { path } }, h('code', path), ` ${err.message}`));
    }
  });
  sync();
  return form;
}

/** Launch / stop / new phase / winner / edit / history buttons of an experiment card. */
export function cardActions(exp, { onChanged, onEdit }) {
  const status = h('p.action-status', { role: 'status' });
  const run = async (query, vars, label) => {
    status.textContent = `${label}…`;
    try {
      await gql(query, vars);
      status.textContent = `${label}: done.`;
      onChanged?.();
    } catch (err) {
      status.textContent = `${label} failed: ${err.message}`;
    }
  };
  const winner = h('select', { name: 'winner', 'aria-label': `Winner of ${exp.key}` },
    exp.variations.map((v) => h('option', { value: String(v.index) }, `${v.index}: ${v.key}`)));
  const buttons = [];
  const btn = (action, label, onclick, primary = false) => h(`button.btn.small${primary ? '.primary' : ''}`, { type: 'button', dataset: { action }, onclick }, label);
  if (exp.status === 'DRAFT') buttons.push(btn('launch', 'Launch', () => run(consoleQueries.launch, { key: exp.key }, 'Launch'), true));
  if (exp.status === 'RUNNING') buttons.push(btn('stop', 'Stop', () => run(consoleQueries.stop, { key: exp.key }, 'Stop')));
  if (exp.status !== 'DRAFT') {
    buttons.push(btn('new-phase', 'New phase', () => run(consoleQueries.phase, { key: exp.key }, 'New phase')));
    buttons.push(h('span.winner', winner, btn('choose-winner', 'Roll out winner', () => run(consoleQueries.winner, { key: exp.key, v: Number(winner.value) }, 'Roll out'))));
  }
  buttons.push(btn('edit', 'Edit', () => onEdit?.(exp)));
  const history = h('details.history', { dataset: { historyFor: exp.key } },
    h('summary', 'History'),
    h('div.history-body', h('p.muted', 'Loading…')));
  history.addEventListener('toggle', async () => {
    if (!history.open) return;
    const body = history.querySelector('.history-body');
    try {
      const { experimentHistory } = await gql(consoleQueries.history, { key: exp.key });
      body.replaceChildren(h('ol.revisions', experimentHistory.map((r) => h('li', { dataset: { revision: String(r.revision), action: r.action } },
        h('div', h('strong', `#${r.revision} ${r.action}`), ` by ${r.author} at ${r.at}`),
        h('ul.diff', r.changes.slice(0, 30).map((c) => h('li', h('code', c.path), ': ',
          h('del', c.before ?? NONE), ' → ', h('ins', c.after ?? NONE))),
        r.changes.length > 30 ? h('li.muted', `… ${r.changes.length - 30} more`) : null)))));
    } catch (err) {
      body.replaceChildren(h('p.error', `Could not load the history: ${err.message}`));
    }
  });
  return h('div.exp-actions', h('div.buttons', buttons), status, history);
}

/** Guard rails of a report: peeking, the guardrail metric, the sequential p-values. */
export function guardRails(report) {
  const out = [];
  if (report.guardrailFlagged) {
    const bad = report.variations.filter((v) => v.guardrailDegraded).map((v) => v.key);
    out.push(h('div.guardrail-warning', { role: 'alert', dataset: { guardrail: 'flagged' } },
      h('strong', 'Guardrail: completion rate is significantly worse'),
      h('p', `In ${bad.join(', ')} (sequential test, safe to read at any time). Consider stopping the experiment.`)));
  }
  if (report.peekingWarning) {
    out.push(h('div.peeking-warning', { role: 'note', dataset: { peeking: 'warning' } },
      h('strong', 'Peeking: significant at a single look only'),
      h('p', 'A fixed-horizon p-value is below 0.05 but the always-valid (sequential) one is not. '
        + 'Keep the experiment running until the planned sample size, or until the sequential p-value is significant.')));
  }
  return out;
}

/** The pre-launch estimate: profiles and days for a chosen minimum detectable effect. */
export function planForm(key) {
  const mde = h('input', { type: 'number', name: 'mde', min: 0.1, max: 1000, step: 'any', value: 5, 'aria-label': 'Minimum detectable effect (%)' });
  const out = h('span.plan-out', { role: 'status' });
  const run = async (e) => {
    e?.preventDefault();
    out.textContent = 'Estimating…';
    try {
      const { experimentPlan: p } = await gql(consoleQueries.plan, { key, mde: Number(mde.value) / 100 });
      out.dataset.days = p.estimatedDays === null ? '' : String(p.estimatedDays);
      out.textContent = p.profilesPerVariation === null
        ? `Not enough traffic to estimate (${p.weeklyProfiles} profiles last week).`
        : `${p.profilesPerVariation.toLocaleString('en-US')} profiles per variation (${p.profilesNeeded.toLocaleString('en-US')} in all) at a baseline conversion of ${percent(p.baselineConversion, { digits: 1 })}: `
          + `about ${p.estimatedDays === null ? NONE : Math.ceil(p.estimatedDays)} days at last week's ${p.weeklyProfiles.toLocaleString('en-US')} profiles.`;
    } catch (err) {
      out.textContent = `No estimate: ${err.message}`;
    }
  };
  return h('form.plan', { onsubmit: run }, h('label', 'Detect a change of ', mde, ' %'),
    h('button.btn.small', { type: 'submit', dataset: { action: 'plan' } }, 'Estimate duration'), out);
}
