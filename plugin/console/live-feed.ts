/**
 * The console's live feed: Server-Sent Events, so a page sees a call's status the moment it changes
 * instead of polling find. Every connection starts with a `snapshot` of all calls; then `call` (a call
 * changed or appeared), `stats` (once a second, live calls only), `removed` (it left the list).
 * A client that can't keep up (over MAX_QUEUED bytes unsent) is dropped: its socket destroyed at once, not
 * ended (an end() would wait behind the megabyte it does not read); it reconnects and gets a fresh
 * snapshot, and the calls never wait for it. The stats timer runs only while someone listens.
 */
import type { Call } from '../calls/call.js';
import type { CallService } from '../calls/call-service.js';
import type { PushView } from '../calls/pushes.js';
import type { CallView } from '../calls/types.js';
import { CallStatsSampler, type CallStats } from './call-stats.js';

/** A Call object as the console shows it: the WCS fields and history, its outputs, and where to watch it. */
export type ConsoleCall = CallView & { pushes: PushView[]; previewUrl: string | null };

export interface FeedClient {
  write(chunk: string): boolean;
  readonly writableLength: number;
  /** Graceful end (shutdown): what is queued still goes. */
  end(): void;
  /** Drop now (a slow client): the queue and the socket are freed at once. */
  destroy(): void;
}

const MAX_QUEUED = 1024 * 1024;

export interface LiveFeedOptions {
  /** REST prefix: preview URLs live under it. */
  prefix: string;
  statsIntervalMs?: number;
  /** A comment line this often keeps proxies from closing an idle stream. */
  heartbeatMs?: number;
  now?: () => number;
}

export function previewPath(prefix: string, callId: string): string {
  return `${prefix}/preview/${encodeURIComponent(callId)}.flv`;
}

export function consoleView(call: Call, prefix: string): ConsoleCall {
  return {
    ...call.view(),
    pushes: call.pushes.map((p) => p.view()),
    previewUrl: call.media && !call.final ? previewPath(prefix, call.req.callId) : null,
  };
}

export class LiveFeed {
  private readonly clients = new Set<FeedClient>();
  private readonly sampler = new CallStatsSampler();
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly unsubscribe: () => void;

  constructor(private readonly calls: CallService, private readonly o: LiveFeedOptions) {
    this.now = o.now ?? Date.now;
    const onChanged = (call: Call) => {
      if (this.clients.size > 0) this.broadcast('call', consoleView(call, o.prefix));
    };
    const onRemoved = (call: Call) => {
      this.sampler.forget(call.key);
      this.broadcast('removed', { callId: call.req.callId });
    };
    calls.changes.on('changed', onChanged);
    calls.changes.on('removed', onRemoved);
    this.unsubscribe = () => {
      calls.changes.off('changed', onChanged);
      calls.changes.off('removed', onRemoved);
    };
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** A new listener: it gets the snapshot at once. Call detach() when its connection closes. */
  attach(client: FeedClient): void {
    this.clients.add(client);
    this.send(client, 'snapshot', { calls: this.calls.list().map((c) => consoleView(c, this.o.prefix)) });
    this.timer ??= setInterval(() => this.broadcast('stats', this.stats()), this.o.statsIntervalMs ?? 1000);
    this.heartbeat ??= setInterval(() => {
      for (const c of this.clients) this.write(c, ': keep-alive\n\n');
    }, this.o.heartbeatMs ?? 15_000);
  }

  detach(client: FeedClient): void {
    this.clients.delete(client);
    if (this.clients.size === 0) this.stopTimers();
  }

  /** Ends every stream (app shutdown): an open SSE response would hold the HTTP server open. */
  close(): void {
    this.unsubscribe();
    for (const c of [...this.clients]) {
      this.detach(c);
      c.end();
    }
    this.stopTimers();
  }

  stats(): { at: string; calls: Record<string, CallStats> } {
    const now = this.now();
    const out: Record<string, CallStats> = {};
    for (const c of this.calls.list()) {
      if (c.final) continue;
      out[c.req.callId] = this.sampler.sampleCall(c, now);
    }
    return { at: new Date(now).toISOString(), calls: out };
  }

  private stopTimers(): void {
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    this.timer = this.heartbeat = undefined;
  }

  private broadcast(event: string, data: unknown): void {
    if (this.clients.size === 0) return;
    const frame = sseFrame(event, data);
    for (const c of this.clients) this.write(c, frame);
  }

  private send(c: FeedClient, event: string, data: unknown): void {
    this.write(c, sseFrame(event, data));
  }

  private write(c: FeedClient, frame: string): void {
    if (c.writableLength > MAX_QUEUED) {
      this.detach(c);
      c.destroy();
      return;
    }
    c.write(frame);
  }
}

/** One SSE message; JSON.stringify never emits a raw newline, so `data` is one line. */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
