// Viewing events (recordEvents), with attribution to the home page that led to a title.
import { gql, queries } from './api.js';
import { currentProfile } from './session.js';

const ORIGIN_KEY = 'marquee.origin';
const pending = new Set();

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

/** Remembers that `titleId` was opened from the home page `requestId`. */
export function setOrigin(titleId, requestId) {
  sessionStorage.setItem(ORIGIN_KEY, JSON.stringify({ titleId, requestId }));
}

/** The home page `requestId` that led to `titleId`, if it was opened from home. */
export function originRequestId(titleId) {
  try {
    const o = JSON.parse(sessionStorage.getItem(ORIGIN_KEY) ?? 'null');
    return o && o.titleId === titleId ? o.requestId : null;
  } catch {
    return null;
  }
}

/**
 * Records one event for the current profile. Returns a promise of the result; failures are
 * reported to the caller but never thrown into the void.
 */
export function track(kind, titleId, { value, requestId } = {}) {
  const profile = currentProfile();
  if (!profile) return Promise.resolve(null);
  const event = { clientEventId: newId(), titleId, kind };
  if (value !== undefined) event.value = value;
  const rid = requestId ?? originRequestId(titleId);
  if (rid) event.requestId = rid;
  const p = gql(queries.recordEvents, { profileId: profile.id, events: [event] })
    .then((d) => d.recordEvents)
    .finally(() => pending.delete(p));
  pending.add(p);
  return p;
}

/** Waits for every event in flight, so a page fetched next reflects them. */
export async function flushEvents() {
  await Promise.allSettled([...pending]);
}
