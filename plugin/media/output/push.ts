/**
 * A push: one call's LiveStream published to one destination through an OutputSink (RTMP, SRT). A call
 * may have several; the stream is encoded once and each push only forwards its neutral frames.
 *
 * - While the first connection is set up, frames are queued (bounded), so the published stream starts
 *   at the moment the call was answered instead of losing its first second.
 * - A refusal on the first connect is final (FAILED, with the server's words): a wrong key stays wrong.
 *   A drop after publishing reconnects with backoff (RECONNECTING): frames meanwhile are dropped (it is
 *   live), and after reconnecting the codec config goes first and video resumes at the next keyframe.
 * - Per-output audio: mute sends pre-encoded silent AAC frames instead of the call's, and a sound
 *   replaces them with a pre-encoded clip (looped or once): only audio frames' payloads change.
 *   Timestamps stay the live ones, so the stream never jumps; the encoder is not involved.
 */
import { EventEmitter } from 'node:events';
import { backoffDelay, type BackoffOptions } from '../../lib/backoff.js';
import type { ConfigChange, FrameSink, MediaFrame } from '../frame.js';
import type { LiveStream } from './live-stream.js';
import { OutputHealth } from './health.js';
import { describeRtmpError, type OutputSink } from './sink.js';
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

/** The stream's own objects, queued as they came: nothing is copied while connecting. */
type Queued = MediaFrame | ConfigChange;
const isFrame = (m: Queued): m is MediaFrame => 'payload' in m;

export class Push extends EventEmitter<PushEvents> implements FrameSink {
  private _state: PushState = 'CONNECTING';
  private queue: Queued[] = [];
  private reason: string | undefined;
  private sink: OutputSink | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private waitKeyframe = false;
  private readonly taps = new Set<FrameSink>();
  /** The sink being connected takes media meanwhile (needsMediaToConnect). */
  private priming = false;
  private silent: Buffer | undefined;
  private sound: { frames: readonly Buffer[]; next: number; loop: boolean } | undefined;
  /** framesOut, queuedDropped, droppedWhileDown: media frames (config changes are never dropped or counted). */
  readonly stats = { queuedDropped: 0, framesOut: 0, startedAfterMs: 0, reconnects: 0, droppedWhileDown: 0 };
  /** What this output sent, against the platforms' rules. */
  readonly health = new OutputHealth();

  constructor(
    private readonly stream: LiveStream,
    private readonly connect: () => OutputSink,
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
    return this.silent !== undefined;
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

  /** A new sink (one connection), watched for drops; resolves once it publishes. */
  private async open(): Promise<void> {
    const sink = this.connect();
    this.sink = sink;
    sink.on('close', ({ error }) => {
      if (this.sink !== sink) return; // an old connection
      if (this._state === 'PUBLISHING') this.dropped(error ? describeRtmpError(error) : 'the server closed the connection');
      else if (this._state === 'CONNECTING') this.fail(error ? describeRtmpError(error) : 'the server closed the connection');
    });
    const started = sink.start();
    if (!sink.needsMediaToConnect) return started;
    this.priming = true;
    if (this._state === 'CONNECTING') {
      const q = this.queue;
      this.queue = [];
      for (const m of q) this.send(m);
    } else {
      // A reconnect: a new connection starts with the codec config and a keyframe.
      this.health.restart();
      this.waitKeyframe = true;
      this.stream.removeSink(this);
      this.stream.addSink(this);
    }
    try {
      await started;
    } finally {
      this.priming = false;
    }
  }

  private dropped(reason: string): void {
    if (this.opts.reconnect === false || this.opts.maxReconnectAttempts === 0) return this.fail(reason);
    this.reason = reason;
    const old = this.sink;
    this.sink = undefined;
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
      const old = this.sink;
      this.sink = undefined;
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
    this.setState('PUBLISHING');
    if (this.sink?.needsMediaToConnect) return; // primed already (open)
    this.waitKeyframe = true;
    this.health.restart();
    // Re-adding sends both tracks' current config first.
    this.stream.removeSink(this);
    this.stream.addSink(this);
  }

  // ---- per-output audio ----

  /** Send this silent raw AAC frame instead of the call's audio. */
  mute(silentRawAac: Buffer): void {
    this.silent = silentRawAac;
  }

  unmute(): void {
    this.silent = undefined;
  }

  /** Replace the audio with these raw AAC frames (same format as the stream's), looped or once. */
  playSound(rawFrames: readonly Buffer[], loop: boolean): void {
    if (rawFrames.length === 0) return;
    this.sound = { frames: rawFrames, next: 0, loop };
  }

  stopSound(): void {
    this.sound = undefined;
  }

  /** What this output sends instead of the call's next audio payload, if anything (a sound advances). */
  private substitute(): Buffer | undefined {
    const s = this.sound;
    if (s) {
      const out = s.frames[s.next]!;
      s.next++;
      if (s.next >= s.frames.length) {
        if (s.loop) s.next = 0;
        else {
          this.sound = undefined;
          this.emit('soundEnded');
        }
      }
      return out;
    }
    return this.silent;
  }

  // ---- taps: what this output plays (its mute and sound applied), whatever its connection does ----

  /** `sink` gets the stream's config at once, then every frame as this output sends it (a recording of this output). */
  addTap(sink: FrameSink): void {
    const c = this.stream.joinConfig();
    if (c) sink.config(c);
    this.taps.add(sink);
  }

  removeTap(sink: FrameSink): void {
    this.taps.delete(sink);
  }

  // ---- FrameSink ----

  config(c: ConfigChange): void {
    for (const t of this.taps) t.config(c);
    this.route(c);
  }

  frame(f: MediaFrame): void {
    if (f.track === 'audio') {
      const payload = this.substitute();
      // A frame of our own: the stream's is shared with the other outputs. Clip frames recur: muxers
      // serialise each once, not once per use.
      if (payload) f = { track: 'audio', dts: f.dts, pts: f.pts, keyframe: true, payload, recurring: true };
    }
    for (const t of this.taps) t.frame(f);
    this.route(f);
  }

  private route(m: Queued): void {
    if (this._state === 'PUBLISHING' || this.priming) this.send(m);
    else if (this._state === 'CONNECTING') {
      // Keep config always; drop the oldest frame beyond the bound.
      if (this.queue.length >= (this.opts.maxQueue ?? 1000)) {
        const i = this.queue.findIndex(isFrame);
        if (i >= 0) {
          this.queue.splice(i, 1);
          this.stats.queuedDropped++;
        }
      }
      this.queue.push(m);
    } else if (this._state === 'RECONNECTING' && isFrame(m)) this.stats.droppedWhileDown++;
  }

  private send(m: Queued): void {
    const sink = this.sink;
    if (!sink) return;
    if (!isFrame(m)) {
      this.health.config(m);
      return sink.config(m);
    }
    if (m.track === 'video' && this.waitKeyframe) {
      if (!m.keyframe) return;
      this.waitKeyframe = false;
    }
    this.stats.framesOut++;
    this.health.frame(m);
    sink.frame(m);
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
    void this.sink?.close().catch(() => {});
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
    await this.sink?.close().catch(() => {});
  }
}
