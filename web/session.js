// Who is watching. This is the ONE place that knows how a profile is chosen: today a picker
// stored in localStorage; later an OIDC login can replace it behind the same functions.

const KEY = 'marquee.profile';
const listeners = new Set();

/** The chosen profile ({ id, name, isKids, maturityLimit, accountId }) or null. */
export function currentProfile() {
  try {
    const p = JSON.parse(localStorage.getItem(KEY) ?? 'null');
    return p && typeof p.id === 'string' ? p : null;
  } catch {
    return null;
  }
}

export function chooseProfile(profile) {
  const { id, name, isKids, maturityLimit = null, accountId = null } = profile;
  localStorage.setItem(KEY, JSON.stringify({ id, name, isKids: !!isKids, maturityLimit, accountId }));
  listeners.forEach((fn) => fn(currentProfile()));
}

export function signOut() {
  localStorage.removeItem(KEY);
  listeners.forEach((fn) => fn(null));
}

/** Calls `fn(profile)` whenever the profile changes; returns an unsubscribe function. */
export function onProfileChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
