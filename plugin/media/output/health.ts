/**
 * One output's stream against the platforms' rules, as it leaves (DESIGN.md "Platform rules"): both
 * tracks present, the keyframe interval (last and largest), and the picture sizes announced (one size
 * for the whole broadcast). Fed what the output actually sends; cheap enough to run on every frame.
 */
import type { ConfigChange, MediaFrame } from '../frame.js';

export interface OutputHealthView {
  /** Frames sent on each track. */
  audioFrames: number;
  videoFrames: number;
  /** Both tracks seen (YouTube and Facebook refuse a stream without video, and want audio). */
  bothTracks: boolean;
  /** Between the last two keyframes sent, and the largest so far (ms); null before the second. */
  keyframeIntervalMs: number | null;
  maxKeyframeIntervalMs: number | null;
  /** The video size now ("640x360"), and how many times it changed after the first (the rules want 0). */
  size: string | null;
  sizeChanges: number;
}

export class OutputHealth {
  private audioFrames = 0;
  private videoFrames = 0;
  private lastKeyTs: number | undefined;
  private lastInterval: number | null = null;
  private maxInterval: number | null = null;
  private size: string | null = null;
  private sizeChanges = 0;

  config(c: ConfigChange): void {
    const v = c.stream.video;
    if (!c.tracks.includes('video') || !v?.width || !v.height) return;
    const size = `${v.width}x${v.height}`;
    if (this.size !== null && size !== this.size) this.sizeChanges++;
    this.size = size;
  }

  frame(f: MediaFrame): void {
    if (f.track === 'audio') {
      this.audioFrames++;
      return;
    }
    this.videoFrames++;
    if (!f.keyframe) return;
    if (this.lastKeyTs !== undefined) {
      this.lastInterval = f.dts - this.lastKeyTs;
      this.maxInterval = Math.max(this.maxInterval ?? 0, this.lastInterval);
    }
    this.lastKeyTs = f.dts;
  }

  /** A reconnect: intervals restart (the server sees a new stream), sizes don't (the broadcast goes on). */
  restart(): void {
    this.lastKeyTs = undefined;
  }

  view(): OutputHealthView {
    return {
      audioFrames: this.audioFrames,
      videoFrames: this.videoFrames,
      bothTracks: this.audioFrames > 0 && this.videoFrames > 0,
      keyframeIntervalMs: this.lastInterval,
      maxKeyframeIntervalMs: this.maxInterval,
      size: this.size,
      sizeChanges: this.sizeChanges,
    };
  }
}
