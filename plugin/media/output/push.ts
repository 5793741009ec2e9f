/**
 * A push: one call's LiveStream published to one RTMP destination. A call may have several; the stream
 * is encoded once and each push only forwards its FLV bodies.
 *
 * - While the first connection is set up, frames are queued (bounded), so the published stream starts
 *   at the moment the call was answered instead of losing its first second.
 * - A refusal on the first connect is final (FAILED, with the server's words): a wrong key stays wrong.
 *   A drop after publishing reconnects with backoff (RECONNECTING): frames meanwhile are dropped (it is
 *   live), and after reconnecting the headers go first and video resumes at the next keyframe.
 * - Per-output audio: mute sends pre-encoded silent AAC frames instead of the call's, and a sound
 *   replaces them with a pre-encoded clip (looped or once). Timestamps stay the live ones, so the
 *   stream never jumps; the encoder is not involved.
 */
import { EventEmitter } from 'node:events';
import { backoffDelay, type BackoffOptions } from '../../lib/backoff.js';
import { aacFrame } from './flv.js';
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

import type { OutputState } from './states.js';

export type PushState = OutputState;

export interface PushEvents {
  state: [{ state: PushState; reason?: string }];
  /** A sound played once has ended. */
  soundEnded: [];
}

export interface PushOptions {
  maxQueue?: number;
  now?: () => number;
  /** Reconnect after a drop (default: on, 0.5 s growing to 2 s); false: a drop is FAILED. */
  reconnect?: BackoffOptions | false;
  /** Failed reconnect attempts in a row before the push is FAILED (default 30). */
  maxReconnectAttempts?: number;
  random?: () => number;
}

/** Short waits: a stream should be back within seconds of its server (the server decides how hard it is hit). */
export const RECONNECT: BackoffOptions = { initialMs: 500, maxMs: 2000, factor: 2, minFraction: 0.5 };

type Queued = { kind: 'meta'; body: Buffer } | { kind: 'audio' | 'video'; ts: number; body: Buffer };

/** FLV AAC body: [sound format byte, AACPacketType (0 = header), ...]; AVC: [frame type|codec, AVCPacketType, ...]. */
const isSequenceHeader = (body: Buffer) => body[1] === 0;
const isKeyframe = (body: Buffer) => body[0]! >> 4 === 1 && body[1] === 1;

export class Push extends EventEmitter<PushEvents> implements StreamSink {
  private _state: PushState = 'CONNECTING';
  private queue: Queued[] = [];
  private reason: string | undefined;
  private publisher: Publisher | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private waitKeyframe = false;
  private silentBody: Buffer | undefined;
  private sound: { bodies: Buffer[]; next: number; loop: boolean } | undefined;
  readonly stats = { queuedDropped: 0, framesOut: 0, startedAfterMs: 0, reconnects: 0, droppedWhileDown: 0 };

  constructor(
    private readonly stream: LiveStream,
    private readonly connect: () => Publisher,
    private readonly opts: PushOptions = {},
  ) {
    super();
  }

  get state(): PushState {
    return this._state;
  }

  get failureReason(): string | undefined {
    return this.reason;
  }

  get muted(): boolean {
    return this.silentBody !== undefined;
  }

  get soundEnabled(): boolean {
    return this.sound !== undefined;
  }

  /** Connect and publish. Resolves when publishing; rejects (state FAILED) with the server's reason. */
  async start(): Promise<void> {
    const now = this.opts.now ?? Date.now;
    const t0 = now();
    this.stream.addSink(this);
    try {
      await this.open();
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

  /** A new publisher, watched for drops; resolves once it publishes. */
  private async open(): Promise<void> {
    const pub = this.connect();
    this.publisher = pub;
    pub.on('close', ({ error }) => {
      if (this.publisher !== pub) return; // an old connection
      if (this._state === 'PUBLISHING') this.dropped(error ? describeRtmpError(error) : 'RTMP server closed the connection');
      else if (this._state === 'CONNECTING') this.fail(error ? describeRtmpError(error) : 'RTMP server closed the connection');
    });
    await pub.start();
  }

  private dropped(reason: string): void {
    if (this.opts.reconnect === false || this.opts.maxReconnectAttempts === 0) return this.fail(reason);
    this.reason = reason;
    const old = this.publisher;
    this.publisher = undefined;
    void old?.close().catch(() => {});
    this.setState('RECONNECTING', reason);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = backoffDelay(this.attempt++, this.opts.reconnect || RECONNECT, this.opts.random);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.reconnect();
    }, delay);
  }

  private async reconnect(): Promise<void> {
    if (this._state !== 'RECONNECTING') return;
    try {
      await this.open();
    } catch (err) {
      if (this._state !== 'RECONNECTING') return;
      this.reason = describeRtmpError(err as Error);
      const old = this.publisher;
      this.publisher = undefined;
      void old?.close().catch(() => {});
      if (this.attempt >= (this.opts.maxReconnectAttempts ?? 30)) {
        this.fail(`${this.reason} (gave up after ${this.attempt} reconnect attempts)`);
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (this._state !== 'RECONNECTING') return; // closed meanwhile
    this.attempt = 0;
    this.stats.reconnects++;
    this.waitKeyframe = true;
    this.setState('PUBLISHING');
    // Re-adding the sink sends metadata and both sequence headers first.
    this.stream.removeSink(this);
    this.stream.addSink(this);
  }

  // ---- per-output audio ----

  /** Send this silent raw AAC frame instead of the call's audio. */
  mute(silentRawAac: Buffer): void {
    this.silentBody = aacFrame(silentRawAac);
  }

  unmute(): void {
    this.silentBody = undefined;
  }

  /** Replace the audio with these raw AAC frames (same format as the stream's), looped or once. */
  playSound(rawFrames: readonly Buffer[], loop: boolean): void {
    if (rawFrames.length === 0) return;
    this.sound = { bodies: rawFrames.map((f) => aacFrame(f)), next: 0, loop };
  }

  stopSound(): void {
    this.sound = undefined;
  }

  private audioBody(body: Buffer): Buffer {
    if (isSequenceHeader(body)) return body;
    const s = this.sound;
    if (s) {
      const out = s.bodies[s.next]!;
      s.next++;
      if (s.next >= s.bodies.length) {
        if (s.loop) s.next = 0;
        else {
          this.sound = undefined;
          this.emit('soundEnded');
        }
      }
      return out;
    }
    return this.silentBody ?? body;
  }

  // ---- StreamSink ----

  writeMetadata(body: Buffer): void {
    this.route({ kind: 'meta', body });
  }
  writeAudio(ts: number, body: Buffer): void {
    this.route({ kind: 'audio', ts, body: this.audioBody(body) });
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
    } else if (this._state === 'RECONNECTING') this.stats.droppedWhileDown++;
  }

  private send(m: Queued): void {
    const pub = this.publisher;
    if (!pub) return;
    if (m.kind === 'video' && this.waitKeyframe) {
      if (!isSequenceHeader(m.body) && !isKeyframe(m.body)) return;
      if (isKeyframe(m.body)) this.waitKeyframe = false;
    }
    this.stats.framesOut++;
    if (m.kind === 'meta') pub.writeMetadata(m.body);
    else if (m.kind === 'audio') pub.writeAudio(m.ts, m.body);
    else pub.writeVideo(m.ts, m.body);
  }

  private setState(state: PushState, reason?: string): void {
    this._state = state;
    if (reason) this.reason = reason;
    this.emit('state', { state, ...(reason ? { reason } : {}) });
  }

  private fail(reason: string): void {
    this.stream.removeSink(this);
    this.queue = [];
    this.clearTimer();
    this.setState('FAILED', reason);
    void this.publisher?.close().catch(() => {});
  }

  private clearTimer(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Unpublish and release the connection. Idempotent. */
  async close(): Promise<void> {
    if (this._state === 'CLOSED') return;
    const wasFailed = this._state === 'FAILED';
    this.stream.removeSink(this);
    this.queue = [];
    this.sound = undefined;
    this.clearTimer();
    if (!wasFailed) this.setState('CLOSED');
    await this.publisher?.close().catch(() => {});
  }
}

/** The server's own words where it gave any ("NetStream.Publish.BadName: Already publishing"), else the error's message. */
export function describeRtmpError(err: Error & { description?: string; code?: string; stage?: string }): string {
  return err.description ? [err.code, err.description].filter(Boolean).join(': ') : err.message;
}
