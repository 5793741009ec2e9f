/**
 * Exponential backoff with "full jitter" (delay drawn uniformly from [0, cap]), so many clients that
 * lost the same server don't reconnect in lockstep. Pure: randomness is injected for tests.
 * Used by the ARI event socket and (later) RTMP publisher reconnects.
 */
export interface BackoffOptions {
  /** First cap, in ms. */
  initialMs: number;
  /** Largest cap, in ms. */
  maxMs: number;
  /** Growth per attempt. */
  factor?: number;
  /** Fraction of the cap that is always waited, 0..1 (0 = full jitter). */
  minFraction?: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 10_000, factor: 2, minFraction: 0.5 };

/** Delay before reconnect attempt number `attempt` (0-based). */
export function backoffDelay(attempt: number, opts: BackoffOptions = DEFAULT_BACKOFF, random = Math.random): number {
  const factor = opts.factor ?? 2;
  const cap = Math.min(opts.maxMs, opts.initialMs * factor ** Math.max(0, attempt));
  const floor = cap * (opts.minFraction ?? 0);
  return Math.round(floor + (cap - floor) * random());
}
