/**
 * Checking a published stream the way a viewer's player would: record it from nginx-rtmp with ffmpeg,
 * then read its packets (timestamps), its codec, and its decoded audio (dominant frequency).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Start recording a live RTMP URL to an FLV file (it waits for the publisher if it has not started).
 * nginx-rtmp keeps players connected after an unpublish, and ffmpeg then sits in a read that no signal
 * interrupts: a short read timeout (4 s without data) ends the recording; packets are flushed as written.
 */
export function recordRtmp(url: string, file: string): { child: ChildProcess; stop(): Promise<void> } {
  const child = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-rw_timeout', '4000000', '-analyzeduration', '1000000', '-i', url, '-c', 'copy', '-copyts', '-flush_packets', '1', '-f', 'flv', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = once(child, 'exit');
  return {
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 6000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Whether nginx-rtmp's stat page lists `name` as being published right now. */
export async function isPublished(statUrl: string, name: string): Promise<boolean> {
  const xml = await (await fetch(statUrl)).text();
  for (const m of xml.matchAll(/<stream>([\s\S]*?)<\/stream>/g)) {
    if (m[1]!.includes(`<name>${name}</name>`) && m[1]!.includes('<publishing/>')) return true;
  }
  return false;
}

export interface AudioStreamInfo {
  codec: string;
  profile: string;
  sampleRate: number;
  channels: number;
  /** Packet timestamps (s). */
  pts: number[];
}

export async function audioInfo(file: string): Promise<AudioStreamInfo> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_streams', '-show_packets', '-show_entries', 'stream=codec_name,profile,sample_rate,channels:packet=pts_time', '-of', 'json', file], { maxBuffer: 64 * 1024 * 1024 });
  const j = JSON.parse(stdout) as { streams: { codec_name: string; profile: string; sample_rate: string; channels: number }[]; packets: { pts_time: string }[] };
  const s = j.streams[0];
  if (!s) throw new Error(`no audio stream in ${file}`);
  return { codec: s.codec_name, profile: s.profile, sampleRate: Number(s.sample_rate), channels: s.channels, pts: j.packets.map((p) => Number(p.pts_time)) };
}

/** Largest gap between consecutive audio packets, minus one packet's own duration, in ms. */
export function maxTimestampGapMs(pts: number[], frameMs: number): number {
  let max = 0;
  for (let i = 1; i < pts.length; i++) max = Math.max(max, (pts[i]! - pts[i - 1]!) * 1000 - frameMs);
  return max;
}

/** Decode a file's audio to mono float samples at `rate`. */
export async function decodePcm(file: string, rate: number): Promise<Float32Array> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-loglevel', 'error', '-i', file, '-ac', '1', '-ar', String(rate), '-f', 'f32le', 'pipe:1'], {
    encoding: 'buffer', maxBuffer: 256 * 1024 * 1024,
  });
  const buf = stdout as unknown as Buffer;
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Power at one frequency (Goertzel). */
function goertzel(x: Float32Array, start: number, n: number, freq: number, rate: number): number {
  const k = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (let i = start; i < start + n; i++) {
    const s0 = x[i]! + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - k * s1 * s2;
}

/**
 * The dominant frequency between lo and hi Hz over a window, found by a coarse scan then a fine one,
 * and how much of the window's energy sits within ±2% of it.
 */
export function dominantFrequency(x: Float32Array, rate: number, opts: { start: number; seconds: number; lo?: number; hi?: number }): { freq: number; share: number } {
  const n = Math.min(Math.floor(opts.seconds * rate), x.length - opts.start);
  const scan = (from: number, to: number, step: number) => {
    let best = from;
    let bestP = -1;
    for (let f = from; f <= to; f += step) {
      const p = goertzel(x, opts.start, n, f, rate);
      if (p > bestP) {
        bestP = p;
        best = f;
      }
    }
    return { best, bestP };
  };
  const coarse = scan(opts.lo ?? 100, opts.hi ?? 4000, 10);
  const fine = scan(coarse.best - 10, coarse.best + 10, 1);
  // Energy share: peak band power relative to total energy (Parseval: sum x² * n / 2 for a bin's scale).
  let energy = 0;
  for (let i = opts.start; i < opts.start + n; i++) energy += x[i]! * x[i]!;
  let band = 0;
  for (let f = fine.best * 0.98; f <= fine.best * 1.02; f += rate / n) band += goertzel(x, opts.start, n, f, rate);
  const share = energy > 0 ? Math.min(1, (2 * band) / (n * energy)) : 0;
  return { freq: fine.best, share };
}

/** RMS level of a window (0 = silence). */
export function rms(x: Float32Array, start: number, n: number): number {
  let s = 0;
  const end = Math.min(x.length, start + n);
  for (let i = start; i < end; i++) s += x[i]! * x[i]!;
  return Math.sqrt(s / Math.max(1, end - start));
}

export interface ToneContinuity {
  /** Longest run of blocks whose level fell under a quarter of the tone's (a gap), ms. */
  longestGapMs: number;
  /** Where the tone's phase jumped (a skip or an insertion that kept the level): s, and the jump in radians. */
  phaseJumps: { at: number; rad: number }[];
  /** The tone's mean frequency over the span (Hz): a sender clock `ppm` off moves it by as much. */
  freqHz: number;
  blocks: number;
}

/**
 * Is a steady tone continuous from `fromSec` to `toSec`? Demodulates it in 2 ms blocks (two periods of
 * 1 kHz): each block's level finds gaps, the block-to-block phase step finds skips that keep the level
 * (audio dropped or repeated). The step is compared with its neighbours' median, so a tone a few Hz off
 * (a drifting sender) or slowly changing in pitch (drift being absorbed) is not a jump.
 * A skip of a whole number of periods is invisible to it: the caller also checks the app's counters.
 */
export function toneContinuity(x: Float32Array, rate: number, hz: number, fromSec: number, toSec: number): ToneContinuity {
  const block = Math.round(rate / 500);
  const first = Math.floor(fromSec * rate);
  const count = Math.floor((Math.min(x.length, toSec * rate) - first) / block);
  const level = new Float64Array(count);
  const phase = new Float64Array(count);
  for (let b = 0; b < count; b++) {
    let re = 0;
    let im = 0;
    for (let i = first + b * block, end = i + block; i < end; i++) {
      const w = (2 * Math.PI * hz * i) / rate;
      re += x[i]! * Math.cos(w);
      im -= x[i]! * Math.sin(w);
    }
    level[b] = (2 * Math.hypot(re, im)) / block;
    phase[b] = Math.atan2(im, re);
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
  const typical = median(Array.from(level));
  const wrap = (a: number) => a - 2 * Math.PI * Math.round(a / (2 * Math.PI));
  const step = new Float64Array(count);
  for (let b = 1; b < count; b++) step[b] = wrap(phase[b]! - phase[b - 1]!);
  let longest = 0;
  let run = 0;
  const phaseJumps: { at: number; rad: number }[] = [];
  let stepSum = 0;
  for (let b = 0; b < count; b++) {
    run = level[b]! < typical / 4 ? run + 1 : 0;
    longest = Math.max(longest, run);
    if (b === 0 || run > 0 || level[b - 1]! < typical / 4) continue;
    const around: number[] = [];
    for (let k = Math.max(1, b - 25); k < Math.min(count, b + 26); k++) if (k !== b) around.push(step[k]!);
    const expected = median(around);
    const jump = wrap(step[b]! - expected);
    stepSum += step[b]!;
    if (Math.abs(jump) > 0.3) phaseJumps.push({ at: (first + b * block) / rate, rad: Math.round(jump * 100) / 100 });
  }
  const freqHz = hz + (stepSum / Math.max(1, count - 1)) * (rate / block) / (2 * Math.PI);
  return { longestGapMs: (longest * block * 1000) / rate, phaseJumps, freqHz, blocks: count };
}
