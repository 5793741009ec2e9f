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
