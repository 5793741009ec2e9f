// @ts-check
/**
 * The calls table: one row per call, created once and then only its text and classes change (the
 * once-a-second stats never replace a row being clicked), newest first.
 */
import { DASH, age, el, kbps, limitNote, ms, pct, setText, worst } from './dom.js';
import { calls, isEnded, selectedId, stats } from './state.js';

/** @typedef {import('./state.js').ConsoleCall} ConsoleCall @typedef {import('./state.js').CallStats} CallStats */
/** @typedef {import('./state.js').PushView} PushView */

/** @type {Map<string, HTMLTableRowElement>} */
const rows = new Map();
const COLUMNS = ['callee', 'status', 'sipStatus', 'stream', 'kbps', 'loss', 'jitter', 'avOffset', 'keyframe', 'video', 'pushes', 'age'];
const NUMERIC = new Set(['kbps', 'loss', 'jitter', 'avOffset', 'keyframe', 'age']);

function rowFor(/** @type {string} */ callId) {
  let tr = rows.get(callId);
  if (!tr) {
    tr = document.createElement('tr');
    tr.dataset.callId = callId;
    tr.tabIndex = 0;
    for (const col of COLUMNS) {
      const td = tr.insertCell();
      td.dataset.col = col;
      if (NUMERIC.has(col)) td.className = 'num';
    }
    const badge = document.createElement('span');
    badge.className = 'badge';
    cell(tr, 'status').append(badge);
    tr.classList.toggle('selected', callId === selectedId);
    rows.set(callId, tr);
  }
  return tr;
}

const cell = (/** @type {HTMLTableRowElement} */ tr, /** @type {string} */ col) => tr.cells[COLUMNS.indexOf(col)];

export function removeRow(/** @type {string} */ callId) {
  rows.get(callId)?.remove();
  rows.delete(callId);
}

/** The calls that have a row (the feed's snapshot drops the others). */
export const rowIds = () => [...rows.keys()];

/** Highlights the selected call's row (and no other). */
export function markSelected(/** @type {string|null} */ callId) {
  for (const [id, tr] of rows) tr.classList.toggle('selected', id === callId);
}

/** Publishing / total pushes, and the reconnects summed (the live stats know them best). */
function pushSummary(/** @type {ConsoleCall} */ call, /** @type {CallStats|undefined} */ s) {
  const pushes = call.pushes ?? [];
  const publishing = pushes.filter((p) => p.status === 'PUBLISHING').length;
  const reconnects = pushes.reduce((sum, p) => sum + reconnectsOf(p, s), 0);
  return `${publishing}/${pushes.length}${reconnects ? ` ↻${reconnects}` : ''}`;
}

export function reconnectsOf(/** @type {PushView} */ push, /** @type {CallStats|undefined} */ s) {
  const live = s?.pushes?.find((p) => p.mediaSessionId === push.mediaSessionId);
  return live?.reconnects ?? push.stats?.reconnects ?? 0;
}

export function renderCallRow(/** @type {ConsoleCall} */ call) {
  const tr = rowFor(call.callId);
  const s = stats.get(call.callId);
  const ended = isEnded(call);
  tr.classList.toggle('ended', ended);
  tr.title = `${call.callId}${call.info ? ` — ${call.info}` : ''}`;
  setText(cell(tr, 'callee'), `${call.incoming ? '← ' : ''}${call.callee || DASH}`);
  const badge = /** @type {HTMLElement} */ (cell(tr, 'status').firstElementChild);
  badge.className = `badge status-${call.status}`;
  setText(badge, call.status);
  setText(cell(tr, 'sipStatus'), call.sipStatus ? String(call.sipStatus) : DASH);
  setText(cell(tr, 'stream'), call.rtmpStreamStatus || DASH);
  // Stats stop when a call ends: a frozen bitrate would look like a live one.
  setText(cell(tr, 'kbps'), ended ? DASH : kbps(s?.bitrateKbps));
  const loss = cell(tr, 'loss');
  setText(loss, pct(worst(s?.audio?.lossPct, s?.video?.lossPct)));
  loss.title = s ? `audio ${pct(s.audio?.lossPct)} %, video ${pct(s.video?.lossPct)} %` : '';
  const jitter = cell(tr, 'jitter');
  setText(jitter, ms(worst(s?.audio?.jitterMs, s?.video?.jitterMs)));
  jitter.title = s ? `audio ${ms(s.audio?.jitterMs)} ms, video ${ms(s.video?.jitterMs)} ms` : '';
  setText(cell(tr, 'avOffset'), ms(s?.avOffsetMs));
  setText(cell(tr, 'keyframe'), ms(s?.keyframeIntervalMs));
  // passthrough / transcode: how the caller's video goes out (the fill when it sends none).
  const video = cell(tr, 'video');
  setText(video, ended || !s?.videoOut ? DASH : s.videoOut.mode);
  video.title = s?.videoOut ? `showing ${s.videoOut.source}, ${s.videoOut.size ?? 'size pending'}` : '';
  setText(cell(tr, 'pushes'), pushSummary(call, s));
  setText(cell(tr, 'age'), age(call));
  // MAX_CALL_DURATION or the call's maxDuration: when it will be hung up.
  cell(tr, 'age').title = call.maxDuration && !ended ? `hung up at its ${limitNote(call.maxDuration, call.endsAt)}` : '';
}

/** Newest first. Rows are moved only when out of place, never rebuilt. */
export function orderRows() {
  const order = [...calls.values()].sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
  const body = el.callsBody;
  order.forEach((call, i) => {
    const tr = rows.get(call.callId);
    if (tr && body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
  });
  el.callsEmpty.hidden = calls.size > 0;
}

export function tickAges() {
  for (const call of calls.values()) {
    const tr = rows.get(call.callId);
    if (tr) setText(cell(tr, 'age'), age(call));
  }
}

/** A click on a row, or Enter / Space on a focused one, picks its call. */
export function wireCallsTable(/** @type {(callId: string) => void} */ onPick) {
  /** The call id of the row an event happened in, if any. */
  const rowCallId = (/** @type {Event} */ e) => {
    const tr = e.target instanceof Element ? e.target.closest('tr[data-call-id]') : null;
    return tr instanceof HTMLElement ? tr.dataset.callId : undefined;
  };
  el.callsBody.addEventListener('click', (e) => {
    const id = rowCallId(e);
    if (id) onPick(id);
  });
  el.callsBody.addEventListener('keydown', (e) => {
    const id = rowCallId(e);
    if ((e.key === 'Enter' || e.key === ' ') && id) {
      e.preventDefault();
      onPick(id);
    }
  });
}
