// @ts-check
/**
 * The selected call's recordings: status, size, duration, a download of each finished one (fetched with
 * the API token, saved from a blob: a plain link could not carry the token), and record / stop buttons.
 */
import { act, authHeaders, notice, showError } from './api.js';
import { el, setText } from './dom.js';
import { selectedCall } from './state.js';

/** @typedef {import('./state.js').ConsoleCall} ConsoleCall @typedef {import('./state.js').RecordingView} RecordingView */

export function renderRecordings(/** @type {ConsoleCall|undefined} */ call) {
  const list = call?.recordings ?? [];
  const body = el.recordings.tBodies[0];
  body.replaceChildren(...list.map(row));
  el.recordingsEmpty.hidden = list.length > 0;
  const recording = list.some((r) => r.source === 'call' && r.status === 'RECORDING');
  el.recordCall.hidden = !call || !!call.endedAt || recording;
}

function row(/** @type {RecordingView} */ r) {
  const tr = document.createElement('tr');
  const cell = (/** @type {string} */ text, cls = '') => {
    const td = document.createElement('td');
    if (cls) td.className = cls;
    setText(td, text);
    tr.append(td);
    return td;
  };
  cell(r.fileName, 'url');
  cell(r.source === 'call' ? 'the call' : 'an output');
  const status = cell('');
  const badge = document.createElement('span');
  badge.className = `badge recording-status-${r.status}`;
  badge.textContent = r.status;
  badge.title = r.reason ?? '';
  status.append(badge);
  cell(`${(r.durationMs / 1000).toFixed(1)} s`, 'num');
  cell(`${(r.bytes / 1e6).toFixed(2)} MB`, 'num');
  const actions = cell('');
  const button = (/** @type {string} */ label, /** @type {() => void} */ onClick) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', onClick);
    actions.append(b);
  };
  if (r.status === 'RECORDING') button('Stop', () => void act('/recorder/terminate', { recordingId: r.recordingId }));
  const url = r.downloadUrl;
  if (url) button('Download', () => void download(url, r.fileName));
  return tr;
}

async function download(/** @type {string} */ url, /** @type {string} */ name) {
  try {
    const res = await fetch(url, { headers: authHeaders() });
    if (!res.ok) throw new Error(`${name}: ${res.status} ${res.statusText}`);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(await res.blob());
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
  } catch (err) {
    showError(err);
  }
}

export function wireRecordings() {
  el.recordCall.addEventListener('click', async () => {
    const call = selectedCall();
    if (call && (await act('/recorder/startup', { mediaSessionId: call.callId }))) notice('Recording started', 'info');
  });
}
