/**
 * WCS-style REST hooks: call, registration and stream status events POSTed as JSON to the customer's
 * backend, as Flashphoner WCS does: to `<app URL>/<method>` (`…/CallStatusEvent`, `…/RegistrationStatusEvent`),
 * the method also in the body. One RestHooks serves one app URL (plugin/hooks/routed.ts picks it by appKey).
 *
 * A slow or dead backend must never delay a call, so `post()` only serialises and enqueues; a single
 * background loop delivers the events **in order, one request at a time**. While the backend fails, the
 * head event is retried with backoff and every later event waits behind it (no hammering, no
 * reordering). The queue is bounded: when full, the oldest waiting event is dropped (the newest status
 * matters most).
 *
 * Each delivered body is `{ ...body, method, timestamp, sequence }`: `timestamp` is ms since the epoch
 * when `post()` was called, `sequence` a per-process, strictly increasing number assigned at `post()`
 * (events that are later dropped leave gaps, so a receiver can tell it missed some and de-duplicate
 * retries that in fact reached it).
 */
import { Buffer } from 'node:buffer';
import { backoffDelay, type BackoffOptions } from '../../plugin/lib/backoff.js';
import type { Hooks, HooksStats } from '../../plugin/hooks/hooks.js';

/** The part of the app's pino Logger used here (a test can pass a stub). */
export interface MinimalLog {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface RestHooksOptions {
  /** Non-empty http(s) URL; may carry `user:pass@` (sent as HTTP Basic auth, never logged). */
  url: string;
  /** Per-request timeout. */
  timeoutMs: number;
  /** Events that may wait behind the one being delivered; beyond that the oldest is dropped. */
  queueMax: number;
  log: MinimalLog;
  /** Delay between attempts of one event. Default: 500 ms doubling to 30 s, half-jittered. */
  backoff?: BackoffOptions;
  /** Injectable for tests; default the global fetch. */
  fetch?: typeof fetch;
  /** Attempts per event before it is dropped. Default 8. */
  maxAttempts?: number;
  /** Clock for `timestamp`, Retry-After dates and log rate limiting. Default Date.now. */
  now?: () => number;
  /** Jitter source for the backoff. Default Math.random. */
  random?: () => number;
  /**
   * Checks the URL's host before each delivery (plugin/calls/targets.ts: never link-local or cloud
   * metadata, as it resolves now); a rejection is retried like a network error.
   */
  checkTarget?: (url: string) => Promise<void>;
}

export const DEFAULT_HOOK_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, factor: 2, minFraction: 0.5 };
const DEFAULT_MAX_ATTEMPTS = 8;
const WARN_EVERY_MS = 60_000;

/** Per process, shared by all instances, so receivers can order events from one process. */
let nextSequence = 1;

interface Pending {
  sequence: number;
  method: string;
  json: string;
  attempts: number;
}

type Outcome =
  | { kind: 'delivered'; status: number }
  | { kind: 'rejected'; status: number }
  | { kind: 'retry'; error: string; status?: number; retryAfterMs?: number }
  | { kind: 'stopped' };

/**
 * Delivers events to one URL. Construct only when the URL is non-empty (use `NoHooks` otherwise); the
 * constructor throws on an unparseable or non-http(s) URL (config validation rejects those earlier).
 */
export class RestHooks implements Hooks {
  private readonly endpoint: string;
  /** origin + path: the only form of the URL that is ever logged. */
  private readonly target: string;
  private readonly authorization: string | undefined;
  private readonly timeoutMs: number;
  private readonly queueMax: number;
  private readonly log: MinimalLog;
  private readonly backoff: BackoffOptions;
  private readonly fetchFn: typeof fetch;
  private readonly maxAttempts: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly checkTarget: ((url: string) => Promise<void>) | undefined;

  /** Waiting events, oldest first, from index `qHead` (amortised O(1) shift). */
  private queue: Pending[] = [];
  private qHead = 0;
  /** The head: in flight or waiting for its retry. Never dropped by overflow. */
  private current: Pending | undefined;

  private running = false;
  private loop: Promise<void> = Promise.resolve();
  private accepting = true;
  private stopped = false;
  private closing: Promise<void> | undefined;
  private onIdle: (() => void) | undefined;

  private controller: AbortController | undefined;
  private sleepTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  private readonly lastWarn = new Map<string, { at: number; suppressed: number }>();

  private delivered = 0;
  private retries = 0;
  private dropped = 0;
  private rejected = 0;
  private inFlight = false;
  private lastError: string | undefined;

  constructor(opts: RestHooksOptions) {
    const u = new URL(opts.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`hook URL must be http(s), got ${u.protocol}`);
    if (u.username || u.password) {
      const user = decodeURIComponent(u.username);
      const pass = decodeURIComponent(u.password);
      this.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      // fetch refuses URLs with credentials (and echoes the URL in its error): send them as a header.
      u.username = '';
      u.password = '';
    }
    this.endpoint = u.toString();
    this.target = `${u.origin}${u.pathname}`;
    this.timeoutMs = opts.timeoutMs;
    this.queueMax = Math.max(1, Math.floor(opts.queueMax));
    this.log = opts.log;
    this.backoff = opts.backoff ?? DEFAULT_HOOK_BACKOFF;
    this.fetchFn = opts.fetch ?? fetch;
    this.checkTarget = opts.checkTarget;
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** WCS posts each event to `<app URL>/<method name>` (…/apps/EchoApp/CallStatusEvent): backends route by it. */
  private urlFor(method: string): string {
    const u = new URL(this.endpoint);
    u.pathname = `${u.pathname.replace(/\/+$/, '')}/${encodeURIComponent(method)}`;
    return u.toString();
  }

  get stats(): HooksStats {
    const s: HooksStats = {
      queued: this.queue.length - this.qHead + (this.current ? 1 : 0),
      delivered: this.delivered,
      retries: this.retries,
      dropped: this.dropped,
      rejected: this.rejected,
      inFlight: this.inFlight,
    };
    if (this.lastError !== undefined) s.lastError = this.lastError;
    return s;
  }

  post(method: string, body: Record<string, unknown>): void {
    try {
      if (!this.accepting) {
        this.warnLimited('closed', 'debug', { method }, 'hook event after close() ignored');
        return;
      }
      const sequence = nextSequence++;
      let json: string;
      try {
        json = JSON.stringify({ ...body, method, timestamp: this.now(), sequence });
      } catch (err) {
        this.dropped++;
        this.lastError = `unserialisable event: ${errorText(err)}`;
        this.warnLimited('unserialisable', 'warn', { hook: this.target, method, sequence, err: errorText(err) }, 'hook event could not be serialised; dropped');
        return;
      }
      if (this.queue.length - this.qHead >= this.queueMax) {
        const old = this.shift();
        this.dropped++;
        this.warnLimited('overflow', 'warn', { hook: this.target, queueMax: this.queueMax, droppedSequence: old?.sequence, droppedMethod: old?.method }, 'hook queue full; dropped the oldest event');
      }
      this.queue.push({ sequence, method, json, attempts: 0 });
      if (!this.running) {
        this.running = true;
        this.loop = this.run();
      }
    } catch {
      // post() must never throw into call handling.
    }
  }

  close(timeoutMs = 2000): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs);
    return this.closing;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.accepting = false;
    if (this.running) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, timeoutMs));
        this.onIdle = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.onIdle = undefined;
    this.stopped = true;
    this.controller?.abort(new Error('hooks closed'));
    this.cancelSleep();
    await this.loop;
    const left = this.queue.length - this.qHead + (this.current ? 1 : 0);
    this.queue = [];
    this.qHead = 0;
    this.current = undefined;
    if (left > 0) {
      this.dropped += left;
      this.log.warn({ hook: this.target, dropped: left }, 'hooks closed before these events were delivered; dropped');
    }
  }

  /** The delivery loop: one event at a time, the head retried until delivered, refused or given up. */
  private async run(): Promise<void> {
    try {
      while (!this.stopped) {
        const ev = this.current ?? this.shift();
        if (!ev) break;
        this.current = ev;
        const outcome = await this.attempt(ev);
        if (this.stopped || outcome.kind === 'stopped') break;
        if (outcome.kind === 'delivered') {
          this.delivered++;
          this.current = undefined;
          continue;
        }
        if (outcome.kind === 'rejected') {
          this.rejected++;
          this.current = undefined;
          this.lastError = `HTTP ${outcome.status}`;
          this.warnLimited(`status:${outcome.status}`, 'warn', { hook: this.target, status: outcome.status, method: ev.method, sequence: ev.sequence }, 'hook backend refused the event; not retried');
          continue;
        }
        this.lastError = outcome.error;
        if (ev.attempts >= this.maxAttempts) {
          this.dropped++;
          this.current = undefined;
          this.warnLimited('gave-up', 'warn', { hook: this.target, method: ev.method, sequence: ev.sequence, attempts: ev.attempts, error: outcome.error }, 'hook event not delivered after max attempts; dropped');
          continue;
        }
        this.retries++;
        const delay = outcome.retryAfterMs ?? backoffDelay(ev.attempts - 1, this.backoff, this.random);
        this.log.debug({ hook: this.target, method: ev.method, sequence: ev.sequence, attempt: ev.attempts, error: outcome.error, delayMs: delay }, 'hook delivery failed; will retry');
        await this.sleep(delay);
      }
    } catch (err) {
      // Not expected; keep post() working and the events held.
      this.lastError = errorText(err);
      this.log.warn({ hook: this.target, err: errorText(err) }, 'hook delivery loop failed');
    } finally {
      this.running = false;
      this.onIdle?.();
    }
  }

  private async attempt(ev: Pending): Promise<Outcome> {
    ev.attempts++;
    const controller = new AbortController();
    this.controller = controller;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error('timeout'));
    }, this.timeoutMs);
    timer.unref();
    this.inFlight = true;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.authorization) headers.authorization = this.authorization;
      const url = this.urlFor(ev.method);
      if (this.checkTarget) await this.checkTarget(url);
      const res = await this.fetchFn(url, {
        method: 'POST',
        headers,
        body: ev.json,
        signal: controller.signal,
        redirect: 'manual',
      });
      // The body is not needed; release the connection.
      res.body?.cancel().catch(() => {});
      const status = res.status;
      if (status >= 200 && status < 300) return { kind: 'delivered', status };
      if (status === 429 || status >= 500) {
        const out: Outcome = { kind: 'retry', error: `HTTP ${status}`, status };
        if (status === 429 || status === 503) {
          const ra = this.retryAfterMs(res.headers.get('retry-after'));
          if (ra !== undefined) out.retryAfterMs = ra;
        }
        return out;
      }
      return { kind: 'rejected', status };
    } catch (err) {
      if (this.stopped) return { kind: 'stopped' };
      return { kind: 'retry', error: timedOut ? `timeout after ${this.timeoutMs} ms` : errorText(err) };
    } finally {
      clearTimeout(timer);
      this.inFlight = false;
      if (this.controller === controller) this.controller = undefined;
    }
  }

  /** Retry-After as delay seconds or an HTTP date, capped at the backoff maximum. */
  private retryAfterMs(h: string | null): number | undefined {
    if (h === null) return undefined;
    const v = h.trim();
    let ms: number;
    if (/^\d+$/.test(v)) ms = Number(v) * 1000;
    else {
      const at = Date.parse(v);
      if (Number.isNaN(at)) return undefined;
      ms = at - this.now();
    }
    return Math.min(Math.max(0, ms), this.backoff.maxMs);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(() => {
        this.sleepTimer = undefined;
        this.wake = undefined;
        resolve();
      }, ms);
      this.sleepTimer.unref();
    });
  }

  private cancelSleep(): void {
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.sleepTimer = undefined;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private shift(): Pending | undefined {
    if (this.qHead >= this.queue.length) return undefined;
    const ev = this.queue[this.qHead];
    this.queue[this.qHead] = undefined as unknown as Pending;
    this.qHead++;
    if (this.qHead === this.queue.length) {
      this.queue = [];
      this.qHead = 0;
    } else if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    return ev;
  }

  /** At most one log line per key per minute; the next one says how many were suppressed. */
  private warnLimited(key: string, level: 'warn' | 'debug', obj: Record<string, unknown>, msg: string): void {
    const t = this.now();
    const last = this.lastWarn.get(key);
    if (last && t - last.at < WARN_EVERY_MS) {
      last.suppressed++;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.lastWarn.set(key, { at: t, suppressed: 0 });
    this.log[level](suppressed > 0 ? { ...obj, suppressed } : obj, msg);
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const c = cause instanceof Error ? cause.message : undefined;
    return c && c !== err.message ? `${err.message}: ${c}` : err.message;
  }
  return String(err);
}
