// Entry point: hash routing, the top bar and the keyboard. Views live in views/.
import { currentProfile, onProfileChange, loadSession, signInUrl } from './session.js';
import { installKeyboard } from './nav.js';
import { h, initials, avatarHue, errorState } from './ui.js';
import { homeView } from './views/home.js';
import { titleView, playerView } from './views/title.js';
import { browseView } from './views/browse.js';
import { searchView } from './views/search.js';
import { profilesView } from './views/profiles.js';
import { experimentsView } from './views/experiments.js';

const view = document.getElementById('view');

/** [pattern, view, needs a profile] — first match wins. */
const ROUTES = [
  [/^\/?$/, homeView, true, 'home'],
  [/^\/title\/([^/]+)\/play$/, playerView, true, null],
  [/^\/title\/([^/]+)$/, titleView, true, null],
  [/^\/browse(?:\/(.+))?$/, browseView, true, 'browse'],
  [/^\/search$/, searchView, true, 'search'],
  [/^\/profiles$/, profilesView, false, null],
  [/^\/experiments$/, experimentsView, false, 'experiments'],
];

/** Parses location.hash into { path, params }. */
export function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = raw.split('?');
  return { path, params: new URLSearchParams(query) };
}

let generation = 0;
let cleanup = null;
let navigatedInApp = false;

async function render() {
  const gen = ++generation;
  if (cleanup) {
    try { cleanup(); } catch { /* a view's cleanup must not break routing */ }
    cleanup = null;
  }
  const { path, params } = parseHash();
  const route = ROUTES.find(([re]) => re.test(path));
  document.querySelectorAll('.mainnav a').forEach((a) =>
    a.classList.toggle('active', !!route && a.dataset.nav === route[3]));
  document.body.dataset.route = route?.[3] ?? path.split('/')[1] ?? '';
  if (!route) {
    view.dataset.state = 'error';
    view.replaceChildren(h('div.message', h('h1', 'Page not found'), h('a.btn.primary', { href: '#/' }, 'Home')));
    return;
  }
  const [re, fn, needsProfile] = route;
  if (needsProfile && !currentProfile()) {
    location.replace(`#/profiles?next=${encodeURIComponent(location.hash)}`);
    return;
  }
  const args = path.match(re).slice(1).map((a) => (a === undefined ? a : decodeURIComponent(a)));
  window.scrollTo(0, 0);
  for (const k of Object.keys(view.dataset)) if (k !== 'state') delete view.dataset[k];
  document.title = 'Marquee';
  const ctx = {
    view,
    params,
    args,
    /** false once the user has navigated elsewhere: views check it after each await. */
    isCurrent: () => gen === generation,
    onLeave: (fn) => { cleanup = fn; },
  };
  try {
    await fn(ctx);
  } catch (err) {
    if (!ctx.isCurrent()) return;
    console.error(err);
    view.dataset.state = 'error';
    view.replaceChildren(h('div.message.error', { role: 'alert' }, h('h1', 'Something went wrong'), h('p', String(err?.message ?? err))));
  }
}

function renderWho(p = currentProfile()) {
  const who = document.getElementById('who');
  if (!p) {
    who.replaceChildren(h('span.avatar.empty', '?'), h('span', 'Choose profile'));
    return;
  }
  who.replaceChildren(
    h(`span.avatar${p.isKids ? '.kids' : ''}`, { style: `--hue:${avatarHue(p.id)}` }, p.isKids ? 'K' : initials(p.name)),
    h('span.who-name', p.name),
    ...(p.isKids ? [h('span.kids-badge', 'KIDS')] : []));
}

/** Back: the previous page within the app, or home when the app was entered here. */
function back() {
  if (parseHash().path === '/' || parseHash().path === '') return;
  if (navigatedInApp) history.back();
  else location.hash = '#/';
}

window.addEventListener('hashchange', () => {
  navigatedInApp = true;
  if (document.body.dataset.signedIn === 'yes') render();
});
onProfileChange((p) => renderWho(p));
installKeyboard({ back });

/** Nobody is signed in: the one thing to do is sign in (at the identity provider). */
function signInScreen() {
  view.dataset.state = 'signed-out';
  view.replaceChildren(h('div.message',
    h('h1', 'Welcome to Marquee'),
    h('p', 'Sign in to see your profiles and your home page.'),
    h('a.btn.primary', { href: signInUrl(), 'data-action': 'sign-in' }, 'Sign in')));
}

loadSession().then((signed) => {
  renderWho();
  if (!signed) {
    signInScreen();
    window.addEventListener('hashchange', signInScreen);
    return;
  }
  document.body.dataset.signedIn = 'yes';
  render();
}).catch((err) => errorState(view, err, { retry: () => location.reload() }));
