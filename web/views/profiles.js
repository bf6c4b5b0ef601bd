// "Who's watching?" — pick one of the demo's profiles (kids profiles are marked).
import { gql, queries } from '../api.js';
import { currentProfile, chooseProfile } from '../session.js';
import { h, setView, loading, errorState, describeError, initials, avatarHue, ratingLabel } from '../ui.js';
import { focusEl } from '../nav.js';

function tile(p, { current } = {}) {
  return h(`button.profile-tile${p.isKids ? '.kids' : ''}${current ? '.current' : ''}`, {
    dataset: { profileId: p.id },
    'aria-label': `${p.name}${p.isKids ? ' (kids profile)' : ''}, profile ${p.id}`,
  },
  h('span.avatar.big', { style: `--hue:${avatarHue(p.accountId ?? p.id)}` }, p.isKids ? 'K' : initials(p.name)),
  h('span.profile-name', p.name),
  p.isKids ? h('span.kids-badge', 'KIDS') : h('span.profile-sub', `Account ${p.accountId ?? p.id}`),
  p.isKids ? h('span.profile-sub', `Up to ${ratingLabel(p.maturityLimit) ?? 'PG'} · account ${p.accountId}`) : null);
}

export async function profilesView({ view, params, isCurrent }) {
  loading(view, 'Loading profiles…');
  const cur = currentProfile();
  let all;
  let kids;
  let mine = null;
  try {
    [all, kids, mine] = await Promise.all([
      gql(queries.profiles, { first: 24 }).then((d) => d.profiles),
      gql(queries.profiles, { first: 8, kids: true }).then((d) => d.profiles),
      cur ? gql(queries.profile, { id: cur.id }).then((d) => d.profile).catch(() => null) : null,
    ]);
  } catch (err) {
    if (isCurrent()) errorState(view, err, { retry: () => profilesView({ view, params, isCurrent }) });
    return;
  }
  if (!isCurrent()) return;
  const next = params.get('next');
  const pick = (p) => {
    chooseProfile(p);
    location.hash = next && next.startsWith('#/') && !next.startsWith('#/profiles') ? next : '#/';
  };
  const onClick = (list) => (e) => {
    const b = e.target.closest('[data-profile-id]');
    const p = b && list.find((x) => x.id === b.dataset.profileId);
    if (p) pick(p);
  };

  const idInput = h('input.id-input', { type: 'text', placeholder: 'e.g. 102-kids', 'aria-label': 'Profile id', name: 'profile-id' });
  const idStatus = h('p.muted', { role: 'status' });
  const form = h('form.id-form', {
    onsubmit: async (e) => {
      e.preventDefault();
      const id = idInput.value.trim();
      if (!id) return;
      idStatus.textContent = 'Looking up…';
      try {
        const { profile } = await gql(queries.profile, { id });
        if (!profile) idStatus.textContent = `There is no profile ${id}.`;
        else pick(profile);
      } catch (err) {
        idStatus.textContent = describeError(err).join(': ');
      }
    },
  }, h('label', 'Any profile by id ', idInput), h('button.btn', { type: 'submit' }, 'Open'));

  const sections = [h('h1.page-title.center', 'Who’s watching?')];
  if (mine && mine.accountProfiles.length) {
    const list = mine.accountProfiles.map((p) => ({ ...p, accountId: mine.accountId }));
    sections.push(h('section.profile-section', { onclick: onClick(list) },
      h('h2', `On this account (${mine.accountId})`),
      h('div.profile-grid', list.map((p) => tile(p, { current: p.id === cur.id })))));
  }
  if (!all.length) {
    sections.push(h('div.message', h('h2', 'No profiles yet'), h('p', 'Import a dataset (marquee demo does it for you).')));
    setView(view, 'empty', sections);
    return;
  }
  sections.push(
    h('section.profile-section', { onclick: onClick(all) },
      h('h2', 'Members'), h('div.profile-grid', all.map((p) => tile(p, { current: p.id === cur?.id })))),
    kids.length ? h('section.profile-section', { onclick: onClick(kids) },
      h('h2', 'Kids profiles'), h('div.profile-grid', kids.map((p) => tile(p, { current: p.id === cur?.id })))) : null,
    h('section.profile-section', h('h2', 'Someone else?'), form, idStatus));
  setView(view, 'ready', sections.filter(Boolean));
  focusEl(view.querySelector('.profile-tile.current') ?? view.querySelector('.profile-tile'));
}
