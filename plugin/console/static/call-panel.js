// @ts-check
/**
 * The selected call: choosing it, its panel (details, status timeline, media stats, pushes, preview) and
 * its actions (DTMF keypad, hold, unhold, hang up).
 */
import { validateSendDtmf } from './lib/calls/validate.js';
import { act, clearFieldErrors, notice, showError } from './api.js';
import { markSelected } from './calls-table.js';
import { DASH, byId, clock, el, kbps, ms, setText, track, unit } from './dom.js';
import { syncPreview } from './preview.js';
import { renderPushes } from './pushes.js';
import { renderRecordings } from './recordings.js';
import { STATUSES, selectedCall, selectedId, setSelectedId, stats } from './state.js';

/** @typedef {import('./state.js').ConsoleCall} ConsoleCall @typedef {import('./state.js').CallStats} CallStats */

/** The call whose streamName was put in the push form (only once, so an edit is not overwritten). */
/** @type {string|null} */
let pushStreamFor = null;

export function select(/** @type {string|null} */ callId) {
  if (selectedId !== callId) {
    setSelectedId(callId);
    markSelected(callId);
    clearFieldErrors(el.pushForm);
    el.pushStream.value = '';
    pushStreamFor = null;
  }
  renderSelected();
}

export function renderSelected() {
  el.panel.hidden = !selectedId;
  el.noSelection.hidden = !!selectedId;
  const call = selectedCall();
  if (selectedId) {
    setText(el.callId, selectedId);
    setText(el.status, call?.status ?? DASH);
    el.status.className = `big-status${call ? ` status-${call.status}` : ''}`;
    renderDetails(call);
    renderTimeline(call);
    renderPushes(call);
    renderRecordings(call);
    renderStats();
    // Not a masked stream key (an inbound call's: masked like its rtmpStream): /push/startup needs the real name.
    if (call && pushStreamFor !== call.callId && call.streamName && call.streamName !== call.rtmpStream) {
      el.pushStream.value = call.streamName;
      pushStreamFor = call.callId;
    }
  }
  syncPreview();
}

function renderDetails(/** @type {ConsoleCall|undefined} */ call) {
  /** @type {Record<string, string>} */
  const values = call ? {
    callee: call.callee + (call.visibleName ? ` (as "${call.visibleName}")` : ''),
    caller: call.caller || DASH,
    streamName: call.streamName || DASH,
    rtmp: call.rtmpUrl ? `${call.rtmpUrl}${call.rtmpStream ? ` · ${call.rtmpStream}` : ''} (${call.rtmpStreamStatus})` : DASH,
    sipStatus: call.sipStatus ? String(call.sipStatus) : DASH,
    info: [call.info, call.reason].filter(Boolean).join(' · ') || DASH,
  } : {};
  for (const dd of el.details.querySelectorAll('dd')) {
    setText(dd, values[/** @type {HTMLElement} */ (dd).dataset.detail ?? ''] ?? DASH);
  }
}

let timelineKey = '';
/** Rebuilt only when the history changed (it has no controls, so rebuilding is harmless). */
function renderTimeline(/** @type {ConsoleCall|undefined} */ call) {
  const events = call?.events ?? [];
  const last = events[events.length - 1];
  const key = `${selectedId}|${events.length}|${last?.at}|${last?.type}|${last?.detail}`;
  if (key === timelineKey) return;
  timelineKey = key;
  const list = el.timeline;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 8;
  list.replaceChildren(...events.map((ev) => {
    const li = document.createElement('li');
    if (STATUSES.has(ev.type)) li.className = `status-event status-${ev.type}`;
    const time = document.createElement('time');
    time.dateTime = ev.at;
    time.textContent = clock(ev.at);
    const type = document.createElement('span');
    type.className = 'ev-type';
    type.textContent = ev.type;
    li.append(time, ' ', type);
    if (ev.detail) {
      const detail = document.createElement('span');
      detail.className = 'ev-detail';
      detail.textContent = ev.detail;
      li.append(' ', detail);
    }
    return li;
  }));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** [key, label, formatter]; the <dt>/<dd> pairs are created once, then only the text changes. */
/** @type {[string, string, (s: CallStats) => string][]} */
const STAT_ROWS = [
  ['bitrate', 'Bitrate', (s) => `${kbps(s.bitrateKbps)} kb/s (audio ${kbps(s.audioKbps)}, video ${kbps(s.videoKbps)})`],
  ['audio', 'Audio RTP', (s) => track(s.audio)],
  ['video', 'Video RTP', (s) => track(s.video)],
  ['jitterBuffer', 'Jitter buffer', (s) => unit(ms(s.jitterBufferMs), 'ms')],
  ['avOffset', 'A/V offset', (s) => unit(ms(s.avOffsetMs), 'ms')],
  ['keyframe', 'Keyframe interval', (s) => unit(ms(s.keyframeIntervalMs), 'ms')],
  ['videoOut', 'Video out', (s) => (s.videoOut ? `${s.videoOut.mode}, showing ${s.videoOut.source === 'generated' ? 'the fill' : s.videoOut.source}, ${s.videoOut.size ?? 'size pending'}` : 'no video track')],
  ['latency', 'Latency', (s) => (s.latencyMs ? `p50 ${ms(s.latencyMs.p50)} ms, p99 ${ms(s.latencyMs.p99)} ms` : DASH)],
];

export function buildStats() {
  for (const [key, label] of STAT_ROWS) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.dataset.stat = key;
    dd.textContent = DASH;
    el.stats.append(dt, dd);
  }
}

export function renderStats() {
  const s = selectedId ? stats.get(selectedId) : undefined;
  for (const [key, , format] of STAT_ROWS) {
    const dd = el.stats.querySelector(`dd[data-stat="${key}"]`);
    if (dd) setText(dd, s ? format(s) : DASH);
  }
}

// -------------------------------------------------------------------------------------------- DTMF

/** Digits go out strictly in order: parallel fetches could overtake each other. */
let dtmfQueue = Promise.resolve();

function sendDigit(/** @type {string} */ digit) {
  const key = el.keypad.querySelector(`button[data-digit="${CSS.escape(digit)}"]`);
  if (key) {
    key.classList.add('flash');
    setTimeout(() => key.classList.remove('flash'), 150);
  }
  if (!selectedId) return notice('Select a call first.');
  const body = { callId: selectedId, dtmf: digit, type: el.dtmfType.value };
  try {
    validateSendDtmf(body);
  } catch (err) {
    return showError(err);
  }
  dtmfQueue = dtmfQueue.then(() => act('/call/send_dtmf', body)).then(() => undefined);
}

function onKeypadClick(/** @type {MouseEvent} */ e) {
  const btn = e.target instanceof Element ? e.target.closest('button[data-digit]') : null;
  if (btn instanceof HTMLElement && btn.dataset.digit) sendDigit(btn.dataset.digit);
}

function onKeypadKey(/** @type {KeyboardEvent} */ e) {
  if (e.target === el.dtmfType || e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key.toUpperCase();
  if (key.length === 1 && /[0-9*#A-D]/.test(key)) {
    e.preventDefault();
    sendDigit(key);
  }
}

// ----------------------------------------------------------------------------- hold, hang up, wiring

async function onHangup() {
  notice('');
  if (!selectedId) return notice('Select a call to hang up.');
  await act('/call/terminate', { callId: selectedId });
}

/** Hang up (by the call form), Hold, Unhold and the keypad. */
export function wireCallPanel() {
  byId('hangup-btn').addEventListener('click', onHangup);
  byId('hold-btn').addEventListener('click', () => selectedId && act('/call/hold', { callId: selectedId }));
  byId('unhold-btn').addEventListener('click', () => selectedId && act('/call/unhold', { callId: selectedId }));
  el.keypad.addEventListener('click', onKeypadClick);
  el.keypad.addEventListener('keydown', onKeypadKey);
}
