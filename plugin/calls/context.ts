/**
 * What the parts of the call service share: settings, the log, the PBX, and the three things any part may
 * do to a call: end it (the one way a call ends), tell the customer's backend (hooks), and tell observers
 * it changed. Parts get this narrow context instead of calling back into one class.
 */
import type { Config } from '../config.js';
import type { Logger } from '../lib/log.js';
import type { Call } from './call.js';
import type { Outcome } from './causes.js';
import type { Pbx } from './ports.js';

export interface CallContext {
  readonly config: Config;
  readonly log: Logger;
  readonly pbx: Pbx;
  /** Final status first (so clients see why), then release everything the call holds. Idempotent. */
  end(call: Call, o: Outcome): Promise<void>;
  /** A WCS REST hook event (never blocks, never throws). */
  hook(method: string, body: Record<string, unknown>): void;
  /** Something a client sees of this call changed (its pushes, mostly): observers re-read it. */
  changed(call: Call): void;
  /** Live and recently ended calls, oldest first. */
  calls(): Iterable<Call>;
  /** A call by the client's callId. */
  get(callId: string): Call | undefined;
  /** A digit from the SIP party, reported by the PBX or read on the media leg (one digit reported by both counts once). */
  dtmf(call: Call, digit: string, from: 'pbx' | 'leg'): void;
  /** Route the PBX's events for `channelId` to this call (`leg`: its media leg). */
  watchChannel(channelId: string, call: Call, leg: boolean): void;
}

/** A failure that already knows how it should be reported. */
export class CallFailure extends Error {
  constructor(readonly outcome: Outcome) {
    super(outcome.info);
  }
}

/** The outcome for whatever went wrong while setting a call up. */
export function failure(err: unknown): Outcome {
  if (err instanceof CallFailure) return err.outcome;
  const msg = err instanceof Error ? err.message : String(err);
  return { status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: null, info: msg };
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
