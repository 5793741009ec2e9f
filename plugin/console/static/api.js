// @ts-check
/**
 * The REST API from the page (POSTs with the token header) and what the operator is told: the #notice
 * line, the messages under form fields, the live feed's state and the request for a token.
 */
import { ValidationError } from './lib/calls/validate.js';
import { el, setText } from './dom.js';
import { config, token } from './state.js';

// ---------------------------------------------------------------------------------- notices, errors

/** An API answer other than 2xx, with the server's `error` text and, for 400s, the field at fault. */
export class ApiError extends Error {
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
export function notice(/** @type {string} */ text, kind = 'error') {
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

export function clearFieldErrors(/** @type {ParentNode} */ root) {
  for (const box of root.querySelectorAll('.field-error')) box.textContent = '';
  for (const input of root.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/** A validator's or the server's complaint: next to its field when `root` has one, else in #notice. */
export function showError(/** @type {unknown} */ err, /** @type {HTMLFormElement|null} */ root = null) {
  const e = err instanceof Error ? err : new Error(String(err));
  const field = e instanceof ValidationError || e instanceof ApiError ? e.field : undefined;
  if (e instanceof ApiError && e.status === 401) askForToken('The API token is missing or wrong.');
  if (root && field && showFieldError(root, field, e.message)) return;
  notice(e.message);
}

/** Typing in a field clears its stale message. */
export function onFieldInput(/** @type {Event} */ e) {
  const input = e.target;
  const form = e.currentTarget;
  if (!(input instanceof HTMLInputElement) || !(form instanceof HTMLFormElement) || !input.name) return;
  const box = form.querySelector(`.field-error[data-field="${CSS.escape(input.name)}"]`);
  if (box) box.textContent = '';
  input.removeAttribute('aria-invalid');
}

// ------------------------------------------------------------------------------ token, feed state

export function setFeedState(/** @type {string} */ state) {
  setText(el.feed, `live feed: ${state}`);
  el.feed.dataset.state = state;
}

export function askForToken(/** @type {string} */ why) {
  el.tokenForm.hidden = false;
  el.token.focus();
  setFeedState('waiting for API token');
  if (why) notice(why);
}

// ---------------------------------------------------------------------------------------------- API

/** @param {Record<string, string>} [extra] */
export function authHeaders(extra = {}) {
  return token ? { ...extra, 'X-Api-Token': token } : extra;
}

/**
 * POST {restPrefix}/<method>. Resolves with the parsed JSON answer (null for the empty 200s);
 * rejects with an ApiError carrying the server's `error` and `field`.
 * @param {string} method e.g. "/call/startup"
 * @param {Record<string, unknown>} body
 */
export async function api(method, body) {
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
export async function act(/** @type {string} */ method, /** @type {Record<string, unknown>} */ body, /** @type {HTMLFormElement|null} */ root = null) {
  try {
    await api(method, body);
    return true;
  } catch (err) {
    showError(err, root);
    return false;
  }
}
