/**
 * One call's encoded output, encoded once and fanned out to every sink (RTMP pushes, preview).
 * Keeps what a sink joining late needs first: onMetaData and the codec sequence headers, and re-sends
 * them to every sink when a format changes (e.g. the caller's video changes resolution).
 */
import { aacFrame, aacSequenceHeader, avcFrame, avcSequenceHeader, onMetaData } from './flv.js';

export interface StreamSink {
  writeMetadata(body: Buffer): void;
  writeAudio(timestampMs: number, body: Buffer): void;
  writeVideo(timestampMs: number, body: Buffer): void;
}

export interface AudioFormat {
  audioSpecificConfig: Buffer;
  sampleRate: number;
  channels: number;
  bitrate: number;
}

export interface VideoFormat {
  /** AVCDecoderConfigurationRecord. */
  avcConfig: Buffer;
  width?: number;
  height?: number;
  frameRate?: number;
}

export class LiveStream {
  private readonly sinks = new Set<StreamSink>();
  private audio?: AudioFormat;
  private video?: VideoFormat;
  private metadata: Buffer | undefined;
  private audioHeader: Buffer | undefined;
  private videoHeader: Buffer | undefined;
  /** Each track's last timestamp: a header re-sent mid-stream goes out at its own track's time. */
  private lastAudioTs = 0;
  private lastVideoTs = 0;
  readonly stats = { audioFrames: 0, audioBytes: 0, videoFrames: 0, videoBytes: 0, keyframes: 0, videoConfigs: 0, keyframeIntervalMs: 0 };
  private lastKeyframeTs: number | undefined;

  /** The audio track's format; sends the new metadata and header to every sink. */
  setAudioFormat(f: AudioFormat): void {
    this.audio = f;
    this.audioHeader = aacSequenceHeader(f.audioSpecificConfig);
    this.updateMetadata();
    for (const s of this.sinks) s.writeAudio(this.lastAudioTs, this.audioHeader);
  }

  /** The video track's format (a new SPS/PPS); sends the new metadata and header to every sink. */
  setVideoFormat(f: VideoFormat): void {
    this.video = f;
    this.videoHeader = avcSequenceHeader(f.avcConfig);
    this.stats.videoConfigs++;
    this.updateMetadata();
    for (const s of this.sinks) s.writeVideo(this.lastVideoTs, this.videoHeader);
  }

  private updateMetadata(): void {
    const meta: Record<string, number | string | boolean> = { duration: 0, encoder: 'sip-as-rtmp' };
    if (this.audio) {
      Object.assign(meta, {
        audiocodecid: 10, // AAC
        audiosamplerate: this.audio.sampleRate,
        audiosamplesize: 16,
        stereo: this.audio.channels > 1,
        audiodatarate: Math.round(this.audio.bitrate / 1000),
      });
    }
    if (this.video) {
      meta.videocodecid = 7; // AVC
      if (this.video.width) meta.width = this.video.width;
      if (this.video.height) meta.height = this.video.height;
      if (this.video.frameRate) meta.framerate = this.video.frameRate;
    }
    this.metadata = onMetaData(meta);
    for (const s of this.sinks) s.writeMetadata(this.metadata);
  }

  get sinkCount(): number {
    return this.sinks.size;
  }

  /** A sink gets the headers at once (if known), then every frame from now on. */
  addSink(sink: StreamSink): void {
    this.sinks.add(sink);
    this.sendHeaders(sink);
  }

  removeSink(sink: StreamSink): void {
    this.sinks.delete(sink);
  }

  private sendHeaders(sink: StreamSink): void {
    if (this.metadata) sink.writeMetadata(this.metadata);
    if (this.audioHeader) sink.writeAudio(this.lastAudioTs, this.audioHeader);
    if (this.videoHeader) sink.writeVideo(this.lastVideoTs, this.videoHeader);
  }

  audioFrame(timestampMs: number, rawAac: Buffer): void {
    const body = aacFrame(rawAac); // built once for all sinks
    this.lastAudioTs = timestampMs;
    this.stats.audioFrames++;
    this.stats.audioBytes += body.length;
    for (const s of this.sinks) s.writeAudio(timestampMs, body);
  }

  /** One access unit, NAL units already length-prefixed (AVCC). */
  videoFrame(timestampMs: number, nalusAvcc: Buffer, keyframe: boolean): void {
    const body = avcFrame(nalusAvcc, keyframe);
    this.lastVideoTs = timestampMs;
    this.stats.videoFrames++;
    this.stats.videoBytes += body.length;
    if (keyframe) {
      this.stats.keyframes++;
      // What a player joining now waits at most for a picture: the output's GOP length, caller's or generated.
      if (this.lastKeyframeTs !== undefined) this.stats.keyframeIntervalMs = timestampMs - this.lastKeyframeTs;
      this.lastKeyframeTs = timestampMs;
    }
    for (const s of this.sinks) s.writeVideo(timestampMs, body);
  }
}
