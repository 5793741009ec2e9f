/**
 * The ports the media pipeline speaks to; adapters implement them:
 * RtpPortSource → adapters/rtp/port-pool.ts, AudioEncoderFactory → adapters/ffmpeg/aac-encoder.ts (or the
 * native encoder, encode/aac/audio-encoder.ts), AacClipEncoder and PcmDecoder → adapters/ffmpeg/.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:dgram';
import type { GeneratedVideo } from './timeline/generated-video.js';
import type { FrameSink } from './frame.js';

// ---------------------------------------------------------------------------------------------------------
// RTP sockets

export interface RtpSocketPair {
  rtpPort: number;
  rtp: Socket;
  rtcp: Socket;
  release(): Promise<void>;
}

export interface RtpPortSource {
  allocate(): Promise<RtpSocketPair>;
}

// ---------------------------------------------------------------------------------------------------------
// Audio encoder (AAC)

export interface EncodedAudioFrame {
  /** Raw AAC access unit (no ADTS header). */
  raw: Buffer;
  /** 0, 1, 2, ... in encoder output order: its timestamp is index × 1024 / outputRate. */
  index: number;
}

export interface AudioEncoderEvents {
  frame: [EncodedAudioFrame];
  /** The encoder died or misbehaved; the stream can't go on without a new one. */
  error: [Error];
}

export interface AudioEncoder extends EventEmitter<AudioEncoderEvents> {
  /** AudioSpecificConfig of the output (for the FLV sequence header). */
  readonly audioSpecificConfig: Buffer;
  readonly outputRate: number;
  /** Mono s16 samples at the input rate. The encoder takes the array over: don't reuse it. */
  write(pcm: Int16Array): void;
  /** No more input: encode what was written, emit the last frames, then stop (at most timeoutMs). */
  finish(timeoutMs: number): Promise<void>;
  /** Stop now, dropping what is still inside. */
  close(): Promise<void>;
  readonly pid: number | undefined;
}

export interface AudioEncoderOptions {
  inputRate: number;
  outputRate: number;
  channels: number;
  bitrate: number;
}

export type AudioEncoderFactory = (o: AudioEncoderOptions) => AudioEncoder;

// ---------------------------------------------------------------------------------------------------------
// Pre-encoded audio (per-push mute and sounds) and decoded sounds (injected toward the SIP side)

/** A sound (or silence) encoded once as raw AAC frames (no ADTS headers), 1024 samples each. */
export interface AacClip {
  audioSpecificConfig: Buffer;
  frames: Buffer[];
}

export interface AacClipFormat {
  sampleRate: number;
  channels: number;
  bitrate: number;
}

/** Encode a file (any format ffmpeg reads), or `silenceMs` of silence, the way the live encoder does. */
export type AacClipEncoder = (input: { file: string } | { silenceMs: number }, format: AacClipFormat) => Promise<AacClip>;

/** Decode a file to mono s16 PCM at `sampleRate` (for sounds played toward the SIP side). */
export type PcmDecoder = (file: string, sampleRate: number) => Promise<Int16Array>;

/** Sound files by name, inside the configured directory (plugin/media/sounds.ts). Rejects with a SoundError. */
export interface SoundSource {
  clip(name: string, format: AacClipFormat): Promise<AacClip>;
  /** One raw AAC frame of silence in that format. */
  silence(format: AacClipFormat): Promise<Buffer>;
  pcm(name: string, sampleRate: number): Promise<Int16Array>;
  /** The real path of a sound file by its name (refused outside the sound directory). */
  resolve(name: string): Promise<string>;
}

// ---------------------------------------------------------------------------------------------------------
// Video transcoder (the path for phones that won't give keyframes every 2 s, or change size)

export interface TranscodedVideoFrame {
  /** The input frame's timestamp, carried through (ms on the call's timeline). */
  ts: number;
  /** One access unit, AVCC (4-byte length-prefixed NAL units). */
  avcc: Buffer;
  keyframe: boolean;
}

export interface VideoTranscoderEvents {
  /** The output's AVCDecoderConfigurationRecord (before its first frame; again only if it changed). */
  config: [{ avcConfig: Buffer; width: number; height: number }];
  frame: [TranscodedVideoFrame];
  /** The transcoder died or misbehaved: the call's video falls back to what it had before. */
  error: [Error];
}

/**
 * Decode the caller's H.264 and encode it again at a fixed size with a keyframe every `keyframeIntervalMs`.
 * Frames go in with their call-time timestamps and come out in order with the same timestamps.
 */
export interface VideoTranscoder extends EventEmitter<VideoTranscoderEvents> {
  /** The input's AVCDecoderConfigurationRecord: before the first frame, and whenever the caller's SPS/PPS change. */
  inputConfig(avcConfig: Buffer): void;
  /** One input access unit (AVCC), in decode order, ts non-decreasing. */
  write(ts: number, avcc: Buffer, keyframe: boolean): void;
  /** Stop now (the child is killed). */
  close(): Promise<void>;
  readonly pid: number | undefined;
  readonly stats: { framesIn: number; framesOut: number; dropped: number };
}

export interface VideoTranscoderOptions {
  width: number;
  height: number;
  keyframeIntervalMs: number;
  /**
   * The first forced keyframe: at the first input frame at least this long (ms) after the first frame
   * written; then every keyframeIntervalMs (default 0: from the first frame). Frames before it (a GOP
   * written to prime the decoder) come out too, without keyframes of their own; the caller drops them.
   */
  firstKeyframeAfterMs?: number;
  /** Output frame rate cap (frames above it are dropped by the encoder side, not duplicated). */
  maxFps?: number;
}

export type VideoTranscoderFactory = (o: VideoTranscoderOptions) => VideoTranscoder;

// ---------------------------------------------------------------------------------------------------------
// Fill video (what the stream shows while the caller sends none)

export interface FillVideoSpec {
  kind: 'slate' | 'black';
  width: number;
  height: number;
  fps: number;
  /** GOP length = the keyframe interval (s). */
  seconds: number;
  /** slate: the call's name (plain text, shown as is). */
  text?: string;
  /** slate: an image file (PNG/JPEG) shown above the name. */
  image?: string;
}

/** Encode one looped GOP of fill video (adapters/ffmpeg/fill-video.ts). */
export type FillVideoEncoder = (spec: FillVideoSpec) => Promise<GeneratedVideo>;

// ---------------------------------------------------------------------------------------------------------
// Injected stream (/call/inject_stream: another stream played toward the SIP party)

export interface InjectedStreamEvents {
  /** Decoded audio, mono, at the leg's rate, in whatever chunks it comes. */
  audio: [pcm: Int16Array];
  /** One access unit of H.264 (Constrained Baseline, the leg's size), its NAL units without start codes. */
  video: [nalus: Buffer[], keyframe: boolean];
  /** The input ended (a file played out, a stream unpublished) or failed: `error` says why. */
  end: [error?: Error];
}

export interface InjectedStreamOptions {
  /**
   * What to play: a URL ffmpeg opens (rtmp, rtmps, http, https) or a local file (the sounds directory),
   * paced at real time when `realtime`; or `frames`: a stream of ours (another call's), fed to `sink`.
   */
  input: { url: string; realtime: boolean } | { frames: true };
  sampleRate: number;
  /** Video toward a video leg: scaled and padded to this size, at this rate. */
  video?: { width: number; height: number; fps: number };
}

export interface InjectedStream extends EventEmitter<InjectedStreamEvents> {
  /** Where the frames of a `frames` input go (a FrameSink on the other call's LiveStream). */
  readonly sink: FrameSink | undefined;
  close(): Promise<void>;
}

/** adapters/ffmpeg/stream-injector.ts */
export type InjectedStreamFactory = (o: InjectedStreamOptions) => InjectedStream;
