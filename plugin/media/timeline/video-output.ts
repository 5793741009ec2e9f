/**
 * What the stream's video track carries at each moment: the caller's H.264 when it flows, else a
 * generated black GOP (WCS generate_av), looped with new timestamps. YouTube and Facebook need a video
 * track from the first second and never want it to stop; a caller who sends no video, sends it late, or
 * stops (hold, camera off) must not freeze or end the stream.
 *
 * Switching sends the right sequence header first: to generated at once (its GOP starts with a
 * keyframe), back to the caller's only at one of its keyframes. Timestamps never go backwards.
 * Pure apart from the stream it writes to: time comes in as arguments.
 */
import { AvcConfigTracker, NalType, nalType, splitAnnexB, toAvcc } from '../encode/h264/index.js';
import type { VideoConfig } from '../frame.js';
import type { LiveStream } from '../output/live-stream.js';

/** A pre-encoded GOP (Annex B with access unit delimiters) cut into access units. */
export class GeneratedVideo {
  readonly frames: { avcc: Buffer; keyframe: boolean }[] = [];
  readonly avcConfig: Buffer;
  readonly width: number | undefined;
  readonly height: number | undefined;

  constructor(annexB: Buffer, readonly fps: number) {
    const tracker = new AvcConfigTracker();
    let au: Buffer[] = [];
    const flush = () => {
      if (!au.some((n) => nalType(n) === NalType.Idr || nalType(n) === NalType.Slice)) return;
      tracker.update({ nalus: au });
      this.frames.push({ avcc: toAvcc(au), keyframe: au.some((n) => nalType(n) === NalType.Idr) });
      au = [];
    };
    for (const nal of splitAnnexB(annexB)) {
      if (nalType(nal) === NalType.Aud) flush();
      else au.push(Buffer.from(nal));
    }
    flush();
    if (!tracker.current || !this.frames[0]?.keyframe) throw new Error('generated video: no keyframe with SPS/PPS at its start');
    this.avcConfig = tracker.current;
    this.width = tracker.width;
    this.height = tracker.height;
  }
}

export interface VideoOutputOptions {
  /** Without real video for this long, switch to generated (ms). */
  idleMs: number;
}

export type VideoSource = 'none' | 'generated' | 'caller';

export class VideoOutput {
  private source: VideoSource = 'none';
  private lastTs = -1;
  private lastCallerAt = -Infinity;
  private callerConfig: VideoConfig | undefined;
  private genIndex = 0;
  private genNextTs = 0;
  readonly counters = { generatedFrames: 0, callerFrames: 0, droppedUntilKeyframe: 0, switchesToGenerated: 0, switchesToCaller: 0 };

  constructor(
    private readonly stream: LiveStream,
    private readonly generated: GeneratedVideo | undefined,
    private readonly opts: VideoOutputOptions,
  ) {}

  get current(): VideoSource {
    return this.source;
  }

  /** True while the caller's video flows but can't be shown until its next keyframe. */
  get wantsKeyframe(): boolean {
    return this.source !== 'caller' && this.lastCallerAt > -Infinity;
  }

  /** The caller's parameter sets changed (or arrived): their config record. */
  callerFormat(avcConfig: Buffer, width?: number, height?: number): void {
    this.callerConfig = { codec: 'h264', avcConfig, ...(width ? { width } : {}), ...(height ? { height } : {}) };
    if (this.source === 'caller') this.stream.setVideoFormat(this.callerConfig);
  }

  /** One of the caller's access units, at call time `ts` (ms), arriving at `now`. */
  callerFrame(ts: number, avcc: Buffer, keyframe: boolean, now: number): void {
    this.lastCallerAt = now;
    if (this.source !== 'caller') {
      if (!keyframe || !this.callerConfig) {
        this.counters.droppedUntilKeyframe++;
        return;
      }
      this.source = 'caller';
      this.counters.switchesToCaller++;
      this.stream.setVideoFormat(this.callerConfig);
    }
    this.counters.callerFrames++;
    this.emit(ts, avcc, keyframe, false);
  }

  /** Called on the output clock with the call time it has reached (ms): fills in generated frames when due. */
  tick(callTimeMs: number, now: number): void {
    if (!this.generated) return;
    if (this.source === 'caller' && now - this.lastCallerAt <= this.opts.idleMs) return;
    if (this.source !== 'generated') {
      this.source = 'generated';
      this.counters.switchesToGenerated++;
      this.genIndex = 0; // start on the GOP's keyframe
      this.genNextTs = Math.max(callTimeMs, this.lastTs + 1);
      this.stream.setVideoFormat({
        codec: 'h264',
        avcConfig: this.generated.avcConfig,
        ...(this.generated.width ? { width: this.generated.width } : {}),
        ...(this.generated.height ? { height: this.generated.height } : {}),
        frameRate: this.generated.fps,
      });
    }
    const step = 1000 / this.generated.fps;
    while (this.genNextTs <= callTimeMs) {
      const f = this.generated.frames[this.genIndex]!;
      this.counters.generatedFrames++;
      this.emit(Math.round(this.genNextTs), f.avcc, f.keyframe, true); // the GOP loops: its frames recur
      this.genIndex = (this.genIndex + 1) % this.generated.frames.length;
      this.genNextTs += step;
    }
  }

  private emit(ts: number, avcc: Buffer, keyframe: boolean, recurring: boolean): void {
    const t = Math.max(Math.round(ts), this.lastTs + 1);
    this.lastTs = t;
    this.stream.videoFrame(t, avcc, keyframe, recurring);
  }
}
