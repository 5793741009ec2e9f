/**
 * What the stream's video track carries at each moment, under the platforms' rules (DESIGN.md): a video
 * track from the first second, a keyframe at least every 2 s, and one size for the whole stream.
 *
 * - **Size**: decided once: the caller's, from its first SPS, if it comes within `sizeWaitMs`; else the
 *   configured default (audio-only calls: at once). Everything after is at that size.
 * - **Sources**: the caller's H.264 when it flows, else the fill (slate or black GOP, looped with new
 *   timestamps). To the fill at once (its GOP starts with a keyframe), back to the caller only at one of
 *   its keyframes, each time with the source's sequence header first. Timestamps never go backwards.
 * - **Passthrough or transcode**: the caller's access units go out untouched while its keyframes come
 *   in time and its size is the stream's. When a keyframe is overdue despite requests (the phone ignores
 *   them), or the size differs, the call's video switches to the transcode path for good: the caller's
 *   frames are decoded and encoded again at the stream's size with a keyframe every `keyframeIntervalMs`.
 *   The transcoder is primed with the caller's GOP so far (its decoder needs the last keyframe) and its
 *   first keyframe is forced at the first frame not yet published, so the stream never shows a P-frame
 *   of one encoder after a keyframe of the other.
 * Pure apart from the stream it writes to and the transcoder it asks for: time comes in as arguments.
 */
import type { VideoConfig } from '../frame.js';
import type { LiveStream } from '../output/live-stream.js';
import type { VideoTranscoder, VideoTranscoderFactory } from '../ports.js';
import type { GeneratedVideo } from './generated-video.js';

export interface Size {
  width: number;
  height: number;
}

export interface VideoOutputOptions {
  /** Without the caller's video for this long, switch to the fill (ms). */
  idleMs: number;
  /** The stream's size when the caller's is not known in time (audio-only calls: the size). */
  defaultSize: Size;
  /** How long to wait for the caller's first SPS before taking `defaultSize` (ms); 0: don't wait. */
  sizeWaitMs: number;
  /**
   * The fill at a size, asked once the size is decided: one to show at once if there is one (the
   * nameless slate), and the call's own when encoded (undefined: none wanted, or none could be made).
   */
  fill?: (size: Size) => { now: GeneratedVideo | undefined; later: Promise<GeneratedVideo | undefined> };
  /** The stream's keyframe interval goal (ms): the transcoder's GOP, and the limit that triggers it. */
  keyframeIntervalMs: number;
  transcode: 'auto' | 'always' | 'never';
  transcoder?: VideoTranscoderFactory;
  /** A switch worth telling the operator about (call notes, logs). */
  onEvent?: (event: 'TRANSCODE' | 'TRANSCODE_FAILED', detail: string) => void;
}

export type VideoSource = 'none' | 'generated' | 'caller';
export type VideoMode = 'passthrough' | 'transcode';

/** A keyframe is overdue this long past the goal: the phone ignored our requests (they start at 60 % of it). */
const OVERDUE_MARGIN_MS = 250;
/** The caller's GOP kept to prime a transcoder (bytes); beyond it, the transcoder waits for the next keyframe. */
const MAX_GOP_BYTES = 4 * 1024 * 1024;

interface CallerUnit {
  ts: number;
  avcc: Buffer;
  keyframe: boolean;
}

export class VideoOutput {
  private source: VideoSource = 'none';
  private _mode: VideoMode = 'passthrough';
  private size: Size | undefined;
  private sizeSince: number | undefined;
  private fill: GeneratedVideo | undefined;
  /** The call's own fill, once encoded: it takes over at the current one's next GOP start. */
  private nextFill: GeneratedVideo | undefined;
  private lastTs = -1;
  private lastCallerAt = -Infinity;
  private lastCallerKeyAt: number | undefined;
  /** When the caller's video started flowing: a first keyframe is overdue from there. */
  private firstCallerAt: number | undefined;
  /** When a frame of the caller's (passed through or transcoded) last went out. */
  private lastCallerOutAt = -Infinity;
  private callerConfig: VideoConfig | undefined;
  private callerSize: Size | undefined;
  private gop: CallerUnit[] = [];
  private gopBytes = 0;
  private transcoder: VideoTranscoder | undefined;
  private transcodedConfig: VideoConfig | undefined;
  private transcodeBroken = false;
  private transcodeReason: string | undefined;
  private genIndex = 0;
  private genNextTs = 0;
  private lastKeyTs: number | undefined;
  private closed = false;
  readonly counters = {
    generatedFrames: 0, callerFrames: 0, droppedUntilKeyframe: 0, switchesToGenerated: 0, switchesToCaller: 0,
    transcodedFrames: 0, transcoderDropped: 0, configChanges: 0, maxKeyframeIntervalMs: 0,
  };

  constructor(private readonly stream: LiveStream, private readonly opts: VideoOutputOptions) {
    if (opts.sizeWaitMs <= 0) this.decideSize(opts.defaultSize);
  }

  get current(): VideoSource {
    return this.source;
  }

  get mode(): VideoMode {
    return this._mode;
  }

  /** The stream's video size, once decided. */
  get streamSize(): Size | undefined {
    return this.size;
  }

  /** True while the caller's video flows but can't be shown until its next keyframe. */
  get wantsKeyframe(): boolean {
    return this._mode === 'passthrough' && this.source !== 'caller' && this.lastCallerAt > -Infinity;
  }

  /** When to ask the caller for a keyframe ahead of the goal (ms since its last): early enough to come in time. */
  get requestKeyframeAfterMs(): number {
    return Math.round(this.opts.keyframeIntervalMs * 0.6);
  }

  /** Keyframe requests matter only while the caller's own keyframes go out (passthrough). */
  get asksKeyframes(): boolean {
    return this._mode === 'passthrough';
  }

  /** The caller's parameter sets changed (or arrived): their config record and picture size. */
  callerFormat(avcConfig: Buffer, width?: number, height?: number): void {
    const size = width && height ? { width, height } : undefined;
    this.callerConfig = { codec: 'h264', avcConfig, ...(size ?? {}) };
    if (size) this.callerSize = size;
    // New parameter sets start a new GOP: the kept one belongs to the old ones.
    this.gop = [];
    this.gopBytes = 0;
    if (!this.size && size) return this.decideSize(size);
    if (this.transcoder) return this.transcoder.inputConfig(avcConfig);
    if (this.size && this.opts.transcode === 'always') this.startTranscode('VIDEO_TRANSCODE=always');
    else if (this.size && size && !sameSize(size, this.size)) this.startTranscode(`the caller's size ${size.width}x${size.height} is not the stream's ${this.size.width}x${this.size.height}`);
    if (this.source === 'caller' && this._mode === 'passthrough') this.setFormat(this.callerConfig);
  }

  /** The caller's video RTP arrives (before any frame can be used: no SPS or keyframe yet, perhaps). */
  callerActive(now: number): void {
    this.lastCallerAt = now;
    this.firstCallerAt ??= now;
  }

  /** One of the caller's access units, at call time `ts` (ms), arriving at `now`. */
  callerFrame(ts: number, avcc: Buffer, keyframe: boolean, now: number): void {
    this.lastCallerAt = now;
    this.firstCallerAt ??= now;
    if (keyframe) this.lastCallerKeyAt = now;
    this.keepGop({ ts, avcc, keyframe });
    if (this._mode === 'transcode') {
      if (this.transcoder) this.transcoder.write(ts, avcc, keyframe);
      return;
    }
    if (!this.size) return; // no size yet: the first frames wait (the GOP primes a transcoder if one is needed)
    if (this.showCaller(ts, avcc, keyframe, this.callerConfig, now)) this.counters.callerFrames++;
  }

  /** Called on the output clock with the call time it has reached (ms): size, transcode and fill decisions. */
  tick(callTimeMs: number, now: number): void {
    if (this.closed) return;
    this.sizeSince ??= now;
    if (!this.size && now - this.sizeSince >= this.opts.sizeWaitMs) this.decideSize(this.opts.defaultSize);
    if (!this.size) return;
    const callerFresh = now - this.lastCallerAt <= this.opts.idleMs;
    const keySince = this.lastCallerKeyAt ?? this.firstCallerAt;
    if (this._mode === 'passthrough' && callerFresh && keySince !== undefined && this.opts.transcode === 'auto') {
      // Also before its first one: a phone whose first IDR was lost (sent before the bridge was up) and
      // that ignores requests would otherwise show the fill for a whole GOP of its own.
      const age = now - keySince;
      if (age > this.opts.keyframeIntervalMs + OVERDUE_MARGIN_MS) this.startTranscode(`no keyframe from the caller for ${(age / 1000).toFixed(1)} s despite requests`);
    }
    // The caller's picture stays while its frames go out; if they stop (its video stopped, a loss waits for
    // a keyframe, the transcoder warms up) the fill takes over: a stream's video must never pause.
    // So does it when the caller's last keyframe on the stream is overdue (a lost IDR while the transcoder
    // warms up): the fill starts with one. Not with VIDEO_TRANSCODE=never: the caller's video goes as sent.
    const keyAge = this.lastKeyTs === undefined || this.opts.transcode === 'never' ? 0 : callTimeMs - this.lastKeyTs;
    if (this.source === 'caller' && now - this.lastCallerOutAt <= this.opts.idleMs && keyAge <= this.opts.keyframeIntervalMs + OVERDUE_MARGIN_MS) return;
    if (!this.fill) return;
    if (this.source !== 'generated') {
      if (this.nextFill) {
        this.fill = this.nextFill;
        this.nextFill = undefined;
      }
      this.source = 'generated';
      this.counters.switchesToGenerated++;
      this.genIndex = 0; // start on the GOP's keyframe
      this.genNextTs = Math.max(callTimeMs, this.lastTs + 1);
      this.setFormat({ codec: 'h264', avcConfig: this.fill.avcConfig, ...this.size, frameRate: this.fill.fps });
    }
    while (this.genNextTs <= callTimeMs) {
      if (this.genIndex === 0 && this.nextFill) this.swapFill(this.nextFill);
      const f = this.fill.frames[this.genIndex]!;
      this.counters.generatedFrames++;
      this.emit(Math.round(this.genNextTs), f.avcc, f.keyframe, true); // the GOP loops: its frames recur
      this.genIndex = (this.genIndex + 1) % this.fill.frames.length;
      this.genNextTs += 1000 / this.fill.fps;
    }
  }

  /** At a GOP start: the same encoder settings at the same size give the same parameter sets (no config change). */
  private swapFill(g: GeneratedVideo): void {
    const old = this.fill;
    this.fill = g;
    this.nextFill = undefined;
    if (this.source === 'generated' && !old?.avcConfig.equals(g.avcConfig)) {
      this.setFormat({ codec: 'h264', avcConfig: g.avcConfig, ...this.size!, frameRate: g.fps });
    }
  }

  /** The call's video, for /call/find, the console and /metrics. */
  toJSON(): Record<string, unknown> {
    return {
      source: this.source,
      mode: this._mode,
      ...(this.transcodeReason ? { transcodeReason: this.transcodeReason } : {}),
      ...(this.transcodeBroken ? { transcodeFailed: true } : {}),
      size: this.size ? `${this.size.width}x${this.size.height}` : null,
      ...(this.callerSize ? { callerSize: `${this.callerSize.width}x${this.callerSize.height}` } : {}),
      ...(this.transcoder ? { transcoder: { pid: this.transcoder.pid, ...this.transcoder.stats } } : {}),
      output: { ...this.counters },
    };
  }

  /** The transcoder's child, when one runs (benchmarks sum its CPU). */
  get transcoderPid(): number | undefined {
    return this.transcoder?.pid;
  }

  async close(): Promise<void> {
    this.closed = true;
    const t = this.transcoder;
    this.transcoder = undefined;
    await t?.close();
  }

  private decideSize(size: Size): void {
    this.size = { width: size.width, height: size.height };
    if (this.opts.transcode === 'always' && this.callerConfig) this.startTranscode('VIDEO_TRANSCODE=always');
    const offer = this.opts.fill?.(this.size);
    if (!offer) return;
    this.fill = offer.now;
    void offer.later.then((g) => {
      if (this.closed || !g || g === this.fill) return;
      if (this.fill) this.nextFill = g;
      else this.fill = g;
    });
  }

  private keepGop(u: CallerUnit): void {
    if (u.keyframe) {
      this.gop = [];
      this.gopBytes = 0;
    } else if (this.gop.length === 0) return; // no keyframe kept: nothing to decode from
    this.gopBytes += u.avcc.length;
    if (this.gopBytes > MAX_GOP_BYTES) {
      this.gop = [];
      this.gopBytes = 0;
      return;
    }
    this.gop.push(u);
  }

  private startTranscode(reason: string): void {
    if (this._mode === 'transcode' || this.closed || !this.size || this.opts.transcode === 'never') return;
    const factory = this.opts.transcoder;
    if (!factory) return;
    this._mode = 'transcode';
    this.transcodeReason = reason;
    this.opts.onEvent?.('TRANSCODE', reason);
    const t = factory({
      ...this.size, keyframeIntervalMs: this.opts.keyframeIntervalMs,
      // The first keyframe at the first frame the stream has not carried yet (the primed GOP is before it).
      firstKeyframeAfterMs: this.gop.length > 0 ? Math.max(0, this.lastTs + 1 - this.gop[0]!.ts) : 0,
    });
    this.transcoder = t;
    t.on('config', ({ avcConfig, width, height }) => {
      this.transcodedConfig = { codec: 'h264', avcConfig, width, height };
      if (this.source === 'caller') this.setFormat(this.transcodedConfig);
    });
    t.on('frame', ({ ts, avcc, keyframe }) => this.transcodedFrame(ts, avcc, keyframe));
    t.on('error', (err) => {
      if (this.transcoder !== t) return;
      this.transcoder = undefined;
      this.transcodeBroken = true;
      this.counters.transcoderDropped += t.stats.dropped;
      this.opts.onEvent?.('TRANSCODE_FAILED', err.message);
      // Without it, the caller's video can't meet the rules: the stream shows the fill from now on.
      if (this.source === 'caller') this.source = 'none';
      void t.close();
    });
    if (this.callerConfig) t.inputConfig(this.callerConfig.avcConfig);
    for (const u of this.gop) t.write(u.ts, u.avcc, u.keyframe);
  }

  private transcodedFrame(ts: number, avcc: Buffer, keyframe: boolean): void {
    if (this.closed) return;
    if (ts <= this.lastTs) return; // the primed GOP: published already
    // Its input's arrival stands for "now": the transcoder's output has no clock of its own.
    if (this.showCaller(ts, avcc, keyframe, this.transcodedConfig, this.lastCallerAt)) this.counters.transcodedFrames++;
  }

  /**
   * One of the caller's frames (as sent, or transcoded) onto the stream: a switch from another source
   * only at a keyframe, with `config` first. False: dropped until one.
   */
  private showCaller(ts: number, avcc: Buffer, keyframe: boolean, config: VideoConfig | undefined, now: number): boolean {
    if (this.source !== 'caller') {
      if (!keyframe || !config) {
        this.counters.droppedUntilKeyframe++;
        return false;
      }
      this.source = 'caller';
      this.counters.switchesToCaller++;
      this.setFormat(config);
    }
    this.lastCallerOutAt = now;
    this.emit(ts, avcc, keyframe, false);
    return true;
  }

  private setFormat(cfg: VideoConfig): void {
    // Every format on the stream is at its one size: the caller's only when it is that size (else transcoded).
    this.counters.configChanges++;
    this.stream.setVideoFormat(cfg);
  }

  private emit(ts: number, avcc: Buffer, keyframe: boolean, recurring: boolean): void {
    const t = Math.max(Math.round(ts), this.lastTs + 1);
    this.lastTs = t;
    if (keyframe) {
      if (this.lastKeyTs !== undefined) this.counters.maxKeyframeIntervalMs = Math.max(this.counters.maxKeyframeIntervalMs, t - this.lastKeyTs);
      this.lastKeyTs = t;
    }
    this.stream.videoFrame(t, avcc, keyframe, recurring);
  }
}

const sameSize = (a: Size, b: Size) => a.width === b.width && a.height === b.height;
