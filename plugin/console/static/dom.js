// @ts-check
/**
 * The page's elements (looked up once: modules run after the document is parsed), the text-only update
 * every render goes through, and how numbers and times are shown.
 */

/** @typedef {import('./state.js').ConsoleCall} ConsoleCall @typedef {import('./state.js').TrackStats} TrackStats */

export const DASH = '—';

// ---------------------------------------------------------------------------------------------- DOM

/** @param {string} id */
export const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
export const el = {
  feed: byId('feed-state'), notice: byId('notice'),
  tokenForm: /** @type {HTMLFormElement} */ (byId('token-form')), token: /** @type {HTMLInputElement} */ (byId('api-token')),
  callForm: /** @type {HTMLFormElement} */ (byId('call-form')), callBtn: /** @type {HTMLButtonElement} */ (byId('call-btn')),
  hint: byId('publish-hint'),
  callsBody: /** @type {HTMLTableElement} */ (byId('calls')).tBodies[0], callsEmpty: byId('calls-empty'),
  noSelection: byId('no-selection'), panel: byId('call-panel'), callId: byId('call-id'),
  details: byId('call-details'), status: byId('call-status'), timeline: byId('timeline'),
  video: /** @type {HTMLVideoElement} */ (byId('preview')), previewMsg: byId('preview-msg'),
  previewTime: byId('preview-time'), previewInfo: byId('preview-info'), previewError: byId('preview-error'),
  previewSound: byId('preview-sound'),
  keypad: byId('keypad'), dtmfType: /** @type {HTMLSelectElement} */ (byId('dtmf-type')),
  stats: byId('stats'),
  pushes: /** @type {HTMLTableElement} */ (byId('pushes')), pushesEmpty: byId('pushes-empty'),
  pushForm: /** @type {HTMLFormElement} */ (byId('push-form')),
  pushStream: /** @type {HTMLInputElement} */ (byId('push-streamName')),
  pushRow: /** @type {HTMLTemplateElement} */ (byId('push-row')),
  recordings: /** @type {HTMLTableElement} */ (byId('recordings')), recordingsEmpty: byId('recordings-empty'),
  recordCall: /** @type {HTMLButtonElement} */ (byId('record-call')),
};

/** Only touch the DOM when the text changed: keeps selections and hovering stable. */
export function setText(/** @type {Element} */ node, /** @type {string} */ text) {
  if (node.textContent !== text) node.textContent = text;
}

// ------------------------------------------------------------------------------------------ formats

/** @param {unknown} v @returns {v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
/** kb/s and %: one decimal. @param {unknown} v */
export const kbps = (v) => (isNum(v) ? v.toFixed(1) : DASH);
export const pct = kbps;
/** Milliseconds: integers. @param {unknown} v */
export const ms = (v) => (isNum(v) ? String(Math.round(v)) : DASH);
/** @param {string} text @param {string} u */
export const unit = (text, u) => (text === DASH ? DASH : `${text} ${u}`);
/** The worse of two values (audio, video), either of which may be missing. @param {unknown[]} values */
export const worst = (...values) => {
  const nums = values.filter(isNum);
  return nums.length ? Math.max(...nums) : null;
};

/** HH:MM:SS.mmm, local time. */
export function clock(/** @type {string} */ iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return DASH;
  const p = (/** @type {number} */ n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** How long the call has existed (until it ended). */
export function age(/** @type {ConsoleCall} */ call) {
  const from = Date.parse(call.createdAt);
  const to = call.endedAt ? Date.parse(call.endedAt) : Date.now();
  if (!isNum(from) || !isNum(to)) return DASH;
  const s = Math.max(0, Math.floor((to - from) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`;
}

/** A time limit for a tooltip: "limit 2 h (ends 14:05:00.000)"; the end is unknown until it starts. */
export function limitNote(/** @type {number} */ limitSec, /** @type {string|null|undefined} */ endsAt) {
  const h = limitSec / 3600;
  const span = Number.isInteger(h) ? `${h} h` : `${Math.round(limitSec / 60)} min`;
  return `limit ${span}${endsAt ? ` (ends ${clock(endsAt)})` : ''}`;
}

/** @param {TrackStats|null|undefined} t */
export function track(t) {
  if (!t) return DASH;
  return `received ${t.received}, lost ${t.lost} (${pct(t.lossPct)} %), rejected ${t.rejected}, jitter ${ms(t.jitterMs)} ms`;
}
