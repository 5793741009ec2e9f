/**
 * FLV (Adobe FLV spec v10.1, annex E): the muxer for RTMP outputs and the HTTP-FLV preview. RTMP
 * audio/video/data messages carry FLV tag BODIES; an FLV file (preview, recordings, tests) wraps the same
 * bodies in 11-byte tag headers with back-pointers.
 *   audio body: [SoundFormat 10 (AAC) | 44 kHz | 16 bit | stereo] = 0xAF, AACPacketType (0 = config, 1 = raw)
 *   video body: [FrameType | CodecID 7 (AVC)], AVCPacketType (0 = config, 1 = NALUs), composition time SI24
 * For AAC the rate/size/channel bits are fixed by the spec; the real ones are in the AudioSpecificConfig.
 *
 * Neutral frames and config (../frame.ts) become bodies once per frame, not once per destination: the
 * memos below hand every output of a call (and every call, for shared clips and the generated GOP) the
 * same Buffer.
 */
import type { AudioConfig, ConfigChange, MediaFrame, StreamConfig, VideoConfig } from '../frame.js';
import { Amf0EcmaArray, encodeAmf0 } from '../../rtmp/amf0.js';

export const FlvTagType = { Audio: 8, Video: 9, Script: 18 } as const;
export type FlvTagTypeId = 8 | 9 | 18;

const AAC_AUDIO_HEADER = 0xaf;
const AVC_KEYFRAME = 0x17;
const AVC_INTER = 0x27;

function withHeader(header: number[], body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(header.length + body.length);
  for (let i = 0; i < header.length; i++) out[i] = header[i]!;
  body.copy(out, header.length);
  return out;
}

/** AAC sequence header: 0xAF 0x00 + AudioSpecificConfig (2 bytes for AAC-LC). Send before any frame. */
export function aacSequenceHeader(audioSpecificConfig: Buffer): Buffer {
  return withHeader([AAC_AUDIO_HEADER, 0x00], audioSpecificConfig);
}

/** One raw AAC frame (no ADTS header): 0xAF 0x01 + frame. */
export function aacFrame(rawAac: Buffer): Buffer {
  return withHeader([AAC_AUDIO_HEADER, 0x01], rawAac);
}

/** AVC sequence header: keyframe, AVCPacketType 0, cts 0, AVCDecoderConfigurationRecord. */
export function avcSequenceHeader(avcDecoderConfigurationRecord: Buffer): Buffer {
  return withHeader([AVC_KEYFRAME, 0x00, 0, 0, 0], avcDecoderConfigurationRecord);
}

/**
 * One access unit, NAL units in AVCC form (4-byte length prefixes). compositionTimeMs = pts - dts
 * (0 without B-frames; may be negative in theory, so it is written as signed 24 bits).
 */
export function avcFrame(nalusAvcc: Buffer, keyframe: boolean, compositionTimeMs = 0): Buffer {
  const cts = Math.round(compositionTimeMs) & 0xffffff;
  return withHeader([keyframe ? AVC_KEYFRAME : AVC_INTER, 0x01, cts >> 16, (cts >> 8) & 0xff, cts & 0xff], nalusAvcc);
}

/**
 * The body of an RTMP data message (type 18) that sets the stream's metadata:
 * "@setDataFrame", "onMetaData", ECMA array. The server stores it and hands it to every new player
 * (without "@setDataFrame", which is an instruction to the server).
 */
export function onMetaData(meta: Record<string, number | string | boolean>): Buffer {
  return encodeAmf0('@setDataFrame', 'onMetaData', new Amf0EcmaArray({ ...meta }));
}

// ---- the muxer: neutral → FLV ----

/** One FLV tag: script tags have no time of their own (a publisher sends them at 0, a file at its current time). */
export interface FlvTag {
  type: FlvTagTypeId;
  timestampMs: number | undefined;
  body: Buffer;
}

/**
 * The fan-out: LiveStream hands one frame object to every output in one synchronous loop, so the last
 * frame's body is all it takes to build each body once (a WeakMap entry per frame doubled the muxing
 * CPU of 150 calls' worth of frames: ephemeron upkeep). Substitutes and queued frames don't get in its way:
 * substitutes are recurring, and a queued frame just takes its turn as the last one.
 */
let lastFrame: MediaFrame | undefined;
let lastBody: Buffer | undefined;
/** Recurring payloads (silent frame, clips, the generated GOP, shared by all calls): built once while they live. */
const recurringBodies = new WeakMap<Buffer, Buffer>();

/** The FLV tag body of a frame, built once and shared by every output. */
export function flvFrameBody(f: MediaFrame): Buffer {
  if (f === lastFrame) return lastBody!;
  if (f.recurring) {
    // Keyed by payload: a body depends only on it, plus, for video, keyframe and composition time (checked).
    let body = recurringBodies.get(f.payload);
    if (body === undefined || !fits(body, f)) {
      body = muxFrame(f);
      recurringBodies.set(f.payload, body);
    }
    return body;
  }
  lastFrame = f;
  lastBody = muxFrame(f);
  return lastBody;
}

const muxFrame = (f: MediaFrame): Buffer => (f.track === 'audio' ? aacFrame(f.payload) : avcFrame(f.payload, f.keyframe, f.pts - f.dts));

function fits(body: Buffer, f: MediaFrame): boolean {
  if (f.track === 'audio') return body[0] === AAC_AUDIO_HEADER;
  const cts = Math.round(f.pts - f.dts) & 0xffffff;
  return body[0] === (f.keyframe ? AVC_KEYFRAME : AVC_INTER) && body[1] === 0x01 && body[2] === cts >> 16 && body[3] === ((cts >> 8) & 0xff) && body[4] === (cts & 0xff);
}

export const flvTagType = (track: MediaFrame['track']): FlvTagTypeId => (track === 'audio' ? FlvTagType.Audio : FlvTagType.Video);

const configTags = new WeakMap<ConfigChange, readonly FlvTag[]>();
const metadataBodies = new WeakMap<StreamConfig, Buffer>();
const headerBodies = new WeakMap<AudioConfig | VideoConfig, Buffer>();

/** onMetaData for the whole stream, then each changed track's sequence header at its track's time. */
export function flvConfigTags(c: ConfigChange): readonly FlvTag[] {
  let tags = configTags.get(c);
  if (tags) return tags;
  const out: FlvTag[] = [{ type: FlvTagType.Script, timestampMs: undefined, body: streamMetadata(c.stream) }];
  for (const track of c.tracks) {
    const cfg = c.stream[track];
    if (!cfg) continue;
    let body = headerBodies.get(cfg);
    if (!body) {
      body = cfg.codec === 'aac' ? aacSequenceHeader(cfg.audioSpecificConfig) : avcSequenceHeader(cfg.avcConfig);
      headerBodies.set(cfg, body);
    }
    out.push({ type: flvTagType(track), timestampMs: c.dts[track], body });
  }
  tags = out;
  configTags.set(c, tags);
  return tags;
}

function streamMetadata(s: StreamConfig): Buffer {
  let body = metadataBodies.get(s);
  if (body) return body;
  const meta: Record<string, number | string | boolean> = { duration: 0, encoder: 'sip-as-rtmp' };
  if (s.audio) {
    Object.assign(meta, {
      audiocodecid: 10, // AAC
      audiosamplerate: s.audio.sampleRate,
      audiosamplesize: 16,
      stereo: s.audio.channels > 1,
      audiodatarate: Math.round(s.audio.bitrate / 1000),
    });
  }
  if (s.video) {
    meta.videocodecid = 7; // AVC
    if (s.video.width) meta.width = s.video.width;
    if (s.video.height) meta.height = s.video.height;
    if (s.video.frameRate) meta.framerate = s.video.frameRate;
  }
  body = onMetaData(meta);
  metadataBodies.set(s, body);
  return body;
}

// ---- FLV files ----

/** AMF0 string "@setDataFrame" as it starts an onMetaData() body. */
const SET_DATA_FRAME = encodeAmf0('@setDataFrame');

/**
 * FLV file framing around tag bodies. Stateless apart from counters: the caller orders tags by timestamp.
 * Timestamps are ms, 32 bits (24 low bits + 8 extension bits).
 */
export class FlvFileWriter {
  readonly stats = { tags: 0, bytes: 0 };

  /** "FLV", version 1, flags, header size 9, then PreviousTagSize0 = 0. */
  header(hasAudio: boolean, hasVideo: boolean): Buffer {
    const b = Buffer.from([0x46, 0x4c, 0x56, 0x01, (hasAudio ? 4 : 0) | (hasVideo ? 1 : 0), 0, 0, 0, 9, 0, 0, 0, 0]);
    this.stats.bytes += b.length;
    return b;
  }

  /** One tag: 11-byte header, body, PreviousTagSize. Script bodies lose a leading "@setDataFrame", as servers store them. */
  tag(type: FlvTagTypeId, timestampMs: number, body: Buffer): Buffer {
    if (type === FlvTagType.Script && body.subarray(0, SET_DATA_FRAME.length).equals(SET_DATA_FRAME)) {
      body = body.subarray(SET_DATA_FRAME.length);
    }
    if (body.length > 0xffffff) throw new RangeError(`FLV tag body of ${body.length} bytes exceeds 16 MiB`);
    const ts = timestampMs >>> 0;
    const out = Buffer.allocUnsafe(11 + body.length + 4);
    out[0] = type;
    out.writeUIntBE(body.length, 1, 3);
    out.writeUIntBE(ts & 0xffffff, 4, 3);
    out[7] = ts >>> 24; // TimestampExtended: the high byte
    out.writeUIntBE(0, 8, 3); // StreamID, always 0
    body.copy(out, 11);
    out.writeUInt32BE(11 + body.length, 11 + body.length);
    this.stats.tags++;
    this.stats.bytes += out.length;
    return out;
  }

  toJSON(): { tags: number; bytes: number } {
    return { ...this.stats };
  }
}
