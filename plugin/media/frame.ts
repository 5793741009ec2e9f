/**
 * The neutral media unit that crosses the fan-out (as Node-Media-Server's core/avpacket.js does): the
 * encoders and video output produce it, LiveStream fans it out, and each output kind's muxer (FLV for
 * RTMP and the preview) serialises it once. No container bytes here.
 */

export type Track = 'audio' | 'video';

export interface MediaFrame {
  track: Track;
  /** Decode time, ms on the call's timeline (0 = the answer). */
  dts: number;
  /** Presentation time, ms (= dts: we produce no B-frames). */
  pts: number;
  /** A decoder can start here: an IDR access unit; every AAC frame is one. */
  keyframe: boolean;
  /**
   * audio: one raw AAC access unit (no ADTS header); video: one access unit in AVCC (4-byte
   * length-prefixed NAL units). Never mutated once emitted: sinks keep references (queues, muxer memos).
   */
  payload: Buffer;
  /**
   * The payload recurs in later frames (a mute's silent frame, a sound clip, the generated GOP): a muxer
   * may keep its serialisation for as long as the payload lives, instead of redoing it every time.
   */
  recurring?: boolean;
}

export interface AudioConfig {
  codec: 'aac';
  audioSpecificConfig: Buffer;
  sampleRate: number;
  channels: number;
  bitrate: number;
}

export interface VideoConfig {
  codec: 'h264';
  /** AVCDecoderConfigurationRecord. */
  avcConfig: Buffer;
  width?: number;
  height?: number;
  frameRate?: number;
}

/** Both tracks' current codec configs; a track not configured yet has none. Replaced, never mutated. */
export interface StreamConfig {
  readonly audio?: AudioConfig;
  readonly video?: VideoConfig;
}

/**
 * Decoder config that must reach a receiver before the next frames of `tracks`: one track when its
 * codec config changes, every configured track when a sink joins. A muxer that describes the whole
 * stream (FLV's onMetaData) reads `stream`.
 */
export interface ConfigChange {
  readonly stream: StreamConfig;
  readonly tracks: readonly Track[];
  /** When each track's config applies (ms): its last frame's dts, so its time never steps back. */
  readonly dts: Readonly<Record<Track, number>>;
}

/** What the fan-out feeds: config first (on join and on every change), then frames. */
export interface FrameSink {
  config(c: ConfigChange): void;
  frame(f: MediaFrame): void;
}
