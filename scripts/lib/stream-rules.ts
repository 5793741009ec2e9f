/**
 * Does a stream meet YouTube's and Facebook's documented ingest rules? Pure: FLV tags in (FlvTagReader's
 * ReadTag), facts out (StreamAnalyzer / analyzeFlv), then rules over the facts (checkRules). No I/O, so the
 * integration tests judge the RTMP server's recordings with it, from their first byte, and
 * scripts/check-stream.ts judges files and live URLs.
 *
 * The documented rules (as stored by the search tool; quotes in English are the documents' words, the
 * others translated from the stored localized copy, marked "tr."):
 *  - Facebook Live API reference, https://developers.facebook.com/docs/live-video-api/reference :
 *    "To ensure a successful broadcast, live video must: Include both audio and video data; Not exceed 8
 *    hours; Utilize recommended settings as specified below (example: must be H264/AAC); Not change
 *    settings mid-broadcast". Video: "Key Frame Size — Recommended 2 seconds. Do not exceed 4 seconds.";
 *    "H.264, Level 4.1 for up to 1080p 30 FPS / H.264, Level 4.2 for 1080p 60 FPS". Audio: "Audio Codec —
 *    AAC low complexity"; "Sample Rate — 44.1kHz or 48kHz"; "Audio Bitrate — 128 kbps (preferred) to 256
 *    kbps (do not exceed)"; "Channel Layout — Stereo". An earlier revision of the same page: "Video Codec —
 *    H.264 Main Profile (MP 77), H.264 High Profile (HiP 100), CBR". Live API best practices
 *    (https://developers.facebook.com/docs/videos/live-video/best-practices): "Changing resolution
 *    midstream has negative impact on the broadcast."
 *  - YouTube Help, "Choose live encoder settings, bitrates, and resolutions",
 *    https://support.google.com/youtube/answer/2853702 (encoder settings, tr. from ?hl=ja): protocol
 *    RTMP/RTMPS; video codec H.264, H.265 (HEVC), AV1; frame rate up to 60 fps; keyframe frequency
 *    "recommended 2 seconds, 4 seconds or less"; audio codec "AAC or MP3"; bitrate encoding CBR. The 2014
 *    revision (web.archive.org, tr.): "Video codec: H.264, Main 4.1", "Keyframe interval: 2 seconds",
 *    "Audio codec: AAC-LC (audio required)", "Audio sample rate: 44.1 KHz", "128 Kbps stereo".
 *  - YouTube Live Streaming API, "Configuration Issues for LiveStream Resources",
 *    https://developers.google.com/youtube/v3/live/docs/liveStreams/health_status_messages (tr. from the
 *    zh/ko copies): audioSampleRate "the current sample rate is %(actual); the recommended sample rates are
 *    44.1kHz and 48kHz"; audioTooManyChannels "audio has more than two channels, but only one (mono) or two
 *    (stereo) channels are supported"; audioCodec "set the audio codec to a supported codec (AAC, MP3)";
 *    gopSizeLong, as YouTube Studio shows it: "Please use a keyframe frequency of four seconds or less."
 *
 * So: mono is accepted by YouTube and only "Stereo" in Facebook's recommended settings, hence audio-stereo
 * is a warning; more than two channels is an error. Bitrates and level are warnings (measured over a short
 * window they are noisy; Facebook states the level per resolution/frame rate). Everything both platforms
 * require is an error. Thresholds are tighter than the documents' hard limits where a margin is wise
 * (keyframe gap 2.5 s, not 4: "recommended 2 seconds").
 */
import { AAC_SAMPLE_RATES } from '../../plugin/media/encode/adts.js';
import { parseAvcDecoderConfig } from '../../plugin/media/encode/h264/avc-config.js';
import { NalType, splitAvcc } from '../../plugin/media/encode/h264/nal.js';
import { BitReader, parseSps } from '../../plugin/media/encode/h264/sps.js';
import { FlvTagType } from '../../plugin/media/output/flv.js';
import { FlvTagReader, parseAudioBody, parseVideoBody, type ReadTag } from '../../plugin/media/output/flv-reader.js';
import { MsHistogram } from '../../plugin/media/timeline/latency.js';

// ------------------------------------------------------------------------------------------ facts

/** Times are ms from the stream's start: the first audio or video tag of the input, of any kind. */
export interface TrackTiming {
  /** Media frames (sequence headers not counted). */
  frames: number;
  firstMs?: number;
  lastMs?: number;
  durationMs: number;
  /** Media tag bodies (FLV framing excluded) over the track's duration. */
  bitrateKbps: number;
  /** Audio: one AAC frame (1024 samples / rate); video: the median step between frames. */
  expectedStepMs?: number;
  /** Largest forward step between consecutive frames, and the time of the frame after it. */
  maxStepMs: number;
  maxStepAtMs?: number;
  /** Frames whose timestamp is lower than the previous frame's (decoding order), and the first one. */
  backwards: number;
  firstBackwardsAtMs?: number;
}

export interface VideoSize {
  width: number;
  height: number;
  atMs: number;
  source: 'sequence-header' | 'in-band-sps';
}

export interface H264Profile {
  profileIdc: number;
  constraintFlags: number;
  levelIdc: number;
  name: string;
}

export interface VideoFacts extends TrackTiming {
  /** FLV CodecID (7 = AVC) of the first tag, or the Enhanced RTMP FourCC ("hvc1", "av01", ...). */
  codecId?: number;
  fourCC?: string;
  codecName: string;
  /** AVC sequence headers, and how many of them differ from the one before (a settings change). */
  configs: number;
  configChanges: number;
  /** Distinct profile/level combinations seen (SPS fields, else the record's bytes). */
  profiles: H264Profile[];
  /** The picture size each time it changed (first included), from sequence headers and in-band SPS. */
  sizes: VideoSize[];
  distinctSizes: number;
  keyframes: number;
  firstFrameIsKeyframe?: boolean;
  firstKeyframeMs?: number;
  /** Every keyframe's time (ms), in order. */
  keyframeTimesMs: number[];
  /** Between consecutive keyframes, or from the last keyframe to the last frame when that is longer. */
  keyframeInterval: { maxMs: number; fromMs?: number; toMs?: number; toEnd: boolean; meanMs?: number };
  unreadable: number;
}

export interface AudioFacts extends TrackTiming {
  /** FLV SoundFormat (10 = AAC). */
  soundFormat: number;
  codecName: string;
  configs: number;
  configChanges: number;
  /** From each distinct AudioSpecificConfig (FLV's own rate/channel bits are fixed for AAC). */
  objectTypes: number[];
  sampleRates: number[];
  channelCounts: number[];
  samplesPerFrame?: number;
  unreadable: number;
}

export interface StreamFacts {
  tags: { audio: number; video: number; script: number };
  /** First to last audio/video tag. */
  durationMs: number;
  audio?: AudioFacts;
  video?: VideoFacts;
  /**
   * The muxing (interleave) offset: after both tracks started, at each media tag, |latest audio timestamp -
   * latest video timestamp| in file order. What a player or ingest must buffer to pair the tracks; not
   * lip sync (that is in the content).
   */
  avOffset?: { maxMs: number; atMs: number; p99Ms: number; samples: number };
}

class Track {
  frames = 0;
  bytes = 0;
  first?: number;
  last?: number;
  maxStep = 0;
  maxStepAt?: number;
  backwards = 0;
  firstBackwardsAt?: number;
  readonly steps = new MsHistogram(10_000);

  frame(t: number, bytes: number): void {
    this.frames++;
    this.bytes += bytes;
    if (this.last !== undefined) {
      const step = t - this.last;
      if (step < 0) {
        this.backwards++;
        this.firstBackwardsAt ??= t;
      } else {
        this.steps.add(step);
        if (step > this.maxStep) {
          this.maxStep = step;
          this.maxStepAt = t;
        }
      }
    }
    this.first ??= t;
    this.last = t;
  }

  /** Times from t0 (the analyzer keeps raw timestamps until asked). */
  timing(t0: number, expectedStepMs: number | undefined): TrackTiming {
    const durationMs = this.first === undefined ? 0 : this.last! - this.first;
    const span = durationMs + (expectedStepMs ?? 0);
    const out: TrackTiming = {
      frames: this.frames, durationMs, bitrateKbps: span > 0 ? round1((this.bytes * 8) / span) : 0,
      maxStepMs: this.maxStep, backwards: this.backwards,
    };
    if (this.first !== undefined) out.firstMs = this.first - t0;
    if (this.last !== undefined) out.lastMs = this.last - t0;
    if (expectedStepMs !== undefined) out.expectedStepMs = round1(expectedStepMs);
    if (this.maxStepAt !== undefined) out.maxStepAtMs = this.maxStepAt - t0;
    if (this.firstBackwardsAt !== undefined) out.firstBackwardsAtMs = this.firstBackwardsAt - t0;
    return out;
  }
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

const VIDEO_CODECS: Record<number, string> = { 2: 'Sorenson H.263', 3: 'Screen video', 4: 'VP6', 5: 'VP6 alpha', 6: 'Screen video 2', 7: 'H.264', 12: 'HEVC (non-standard id 12)' };
const SOUND_FORMATS: Record<number, string> = { 0: 'PCM', 1: 'ADPCM', 2: 'MP3', 3: 'PCM LE', 4: 'Nellymoser 16k', 5: 'Nellymoser 8k', 6: 'Nellymoser', 7: 'G.711 A-law', 8: 'G.711 mu-law', 10: 'AAC', 11: 'Speex', 14: 'MP3 8 kHz' };
const AAC_OBJECT_TYPES: Record<number, string> = { 1: 'AAC Main', 2: 'AAC-LC', 3: 'AAC SSR', 4: 'AAC LTP', 5: 'HE-AAC (SBR)', 23: 'AAC-LD', 29: 'HE-AAC v2 (PS)', 39: 'AAC-ELD', 42: 'xHE-AAC (USAC)' };

/** H.264 Annex A names; Constrained Baseline is Baseline with constraint_set1_flag (0x40). */
export function h264ProfileName(profileIdc: number, constraintFlags: number): string {
  switch (profileIdc) {
    case 66: return constraintFlags & 0x40 ? 'Constrained Baseline' : 'Baseline';
    case 77: return 'Main';
    case 88: return 'Extended';
    case 100: return 'High';
    case 110: return 'High 10';
    case 122: return 'High 4:2:2';
    case 244: return 'High 4:4:4 Predictive';
    case 44: return 'CAVLC 4:4:4 Intra';
    default: return `profile_idc ${profileIdc}`;
  }
}

export const aacObjectTypeName = (aot: number): string => AAC_OBJECT_TYPES[aot] ?? `AAC object type ${aot}`;

/** AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): object type, rate, channels, frame length. Throws RangeError. */
export function parseAudioSpecificConfig(asc: Buffer): { objectType: number; sampleRate: number; channels: number; samplesPerFrame: number } {
  const r = new BitReader(asc);
  const aot = (): number => {
    const t = r.bits(5);
    return t === 31 ? 32 + r.bits(6) : t;
  };
  const rate = (): number => {
    const i = r.bits(4);
    const hz = i === 15 ? r.bits(24) : AAC_SAMPLE_RATES[i];
    if (!hz) throw new RangeError(`AudioSpecificConfig: sampling frequency index ${i}`);
    return hz;
  };
  const objectType = aot();
  const sampleRate = rate();
  const channels = r.bits(4);
  let core = objectType;
  if (objectType === 5 || objectType === 29) {
    rate(); // extensionSamplingFrequency (the SBR output rate)
    core = aot();
  }
  // GASpecificConfig starts with frameLengthFlag: 960-sample frames instead of 1024.
  const ga = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23].includes(core);
  const samplesPerFrame = ga && r.bitsLeft > 0 && r.bit() === 1 ? 960 : 1024;
  return { objectType, sampleRate, channels, samplesPerFrame };
}

/**
 * Incremental: push() every tag in file order, facts() whenever wanted. Timestamps are kept as they are and
 * reported from the stream's start: the lower of the first audio tag's and the first video tag's timestamp
 * (sequence headers included).
 */
export class StreamAnalyzer {
  private firstTagMs: { audio?: number; video?: number } = {};
  private lastTagMs = 0;
  private readonly tags = { audio: 0, video: 0, script: 0 };
  private readonly a = new Track();
  private readonly v = new Track();
  private audio?: Omit<AudioFacts, keyof TrackTiming>;
  private video?: Omit<VideoFacts, keyof TrackTiming | 'keyframeInterval'>;
  private lastVideoConfig?: Buffer;
  private lastAudioConfig?: Buffer;
  private lastInBandSps?: Buffer;
  private lengthSize: 1 | 2 | 3 | 4 = 4;
  private readonly offsets = new MsHistogram(60_000);
  private maxOffsetAt = 0;
  /** Offsets seen while one track lagged; they count once that track goes on (not when it has ended). */
  private pending: number[] = [];
  private pendingAt: number[] = [];
  private pendingOn?: 'audio' | 'video';
  private kfMax = 0;
  private kfMaxFrom?: number;
  private kfMaxTo?: number;

  push(tag: ReadTag): void {
    if (tag.type === FlvTagType.Script) {
      this.tags.script++;
      return;
    }
    const t = tag.timestampMs;
    const track = tag.type === FlvTagType.Audio ? 'audio' : 'video';
    this.firstTagMs[track] ??= t;
    this.lastTagMs = Math.max(this.lastTagMs, t);
    if (track === 'audio') this.pushAudio(tag.body, t);
    else this.pushVideo(tag.body, t);
  }

  private pushAudio(body: Buffer, t: number): void {
    this.tags.audio++;
    let parsed;
    try {
      parsed = parseAudioBody(body);
    } catch {
      (this.audio ??= this.newAudio(-1)).unreadable++;
      return;
    }
    const a = (this.audio ??= this.newAudio(parsed.kind === 'other' ? parsed.soundFormat : 10));
    if (parsed.kind === 'aac-config') {
      a.configs++;
      if (this.lastAudioConfig && !this.lastAudioConfig.equals(parsed.audioSpecificConfig)) a.configChanges++;
      this.lastAudioConfig = Buffer.from(parsed.audioSpecificConfig);
      try {
        const asc = parseAudioSpecificConfig(parsed.audioSpecificConfig);
        addDistinct(a.objectTypes, asc.objectType);
        addDistinct(a.sampleRates, asc.sampleRate);
        addDistinct(a.channelCounts, asc.channels);
        a.samplesPerFrame ??= asc.samplesPerFrame;
      } catch {
        a.unreadable++;
      }
      return;
    }
    this.a.frame(t, body.length);
    this.interleave('audio', t);
  }

  private pushVideo(body: Buffer, t: number): void {
    this.tags.video++;
    const b0 = body[0] ?? 0;
    const frameType = (b0 >> 4) & 0x07;
    if (b0 & 0x80) {
      // Enhanced RTMP (ex header): FourCC after the first byte; packet type 0 = sequence start.
      const v = (this.video ??= this.newVideo(undefined, body.toString('latin1', 1, 5)));
      const packetType = b0 & 0x0f; // 0 sequence start, 1 coded frames, 3 coded frames (no cts), 2/4/5 no picture
      if (packetType === 0) v.configs++;
      else if (packetType === 1 || packetType === 3) this.videoFrame(t, body.length, frameType === 1);
      return;
    }
    if (frameType === 5) return; // video info / command frame: no picture
    let parsed;
    try {
      parsed = parseVideoBody(body);
    } catch {
      (this.video ??= this.newVideo(b0 & 0x0f)).unreadable++;
      return;
    }
    const v = (this.video ??= this.newVideo(parsed.kind === 'other' ? parsed.codecId : 7));
    if (parsed.kind === 'avc-config') {
      v.configs++;
      if (this.lastVideoConfig && !this.lastVideoConfig.equals(parsed.avcConfig)) v.configChanges++;
      this.lastVideoConfig = Buffer.from(parsed.avcConfig);
      try {
        const rec = parseAvcDecoderConfig(parsed.avcConfig);
        this.lengthSize = rec.lengthSize as 1 | 2 | 3 | 4;
        const sps = rec.sps[0];
        if (sps) this.spsSeen(sps, t, 'sequence-header');
        else this.profileSeen(rec.profile, rec.compatibility, rec.level);
      } catch {
        v.unreadable++;
      }
    } else if (parsed.kind === 'avc-frame') {
      this.videoFrame(t, body.length, parsed.keyframe);
      this.inBandSps(parsed.nalusAvcc, t);
    } else if (parsed.kind === 'other') {
      this.videoFrame(t, body.length, parsed.keyframe);
    }
  }

  private videoFrame(t: number, bytes: number, keyframe: boolean): void {
    const v = this.video!;
    if (this.v.frames === 0) v.firstFrameIsKeyframe = keyframe;
    this.v.frame(t, bytes);
    if (keyframe) {
      const prev = v.keyframeTimesMs[v.keyframeTimesMs.length - 1];
      if (prev !== undefined && t - prev > this.kfMax) {
        this.kfMax = t - prev;
        this.kfMaxFrom = prev;
        this.kfMaxTo = t;
      }
      v.keyframes++;
      v.firstKeyframeMs ??= t;
      v.keyframeTimesMs.push(t);
    }
    this.interleave('video', t);
  }

  /** SPS inside access units (encoders that repeat them, or change size without a new sequence header). */
  private inBandSps(avcc: Buffer, t: number): void {
    let nalus: Buffer[];
    try {
      nalus = splitAvcc(avcc, this.lengthSize);
    } catch {
      this.video!.unreadable++;
      return;
    }
    for (const nal of nalus) {
      if ((nal[0]! & 0x1f) !== NalType.Sps || this.lastInBandSps?.equals(nal)) continue;
      this.lastInBandSps = Buffer.from(nal);
      this.spsSeen(nal, t, 'in-band-sps');
    }
  }

  private spsSeen(nal: Buffer, t: number, source: VideoSize['source']): void {
    const v = this.video!;
    let sps;
    try {
      sps = parseSps(nal);
    } catch {
      v.unreadable++;
      return;
    }
    this.profileSeen(sps.profileIdc, sps.constraintFlags, sps.levelIdc);
    const cur = v.sizes[v.sizes.length - 1];
    if (cur?.width === sps.width && cur.height === sps.height) return;
    v.sizes.push({ width: sps.width, height: sps.height, atMs: t, source });
    if (!v.sizes.slice(0, -1).some((s) => s.width === sps.width && s.height === sps.height)) v.distinctSizes++;
  }

  private profileSeen(profileIdc: number, constraintFlags: number, levelIdc: number): void {
    const list = this.video!.profiles;
    if (list.some((p) => p.profileIdc === profileIdc && p.constraintFlags === constraintFlags && p.levelIdc === levelIdc)) return;
    list.push({ profileIdc, constraintFlags, levelIdc, name: h264ProfileName(profileIdc, constraintFlags) });
  }

  /** After a frame of `track` at t: |latest audio - latest video|, once both started. */
  private interleave(track: 'audio' | 'video', t: number): void {
    if (this.pendingOn === track) {
      this.pending.forEach((off, i) => this.commitOffset(off, this.pendingAt[i]!));
      this.pending = [];
      this.pendingAt = [];
      this.pendingOn = undefined;
    }
    if (this.a.last === undefined || this.v.last === undefined) return;
    const other = track === 'audio' ? this.v.last : this.a.last;
    if (other < t) {
      // The other track is behind: an offset only if it goes on (at the end of a recording one track
      // simply stops first).
      this.pendingOn = track === 'audio' ? 'video' : 'audio';
      this.pending.push(t - other);
      this.pendingAt.push(t);
    } else this.commitOffset(other - t, t);
  }

  private commitOffset(off: number, at: number): void {
    if (this.offsets.count === 0 || off > this.offsets.max) this.maxOffsetAt = at;
    this.offsets.add(off);
  }

  private newAudio(soundFormat: number): Omit<AudioFacts, keyof TrackTiming> {
    return {
      soundFormat, codecName: SOUND_FORMATS[soundFormat] ?? `SoundFormat ${soundFormat}`, configs: 0, configChanges: 0,
      objectTypes: [], sampleRates: [], channelCounts: [], unreadable: 0,
    };
  }

  private newVideo(codecId: number | undefined, fourCC?: string): Omit<VideoFacts, keyof TrackTiming | 'keyframeInterval'> {
    const v: Omit<VideoFacts, keyof TrackTiming | 'keyframeInterval'> = {
      codecName: fourCC !== undefined ? `Enhanced RTMP ${fourCC}` : VIDEO_CODECS[codecId ?? -1] ?? `CodecID ${codecId}`,
      configs: 0, configChanges: 0, profiles: [], sizes: [], distinctSizes: 0, keyframes: 0, keyframeTimesMs: [], unreadable: 0,
    };
    if (codecId !== undefined) v.codecId = codecId;
    if (fourCC !== undefined) v.fourCC = fourCC;
    return v;
  }

  facts(): StreamFacts {
    const t0 = Math.min(this.firstTagMs.audio ?? Infinity, this.firstTagMs.video ?? Infinity);
    if (t0 === Infinity) return { tags: { ...this.tags }, durationMs: 0 };
    const out: StreamFacts = { tags: { ...this.tags }, durationMs: this.lastTagMs - t0 };
    if (this.audio) {
      const rate = this.audio.sampleRates[0];
      const step = rate ? ((this.audio.samplesPerFrame ?? 1024) * 1000) / rate : undefined;
      out.audio = { ...this.audio, ...this.a.timing(t0, step) };
    }
    if (this.video) {
      const v = this.video;
      const lastKf = v.keyframeTimesMs[v.keyframeTimesMs.length - 1];
      const n = v.keyframeTimesMs.length;
      const keyframeInterval: VideoFacts['keyframeInterval'] = { maxMs: this.kfMax, toEnd: false };
      if (this.kfMaxFrom !== undefined) Object.assign(keyframeInterval, { fromMs: this.kfMaxFrom - t0, toMs: this.kfMaxTo! - t0 });
      if (n >= 2) keyframeInterval.meanMs = round1((lastKf! - v.keyframeTimesMs[0]!) / (n - 1));
      // The stretch after the last keyframe (or the whole video when none came) is a gap at least that long.
      const tailFrom = lastKf ?? this.v.first;
      if (tailFrom !== undefined && this.v.last! - tailFrom > this.kfMax) {
        Object.assign(keyframeInterval, { maxMs: this.v.last! - tailFrom, fromMs: tailFrom - t0, toMs: this.v.last! - t0, toEnd: true });
      }
      out.video = {
        ...v,
        ...(v.firstKeyframeMs !== undefined ? { firstKeyframeMs: v.firstKeyframeMs - t0 } : {}),
        keyframeTimesMs: v.keyframeTimesMs.map((k) => k - t0),
        sizes: v.sizes.map((z) => ({ ...z, atMs: z.atMs - t0 })),
        profiles: v.profiles.map((p) => ({ ...p })),
        ...this.v.timing(t0, this.v.steps.quantile(0.5)),
        keyframeInterval,
      };
    }
    if (this.offsets.count > 0) {
      out.avOffset = { maxMs: this.offsets.max, atMs: this.maxOffsetAt - t0, p99Ms: this.offsets.quantile(0.99)!, samples: this.offsets.count };
    }
    return out;
  }
}

function addDistinct(list: number[], v: number): void {
  if (!list.includes(v)) list.push(v);
}

/** Facts of a whole set of tags. */
export function analyzeFlv(tags: Iterable<ReadTag>): StreamFacts {
  const an = new StreamAnalyzer();
  for (const t of tags) an.push(t);
  return an.facts();
}

/** Facts of a whole FLV file's bytes (a recording). Throws FlvFormatError when it is not FLV. */
export function analyzeFlvBytes(bytes: Buffer): StreamFacts {
  return analyzeFlv(new FlvTagReader(64 * 1024 * 1024).push(bytes));
}

// ------------------------------------------------------------------------------------------ rules

export type RuleLevel = 'error' | 'warning';

export interface RuleResult {
  rule: string;
  ok: boolean;
  level: RuleLevel;
  /** What was measured, and where. */
  detail: string;
  /** Not judged: the track it is about is missing (both-tracks fails for that). */
  skipped?: boolean;
  /** The documented rule it stands for. */
  source: string;
}

export interface RuleOptions {
  /** Largest keyframe gap, s (default 2.5; the documents: "recommended 2 seconds", "do not exceed 4"). */
  maxKeyframeIntervalS?: number;
  /** The first keyframe must come within this many s of the stream's start (default 1). */
  maxFirstKeyframeS?: number;
  /** Largest step between consecutive frames of a track, ms (default 100; at least 1.5 frames of the track). */
  maxGapMs?: number;
  /** Largest A/V interleave offset, ms (default 500). */
  maxAvOffsetMs?: number;
  /** The stream was joined live: its start was not seen, so first-keyframe is only a warning. */
  joinedLate?: boolean;
}

export const DEFAULT_RULE_OPTIONS: Required<Omit<RuleOptions, 'joinedLate'>> = {
  maxKeyframeIntervalS: 2.5, maxFirstKeyframeS: 1, maxGapMs: 100, maxAvOffsetMs: 500,
};

const FB = 'Facebook Live API reference';
const YT = 'YouTube live encoder settings (support.google.com/youtube/answer/2853702)';
const YT_HEALTH = 'YouTube Live API health status messages';
const ALLOWED_PROFILES = new Set([66, 77, 100]);
const s = (ms: number | undefined): string => `${((ms ?? 0) / 1000).toFixed(2)} s`;

/** Every rule over the facts, in a fixed order. Warnings never fail a stream (see summarize). */
export function checkRules(f: StreamFacts, options: RuleOptions = {}): RuleResult[] {
  const o = { ...DEFAULT_RULE_OPTIONS, ...options };
  const out: RuleResult[] = [];
  const add = (rule: string, level: RuleLevel, ok: boolean, detail: string, source: string): void => {
    out.push({ rule, level, ok, detail, source });
  };
  const a = f.audio?.frames ? f.audio : undefined;
  const v = f.video?.frames ? f.video : undefined;
  const skip = (rule: string, level: RuleLevel, track: 'audio' | 'video', source: string): void => {
    out.push({ rule, level, ok: true, skipped: true, detail: `not judged: no ${track} frames`, source });
  };

  const missing = [a ? undefined : 'audio', v ? undefined : 'video'].filter(Boolean);
  add('both-tracks', 'error', missing.length === 0,
    missing.length === 0 ? `audio (${a!.frames} frames) and video (${v!.frames} frames) present`
      : `no ${missing.join(' and no ')} frames (audio tags ${f.tags.audio}, video tags ${f.tags.video})`,
    `${FB}: "live video must: Include both audio and video data"; ${YT} (2014): "AAC-LC (audio required)"`);

  if (v) {
    add('video-codec', 'error', v.codecId === 7, `${v.codecName}${v.codecId !== undefined ? ` (CodecID ${v.codecId})` : ''}`,
      `${FB}: "must be H264/AAC"`);
    const bad = v.profiles.filter((p) => !ALLOWED_PROFILES.has(p.profileIdc));
    const names = v.profiles.map((p) => `${p.name} (profile_idc ${p.profileIdc})`).join(', ') || 'no readable SPS';
    add('video-profile', 'error', v.codecId === 7 && v.profiles.length > 0 && bad.length === 0,
      `${names}; allowed: Baseline, Constrained Baseline, Main, High`,
      `${FB} (earlier revision): "H.264 Main Profile (MP 77), H.264 High Profile (HiP 100)"; Constrained Baseline from phones plays in practice`);
    const maxLevel = Math.max(0, ...v.profiles.map((p) => p.levelIdc));
    add('video-level', 'warning', maxLevel > 0 && maxLevel <= 42, maxLevel ? `level ${(maxLevel / 10).toFixed(1)} (at most 4.2)` : 'no level known',
      `${FB}: "H.264, Level 4.1 for up to 1080p 30 FPS; H.264, Level 4.2 for 1080p 60 FPS"`);
  } else {
    skip('video-codec', 'error', 'video', FB);
    skip('video-profile', 'error', 'video', FB);
    skip('video-level', 'warning', 'video', FB);
  }

  if (a) {
    const lc = a.soundFormat === 10 && a.objectTypes.length > 0 && a.objectTypes.every((t) => t === 2);
    add('audio-codec', 'error', lc,
      a.soundFormat === 10 ? (a.objectTypes.map((t) => `${aacObjectTypeName(t)} (object type ${t})`).join(', ') || 'AAC without a readable AudioSpecificConfig')
        : `${a.codecName} (SoundFormat ${a.soundFormat})`,
      `${FB}: "Audio Codec — AAC low complexity"`);
    const rates = a.sampleRates;
    add('audio-rate', 'error', rates.length > 0 && rates.every((r) => r === 44100 || r === 48000),
      `${rates.map((r) => `${r} Hz`).join(', ') || 'unknown'} (AudioSpecificConfig); allowed 44100, 48000`,
      `${FB}: "Sample Rate — 44.1kHz or 48kHz"; ${YT_HEALTH}: "recommended sample rates are 44.1kHz and 48kHz"`);
    const ch = a.channelCounts;
    add('audio-channels', 'error', ch.length > 0 && ch.every((c) => c === 1 || c === 2),
      `${ch.map((c) => (c === 0 ? '0 (layout in a program config element)' : `${c}`)).join(', ') || 'unknown'} channel(s); 1 or 2 allowed`,
      `${YT_HEALTH}: "only one (mono) or two (stereo) channels are supported"`);
    add('audio-stereo', 'warning', ch.length > 0 && ch.every((c) => c === 2), ch.includes(1) ? 'mono (YouTube accepts it; Facebook lists stereo)' : `${ch.join(', ')} channel(s)`,
      `${FB}: "Channel Layout — Stereo"`);
    add('audio-bitrate', 'warning', a.bitrateKbps <= 256, `${a.bitrateKbps} kb/s over ${s(a.durationMs)} (at most 256)`,
      `${FB}: "Audio Bitrate — 128 kbps (preferred) to 256 kbps (do not exceed)"`);
  } else {
    for (const r of ['audio-codec', 'audio-rate', 'audio-channels']) skip(r, 'error', 'audio', FB);
    for (const r of ['audio-stereo', 'audio-bitrate']) skip(r, 'warning', 'audio', FB);
  }

  if (v) {
    const late = options.joinedLate === true;
    const first = v.firstKeyframeMs;
    const ok = v.firstFrameIsKeyframe === true && first !== undefined && first <= o.maxFirstKeyframeS * 1000;
    const what = v.firstFrameIsKeyframe
      ? `the first video frame is a keyframe, at ${s(first)} from the stream's start`
      : `the first video frame (at ${s(v.firstMs)}) is not a keyframe; the first keyframe ${first === undefined ? 'never comes' : `comes at ${s(first)}`}`;
    add('first-keyframe', late ? 'warning' : 'error', ok,
      `${what} (limit ${o.maxFirstKeyframeS} s)${late ? '; joined live, so the stream\'s real start was not seen: judge this on a server recording' : ''}`,
      'players and ingests decode from a keyframe; the picture stays black until one comes');

    const k = v.keyframeInterval;
    const where = k.fromMs === undefined ? '' : k.toEnd
      ? (v.keyframes === 0 ? ` (no keyframe at all, ${s(k.fromMs)} to the end at ${s(k.toMs)})` : ` after the keyframe at ${s(k.fromMs)}, to the end at ${s(k.toMs)}`)
      : ` between ${s(k.fromMs)} and ${s(k.toMs)}`;
    add('keyframe-interval', 'error', k.maxMs <= o.maxKeyframeIntervalS * 1000,
      `largest keyframe gap ${s(k.maxMs)}${where}; mean ${k.meanMs === undefined ? 'n/a' : s(k.meanMs)}, ${v.keyframes} keyframes (limit ${o.maxKeyframeIntervalS} s)`,
      `${FB}: "Key Frame Size — Recommended 2 seconds. Do not exceed 4 seconds."; ${YT_HEALTH} gopSizeLong: "keyframe frequency of four seconds or less"`);

    const sizes = v.sizes.map((z) => `${z.width}x${z.height} at ${s(z.atMs)} (${z.source})`);
    add('one-size', 'error', v.distinctSizes === 1,
      v.distinctSizes === 0 ? 'no picture size known (no readable SPS)'
        : v.distinctSizes === 1 ? `${v.sizes[0]!.width}x${v.sizes[0]!.height} throughout (${v.configs} sequence header(s))`
          : `${v.distinctSizes} sizes: ${sizes.join(', ')}`,
      `${FB}: "Not change settings mid-broadcast"; best practices: "Changing resolution midstream has negative impact"`);
  } else for (const r of ['first-keyframe', 'keyframe-interval', 'one-size']) skip(r, 'error', 'video', FB);

  const changes = (f.video?.configChanges ?? 0) + (f.audio?.configChanges ?? 0);
  add('one-config', 'warning', changes === 0,
    `${f.video?.configChanges ?? 0} video and ${f.audio?.configChanges ?? 0} audio sequence header change(s) (identical repeats not counted)`,
    `${FB}: "Not change settings mid-broadcast"`);

  // A step of one frame is no gap, however long the frame (AAC at 8 kHz: 128 ms; video at 5 fps: 200 ms).
  const gapLimit = (t: TrackTiming): number => Math.max(o.maxGapMs, 1.5 * (t.expectedStepMs ?? 0));
  const gaps: string[] = [];
  const steps: string[] = [];
  for (const [name, t] of [['audio', a], ['video', v]] as const) {
    if (!t) continue;
    const limit = round1(gapLimit(t));
    const expected = `${name === 'audio' ? 'frame' : 'median'} ${t.expectedStepMs ?? '?'} ms`;
    steps.push(`${name} ${t.maxStepMs} ms (${expected}, limit ${limit} ms)`);
    if (t.maxStepMs > limit) gaps.push(`${name} ${t.maxStepMs} ms before the frame at ${s(t.maxStepAtMs)} (${expected}, limit ${limit} ms)`);
  }
  add('timestamp-gaps', 'error', gaps.length === 0,
    gaps.length ? `gap: ${gaps.join('; ')}` : `largest steps: ${steps.join(', ') || 'no frames'}`,
    'a gap is silence or a frozen picture; ingests may drop the stream or drift the tracks apart');

  const back = [a && a.backwards ? `audio ${a.backwards} time(s), first at ${s(a.firstBackwardsAtMs)}` : '', v && v.backwards ? `video ${v.backwards} time(s), first at ${s(v.firstBackwardsAtMs)}` : ''].filter(Boolean);
  add('timestamps-monotonic', 'error', back.length === 0, back.length ? `timestamps go backwards: ${back.join('; ')}` : 'no timestamp goes backwards in either track',
    'FLV/RTMP timestamps are decoding times and must not decrease within a track');

  const off = f.avOffset;
  const avSource = 'ingests pair audio and video by timestamp as they arrive; a large offset stalls or drops a track';
  if (off === undefined) out.push({ rule: 'av-offset', level: 'error', ok: true, skipped: true, detail: 'not judged: needs audio and video frames', source: avSource });
  else add('av-offset', 'error', off.maxMs <= o.maxAvOffsetMs, `max ${off.maxMs} ms (at ${s(off.atMs)}), p99 ${off.p99Ms} ms (limit ${o.maxAvOffsetMs} ms): how far apart the latest audio and video timestamps are where the file interleaves them; the muxing offset an ingest must buffer, not lip sync`,
    avSource);

  add('max-duration', 'error', f.durationMs <= 8 * 3600 * 1000, `${s(f.durationMs)} (at most 8 h)`, `${FB}: "Not exceed 8 hours"`);
  return out;
}

/** Error-level failures decide; warnings are reported only. */
export function summarize(results: readonly RuleResult[]): { ok: boolean; errors: RuleResult[]; warnings: RuleResult[] } {
  const errors = results.filter((r) => !r.ok && r.level === 'error');
  const warnings = results.filter((r) => !r.ok && r.level === 'warning');
  return { ok: errors.length === 0, errors, warnings };
}
