/**
 * The REST hooks port: how the core tells the customer's backend about calls, registrations and
 * streams (WCS `CallStatusEvent`, …). The sender that opens connections is adapters/hooks/rest-hooks.ts.
 */

export interface HooksStats {
  /** Events held and not yet delivered/dropped/rejected: the waiting queue plus the head being delivered. */
  queued: number;
  /** Events the backend answered with 2xx. */
  delivered: number;
  /** Failed attempts that were (or are being) retried. */
  retries: number;
  /** Events given up: queue overflow, maxAttempts reached, unserialisable, or still pending at close(). */
  dropped: number;
  /** Events the backend refused (3xx or 4xx other than 429): not retried. */
  rejected: number;
  /** A request is outstanding right now. */
  inFlight: boolean;
  /** The last failure ("HTTP 500", "timeout after 5000 ms", a network error), never with the URL. */
  lastError?: string;
}

/** What the app uses: a `RestHooks` when `HOOK_URL` is set, `NoHooks` when it is not. */
export interface Hooks {
  /** Never throws, never blocks: enqueues the event. */
  post(method: string, body: Record<string, unknown>): void;
  /** Stop accepting, flush for up to `timeoutMs`, then abort and drop the rest. */
  close(timeoutMs?: number): Promise<void>;
  readonly stats: HooksStats;
}

/** Hooks turned off (`HOOK_URL` empty): accepts everything, does nothing. */
export const NoHooks: Hooks = Object.freeze({
  post(_method: string, _body: Record<string, unknown>): void {},
  close(_timeoutMs?: number): Promise<void> {
    return Promise.resolve();
  },
  get stats(): HooksStats {
    return { queued: 0, delivered: 0, retries: 0, dropped: 0, rejected: 0, inFlight: false };
  },
});

/**
 * WCS's backend veto: before a method runs (`call` for /call/startup), the app's `<app URL>/<method>` is
 * asked; a non-2xx answer refuses it. Resolves to allow; rejects with RefusedError (the backend's reason)
 * or UnavailableError (the backend did not answer). adapters/hooks/approval.ts.
 */
export interface Approval {
  approve(method: string, appKey: string, body: Record<string, unknown>): Promise<void>;
}
