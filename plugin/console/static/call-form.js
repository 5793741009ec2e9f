// @ts-check
/**
 * The new-call form: checked with the API's own validator before it is sent, pre-filled from the URL
 * query (shareable links) or else from the last call placed here (never its password), with a hint of
 * where the call will publish.
 */
import { validateStartup } from './lib/calls/validate.js';
import { api, clearFieldErrors, notice, onFieldInput, showError } from './api.js';
import { select } from './call-panel.js';
import { byId, el, setText } from './dom.js';
import { config } from './state.js';

const CALL_FIELDS = ['callee', 'sipDomain', 'sipPort', 'sipLogin', 'sipAuthenticationName', 'sipPassword',
  'sipOutboundProxy', 'sipRegisterRequired', 'visibleName', 'rtmpUrl', 'rtmpStream', 'toStream',
  'rtmpTransponderFullUrl', 'hasAudio', 'hasVideo'];
const LAST_CALL_KEY = 'sip-as-rtmp-console:last-call';
const MORE_OPTIONS_KEY = 'sip-as-rtmp-console:more-options';

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
export function prefillCallForm() {
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
export function updatePublishHint() {
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

/** Submit, the per-field messages, the publish hint, and the "more options" fold remembered. */
export function wireCallForm() {
  el.callForm.addEventListener('submit', onCallSubmit);
  el.callForm.addEventListener('input', onFieldInput);
  el.callForm.addEventListener('input', updatePublishHint);
  el.callForm.addEventListener('change', updatePublishHint);
  // Open by default (every field reachable at once); an operator who folds it keeps it folded.
  const more = /** @type {HTMLDetailsElement} */ (byId('more-options'));
  if (localStorage.getItem(MORE_OPTIONS_KEY) === 'closed') more.open = false;
  more.addEventListener('toggle', () => localStorage.setItem(MORE_OPTIONS_KEY, more.open ? 'open' : 'closed'));
}
