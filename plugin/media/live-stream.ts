/**
 * One call's encoded output, encoded once and fanned out to every sink (RTMP pushes, preview).
 * Keeps what a sink joining late needs first: onMetaData and the codec sequence headers.
 */
import { aacFrame, aacSequenceHeader, onMetaData } from './flv.js';

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

export class LiveStream {
  private readonly sinks = new Set<StreamSink>();
  private metadata: Buffer | undefined;
  private audioHeader: Buffer | undefined;
  private lastTs = 0;
  readonly stats = { audioFrames: 0, audioBytes: 0 };

  /** The audio track's format; (re)sends the headers to every sink. */
  setAudioFormat(f: AudioFormat): void {
    this.metadata = onMetaData({
      duration: 0,
      audiocodecid: 10, // AAC
      audiosamplerate: f.sampleRate,
      audiosamplesize: 16,
      stereo: f.channels > 1,
      audiodatarate: Math.round(f.bitrate / 1000),
      encoder: 'sip-as-rtmp',
    });
    this.audioHeader = aacSequenceHeader(f.audioSpecificConfig);
    for (const s of this.sinks) this.sendHeaders(s);
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
    if (this.audioHeader) sink.writeAudio(this.lastTs, this.audioHeader);
  }

  audio(timestampMs: number, rawAac: Buffer): void {
    const body = aacFrame(rawAac); // built once for all sinks
    this.lastTs = timestampMs;
    this.stats.audioFrames++;
    this.stats.audioBytes += body.length;
    for (const s of this.sinks) s.writeAudio(timestampMs, body);
  }
}
