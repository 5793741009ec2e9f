/**
 * Measuring AAC quality on real speech: synthesize speech with ffmpeg's flite source, encode it with
 * our encoder and with ffmpeg's (`-aac_coder fast`), decode both with ffmpeg at the output rate, align
 * each sample-exact against an ideal upsampling of the input (cross-correlation), and report SNR and
 * level (least-squares gain of decoded on reference).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AAC_SAMPLE_RATES } from '../../plugin/media/encode/adts.js';
import { AacLcEncoder } from '../../plugin/media/encode/aac/encoder.js';

const filters = spawnSync('ffmpeg', ['-hide_banner', '-filters'], { encoding: 'utf8' });
export const hasFfmpeg = filters.status === 0;
export const hasFfmpegFlite = hasFfmpeg && /\bflite\b/.test(filters.stdout);

const TEXT = [
  'The quick brown fox jumps over the lazy dog.',
  'A call comes in from the phone network and is relayed to a live stream.',
  'Please hold while we connect you to the next available agent.',
  'Seven, eight, nine, ten.',
  'She sells sea shells by the sea shore, and the shells she sells are surely sea shells.',
  'Thank you for calling; your call is important to us.',
  'Audio quality matters for speech intelligibility, especially the fricatives and sibilants like s, sh, f and th.',
  'Goodbye.',
].join(' ');

function ffmpeg(args: string[], input?: Buffer): Buffer {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', ...args], { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${r.stderr.toString()}`);
  return r.stdout;
}

function asInt16(b: Buffer): Int16Array {
  const copy = Buffer.from(b);
  return new Int16Array(copy.buffer, copy.byteOffset, copy.length >> 1);
}

/** ~30 s of synthesized speech (flite, voice slt, 16 kHz native), mono s16 at `rate`, cached in `dir`. */
export function speech(dir: string, rate: 8000 | 16000): Int16Array {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `speech-${rate}.s16`);
  if (!existsSync(file)) {
    // flite's own level: about −16.5 dBFS RMS, peaks at −3 dBFS.
    const pcm = ffmpeg(['-f', 'lavfi', '-i', `flite=text='${TEXT}':voice=slt`, '-ac', '1', '-ar', String(rate), '-f', 's16le', 'pipe:1']);
    const part = `${file}.${process.pid}.part`; // concurrent runs: each writes its own, rename is atomic
    writeFileSync(part, pcm);
    renameSync(part, file);
  }
  return asInt16(readFileSync(file));
}

/** ADTS stream (7-byte headers, AAC-LC, no CRC) from raw frames. */
export function adts(frames: Buffer[], sampleRate: number, channels: number): Buffer {
  const rateIndex = AAC_SAMPLE_RATES.indexOf(sampleRate);
  const parts: Buffer[] = [];
  for (const raw of frames) {
    const len = raw.length + 7;
    const h = Buffer.alloc(7);
    h[0] = 0xff;
    h[1] = 0xf1;
    h[2] = (1 << 6) | (rateIndex << 2) | (channels >> 2);
    h[3] = ((channels & 3) << 6) | (len >> 11);
    h[4] = (len >> 3) & 0xff;
    h[5] = ((len & 7) << 5) | 0x1f;
    h[6] = 0xfc;
    parts.push(h, raw);
  }
  return Buffer.concat(parts);
}

export function decodeAdts(stream: Buffer): Int16Array {
  return asInt16(ffmpeg(['-f', 'aac', '-i', 'pipe:0', '-f', 's16le', '-ac', '1', 'pipe:1'], stream));
}

/** Our encoder, fed in 20 ms chunks like the app does: the ADTS stream, the raw frames' bytes, and CPU µs per frame. */
export function encodeNative(pcm: Int16Array, inputRate: number, outputRate = 48000, bitrate = 64000): { stream: Buffer; rawBytes: number; usPerFrame: number } {
  const enc = new AacLcEncoder({ inputRate, outputRate, channels: 1, bitrate });
  const chunk = inputRate / 50;
  const frames: Buffer[] = [];
  const t0 = process.cpuUsage();
  for (let at = 0; at < pcm.length; at += chunk) for (const f of enc.encode(pcm.subarray(at, at + chunk))) frames.push(f);
  for (const f of enc.flush()) frames.push(f);
  const t = process.cpuUsage(t0);
  const rawBytes = frames.reduce((sum, f) => sum + f.length, 0);
  return { stream: adts(frames, outputRate, 1), rawBytes, usPerFrame: (t.user + t.system) / frames.length };
}

/** ffmpeg's encoder the way adapters/ffmpeg/aac-encoder.ts runs it (swr resampling, `-aac_coder fast`). */
export function encodeFfmpeg(pcm: Int16Array, inputRate: number, outputRate = 48000, bitrate = 64000, coder = 'fast'): Buffer {
  const input = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  return ffmpeg(['-f', 's16le', '-ar', String(inputRate), '-ac', '1', '-i', 'pipe:0', '-c:a', 'aac', '-aac_coder', coder, '-b:a', String(bitrate), '-ar', String(outputRate), '-ac', '1', '-f', 'adts', 'pipe:1'], input);
}

/** Reference upsampling: long Kaiser-windowed sinc (128 input taps), cutoff at the input's Nyquist. */
export function idealResample(x: Int16Array, inRate: number, outRate: number): Float64Array {
  if (inRate === outRate) return Float64Array.from(x);
  const half = 64;
  const beta = 10;
  const i0 = (v: number): number => {
    let sum = 1;
    let term = 1;
    for (let k = 1; k < 60; k++) {
      term *= (v / (2 * k)) ** 2;
      sum += term;
    }
    return sum;
  };
  let g = outRate;
  for (let b = inRate; b !== 0; ) [g, b] = [b, g % b];
  const phases = outRate / g;
  const table = new Float64Array(phases * 2 * half);
  for (let p = 0; p < phases; p++) {
    const frac = ((p * inRate) % outRate) / outRate;
    for (let j = 0; j < 2 * half; j++) {
      const d = frac + half - 1 - j;
      const sinc = d === 0 ? 1 : Math.sin(Math.PI * d) / (Math.PI * d);
      const rr = d / half;
      table[p * 2 * half + j] = (sinc * i0(beta * Math.sqrt(Math.max(0, 1 - rr * rr)))) / i0(beta);
    }
  }
  const n = Math.ceil((x.length * outRate) / inRate);
  const out = new Float64Array(n);
  for (let m = 0; m < n; m++) {
    const base = Math.floor((m * inRate) / outRate);
    const row = (m % phases) * 2 * half;
    let s = 0;
    const lo = Math.max(0, half - 1 - base);
    const hi = Math.min(2 * half, x.length - base + half - 1);
    for (let j = lo; j < hi; j++) s += x[base - half + 1 + j]! * table[row + j]!;
    out[m] = s;
  }
  return out;
}

export interface Quality {
  /** Decoded sample d[i + lag] lines up with reference sample ref[i]. */
  lag: number;
  snrDb: number;
  /** Least-squares gain of the decoded signal on the reference (1 = exact level). */
  gain: number;
  /** RMS of decoded / RMS of reference over the compared span. */
  rmsRatio: number;
}

/**
 * Align `dec` on `ref` by the integer lag in [0, maxLag] that maximizes their cross-correlation over
 * the loudest 48000 reference samples, then SNR and level over the whole overlap (the first and last
 * 2048 reference samples left out: stream edges).
 */
export function measure(dec: ArrayLike<number>, ref: Float64Array, maxLag = 4096): Quality {
  const rate = 48000; // the window, in samples
  let loudAt = 0;
  let loudest = -1;
  for (let at = 0; at + rate <= ref.length; at += rate / 4) {
    let e = 0;
    for (let i = at; i < at + rate; i += 4) e += ref[i]! * ref[i]!;
    if (e > loudest) [loudest, loudAt] = [e, at];
  }
  let lag = 0;
  let best = -Infinity;
  for (let l = 0; l <= maxLag; l++) {
    let c = 0;
    const end = Math.min(loudAt + rate, dec.length - l);
    for (let i = loudAt; i < end; i++) c += dec[i + l]! * ref[i]!;
    if (c > best) [best, lag] = [c, l];
  }
  const from = 2048;
  const to = Math.min(ref.length, dec.length - lag) - 2048;
  let sig = 0;
  let err = 0;
  let dot = 0;
  let dd = 0;
  for (let i = from; i < to; i++) {
    const r = ref[i]!;
    const d = dec[i + lag]!;
    sig += r * r;
    err += (d - r) * (d - r);
    dot += d * r;
    dd += d * d;
  }
  return { lag, snrDb: 10 * Math.log10(sig / err), gain: dot / sig, rmsRatio: Math.sqrt(dd / sig) };
}

/** Least-squares amplitude of the sinusoid at `freq` in x[from, to). */
export function toneAmplitude(x: ArrayLike<number>, freq: number, rate: number, from: number, to: number): number {
  let ss = 0;
  let cc = 0;
  let sc = 0;
  let ys = 0;
  let yc = 0;
  for (let i = from; i < to; i++) {
    const s = Math.sin((2 * Math.PI * freq * i) / rate);
    const c = Math.cos((2 * Math.PI * freq * i) / rate);
    ss += s * s;
    cc += c * c;
    sc += s * c;
    ys += x[i]! * s;
    yc += x[i]! * c;
  }
  const det = ss * cc - sc * sc;
  return Math.hypot((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
}
