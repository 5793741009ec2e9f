// @ts-check
/**
 * The live feed ({restPrefix}/events): read with fetch rather than EventSource, which cannot send the
 * X-Api-Token header; reconnected with backoff, and when it stalls. Its events replace or update the
 * calls and their stats, and the table and the selected call's panel follow.
 */
import { askForToken, authHeaders, notice, setFeedState } from './api.js';
import { renderSelected, renderStats, select } from './call-panel.js';
import { orderRows, removeRow, renderCallRow, rowIds } from './calls-table.js';
import { el } from './dom.js';
import { renderPushes } from './pushes.js';
import { calls, config, selectedCall, selectedId, setToken, stats } from './state.js';

/** @typedef {import('./state.js').ConsoleCall} ConsoleCall @typedef {import('./state.js').CallStats} CallStats */

/** No bytes at all (not even heartbeats) for this long: the connection is half-dead, reconnect. */
const FEED_STALL_MS = 65_000;

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
export function startFeed() {
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
  for (const id of rowIds()) if (!calls.has(id)) removeRow(id);
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

// -------------------------------------------------------------------------------------------- token

function onTokenSubmit(/** @type {SubmitEvent} */ e) {
  e.preventDefault();
  const value = el.token.value.trim();
  if (!value) return;
  setToken(value);
  el.token.value = '';
  el.token.placeholder = 'set';
  notice('');
  startFeed();
}

/** The token form (shown when the server requires one) restarts the feed with what was typed. */
export function wireTokenForm() {
  el.tokenForm.addEventListener('submit', onTokenSubmit);
}
