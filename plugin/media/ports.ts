/**
 * The ports the media pipeline speaks to; adapters implement them:
 * RtpPortSource → adapters/rtp/port-pool.ts, AudioEncoderFactory → adapters/ffmpeg/aac-encoder.ts (or the
 * native encoder, encode/aac/audio-encoder.ts), AacClipEncoder and PcmDecoder → adapters/ffmpeg/.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:dgram';

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
}
