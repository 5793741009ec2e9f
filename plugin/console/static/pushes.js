// @ts-check
/**
 * The selected call's pushes: their table (rows from the #push-row template, kept per push id so a sound
 * file being typed survives the stats), each row's mute / sound / remove buttons, and the add-push form.
 */
import { validatePushStartup, validateSoundOn, ValidationError } from './lib/calls/validate.js';
import { ApiError, act, api, clearFieldErrors, notice, onFieldInput, showError } from './api.js';
import { reconnectsOf, renderCallRow } from './calls-table.js';
import { byId, el, limitNote, setText } from './dom.js';
import { ENDED_PUSH, selectedCall, selectedId, stats } from './state.js';

/** @typedef {import('./state.js').ConsoleCall} ConsoleCall @typedef {import('./state.js').PushView} PushView */

/** @type {Map<string, HTMLTableRowElement>} */
const pushRows = new Map();

export function renderPushes(/** @type {ConsoleCall|undefined} */ call) {
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
    col('rtmpUrl').title = push.platform && push.sessionLimitSec ? `${push.platform} session ${limitNote(push.sessionLimitSec, push.sessionEndsAt)}` : '';
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

/** Reflects a successful push action at once; the next `call` event confirms it. */
function patchPush(/** @type {string} */ id, /** @type {Partial<PushView>} */ change) {
  const call = selectedCall();
  const push = call?.pushes?.find((p) => p.mediaSessionId === id);
  if (!push) return;
  Object.assign(push, change);
  renderPushes(call);
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

/** The push table's buttons and the add-push form. */
export function wirePushes() {
  el.pushes.addEventListener('click', onPushClick);
  el.pushForm.addEventListener('submit', onPushSubmit);
  el.pushForm.addEventListener('input', onFieldInput);
}
