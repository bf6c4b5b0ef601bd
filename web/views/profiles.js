// "Who's watching?" — the signed-in account's profiles (kids profiles are marked); add,
// rename and remove them. Choosing a kids profile locks the session to it until the next
// sign-in (the server enforces it).
import { gql, queries } from '../api.js';
import { currentProfile, chooseProfile, account, signOut } from '../session.js';
import { h, setView, loading, errorState, describeError, initials, avatarHue, ratingLabel } from '../ui.js';
import { focusEl } from '../nav.js';

function tile(p, { current } = {}) {
  return h(`button.profile-tile${p.isKids ? '.kids' : ''}${current ? '.current' : ''}`, {
    dataset: { profileId: p.id },
    'aria-label': `${p.name}${p.isKids ? ' (kids profile)' : ''}, profile ${p.id}`,
  },
  h('span.avatar.big', { style: `--hue:${avatarHue(p.accountId ?? p.id)}` }, p.isKids ? 'K' : initials(p.name)),
  h('span.profile-name', p.name),
  p.isKids ? h('span.kids-badge', 'KIDS') : h('span.profile-sub', `Profile ${p.id}`),
  p.isKids ? h('span.profile-sub', `Up to ${ratingLabel(p.maturityLimit) ?? 'PG'}`) : null);
}

export async function profilesView({ view, params, isCurrent }) {
  loading(view, 'Loading profiles…');
  const cur = currentProfile();
  const me = account();
  let mine;
  try {
    mine = (await gql(queries.profiles, { first: 20 })).profiles;
  } catch (err) {
    if (isCurrent()) errorState(view, err, { retry: () => profilesView({ view, params, isCurrent }) });
    return;
  }
  if (!isCurrent()) return;
  const next = params.get('next');
  const status = h('p.muted', { role: 'status' });
  const pick = async (p) => {
    try {
      await chooseProfile(p);
      location.hash = next && next.startsWith('#/') && !next.startsWith('#/profiles') ? next : '#/';
    } catch (err) {
      status.textContent = describeError(err).join(': ');
    }
  };
  const onClick = (e) => {
    const b = e.target.closest('[data-profile-id]');
    const p = b && mine.find((x) => x.id === b.dataset.profileId);
    if (p) pick(p);
  };

  const sections = [h('h1.page-title.center', 'Who’s watching?')];
  sections.push(h('section.profile-section', { onclick: onClick },
    h('h2', `Account ${me?.accountId ?? ''}`),
    mine.length
      ? h('div.profile-grid', mine.map((p) => tile(p, { current: p.id === cur?.id })))
      : h('p.muted', 'No profiles on this account yet: add one below.')));

  if (!me?.kidsLocked) {
    const name = h('input', { name: 'new-profile-name', placeholder: 'Name', required: true, maxlength: '100', 'aria-label': 'Profile name' });
    const kids = h('input', { type: 'checkbox', name: 'new-profile-kids' });
    const add = h('form.id-form', {
      onsubmit: async (e) => {
        e.preventDefault();
        const id = `${me.accountId}-${Date.now().toString(36)}`;
        status.textContent = 'Adding…';
        try {
          await gql(`mutation($i: CreateProfileInput!) { createProfile(input: $i) { id } }`,
            { i: { id, name: name.value.trim(), isKids: kids.checked } });
          profilesView({ view, params, isCurrent });
        } catch (err) {
          status.textContent = describeError(err).join(': ');
        }
      },
    }, name, h('label', kids, ' Kids'), h('button.btn', { type: 'submit' }, 'Add profile'));
    const removable = mine.filter((p) => p.id !== cur?.id);
    const remove = removable.length ? h('form.id-form', {
      onsubmit: async (e) => {
        e.preventDefault();
        const id = e.target.elements['remove-profile'].value;
        status.textContent = 'Removing…';
        try {
          await gql(`mutation($p: ID!) { removeProfile(profileId: $p) }`, { p: id });
          profilesView({ view, params, isCurrent });
        } catch (err) {
          status.textContent = describeError(err).join(': ');
        }
      },
    }, h('select', { name: 'remove-profile', 'aria-label': 'Profile to remove' },
      removable.map((p) => h('option', { value: p.id }, p.name))),
    h('button.btn', { type: 'submit' }, 'Remove')) : null;
    sections.push(h('section.profile-section', h('h2', 'Manage profiles'), add, remove));
  } else {
    sections.push(h('p.muted.center', 'This is a kids session: sign out to switch to another profile.'));
  }
  sections.push(status, h('p.center', h('button.btn', { 'data-action': 'sign-out', onclick: () => signOut() }, 'Sign out')));
  setView(view, 'ready', sections.filter(Boolean));
  focusEl(view.querySelector('.profile-tile.current') ?? view.querySelector('.profile-tile'));
}
