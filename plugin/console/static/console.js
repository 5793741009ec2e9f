// @ts-check
/**
 * sip-as-rtmp operator console: places calls, watches them live (SSE feed), previews what a call
 * publishes (HTTP-FLV through mpegts.js), sends DTMF and manages pushes.
 *
 * Rendering rule: rows and inputs are created once per call / push id and then only their text and
 * classes change, so the once-a-second stats never replace an element a user is clicking or typing in.
 *
 * This is the entry: it loads config.json and wires the page's parts together:
 *  - state.js       the config, token, calls, stats and selected call (and the types they have);
 *  - dom.js         the page's elements, text-only updates, number and time formats;
 *  - api.js         POSTs to the REST API, the #notice line, field errors, the token prompt;
 *  - feed.js        the live feed (fetch-based SSE with the token header) and the token form;
 *  - calls-table.js the calls list;
 *  - call-form.js   the new-call form (the API's validators, remembered values, URL pre-fill);
 *  - call-panel.js  the selected call: details, timeline, stats, DTMF, hold, unhold, hang up;
 *  - pushes.js      the selected call's pushes: mute, sound, remove, add;
 *  - recordings.js  the selected call's recordings: record, stop, download;
 *  - preview.js     the live preview player (MSE + HTTP-FLV).
 */
import { askForToken, notice } from './api.js';
import { prefillCallForm, updatePublishHint, wireCallForm } from './call-form.js';
import { buildStats, renderSelected, select, wireCallPanel } from './call-panel.js';
import { tickAges, wireCallsTable } from './calls-table.js';
import { el } from './dom.js';
import { startFeed, wireTokenForm } from './feed.js';
import { wirePreview } from './preview.js';
import { wirePushes } from './pushes.js';
import { wireRecordings } from './recordings.js';
import { config, setConfig, token } from './state.js';

async function loadConfig() {
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    setConfig(await res.json());
  } catch (err) {
    notice(`Could not load config.json (${err instanceof Error ? err.message : err}); using defaults.`);
  }
}

function wireUi() {
  wireTokenForm();
  wireCallForm();
  wireCallsTable(select);
  wireCallPanel();
  wirePushes();
  wireRecordings();
  wirePreview();
  el.notice.addEventListener('click', () => notice(''));
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
