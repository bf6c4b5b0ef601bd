// TV-style keyboard navigation: arrow keys move focus between cards (within a row, and between
// rows keeping the column), and elsewhere to the nearest control in that direction.
// Escape/Backspace go back. Views can take keys first by calling preventDefault().

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select, [tabindex="0"]';
const DIRS = { ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down' };

function isVisible(el) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return false;
  // Cards scrolled out of their row are not candidates for geometric moves.
  const scroller = el.closest('.row-scroller');
  if (scroller) {
    const s = scroller.getBoundingClientRect();
    if (r.right <= s.left + 4 || r.left >= s.right - 4) return false;
  }
  return true;
}

/** Focuses `el` and scrolls it into view (rows scroll sideways, the page scrolls vertically). */
export function focusEl(el) {
  if (!el) return;
  el.focus({ preventScroll: true });
  el.scrollIntoView({ block: 'nearest', inline: 'nearest', behavior: 'smooth' });
}

function rowCards(rowEl) {
  return [...rowEl.querySelectorAll('.row-scroller > [data-title-id]')];
}

function inRowMove(cur, dir) {
  const rowEl = cur.closest('[data-row-id]');
  if (!rowEl || !cur.matches('[data-title-id]')) return undefined;
  const cards = rowCards(rowEl);
  const i = cards.indexOf(cur);
  if (dir === 'left') return cards[i - 1] ?? null;
  if (dir === 'right') return cards[i + 1] ?? null;
  const rows = [...document.querySelectorAll('#view [data-row-id]')].filter((r) => rowCards(r).length);
  const j = rows.indexOf(rowEl);
  const target = rows[dir === 'up' ? j - 1 : j + 1];
  if (!target) return undefined; // leave the rows: fall back to geometry
  const x = cur.getBoundingClientRect().left;
  let best = null;
  let bestD = Infinity;
  for (const c of rowCards(target)) {
    const d = Math.abs(c.getBoundingClientRect().left - x);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best;
}

function geometricMove(cur, dir) {
  const from = cur.getBoundingClientRect();
  const cx = from.left + from.width / 2;
  const cy = from.top + from.height / 2;
  let best = null;
  let bestScore = Infinity;
  for (const el of document.querySelectorAll(FOCUSABLE)) {
    if (el === cur || !isVisible(el) || el.closest('[inert], [hidden]')) continue;
    const r = el.getBoundingClientRect();
    const ex = r.left + r.width / 2;
    const ey = r.top + r.height / 2;
    let main;
    let cross;
    if (dir === 'left') [main, cross] = [from.left - r.right, Math.abs(ey - cy)];
    if (dir === 'right') [main, cross] = [r.left - from.right, Math.abs(ey - cy)];
    if (dir === 'up') [main, cross] = [from.top - r.bottom, Math.abs(ex - cx)];
    if (dir === 'down') [main, cross] = [r.top - from.bottom, Math.abs(ex - cx)];
    if (main < -2) continue;
    // Overlap on the cross axis counts as aligned.
    const aligned = dir === 'left' || dir === 'right'
      ? r.bottom > from.top && r.top < from.bottom
      : r.right > from.left && r.left < from.right;
    const score = Math.max(main, 0) + (aligned ? 0 : cross * 2 + 40);
    if (score < bestScore) [best, bestScore] = [el, score];
  }
  return best;
}

function firstTarget() {
  const view = document.getElementById('view');
  return view.querySelector('[data-title-id]') ?? view.querySelector(FOCUSABLE);
}

let goBack = () => history.back();

/** Goes back the way Escape does (views' Back buttons use it too). */
export function back() {
  goBack();
}

/** Installs the global key handler; `back()` is what Escape/Backspace do. */
export function installKeyboard({ back }) {
  goBack = back;
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const cur = document.activeElement;
    const typing = cur && (cur.tagName === 'INPUT' || cur.tagName === 'TEXTAREA' || cur.tagName === 'SELECT');
    if (e.key === 'Escape' || (e.key === 'Backspace' && !typing)) {
      e.preventDefault();
      goBack();
      return;
    }
    const dir = DIRS[e.key];
    if (!dir) return;
    if (typing && (dir === 'left' || dir === 'right')) return; // move the caret
    if (cur?.tagName === 'SELECT') return; // let the select change
    if (!cur || cur === document.body) {
      e.preventDefault();
      focusEl(firstTarget());
      return;
    }
    let next = inRowMove(cur, dir);
    if (next === undefined) next = geometricMove(cur, dir);
    e.preventDefault(); // arrows never scroll the page by themselves: focus drives scrolling
    if (next) focusEl(next);
  });
}
