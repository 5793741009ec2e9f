/**
 * A/V sync of a recorded stream (an FLV from the RTMP server: AAC + H.264) carrying the "beep/flash"
 * signal of scripts/make-test-media.ts: when does each 1 kHz beep start in the decoded audio, when does
 * each white frame appear in the decoded video, and how far apart are they (as a player would show them,
 * on the file's own timestamps). Also the keyframe spacing, video timestamp gaps and decode errors.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface AvSyncOptions {
  /** Beep frequency (Hz). */
  toneHz?: number;
  /** Audio analysis rate (Hz); a whole number of samples per tone period keeps the demodulator exact. */
  sampleRate?: number;
  /** Onsets this close to each other belong to one beep/flash (s): less than the period, more than a beep. */
  minGapSec?: number;
  /** Pair an audio and a video onset only if they are closer than this (s). */
  maxPairSec?: number;
  /** Beep envelope (linear, 0..1 full scale) below which the audio is taken to have no beeps. */
  minToneAmplitude?: number;
  /** Luma step (0..255) below which the video is taken to have no flashes. */
  minLumaStep?: number;
}

export interface AvPair {
  audio: number;
  video: number;
  /** Audio onset minus video onset, ms: > 0 when the sound comes after the picture. */
  offsetMs: number;
}

export interface VideoFrameInfo {
  pts: number;
  luma: number;
  key: boolean;
  type: string;
}

export interface AvSyncReport {
  /** Beep onsets (s, file timeline), to about a millisecond. */
  audioOnsets: number[];
  /** Flash onsets (s): the pts of the first white frame of each flash. */
  videoOnsets: number[];
  /** Flashes whose first frame came after a hole in the video (s): their onset is unknown, so not paired. */
  hiddenFlashOnsets: number[];
  pairs: AvPair[];
  offsetsMs: number[];
  unpairedAudio: number[];
  unpairedVideo: number[];
  frames: VideoFrameInfo[];
  /** pts (s) of the key frames, and the intervals between them (s). */
  keyframeTimes: number[];
  keyframeIntervals: number[];
  /** Frame pts steps larger than 1.5 times the median step: where and how long (ms). */
  videoGaps: { at: number; ms: number }[];
  /** Median frame pts step (ms). */
  frameStepMs: number;
  /** Lines ffmpeg printed at level error or worse while decoding (audio and video), and their count. */
  decodeErrors: number;
  decodeErrorLines: string[];
  /** Start of the decoded audio (s) in the file timeline, and its length (s). */
  audioStart: number;
  audioSeconds: number;
}

const BIG = { maxBuffer: 512 * 1024 * 1024 } as const;

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => /\[(error|fatal|panic)\]/.test(l));
}

/**
 * Start time (s) of the file's earliest stream. The audio is decoded without -copyts (see decodeAudio), so
 * ffmpeg subtracts it from the audio's timestamps; it is added back so times are on the file's own timeline.
 */
async function startTime(file: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=start_time', '-of', 'json', file]);
  const s = Number((JSON.parse(stdout) as { format?: { start_time?: string } }).format?.start_time);
  return Number.isFinite(s) ? s : 0;
}

/**
 * Mono float PCM at `rate`, sample i at time start + i / rate: aresample async pads any gap with silence
 * (time stays linear in the sample index) and first_pts=0 pads a late audio start to the file start (and
 * trims samples before it). first_pts counts input samples, so it is only used as 0 (no -copyts).
 */
async function decodeAudio(file: string, rate: number): Promise<{ pcm: Float32Array; errors: string[] }> {
  const { stdout, stderr } = await run('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'level+error', '-i', file, '-vn',
    '-af', `aformat=sample_fmts=flt:channel_layouts=mono,aresample=${rate}:async=1:first_pts=0`,
    '-f', 'f32le', 'pipe:1'], { ...BIG, encoding: 'buffer' });
  const buf = stdout as unknown as Buffer;
  const pcm = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  return { pcm, errors: errorLines(stderr.toString()) };
}

/** Each decoded frame's pts, mean luma (0..255 over a 32x18 gray thumbnail), key flag and picture type. */
async function decodeVideo(file: string): Promise<{ frames: VideoFrameInfo[]; errors: string[] }> {
  // showinfo logs at info level; level+ prefixes let errors be told apart from it. -copyts: the file's own
  // timeline (without it, ffmpeg subtracts the file's start from an FLV's or MP4's video, but the video's
  // own start from an MPEG-TS's: 0.35 s off the audio in an SRT capture whose video began at a keyframe).
  const { stderr } = await run('ffmpeg', ['-nostdin', '-hide_banner', '-nostats', '-loglevel', 'level+info', '-copyts', '-i', file, '-an',
    // Frames keep their own timestamps at ms resolution: a variable frame rate (15 fps black, then the
    // caller's 25 fps) is not an error, but in a 1/25 s time base two frames 21 ms apart would collide.
    '-vf', 'scale=32:18,format=gray,showinfo', '-fps_mode', 'passthrough', '-enc_time_base', '1:1000', '-f', 'null', '-'], BIG);
  const frames: VideoFrameInfo[] = [];
  for (const line of stderr.split('\n')) {
    const m = /Parsed_showinfo.*\bn:\s*\d+\s.*\bpts_time:(-?[\d.]+).*\biskey:(\d).*\btype:(\w).*\bmean:\[([\d.]+)/.exec(line);
    if (m) frames.push({ pts: Math.round(Number(m[1]) * 1e6) / 1e6, key: m[2] === '1', type: m[3]!, luma: Number(m[4]) });
  }
  return { frames, errors: errorLines(stderr) };
}

/**
 * Beep onsets: the tone's envelope by quadrature demodulation at toneHz, each product averaged over exactly
 * one tone period centred on the sample (which cancels the 2f term and puts the 50 % point of a step on
 * the step). An onset is where the envelope rises through half the beeps' level after at least minGapSec
 * below it; interpolated between samples.
 */
export function findToneOnsets(pcm: Float32Array, rate: number, toneHz: number, minGapSec: number, minAmplitude: number): number[] {
  const period = Math.round(rate / toneHz);
  const n = pcm.length;
  const ci = new Float64Array(n + 1);
  const cq = new Float64Array(n + 1);
  const w = (2 * Math.PI * toneHz) / rate;
  for (let i = 0; i < n; i++) {
    ci[i + 1] = ci[i]! + pcm[i]! * Math.cos(w * i);
    cq[i + 1] = cq[i]! + pcm[i]! * Math.sin(w * i);
  }
  const env = new Float32Array(n);
  const half = Math.floor(period / 2);
  for (let i = 0; i < n; i++) {
    const a = Math.max(0, i - half);
    const b = Math.min(n, a + period);
    const I = (ci[b]! - ci[a]!) / period;
    const Q = (cq[b]! - cq[a]!) / period;
    env[i] = 2 * Math.sqrt(I * I + Q * Q);
  }
  // The beeps' level: a high percentile, so a few loud samples do not set it.
  const sorted = Float32Array.from(env).sort();
  const level = sorted[Math.floor(sorted.length * 0.995)] ?? 0;
  if (level < minAmplitude) return [];
  const thr = level / 2;
  const gap = Math.round(minGapSec * rate);
  const onsets: number[] = [];
  let lastAbove = -Infinity;
  for (let i = 1; i < n; i++) {
    if (env[i]! >= thr) {
      if (env[i - 1]! < thr && i - lastAbove > gap) {
        const frac = (thr - env[i - 1]!) / (env[i]! - env[i - 1]!);
        onsets.push((i - 1 + frac) / rate);
      }
      lastAbove = i;
    }
  }
  return onsets;
}

/**
 * Flash onsets: the first frame whose luma crosses half-way from the dark level to the brightest. A bright
 * frame right after a hole in the video (more than 1.5 median frame steps since the one before it, or the
 * very first frame) is not an onset: the flash may have begun while nothing was shown (a loss frozen until
 * the next keyframe), so its time says nothing about sync. Those are returned in `hidden`.
 */
export function findFlashOnsets(frames: VideoFrameInfo[], minGapSec: number, minStep: number): number[] {
  return flashOnsets(frames, minGapSec, minStep).onsets;
}

function flashOnsets(frames: VideoFrameInfo[], minGapSec: number, minStep: number): { onsets: number[]; hidden: number[] } {
  const none = { onsets: [], hidden: [] };
  if (frames.length === 0) return none;
  const maxStep = 1.5 * median(frames.slice(1).map((f, i) => f.pts - frames[i]!.pts));
  const lumas = frames.map((f) => f.luma).sort((a, b) => a - b);
  const dark = lumas[Math.floor(lumas.length * 0.05)]!;
  const bright = lumas[lumas.length - 1]!;
  if (bright - dark < minStep) return none;
  const thr = (dark + bright) / 2;
  const onsets: number[] = [];
  const hidden: number[] = [];
  let lastAbove = -Infinity;
  frames.forEach((f, i) => {
    if (f.luma < thr) return;
    const prev = frames[i - 1];
    if ((prev === undefined || prev.luma < thr) && f.pts - lastAbove > minGapSec) {
      if (prev === undefined || f.pts - prev.pts > maxStep) hidden.push(f.pts);
      else onsets.push(f.pts);
    }
    lastAbove = f.pts;
  });
  return { onsets, hidden };
}

/** Pair each video onset with the nearest unused audio onset within maxPairSec. */
export function pairOnsets(audio: number[], video: number[], maxPairSec: number): { pairs: AvPair[]; unpairedAudio: number[]; unpairedVideo: number[] } {
  const used = new Set<number>();
  const pairs: AvPair[] = [];
  const unpairedVideo: number[] = [];
  for (const v of video) {
    let best = -1;
    for (let i = 0; i < audio.length; i++) {
      if (used.has(i) || Math.abs(audio[i]! - v) > maxPairSec) continue;
      if (best < 0 || Math.abs(audio[i]! - v) < Math.abs(audio[best]! - v)) best = i;
    }
    if (best < 0) {
      unpairedVideo.push(v);
      continue;
    }
    used.add(best);
    pairs.push({ audio: audio[best]!, video: v, offsetMs: (audio[best]! - v) * 1000 });
  }
  return { pairs, unpairedAudio: audio.filter((_, i) => !used.has(i)), unpairedVideo };
}

function median(xs: number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function analyzeAvSync(file: string, opts: AvSyncOptions = {}): Promise<AvSyncReport> {
  const toneHz = opts.toneHz ?? 1000;
  const rate = opts.sampleRate ?? 16000;
  const minGapSec = opts.minGapSec ?? 0.5;
  const maxPairSec = opts.maxPairSec ?? 0.5;
  const start = await startTime(file);
  const [audio, video] = await Promise.all([decodeAudio(file, rate), decodeVideo(file)]);
  const audioOnsets = findToneOnsets(audio.pcm, rate, toneHz, minGapSec, opts.minToneAmplitude ?? 0.02).map((t) => t + start);
  const { onsets: videoOnsets, hidden: hiddenFlashOnsets } = flashOnsets(video.frames, minGapSec, opts.minLumaStep ?? 60);
  const { pairs, unpairedAudio, unpairedVideo } = pairOnsets(audioOnsets, videoOnsets, maxPairSec);

  const keyframeTimes = video.frames.filter((f) => f.key).map((f) => f.pts);
  const keyframeIntervals = keyframeTimes.slice(1).map((t, i) => Math.round((t - keyframeTimes[i]!) * 1e6) / 1e6);
  const steps = video.frames.slice(1).map((f, i) => Math.round((f.pts - video.frames[i]!.pts) * 1e6) / 1e3);
  const frameStepMs = median(steps);
  const videoGaps = steps.flatMap((ms, i) => (ms > 1.5 * frameStepMs ? [{ at: video.frames[i]!.pts, ms }] : []));
  const decodeErrorLines = [...audio.errors, ...video.errors];
  return {
    audioOnsets, videoOnsets, hiddenFlashOnsets, pairs, offsetsMs: pairs.map((p) => p.offsetMs), unpairedAudio, unpairedVideo,
    frames: video.frames, keyframeTimes, keyframeIntervals, videoGaps, frameStepMs,
    decodeErrors: decodeErrorLines.length, decodeErrorLines,
    audioStart: start, audioSeconds: audio.pcm.length / rate,
  };
}
