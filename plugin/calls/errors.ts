/**
 * Errors by meaning: the core says what went wrong, never which HTTP code it is. The REST layer alone
 * maps them onto codes (rest/errors.ts). `field` names the request field at fault, when one is.
 */
export class CallError extends Error {
  constructor(message: string, readonly field?: string) {
    super(message);
  }
}

/** The request is malformed or names something we refuse (a host not allowed, a bad sound file). */
export class InvalidError extends CallError {
  override readonly name: string = 'InvalidError';
}

/** No such call, push or stream (or it has ended). */
export class NotFoundError extends CallError {
  override readonly name = 'NotFoundError';
}

/** The customer's backend refused it (the approval hook answered non-2xx): WCS answers 403. */
export class RefusedError extends CallError {
  override readonly name = 'RefusedError';
}

/** It exists already, or is not in a state that allows this (not answered yet, a destination in use). */
export class ConflictError extends CallError {
  override readonly name = 'ConflictError';
}

/** Too many requests: try again in `retryInMs`. */
export class RateLimitedError extends CallError {
  override readonly name = 'RateLimitedError';
  constructor(message: string, readonly retryInMs?: number, field?: string) {
    super(message, field);
  }
}

/** Not now: the PBX is not connected, capacity is reached, media is not up yet. */
export class UnavailableError extends CallError {
  override readonly name = 'UnavailableError';
}

/** This deployment cannot do it (the PBX adapter lacks the feature, sounds are not configured). */
export class UnsupportedError extends CallError {
  override readonly name = 'UnsupportedError';
}

/** Well-formed, but its content could not be used (a sound file that does not decode). */
export class UndecodableError extends CallError {
  override readonly name = 'UndecodableError';
}
