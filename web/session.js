// Who is watching. The server is the truth: the browser holds only an HttpOnly session cookie
// (Marquee signs in at the identity provider and keeps the tokens), and the profile the session
// selected lives on the server (`selectProfile`), so it is the same after a reload and the
// kids lock cannot be lifted from the browser. This module caches what the server said.
import { gql } from './api.js';

const listeners = new Set();
/** { accountId, roles, kidsLocked } once signed in; null when not signed in. */
let me = null;
/** The selected profile ({ id, name, isKids, maturityLimit, accountId }) or null. */
let profile = null;

const ME = `{ me { accountId roles selectedProfileId kidsLocked } }`;
const PROFILE = `query($id: ID!) { profile(id: $id) { id accountId name isKids maturityLimit } }`;

/** Asks the server who is signed in (call once at start). false when nobody is. */
export async function loadSession() {
  try {
    const d = await gql(ME);
    me = d.me;
  } catch (err) {
    if (err.kind === 'unauthenticated') {
      me = null;
      profile = null;
      return false;
    }
    throw err;
  }
  profile = null;
  if (me.selectedProfileId) {
    const d = await gql(PROFILE, { id: me.selectedProfileId });
    profile = d.profile;
  }
  listeners.forEach((fn) => fn(profile));
  return true;
}

export const signedIn = () => me !== null;
export const account = () => me;
export const hasRole = (role) => !!me?.roles?.includes(role);

/** The chosen profile or null. */
export function currentProfile() {
  return profile;
}

/** Selects `p` on the server (a kids profile locks the session to it). */
export async function chooseProfile(p) {
  const d = await gql(`mutation($id: ID!) { selectProfile(profileId: $id) { id accountId name isKids maturityLimit } }`, { id: p.id });
  profile = d.selectProfile;
  if (profile.isKids && me) me.kidsLocked = true;
  listeners.forEach((fn) => fn(profile));
}

/** Where the browser goes to sign in, coming back to `hash`. */
export function signInUrl(hash = location.hash) {
  return `/auth/login?return_to=${encodeURIComponent(`/${hash || ''}`)}`;
}

/** Signs out on the server (the session is deleted there), then reloads. */
export async function signOut() {
  await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin', redirect: 'manual' });
  me = null;
  profile = null;
  listeners.forEach((fn) => fn(null));
  location.assign('/');
}

/** Calls `fn(profile)` whenever the profile changes; returns an unsubscribe function. */
export function onProfileChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
