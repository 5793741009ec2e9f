/**
 * One call's encoded output, encoded once and fanned out, as neutral frames, to every sink (RTMP
 * outputs, preview). Each sink's muxer turns them into its own bytes. Keeps the current codec config so
 * a sink joining late (or again, after a reconnect) gets it first, and tells every sink when it changes
 * (e.g. the caller's video changes resolution).
 */
import type { AudioConfig, ConfigChange, FrameSink, MediaFrame, StreamConfig, Track, VideoConfig } from '../frame.js';

export interface LiveStreamOptions {
  /**
   * The stream's timestamp at call time zero (ms, default 0): added to every frame's and config's time,
   * both tracks alike (A/V unchanged), before any sink sees it. Lets a test start a call's stream near
   * RTMP's 24-bit limit (2^24 ms, 4.66 h) or its 32-bit wrap without running for hours. Not wrapped here:
   * each wire format wraps it (RTMP chunks and FLV tags at 2^32).
   */
  timeOriginMs?: number;
}

export class LiveStream {
  private readonly sinks = new Set<FrameSink>();
  private current: StreamConfig = {};
  private readonly origin: number;
  /** Each track's last dts: a config sent mid-stream applies at its own track's time. */
  private lastAudioTs: number;
  private lastVideoTs: number;
  /** audioBytes/videoBytes: codec payload bytes (raw AAC, AVCC access units), before any container framing. */
  readonly stats = { audioFrames: 0, audioBytes: 0, videoFrames: 0, videoBytes: 0, keyframes: 0, videoConfigs: 0, keyframeIntervalMs: 0 };
  private lastKeyframeTs: number | undefined;

  constructor(opts: LiveStreamOptions = {}) {
    this.origin = opts.timeOriginMs ?? 0;
    if (!Number.isSafeInteger(this.origin) || this.origin < 0) throw new RangeError(`timeOriginMs ${this.origin}: a whole number of ms ≥ 0`);
    this.lastAudioTs = this.lastVideoTs = this.origin;
  }

  /** The audio track's config; every sink gets it before the next audio frame. */
  setAudioFormat(audio: AudioConfig): void {
    // A new object, never an edit: sinks may still hold the previous change (Push's queue, muxer memos).
    this.current = { ...this.current, audio };
    this.broadcastConfig(['audio']);
  }

  /** The video track's config (a new SPS/PPS); every sink gets it before the next video frame. */
  setVideoFormat(video: VideoConfig): void {
    this.current = { ...this.current, video };
    this.stats.videoConfigs++;
    this.broadcastConfig(['video']);
  }

  private change(tracks: readonly Track[]): ConfigChange {
    return { stream: this.current, tracks, dts: { audio: this.lastAudioTs, video: this.lastVideoTs } };
  }

  private broadcastConfig(tracks: readonly Track[]): void {
    if (this.sinks.size === 0) return;
    const c = this.change(tracks); // one object for all sinks: their muxers serialise it once
    for (const s of this.sinks) s.config(c);
  }

  get sinkCount(): number {
    return this.sinks.size;
  }

  /** A sink gets the current config at once (if any), then every frame from now on. */
  addSink(sink: FrameSink): void {
    this.sinks.add(sink);
    const c = this.joinConfig();
    if (c) sink.config(c);
  }

  /** What a receiver joining now needs first: every configured track's config (none before the first). */
  joinConfig(): ConfigChange | undefined {
    const tracks: Track[] = [];
    if (this.current.audio) tracks.push('audio');
    if (this.current.video) tracks.push('video');
    return tracks.length > 0 ? this.change(tracks) : undefined;
  }

  removeSink(sink: FrameSink): void {
    this.sinks.delete(sink);
  }

  /** One raw AAC frame (no ADTS header). */
  audioFrame(timestampMs: number, rawAac: Buffer): void {
    this.frame({ track: 'audio', dts: timestampMs, pts: timestampMs, keyframe: true, payload: rawAac, recurring: false });
  }

  /** One access unit, NAL units already length-prefixed (AVCC); `recurring`: a looped one (generated video). */
  videoFrame(timestampMs: number, nalusAvcc: Buffer, keyframe: boolean, recurring = false): void {
    this.frame({ track: 'video', dts: timestampMs, pts: timestampMs, keyframe, payload: nalusAvcc, recurring });
  }

  frame(f: MediaFrame): void {
    // One shifted object for all sinks (the FLV muxer builds each body once per frame object).
    if (this.origin !== 0) f = { ...f, dts: f.dts + this.origin, pts: f.pts + this.origin };
    if (f.track === 'audio') {
      this.lastAudioTs = f.dts;
      this.stats.audioFrames++;
      this.stats.audioBytes += f.payload.length;
    } else {
      this.lastVideoTs = f.dts;
      this.stats.videoFrames++;
      this.stats.videoBytes += f.payload.length;
      if (f.keyframe) {
        this.stats.keyframes++;
        // What a player joining now waits at most for a picture: the output's GOP length, caller's or generated.
        if (this.lastKeyframeTs !== undefined) this.stats.keyframeIntervalMs = f.dts - this.lastKeyframeTs;
        this.lastKeyframeTs = f.dts;
      }
    }
    for (const s of this.sinks) s.frame(f);
  }
}
