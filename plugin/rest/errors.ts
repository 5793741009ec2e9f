/** The one place where the core's errors (calls/errors.ts) become HTTP status codes. */
import { ConflictError, InvalidError, NotFoundError, RateLimitedError, RefusedError, UnavailableError, UndecodableError, UnsupportedError, type CallError } from '../calls/errors.js';

const CODES: [new (...a: never[]) => CallError, number][] = [
  [InvalidError, 400],
  [RefusedError, 403],
  [NotFoundError, 404],
  [ConflictError, 409],
  [UndecodableError, 422],
  [RateLimitedError, 429],
  [UnsupportedError, 501],
  [UnavailableError, 503],
];

/** The HTTP code for a core error; undefined for anything else (an internal error). */
export function httpStatusOf(err: unknown): number | undefined {
  for (const [type, code] of CODES) if (err instanceof type) return code;
  return undefined;
}

/**
 * WCS documents only 404 and 500 for its call controls (send_dtmf, inject_sound, inject_stream): a backend
 * written for WCS checks for those two, and its demo pages treat every error alike. On these routes "not in
 * a state for this" (not answered yet) is a 404 and "cannot do it now" (media not up, not supported, an
 * undecodable file) a 500; the message says which. 400 still names a malformed field.
 */
export const WCS_CALL_CONTROL_CODES: Readonly<Record<number, number>> = { 409: 404, 422: 500, 501: 500, 503: 500 };
