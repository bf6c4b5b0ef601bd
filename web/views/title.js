// Title page (metadata, More Like This, thumbs, Play) and the simulated player.
import { gql, queries } from '../api.js';
import { currentProfile } from '../session.js';
import { track, flushEvents } from '../events.js';
import { posterSvg, fillPoster, displayName } from '../poster.js';
import { h, row, titleCard, setView, loading, errorState, ratingBadge, ratingLabel, thumbIcon, percent } from '../ui.js';
import { back, focusEl } from '../nav.js';

// The API's `MaturityRating` values, least to most restrictive.
const RATINGS = ['G', 'PG', 'PG_13', 'R', 'NC_17'];

/** Whether a profile with `limit` may see a title rated `rating` (unrated titles are allowed). */
export function allowedFor(limit, rating) {
  if (!limit || !rating) return true;
  const l = RATINGS.indexOf(limit);
  const r = RATINGS.indexOf(rating);
  return l < 0 || r < 0 || r <= l;
}

/** The profile's progress, rating and thumbs for a title (null when untouched or unavailable). */
async function viewerState(profileId, titleId) {
  try {
    return (await gql(queries.viewerState, { p: profileId, t: titleId })).viewerState;
  } catch {
    return null;
  }
}

/** 142 → "2 h 22 min". */
function fmtRuntime(minutes) {
  if (!minutes) return null;
  const hours = Math.floor(minutes / 60);
  return hours ? `${hours} h ${String(minutes % 60).padStart(2, '0')} min` : `${minutes} min`;
}

/** "fr" → "French", in the viewer's language where the browser knows it. */
function languageName(code) {
  if (!code) return null;
  try {
    return new Intl.DisplayNames([navigator.language || 'en'], { type: 'language' }).of(code) ?? code;
  } catch {
    return code;
  }
}

function fmtDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d.toLocaleDateString('en-US', { month: 'short', year: 'numeric' });
}

async function loadTitle(view, id, profile, isCurrent, retry) {
  try {
    const data = await gql(queries.title, { id, profileId: profile.id });
    if (!isCurrent()) return null;
    if (!data.title) {
      setView(view, 'error', h('div.message', { role: 'alert' }, h('h1', 'Title not found'),
        h('p', `There is no title with id ${id}.`), h('a.btn.primary', { href: '#/' }, 'Home')));
      view.querySelector('a').focus();
      return null;
    }
    if (!allowedFor(profile.maturityLimit, data.title.maturityRating)) {
      setView(view, 'error', h('div.message', { role: 'alert' }, h('h1', 'Not available on this profile'),
        h('p', `${displayName(data.title.name)} is rated ${ratingLabel(data.title.maturityRating)}; this profile shows up to ${ratingLabel(profile.maturityLimit)}.`),
        h('a.btn.primary', { href: '#/' }, 'Home')));
      view.querySelector('a').focus();
      return null;
    }
    return data;
  } catch (err) {
    if (!isCurrent()) return null;
    if (err.kind === 'forbidden-title') {
      // The API refuses titles this profile may not see (`FORBIDDEN_TITLE`).
      setView(view, 'error', h('div.message', { role: 'alert' }, h('h1', 'Not available on this profile'),
        h('p', `This title is not available on ${profile.name}'s profile.`),
        h('a.btn.primary', { href: '#/' }, 'Home')));
      view.querySelector('a').focus();
    } else {
      errorState(view, err, { retry });
    }
    return null;
  }
}

export async function titleView({ view, args: [id], isCurrent }) {
  const profile = currentProfile();
  loading(view, 'Loading title…');
  const data = await loadTitle(view, id, profile, isCurrent, () => titleView({ view, args: [id], isCurrent }));
  if (!data) return;
  const { title, similar } = data;
  const name = displayName(title.name);
  // The profile's own state comes from the server: the same on every device.
  const state = await viewerState(profile.id, title.id);
  if (!isCurrent()) return;
  let thumbs = state?.thumbs === 'UP' ? 'up' : state?.thumbs === 'DOWN' ? 'down' : null;
  const note = h('p.note', { role: 'status', 'aria-live': 'polite' });
  const up = h('button.btn.thumb', { 'aria-pressed': 'false', 'data-action': 'thumbs-up', title: 'I like this' }, thumbIcon(), h('span', 'Like'));
  const down = h('button.btn.thumb', { 'aria-pressed': 'false', 'data-action': 'thumbs-down', title: 'Not for me' }, thumbIcon(true), h('span', 'Not for me'));
  const paint = () => {
    up.setAttribute('aria-pressed', String(thumbs === 'up'));
    down.setAttribute('aria-pressed', String(thumbs === 'down'));
  };
  const rate = async (kind) => {
    const prev = thumbs;
    thumbs = kind;
    paint();
    note.textContent = 'Saving…';
    try {
      await track(kind === 'up' ? 'THUMBS_UP' : 'THUMBS_DOWN', title.id);
      note.textContent = kind === 'up'
        ? 'Thanks! We will recommend more like this.'
        : 'Got it. We won’t recommend this title again.';
    } catch (err) {
      thumbs = prev;
      paint();
      note.textContent = `Could not save: ${err.message}`;
    }
  };
  up.addEventListener('click', () => rate('up'));
  down.addEventListener('click', () => rate('down'));
  paint();

  const play = h('a.btn.primary.play', { href: `#/title/${encodeURIComponent(title.id)}/play`, 'data-action': 'play' }, '▶ Play');
  const resume = state && !state.completed ? state.progress : 0;
  if (resume > 0.01 && resume < 0.99) play.textContent = `▶ Resume from ${percent(resume)}`;

  const added = fmtDate(title.addedAt);
  const runtime = fmtRuntime(title.runtime);
  const cast = title.cast ?? [];
  const info = h('div.title-info',
    h('h1.title-name', name),
    h('div.title-meta',
      title.year ? h('span', title.year) : null,
      ratingBadge(title.maturityRating),
      runtime ? h('span.runtime', runtime) : null,
      ...title.genres.map((g) => h('a.chip', { href: `#/browse/${encodeURIComponent(g)}` }, g))),
    title.tagline ? h('p.tagline', title.tagline) : null,
    h('p.overview', title.overview ?? 'No synopsis is available for this title yet.'),
    h('dl.facts',
      title.director ? [h('dt', 'Director'), h('dd.director', title.director)] : null,
      cast.length ? [h('dt', 'Cast'), h('dd', h('ul.cast', cast.map((c) =>
        h('li', c.name, c.character ? h('span.character', ` as ${c.character}`) : null))))] : null,
      title.originalLanguage ? [h('dt', 'Language'), h('dd', languageName(title.originalLanguage))] : null,
      added ? [h('dt', 'Added'), h('dd', added)] : null,
      [h('dt', 'Available in'), h('dd', title.countries?.length ? title.countries.join(', ') : 'All countries')]),
    h('div.actions', play, up, down, h('button.btn', { onclick: () => back(), 'data-action': 'back' }, '← Back')),
    note);
  const hero = h('section.title-hero',
    fillPoster(h('div.hero-backdrop', { 'aria-hidden': 'true' }), title, title.backdropUrl ?? title.posterUrl),
    fillPoster(h('div.hero-poster'), title),
    info);
  const more = similar.length
    ? row({ id: 'more-like-this', title: 'More Like This', definition: 'similar' }, similar.map((t) => titleCard(t)))
    : h('section.row', { dataset: { rowId: 'more-like-this' } }, h('h2.row-title', 'More Like This'),
      h('p.muted', 'No similar titles for this profile.'));
  setView(view, 'ready', hero, more);
  view.dataset.titleId = title.id;
  document.title = `${name} · Marquee`;
  focusEl(play);
}

export async function playerView({ view, args: [id], isCurrent, onLeave }) {
  const profile = currentProfile();
  loading(view, 'Starting playback…');
  const data = await loadTitle(view, id, profile, isCurrent, () => playerView({ view, args: [id], isCurrent, onLeave }));
  if (!data) return;
  const { title } = data;
  // The clock shows the real running time when the metadata has one.
  const RUNTIME_MIN = title.runtime || 100;
  const STEP = 0.1; // arrow keys skip 10%
  const RATE = 1 / 60; // simulated playback: the whole title in a minute
  const state = await viewerState(profile.id, title.id);
  let position = Math.min(state && !state.completed ? state.progress : 0, 0.99);
  if (!(position >= 0)) position = 0;
  let playing = true;
  let sent = position;
  let completed = false;
  let last = performance.now();
  let seekTimer = null;

  const fill = h('div.bar-fill');
  const bar = h('div.bar', {
    role: 'slider', tabindex: '0', 'aria-label': 'Playback position', 'aria-valuemin': '0', 'aria-valuemax': '100',
  }, fill, h('div.bar-knob'));
  const clock = h('span.clock');
  const status = h('p.player-status', { role: 'status' });
  const toggle = h('button.btn.primary.toggle', { 'data-action': 'toggle' });
  const stage = h('section.player', { dataset: { titleId: title.id } },
    h('div.player-bg', { html: posterSvg(title), 'aria-hidden': 'true' }),
    h('div.player-top', h('button.btn', { 'data-action': 'back', onclick: () => back() }, '← Back'),
      h('div', h('div.player-kicker', 'Now playing'), h('h1', displayName(title.name)))),
    h('div.player-screen', h('div.player-art', { html: posterSvg(title), 'aria-hidden': 'true' }),
      h('p.muted', 'Simulated playback · ← → skip 10% · Space pauses')),
    h('div.player-controls',
      h('div.bar-row', bar, clock),
      h('div.buttons',
        h('button.btn', { 'data-action': 'rewind', onclick: () => seek(position - STEP) }, '« 10%'),
        toggle,
        h('button.btn', { 'data-action': 'forward', onclick: () => seek(position + STEP) }, '10% »')),
      status));

  const fmt = (f) => {
    const m = Math.round(f * RUNTIME_MIN);
    return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}`;
  };
  const paint = () => {
    fill.style.width = `${(position * 100).toFixed(2)}%`;
    bar.setAttribute('aria-valuenow', String(Math.round(position * 100)));
    bar.dataset.progress = position.toFixed(4);
    clock.textContent = `${fmt(position)} / ${fmt(1)}`;
    toggle.textContent = completed ? '↺ Replay' : playing ? '❚❚ Pause' : '▶ Play';
  };
  const sendProgress = () => {
    if (completed || Math.abs(position - sent) < 0.001 || position < 0.01) return;
    sent = position;
    track('PROGRESS', title.id, { value: Number(position.toFixed(4)) })
      .then(() => { status.textContent = `Progress saved at ${percent(sent)}`; })
      .catch((err) => { status.textContent = `Could not save progress: ${err.message}`; });
  };
  const complete = () => {
    completed = true;
    playing = false;
    position = 1;
    track('COMPLETE', title.id)
      .then(() => { status.textContent = 'Finished. Marked as watched.'; })
      .catch((err) => { status.textContent = `Could not save: ${err.message}`; });
    paint();
  };
  function seek(to) {
    if (completed) return;
    position = Math.max(0, Math.min(1, to));
    if (position >= 1) { complete(); return; }
    paint();
    clearTimeout(seekTimer);
    seekTimer = setTimeout(sendProgress, 300);
  }
  toggle.addEventListener('click', () => {
    if (completed) {
      completed = false;
      position = 0;
      sent = 0;
      playing = true;
      track('PLAY', title.id);
    } else {
      playing = !playing;
      if (!playing) sendProgress();
    }
    last = performance.now();
    paint();
  });
  bar.addEventListener('click', (e) => {
    const r = bar.getBoundingClientRect();
    seek((e.clientX - r.left) / r.width);
  });
  const onKey = (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      seek(position + (e.key === 'ArrowRight' ? STEP : -STEP));
    } else if (e.key === ' ' && document.activeElement?.tagName !== 'BUTTON') {
      e.preventDefault();
      toggle.click();
    }
  };
  const timer = setInterval(() => {
    const now = performance.now();
    const dt = (now - last) / 1000;
    last = now;
    if (!playing || completed) return;
    const before = position;
    position = Math.min(1, position + dt * RATE);
    if (position >= 1) { complete(); return; }
    if (Math.floor(before * 20) !== Math.floor(position * 20)) sendProgress(); // every 5%
    paint();
  }, 250);
  document.addEventListener('keydown', onKey, true);
  onLeave(() => {
    clearInterval(timer);
    clearTimeout(seekTimer);
    document.removeEventListener('keydown', onKey, true);
    sendProgress();
  });

  setView(view, 'ready', stage);
  document.title = `${displayName(title.name)} · Playing · Marquee`;
  paint();
  track('PLAY', title.id);
  toggle.focus();
  await flushEvents();
}
