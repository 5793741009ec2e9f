/**
 * A push: one call's LiveStream published to one RTMP destination.
 * While the connection is being set up, frames are queued (bounded), so the published stream starts
 * at the moment the call was answered instead of losing its first second.
 */
import { EventEmitter } from 'node:events';
import type { LiveStream, StreamSink } from './live-stream.js';

/** What a push needs of an RTMP publisher (plugin/rtmp/publisher.ts implements it). */
export interface Publisher {
  start(): Promise<void>;
  writeMetadata(body: Buffer): void;
  writeAudio(timestampMs: number, body: Buffer): void;
  writeVideo(timestampMs: number, body: Buffer): void;
  close(): Promise<void>;
  on(event: 'close', listener: (e: { error?: Error & { description?: string; code?: string } }) => void): unknown;
}

export type PushState = 'CONNECTING' | 'PUBLISHING' | 'FAILED' | 'CLOSED';

export interface PushEvents {
  state: [{ state: PushState; reason?: string }];
}

type Queued = { kind: 'meta'; body: Buffer } | { kind: 'audio' | 'video'; ts: number; body: Buffer };

export class Push extends EventEmitter<PushEvents> implements StreamSink {
  private _state: PushState = 'CONNECTING';
  private queue: Queued[] = [];
  private reason: string | undefined;
  readonly stats = { queuedDropped: 0, framesOut: 0, startedAfterMs: 0 };

  constructor(
    private readonly stream: LiveStream,
    private readonly publisher: Publisher,
    private readonly opts: { maxQueue?: number; now?: () => number } = {},
  ) {
    super();
  }

  get state(): PushState {
    return this._state;
  }

  get failureReason(): string | undefined {
    return this.reason;
  }

  /** Connect and publish. Resolves when publishing; rejects (state FAILED) with the server's reason. */
  async start(): Promise<void> {
    const now = this.opts.now ?? Date.now;
    const t0 = now();
    this.stream.addSink(this);
    this.publisher.on('close', ({ error }) => {
      if (this._state === 'CLOSED' || this._state === 'FAILED') return;
      this.fail(error ? describeRtmpError(error) : 'RTMP server closed the connection');
    });
    try {
      await this.publisher.start();
    } catch (err) {
      this.fail(describeRtmpError(err as Error));
      throw err;
    }
    if (this._state !== 'CONNECTING') return; // closed meanwhile
    this.stats.startedAfterMs = now() - t0;
    this.setState('PUBLISHING');
    const q = this.queue;
    this.queue = [];
    for (const m of q) this.send(m);
  }

  writeMetadata(body: Buffer): void {
    this.route({ kind: 'meta', body });
  }
  writeAudio(ts: number, body: Buffer): void {
    this.route({ kind: 'audio', ts, body });
  }
  writeVideo(ts: number, body: Buffer): void {
    this.route({ kind: 'video', ts, body });
  }

  private route(m: Queued): void {
    if (this._state === 'PUBLISHING') this.send(m);
    else if (this._state === 'CONNECTING') {
      // Keep headers always; drop the oldest media beyond the bound.
      if (this.queue.length >= (this.opts.maxQueue ?? 1000)) {
        const i = this.queue.findIndex((q) => q.kind !== 'meta');
        if (i >= 0) {
          this.queue.splice(i, 1);
          this.stats.queuedDropped++;
        }
      }
      this.queue.push(m);
    }
  }

  private send(m: Queued): void {
    this.stats.framesOut++;
    if (m.kind === 'meta') this.publisher.writeMetadata(m.body);
    else if (m.kind === 'audio') this.publisher.writeAudio(m.ts, m.body);
    else this.publisher.writeVideo(m.ts, m.body);
  }

  private setState(state: PushState, reason?: string): void {
    this._state = state;
    if (reason) this.reason = reason;
    this.emit('state', { state, ...(reason ? { reason } : {}) });
  }

  private fail(reason: string): void {
    this.stream.removeSink(this);
    this.queue = [];
    this.setState('FAILED', reason);
    void this.publisher.close().catch(() => {});
  }

  /** Unpublish and release the connection. Idempotent. */
  async close(): Promise<void> {
    if (this._state === 'CLOSED') return;
    const wasFailed = this._state === 'FAILED';
    this.stream.removeSink(this);
    this.queue = [];
    if (!wasFailed) this.setState('CLOSED');
    await this.publisher.close().catch(() => {});
  }
}

/** The server's own words where it gave any ("NetStream.Publish.BadName: Already publishing"), else the error's message. */
export function describeRtmpError(err: Error & { description?: string; code?: string; stage?: string }): string {
  return err.description ? [err.code, err.description].filter(Boolean).join(': ') : err.message;
}
