// @ts-check
/**
 * sip-as-rtmp operator console: places calls, watches them live (SSE feed), previews what a call
 * publishes (HTTP-FLV through mpegts.js), sends DTMF and manages pushes.
 *
 * Rendering rule: rows and inputs are created once per call / push id and then only their text and
 * classes change, so the once-a-second stats never replace an element a user is clicking or typing in.
 */
import { validateStartup, validatePushStartup, validateSendDtmf, validateSoundOn, ValidationError } from './lib/calls/validate.js';
import { CALL_STATUSES, FINAL_CALL_STATUSES, FINAL_PUSH_STATES } from './lib/calls/states.js';

/**
 * @typedef {{ at: string, type: string, detail?: string }} CallEvent
 * @typedef {{ mediaSessionId: string, callId: string, streamName: string, rtmpUrl: string, status: string,
 *   reason: string|null, muted: boolean, soundEnabled: boolean, soundFile: string|null, primary: boolean,
 *   createdAt: string, stats?: { reconnects?: number } }} PushView
 * @typedef {{ callId: string, status: string, sipStatus: number|null, caller: string, callee: string,
 *   rtmpUrl: string, rtmpStream: string, streamName: string, rtmpStreamStatus: string, hasAudio: boolean,
 *   hasVideo: boolean, incoming: boolean, visibleName: string, info: string|null, reason: string|null,
 *   createdAt: string, establishedAt: string|null, endedAt: string|null, events: CallEvent[],
 *   pushes: PushView[], previewUrl: string|null }} ConsoleCall
 * @typedef {{ received: number, lost: number, lossPct: number, rejected: number, jitterMs: number }} TrackStats
 * @typedef {{ bitrateKbps: number, audioKbps: number, videoKbps: number, audio: TrackStats|null,
 *   video: TrackStats|null, jitterBufferMs: number, avOffsetMs: number|null, keyframeIntervalMs: number|null,
 *   latencyMs: { p50: number, p99: number }|null,
 *   pushes: { mediaSessionId: string, status: string, reconnects: number }[] }} CallStats
 * @typedef {{ restPrefix: string, tokenRequired: boolean, streamPrefix: string }} ConsoleConfig
 */

// The states come from the server's own declarations (calls/states.ts, served compiled): string sets, as the
// page reads them from JSON.
/** @type {ReadonlySet<string>} */
const ENDED = new Set(FINAL_CALL_STATUSES);
/** @type {ReadonlySet<string>} */
const STATUSES = new Set(CALL_STATUSES);
/** @type {ReadonlySet<string>} */
const ENDED_PUSH = new Set(FINAL_PUSH_STATES);
const CALL_FIELDS = ['callee', 'sipDomain', 'sipPort', 'sipLogin', 'sipAuthenticationName', 'sipPassword',
  'sipOutboundProxy', 'sipRegisterRequired', 'visibleName', 'rtmpUrl', 'rtmpStream', 'toStream',
  'rtmpTransponderFullUrl', 'hasAudio', 'hasVideo'];
const LAST_CALL_KEY = 'sip-as-rtmp-console:last-call';
const TOKEN_KEY = 'sip-as-rtmp-console:api-token';
const MORE_OPTIONS_KEY = 'sip-as-rtmp-console:more-options';
/** No bytes at all (not even heartbeats) for this long: the connection is half-dead, reconnect. */
const FEED_STALL_MS = 65_000;
const DASH = '—';

/** @type {ConsoleConfig} */
let config = { restPrefix: '/rest-api', tokenRequired: false, streamPrefix: 'rtmp_' };
let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
/** @type {Map<string, ConsoleCall>} */
const calls = new Map();
/** @type {Map<string, CallStats>} */
const stats = new Map();
/** @type {string|null} */
let selectedId = null;

// ---------------------------------------------------------------------------------------------- DOM

/** @param {string} id */
const byId = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const el = {
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
};

/** Only touch the DOM when the text changed: keeps selections and hovering stable. */
function setText(/** @type {Element} */ node, /** @type {string} */ text) {
  if (node.textContent !== text) node.textContent = text;
}

// ------------------------------------------------------------------------------------------ formats

/** @param {unknown} v @returns {v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
/** kb/s and %: one decimal. @param {unknown} v */
const kbps = (v) => (isNum(v) ? v.toFixed(1) : DASH);
const pct = kbps;
/** Milliseconds: integers. @param {unknown} v */
const ms = (v) => (isNum(v) ? String(Math.round(v)) : DASH);
/** @param {string} text @param {string} u */
const unit = (text, u) => (text === DASH ? DASH : `${text} ${u}`);
/** The worse of two values (audio, video), either of which may be missing. @param {unknown[]} values */
const worst = (...values) => {
  const nums = values.filter(isNum);
  return nums.length ? Math.max(...nums) : null;
};

/** HH:MM:SS.mmm, local time. */
function clock(/** @type {string} */ iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return DASH;
  const p = (/** @type {number} */ n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** How long the call has existed (until it ended). */
function age(/** @type {ConsoleCall} */ call) {
  const from = Date.parse(call.createdAt);
  const to = call.endedAt ? Date.parse(call.endedAt) : Date.now();
  if (!isNum(from) || !isNum(to)) return DASH;
  const s = Math.max(0, Math.floor((to - from) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`;
}

/** @param {TrackStats|null|undefined} t */
function track(t) {
  if (!t) return DASH;
  return `received ${t.received}, lost ${t.lost} (${pct(t.lossPct)} %), rejected ${t.rejected}, jitter ${ms(t.jitterMs)} ms`;
}

const isEnded = (/** @type {ConsoleCall|undefined} */ call) => !!call && ENDED.has(call.status);
const selectedCall = () => (selectedId ? calls.get(selectedId) : undefined);

// ---------------------------------------------------------------------------------- notices, errors

/** An API answer other than 2xx, with the server's `error` text and, for 400s, the field at fault. */
class ApiError extends Error {
  /** @param {number} status @param {string} message @param {string} [field] */
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

/** @type {ReturnType<typeof setTimeout>|undefined} */
let noticeTimer;
/** Errors stay until the next action; confirmations fade after a few seconds. */
function notice(/** @type {string} */ text, kind = 'error') {
  clearTimeout(noticeTimer);
  el.notice.textContent = text;
  el.notice.dataset.kind = kind;
  el.notice.hidden = !text;
  if (text && kind !== 'error') noticeTimer = setTimeout(() => notice(''), 4000);
}

/** Puts a message under the named field of `form`; false if the form has no such field. */
function showFieldError(/** @type {HTMLFormElement} */ form, /** @type {string} */ field, /** @type {string} */ message) {
  const box = form.querySelector(`.field-error[data-field="${CSS.escape(field)}"]`);
  if (!box) return false;
  box.textContent = message;
  const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
  // A field inside the collapsed "more options" would be invisible otherwise.
  const details = box.closest('details');
  if (details) details.open = true;
  if (input instanceof HTMLElement) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
  return true;
}

function clearFieldErrors(/** @type {ParentNode} */ root) {
  for (const box of root.querySelectorAll('.field-error')) box.textContent = '';
  for (const input of root.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/** A validator's or the server's complaint: next to its field when `root` has one, else in #notice. */
function showError(/** @type {unknown} */ err, /** @type {HTMLFormElement|null} */ root = null) {
  const e = err instanceof Error ? err : new Error(String(err));
  const field = e instanceof ValidationError || e instanceof ApiError ? e.field : undefined;
  if (e instanceof ApiError && e.status === 401) askForToken('The API token is missing or wrong.');
  if (root && field && showFieldError(root, field, e.message)) return;
  notice(e.message);
}

// ---------------------------------------------------------------------------------------------- API

/** @param {Record<string, string>} [extra] */
function authHeaders(extra = {}) {
  return token ? { ...extra, 'X-Api-Token': token } : extra;
}

/**
 * POST {restPrefix}/<method>. Resolves with the parsed JSON answer (null for the empty 200s);
 * rejects with an ApiError carrying the server's `error` and `field`.
 * @param {string} method e.g. "/call/startup"
 * @param {Record<string, unknown>} body
 */
async function api(method, body) {
  if (config.tokenRequired && !token) throw new ApiError(401, 'Set the API token first.');
  let res;
  try {
    res = await fetch(config.restPrefix + method, {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `${method}: network error (${err instanceof Error ? err.message : err})`);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // A proxy's HTML error page: fall back to the status line below.
  }
  if (!res.ok) {
    const error = typeof data?.error === 'string' ? data.error : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, error, typeof data?.field === 'string' ? data.field : undefined);
  }
  return data;
}

/** Fire an action; its failure goes to #notice (or a field of `root`). Resolves true on success. */
async function act(/** @type {string} */ method, /** @type {Record<string, unknown>} */ body, /** @type {HTMLFormElement|null} */ root = null) {
  try {
    await api(method, body);
    return true;
  } catch (err) {
    showError(err, root);
    return false;
  }
}

// -------------------------------------------------------------------------------------------- token

function askForToken(/** @type {string} */ why) {
  el.tokenForm.hidden = false;
  el.token.focus();
  setFeedState('waiting for API token');
  if (why) notice(why);
}

function onTokenSubmit(/** @type {SubmitEvent} */ e) {
  e.preventDefault();
  const value = el.token.value.trim();
  if (!value) return;
  token = value;
  sessionStorage.setItem(TOKEN_KEY, token);
  el.token.value = '';
  el.token.placeholder = 'set';
  notice('');
  startFeed();
}

// --------------------------------------------------------------------------------------- live feed

function setFeedState(/** @type {string} */ state) {
  setText(el.feed, `live feed: ${state}`);
  el.feed.dataset.state = state;
}

/**
 * Minimal text/event-stream parser: feed it decoded text, it calls onEvent(name, data) per event.
 * Only `event` and `data` matter here; comments (heartbeats) and `id`/`retry` are skipped.
 * @param {(name: string, data: string) => void} onEvent
 */
function sseParser(onEvent) {
  let buf = '';
  let name = '';
  /** @type {string[]} */
  let data = [];
  return (/** @type {string} */ chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length) onEvent(name || 'message', data.join('\n'));
        name = '';
        data = [];
      } else if (!line.startsWith(':')) {
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') name = value;
        else if (field === 'data') data.push(value);
      }
    }
  };
}

/** Reads the event stream until it ends, errs, or stalls. */
async function readFeed(/** @type {ReadableStream<Uint8Array>} */ body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parse = sseParser(onFeedEvent);
  /** @type {ReturnType<typeof setTimeout>|undefined} */
  let stall;
  const arm = () => {
    clearTimeout(stall);
    stall = setTimeout(() => void reader.cancel(), FEED_STALL_MS);
  };
  try {
    for (arm(); ; arm()) {
      const { value, done } = await reader.read();
      if (done) return;
      parse(decoder.decode(value, { stream: true }));
    }
  } finally {
    clearTimeout(stall);
  }
}

let feedGeneration = 0;
/** @type {AbortController|null} */
let feedAbort = null;

/** (Re)starts the feed; a running loop notices the new generation and quits. */
function startFeed() {
  feedGeneration++;
  feedAbort?.abort();
  void feedLoop(feedGeneration);
}

async function feedLoop(/** @type {number} */ generation) {
  let attempt = 0;
  while (generation === feedGeneration) {
    setFeedState(attempt ? 'reconnecting' : 'connecting');
    const ctrl = new AbortController();
    feedAbort = ctrl;
    try {
      const res = await fetch(`${config.restPrefix}/events`, {
        headers: authHeaders({ Accept: 'text/event-stream' }), cache: 'no-store', signal: ctrl.signal,
      });
      if (res.status === 401) {
        askForToken('The API token was refused: the live feed waits for a valid one.');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      setFeedState('connected');
      attempt = 0;
      await readFeed(res.body);
    } catch {
      // Network error, server restart or abort: retried below (or this loop was replaced).
    }
    if (generation !== feedGeneration) return;
    attempt++;
    setFeedState('reconnecting');
    await new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** (attempt - 1), 10_000)));
  }
}

function onFeedEvent(/** @type {string} */ name, /** @type {string} */ data) {
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    return; // Not ours to interpret; the next event carries full state anyway.
  }
  if (name === 'snapshot') replaceAll(Array.isArray(msg.calls) ? msg.calls : []);
  else if (name === 'call') upsertCall(msg);
  else if (name === 'stats') applyStats(msg.calls ?? {});
  else if (name === 'removed') dropCall(msg.callId);
}

// ------------------------------------------------------------------------------------------- state

function replaceAll(/** @type {ConsoleCall[]} */ list) {
  calls.clear();
  for (const call of list) calls.set(call.callId, call);
  for (const id of [...rows.keys()]) if (!calls.has(id)) removeRow(id);
  for (const id of [...stats.keys()]) if (!calls.has(id)) stats.delete(id);
  for (const call of calls.values()) renderCallRow(call);
  orderRows();
  if (selectedId && !calls.has(selectedId)) select(null);
  else renderSelected();
}

function upsertCall(/** @type {ConsoleCall} */ call) {
  if (!call?.callId) return;
  calls.set(call.callId, call);
  renderCallRow(call);
  orderRows();
  if (call.callId === selectedId) renderSelected();
}

function dropCall(/** @type {string} */ callId) {
  calls.delete(callId);
  stats.delete(callId);
  removeRow(callId);
  el.callsEmpty.hidden = calls.size > 0;
  if (callId === selectedId) select(null);
}

function applyStats(/** @type {Record<string, CallStats>} */ byCall) {
  for (const [id, s] of Object.entries(byCall)) {
    stats.set(id, s);
    const call = calls.get(id);
    if (call) renderCallRow(call);
  }
  if (selectedId && byCall[selectedId]) {
    renderStats();
    renderPushes(selectedCall());
  }
}

/** Reflects a successful push action at once; the next `call` event confirms it. */
function patchPush(/** @type {string} */ id, /** @type {Partial<PushView>} */ change) {
  const call = selectedCall();
  const push = call?.pushes?.find((p) => p.mediaSessionId === id);
  if (!push) return;
  Object.assign(push, change);
  renderPushes(call);
}

function select(/** @type {string|null} */ callId) {
  if (selectedId !== callId) {
    selectedId = callId;
    for (const [id, tr] of rows) tr.classList.toggle('selected', id === callId);
    clearFieldErrors(el.pushForm);
    el.pushStream.value = '';
    pushStreamFor = null;
  }
  renderSelected();
}

// ------------------------------------------------------------------------------------- calls table

/** @type {Map<string, HTMLTableRowElement>} */
const rows = new Map();
const COLUMNS = ['callee', 'status', 'sipStatus', 'stream', 'kbps', 'loss', 'jitter', 'avOffset', 'keyframe', 'pushes', 'age'];
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

function removeRow(/** @type {string} */ callId) {
  rows.get(callId)?.remove();
  rows.delete(callId);
}

/** Publishing / total pushes, and the reconnects summed (the live stats know them best). */
function pushSummary(/** @type {ConsoleCall} */ call, /** @type {CallStats|undefined} */ s) {
  const pushes = call.pushes ?? [];
  const publishing = pushes.filter((p) => p.status === 'PUBLISHING').length;
  const reconnects = pushes.reduce((sum, p) => sum + reconnectsOf(p, s), 0);
  return `${publishing}/${pushes.length}${reconnects ? ` ↻${reconnects}` : ''}`;
}

function reconnectsOf(/** @type {PushView} */ push, /** @type {CallStats|undefined} */ s) {
  const live = s?.pushes?.find((p) => p.mediaSessionId === push.mediaSessionId);
  return live?.reconnects ?? push.stats?.reconnects ?? 0;
}

function renderCallRow(/** @type {ConsoleCall} */ call) {
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
  setText(cell(tr, 'pushes'), pushSummary(call, s));
  setText(cell(tr, 'age'), age(call));
}

/** Newest first. Rows are moved only when out of place, never rebuilt. */
function orderRows() {
  const order = [...calls.values()].sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
  const body = el.callsBody;
  order.forEach((call, i) => {
    const tr = rows.get(call.callId);
    if (tr && body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
  });
  el.callsEmpty.hidden = calls.size > 0;
}

function tickAges() {
  for (const call of calls.values()) {
    const tr = rows.get(call.callId);
    if (tr) setText(cell(tr, 'age'), age(call));
  }
}

// ---------------------------------------------------------------------------------- selected call

/** The call whose streamName was put in the push form (only once, so an edit is not overwritten). */
/** @type {string|null} */
let pushStreamFor = null;

function renderSelected() {
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
    renderStats();
    if (call && pushStreamFor !== call.callId && call.streamName) {
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
  ['latency', 'Latency', (s) => (s.latencyMs ? `p50 ${ms(s.latencyMs.p50)} ms, p99 ${ms(s.latencyMs.p99)} ms` : DASH)],
];

function buildStats() {
  for (const [key, label] of STAT_ROWS) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.dataset.stat = key;
    dd.textContent = DASH;
    el.stats.append(dt, dd);
  }
}

function renderStats() {
  const s = selectedId ? stats.get(selectedId) : undefined;
  for (const [key, , format] of STAT_ROWS) {
    const dd = el.stats.querySelector(`dd[data-stat="${key}"]`);
    if (dd) setText(dd, s ? format(s) : DASH);
  }
}

// ------------------------------------------------------------------------------------------ pushes

/** @type {Map<string, HTMLTableRowElement>} */
const pushRows = new Map();

function renderPushes(/** @type {ConsoleCall|undefined} */ call) {
  const pushes = call?.pushes ?? [];
  const s = selectedId ? stats.get(selectedId) : undefined;
  const body = el.pushes.tBodies[0];
  const seen = new Set();
  pushes.forEach((push, i) => {
    seen.add(push.mediaSessionId);
    const tr = pushRowFor(push.mediaSessionId);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
    const col = (/** @type {string} */ name) => /** @type {HTMLElement} */ (tr.querySelector(`[data-col="${name}"]`));
    setText(col('rtmpUrl'), push.rtmpUrl);
    const badge = /** @type {HTMLElement} */ (col('status').firstElementChild);
    badge.className = `badge push-status-${push.status}`;
    setText(badge, push.status);
    badge.title = push.reason ?? '';
    setText(col('primary'), push.primary ? '★ primary' : '');
    setText(col('reconnects'), String(reconnectsOf(push, s)));
    setText(col('muted'), push.muted ? 'muted' : 'on');
    setText(col('sound'), push.soundEnabled ? `playing ${push.soundFile ?? ''}` : 'off');
    setText(/** @type {HTMLElement} */ (tr.querySelector('.push-mute')), push.muted ? 'Unmute' : 'Mute');
    const file = /** @type {HTMLInputElement} */ (tr.querySelector('.push-sound-file'));
    if (!file.value && push.soundFile) file.value = push.soundFile;
    tr.classList.toggle('ended', ENDED_PUSH.has(push.status));
  });
  for (const [id, tr] of pushRows) {
    if (!seen.has(id)) {
      tr.remove();
      pushRows.delete(id);
    }
  }
  el.pushesEmpty.hidden = pushes.length > 0;
}

function pushRowFor(/** @type {string} */ id) {
  let tr = pushRows.get(id);
  if (!tr) {
    const frag = /** @type {DocumentFragment} */ (el.pushRow.content.cloneNode(true));
    tr = /** @type {HTMLTableRowElement} */ (frag.querySelector('tr'));
    tr.dataset.pushId = id;
    pushRows.set(id, tr);
  }
  return tr;
}

/** One listener for every push row's buttons: rows come and go, the listener stays. */
async function onPushClick(/** @type {MouseEvent} */ e) {
  const btn = e.target instanceof Element ? e.target.closest('button') : null;
  const tr = btn?.closest('tr[data-push-id]');
  if (!btn || !(tr instanceof HTMLTableRowElement)) return;
  const id = tr.dataset.pushId ?? '';
  const push = selectedCall()?.pushes?.find((p) => p.mediaSessionId === id);
  const errorBox = /** @type {HTMLElement} */ (tr.querySelector('.field-error'));
  errorBox.textContent = '';
  notice('');
  if (btn.matches('.push-mute')) {
    const mute = !push?.muted;
    if (await act(mute ? '/push/mute' : '/push/unmute', { mediaSessionId: id })) patchPush(id, { muted: mute });
  } else if (btn.matches('.push-sound-on')) {
    const body = {
      mediaSessionId: id,
      soundFile: /** @type {HTMLInputElement} */ (tr.querySelector('.push-sound-file')).value.trim(),
      loop: /** @type {HTMLInputElement} */ (tr.querySelector('.push-sound-loop')).checked ? 'true' : 'false',
    };
    try {
      validateSoundOn(body);
    } catch (err) {
      return soundError(err, errorBox);
    }
    try {
      await api('/push/sound_on', body);
      patchPush(id, { soundEnabled: true, soundFile: body.soundFile });
    } catch (err) {
      soundError(err, errorBox);
    }
  } else if (btn.matches('.push-sound-off')) {
    if (await act('/push/sound_off', { mediaSessionId: id })) patchPush(id, { soundEnabled: false });
  } else if (btn.matches('.push-remove')) {
    await act('/push/terminate', { mediaSessionId: id });
  }
}

/** Sound file complaints go under the row's file input; anything else to #notice. */
function soundError(/** @type {unknown} */ err, /** @type {HTMLElement} */ box) {
  const field = err instanceof ValidationError || err instanceof ApiError ? err.field : undefined;
  if (field === 'soundFile' && err instanceof Error) box.textContent = err.message;
  else showError(err);
}

async function onPushSubmit(/** @type {SubmitEvent} */ e) {
  e.preventDefault();
  const form = el.pushForm;
  clearFieldErrors(form);
  notice('');
  const data = new FormData(form);
  const body = { streamName: String(data.get('streamName') ?? '').trim(), rtmpUrl: String(data.get('rtmpUrl') ?? '').trim() };
  try {
    validatePushStartup(body);
  } catch (err) {
    return showError(err, form);
  }
  try {
    /** @type {PushView|null} */
    const push = await api('/push/startup', body);
    // Show the new push now rather than when the feed reports it.
    const call = selectedCall();
    if (push?.mediaSessionId && call && push.callId === call.callId && !call.pushes.some((p) => p.mediaSessionId === push.mediaSessionId)) {
      call.pushes = [...call.pushes, push];
      renderPushes(call);
      renderCallRow(call);
    }
    /** @type {HTMLInputElement} */ (byId('push-rtmpUrl')).value = '';
    notice('Push added.', 'info');
  } catch (err) {
    showError(err, form);
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

// ----------------------------------------------------------------------------------------- preview

const mpegts = /** @type {any} */ (window).mpegts;
const previewSupported = !!mpegts?.getFeatureList?.().mseLivePlayback;
/** @type {{ player: any, url: string|null }} */
const preview = { player: null, url: null };

/** Starts, keeps or stops the player to match the selected call. */
function syncPreview() {
  const call = selectedCall();
  /** @type {string|null} */
  let url = null;
  let message = '';
  if (!mpegts) message = 'Preview unavailable: vendor/mpegts.js did not load.';
  else if (!previewSupported) message = 'This browser cannot play the live preview (no Media Source Extensions).';
  else if (!call) message = selectedId ? 'waiting for the call…' : '';
  else if (isEnded(call)) message = `call ended (${call.status})`;
  else if (!call.previewUrl) message = 'waiting for media';
  else url = new URL(call.previewUrl, location.origin).href;
  if (preview.player && preview.url !== url) stopPlayer();
  if (call && url && !preview.player) startPlayer(call, url);
  setText(el.previewMsg, message);
  el.previewMsg.hidden = !message;
}

function startPlayer(/** @type {ConsoleCall} */ call, /** @type {string} */ url) {
  setText(el.previewError, '');
  const player = mpegts.createPlayer(
    { type: 'flv', isLive: true, url, hasAudio: call.hasAudio, hasVideo: call.hasVideo },
    { enableStashBuffer: false, liveBufferLatencyChasing: true, headers: token ? { 'X-Api-Token': token } : undefined },
  );
  preview.player = player;
  preview.url = url;
  player.on(mpegts.Events.ERROR, (/** @type {string} */ type, /** @type {string} */ detail, /** @type {any} */ info) => {
    if (preview.player !== player) return;
    const why = info?.msg ?? (info?.code ? `HTTP ${info.code}` : '');
    setText(el.previewError, `preview error: ${type} ${detail}${why ? `: ${why}` : ''}`);
  });
  player.on(mpegts.Events.MEDIA_INFO, (/** @type {any} */ info) => {
    if (preview.player !== player) return;
    const parts = [info.audioCodec, info.videoCodec, info.width && info.height ? `${info.width}×${info.height}` : ''];
    setText(el.previewInfo, parts.filter(Boolean).join(' · '));
  });
  player.attachMediaElement(el.video);
  player.load();
  // Muted autoplay is allowed; a rejection (e.g. the player destroyed meanwhile) must not go unhandled.
  Promise.resolve(player.play()).catch((/** @type {any} */ err) => {
    if (preview.player === player && err?.name !== 'AbortError') setText(el.previewError, `preview: ${err?.message ?? err}`);
  });
}

function stopPlayer() {
  const player = preview.player;
  preview.player = null;
  preview.url = null;
  try {
    player?.destroy();
  } catch {
    // Already torn down by its own error: nothing left to release.
  }
  setText(el.previewTime, '0.0');
  setText(el.previewInfo, '');
  setText(el.previewError, '');
}

function onSoundToggle() {
  el.video.muted = !el.video.muted;
  setText(el.previewSound, el.video.muted ? 'Sound on' : 'Sound off');
  el.previewSound.setAttribute('aria-pressed', String(!el.video.muted));
}

function onPreviewReload() {
  stopPlayer();
  syncPreview();
}

// --------------------------------------------------------------------------------------- call form

/** @param {string} name */
const formInput = (name) => /** @type {HTMLInputElement} */ (el.callForm.elements.namedItem(name));

/** The form as API strings: checkboxes become "true"/"false", as WCS clients send them. */
function readCallForm() {
  /** @type {Record<string, string>} */
  const values = {};
  for (const name of CALL_FIELDS) {
    const input = formInput(name);
    values[name] = input.type === 'checkbox' ? String(input.checked) : input.value.trim();
  }
  return values;
}

/** A URL query describes the whole form (shareable links); otherwise the last call placed here. */
function prefillCallForm() {
  const query = new URLSearchParams(location.search);
  /** @type {Record<string, unknown>} */
  let source = {};
  if (CALL_FIELDS.some((f) => query.has(f))) {
    for (const f of CALL_FIELDS) if (query.has(f)) source[f] = query.get(f);
  } else {
    try {
      source = JSON.parse(localStorage.getItem(LAST_CALL_KEY) ?? '{}') ?? {};
    } catch {
      source = {};
    }
    delete source.sipPassword;
  }
  for (const name of CALL_FIELDS) {
    if (!(name in source)) continue;
    const input = formInput(name);
    const v = String(source[name] ?? '');
    if (input.type === 'checkbox') input.checked = /^(true|1|on|yes)$/i.test(v);
    else input.value = v;
  }
}

function saveLastCall(/** @type {Record<string, string>} */ values) {
  const { sipPassword, ...rest } = values; // Never keep a password in storage.
  try {
    localStorage.setItem(LAST_CALL_KEY, JSON.stringify(rest));
  } catch {
    // Storage full or disabled: prefilling is a convenience only.
  }
}

/** `console-` + time + randomness: unique enough across operators, readable in logs. */
function newCallId() {
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `console-${Date.now().toString(36)}-${rand}`;
}

/** Where the call will publish, as the server will compose it (WCS's prefix rule). */
function updatePublishHint() {
  const v = readCallForm();
  let hint;
  if (v.rtmpUrl) {
    const full = v.rtmpTransponderFullUrl === 'true';
    hint = full ? `Publishes to ${v.rtmpUrl}` : `Publishes to ${v.rtmpUrl.replace(/\/+$/, '')}/${config.streamPrefix}${v.rtmpStream || '…'}`;
  } else {
    hint = `No RTMP output yet: the call is the named stream "${v.toStream || 'its call id'}" (preview now, add pushes later).`;
  }
  setText(el.hint, hint);
}

async function onCallSubmit(/** @type {SubmitEvent} */ e) {
  e.preventDefault();
  clearFieldErrors(el.callForm);
  notice('');
  const values = readCallForm();
  const callId = newCallId();
  /** @type {Record<string, string>} */
  const body = { callId, ...values };
  // Always a named stream: /push/startup finds a call by it. Without toStream that would be rtmpStream,
  // which the API masks (it is often a platform's stream key), so the page could not name the call.
  if (!body.toStream) body.toStream = callId;
  try {
    validateStartup(body);
  } catch (err) {
    return showError(err, el.callForm);
  }
  saveLastCall(values);
  el.callBtn.disabled = true;
  try {
    await api('/call/startup', body);
    select(callId);
    notice(`Calling ${values.callee}…`, 'info');
  } catch (err) {
    showError(err, el.callForm);
  } finally {
    el.callBtn.disabled = false;
  }
}

async function onHangup() {
  notice('');
  if (!selectedId) return notice('Select a call to hang up.');
  await act('/call/terminate', { callId: selectedId });
}

/** Typing in a field clears its stale message. */
function onFieldInput(/** @type {Event} */ e) {
  const input = e.target;
  const form = e.currentTarget;
  if (!(input instanceof HTMLInputElement) || !(form instanceof HTMLFormElement) || !input.name) return;
  const box = form.querySelector(`.field-error[data-field="${CSS.escape(input.name)}"]`);
  if (box) box.textContent = '';
  input.removeAttribute('aria-invalid');
}

// -------------------------------------------------------------------------------------------- init

async function loadConfig() {
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    config = { ...config, ...(await res.json()) };
  } catch (err) {
    notice(`Could not load config.json (${err instanceof Error ? err.message : err}); using defaults.`);
  }
}

function wireUi() {
  el.tokenForm.addEventListener('submit', onTokenSubmit);
  el.callForm.addEventListener('submit', onCallSubmit);
  el.callForm.addEventListener('input', onFieldInput);
  el.callForm.addEventListener('input', updatePublishHint);
  el.callForm.addEventListener('change', updatePublishHint);
  byId('hangup-btn').addEventListener('click', onHangup);
  /** The call id of the row an event happened in, if any. */
  const rowCallId = (/** @type {Event} */ e) => {
    const tr = e.target instanceof Element ? e.target.closest('tr[data-call-id]') : null;
    return tr instanceof HTMLElement ? tr.dataset.callId : undefined;
  };
  el.callsBody.addEventListener('click', (e) => {
    const id = rowCallId(e);
    if (id) select(id);
  });
  el.callsBody.addEventListener('keydown', (e) => {
    const id = rowCallId(e);
    if ((e.key === 'Enter' || e.key === ' ') && id) {
      e.preventDefault();
      select(id);
    }
  });
  byId('hold-btn').addEventListener('click', () => selectedId && act('/call/hold', { callId: selectedId }));
  byId('unhold-btn').addEventListener('click', () => selectedId && act('/call/unhold', { callId: selectedId }));
  el.keypad.addEventListener('click', onKeypadClick);
  el.keypad.addEventListener('keydown', onKeypadKey);
  el.pushes.addEventListener('click', onPushClick);
  el.pushForm.addEventListener('submit', onPushSubmit);
  el.pushForm.addEventListener('input', onFieldInput);
  el.previewSound.addEventListener('click', onSoundToggle);
  byId('preview-reload').addEventListener('click', onPreviewReload);
  el.video.addEventListener('timeupdate', () => setText(el.previewTime, el.video.currentTime.toFixed(1)));
  el.notice.addEventListener('click', () => notice(''));
  // Open by default (every field reachable at once); an operator who folds it keeps it folded.
  const more = /** @type {HTMLDetailsElement} */ (byId('more-options'));
  if (localStorage.getItem(MORE_OPTIONS_KEY) === 'closed') more.open = false;
  more.addEventListener('toggle', () => localStorage.setItem(MORE_OPTIONS_KEY, more.open ? 'open' : 'closed'));
}

async function init() {
  wireUi();
  buildStats();
  prefillCallForm();
  await loadConfig();
  updatePublishHint();
  renderSelected();
  setInterval(tickAges, 1000);
  if (config.tokenRequired) el.tokenForm.hidden = false;
  if (config.tokenRequired && !token) return askForToken('');
  startFeed();
}

void init();
