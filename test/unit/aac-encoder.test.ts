import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { adts, idealResample } from '../helpers/aac-quality.js';
import { AacLcEncoder } from '../../plugin/media/encode/aac/encoder.js';
import { prng } from '../helpers/prng.js';

// End-to-end checks against a real decoder (the host's ffmpeg), plus a speed print.

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
const needFfmpeg = { skip: hasFfmpeg ? false : 'ffmpeg not installed' };

function decode(frames: Buffer[], sampleRate: number, channels: 1 | 2, outChannels: 1 | 2 = 1, decoder = 'aac'): Int16Array {
  const args = ['-v', 'error', '-err_detect', 'explode', '-c:a', decoder, '-f', 'aac', '-i', 'pipe:0', '-f', 's16le', '-ac', String(outChannels), 'pipe:1'];
  const r = spawnSync('ffmpeg', args, {
    input: adts(frames, sampleRate, channels),
    maxBuffer: 1 << 28,
  });
  assert.equal(r.stderr.toString(), '', 'decoder complaints');
  assert.equal(r.status, 0);
  const out = Buffer.from(r.stdout);
  return new Int16Array(out.buffer, out.byteOffset, out.length / 2);
}

interface Run {
  frames: Buffer[];
  enc: AacLcEncoder;
  /** Samples at the output rate that went in. */
  outSamples: number;
}

function encodeAll(pcm: Int16Array, inputRate: number, outputRate: number, channels: 1 | 2 = 1, bitrate = 64000, chunk = 320): Run {
  const enc = new AacLcEncoder({ inputRate, outputRate, channels, bitrate });
  const frames: Buffer[] = [];
  for (let at = 0; at < pcm.length; at += chunk) frames.push(...enc.encode(pcm.subarray(at, at + chunk)));
  frames.push(...enc.flush());
  return { frames, enc, outSamples: Math.ceil((pcm.length * outputRate) / inputRate) };
}

function tone(rate: number, seconds: number, parts: [freq: number, amp: number][]): Int16Array {
  const x = new Int16Array(Math.round(rate * seconds));
  for (let i = 0; i < x.length; i++) {
    let v = 0;
    for (const [f, a] of parts) v += a * Math.sin((2 * Math.PI * f * i) / rate);
    x[i] = Math.round(v);
  }
  return x;
}

function toneAt(rate: number, n: number, parts: [freq: number, amp: number][]): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) for (const [f, a] of parts) x[i]! += a * Math.sin((2 * Math.PI * f * i) / rate);
  return x;
}

/**
 * Speech-like test signal: seeded noise through three formant resonators, band-limited to 0.42 of the
 * rate (like a telephone channel), gated by a syllable-rate on/off envelope with varying loudness.
 */
function speechLike(rate: number, seconds: number, seed: number): Int16Array {
  const r = prng(seed);
  const n = Math.round(rate * seconds);
  let x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = r() + r() + r() + r() - 2;
  for (const [f, bw] of [
    [500, 90],
    [1500, 130],
    [2500, 200],
  ] as const) {
    const rr = Math.exp((-Math.PI * bw) / rate);
    const a1 = 2 * rr * Math.cos((2 * Math.PI * f) / rate);
    const a2 = -rr * rr;
    let y1 = 0;
    let y2 = 0;
    for (let i = 0; i < n; i++) {
      const y = x[i]! * (1 - rr) + a1 * y1 + a2 * y2;
      y2 = y1;
      y1 = y;
      x[i] = y;
    }
  }
  // Band limit: Blackman-windowed sinc low-pass at 0.42·rate, 127 taps.
  const taps = 127;
  const fc = 0.42;
  const h = new Float64Array(taps);
  for (let j = 0; j < taps; j++) {
    const t = j - (taps - 1) / 2;
    const sinc = t === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * t) / (Math.PI * t);
    const wnd = 0.42 - 0.5 * Math.cos((2 * Math.PI * j) / (taps - 1)) + 0.08 * Math.cos((4 * Math.PI * j) / (taps - 1));
    h[j] = sinc * wnd;
  }
  const lp = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < taps; j++) {
      const k = i + j - (taps - 1) / 2;
      if (k >= 0 && k < n) s += x[k]! * h[j]!;
    }
    lp[i] = s;
  }
  x = lp;
  // Syllables: 120–300 ms on with 15 ms raised-cosine ramps and random loudness, 40–160 ms off.
  const env = new Float64Array(n);
  const ramp = Math.round(0.015 * rate);
  for (let at = Math.round(0.05 * rate); at < n; ) {
    const on = Math.round((0.12 + 0.18 * r()) * rate);
    const level = 0.25 + 0.75 * r();
    for (let i = 0; i < on && at + i < n; i++) {
      const edge = Math.min(i, on - 1 - i);
      env[at + i] = level * (edge < ramp ? 0.5 - 0.5 * Math.cos((Math.PI * edge) / ramp) : 1);
    }
    at += on + Math.round((0.04 + 0.12 * r()) * rate);
  }
  let peak = 0;
  for (let i = 0; i < n; i++) peak = Math.max(peak, Math.abs(x[i]! * env[i]!));
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.round((x[i]! * env[i]! * 16000) / peak);
  return out;
}


function snrDb(decoded: ArrayLike<number>, ref: ArrayLike<number>, from = 0, to = ref.length): number {
  let sig = 0;
  let err = 0;
  for (let i = from; i < to; i++) {
    sig += ref[i]! ** 2;
    err += (decoded[i]! - ref[i]!) ** 2;
  }
  return 10 * Math.log10(sig / err);
}

/** Decoded audio, its 1024-sample priming delay removed, checked for the expected length. */
function decodeAligned(run: Run, outputRate: number, channels: 1 | 2 = 1, outChannels: 1 | 2 = 1): Int16Array {
  const pcm = decode(run.frames, outputRate, channels, outChannels);
  const frames = Math.ceil(run.outSamples / 1024) + 1;
  assert.equal(run.frames.length, frames, 'frame count');
  assert.equal(pcm.length, frames * 1024 * outChannels, 'decoded length');
  return pcm.subarray(1024 * outChannels);
}

/**
 * The rate contract: no frame over maxFrameBits (≤ 6144 per channel, the decoder's buffer), and every
 * frame within frameBits plus what the frames before it left unused, that saving capped at
 * maxFrameBits − frameBits (so any run of frames averages at most one frame's bits over the rate).
 */
function checkBudget(run: Run): void {
  const { frameBits, maxFrameBits, channels } = run.enc;
  assert.ok(maxFrameBits <= 6144 * channels && maxFrameBits <= 2 * frameBits);
  let saved = 0;
  for (const f of run.frames) {
    const bits = f.length * 8;
    assert.ok(bits <= maxFrameBits, `frame of ${f.length} bytes over ${maxFrameBits} bits`);
    assert.ok(bits <= frameBits + saved, `frame of ${f.length} bytes over ${frameBits} + ${saved} saved bits`);
    saved = Math.min(saved + frameBits - bits, maxFrameBits - frameBits);
  }
}

const results: string[] = [];

test('AudioSpecificConfig and option checks', () => {
  assert.deepEqual([...new AacLcEncoder({ inputRate: 16000, outputRate: 48000, channels: 1, bitrate: 64000 }).audioSpecificConfig], [0x11, 0x88]);
  assert.deepEqual([...new AacLcEncoder({ inputRate: 8000, outputRate: 44100, channels: 2, bitrate: 64000 }).audioSpecificConfig], [0x12, 0x10]);
  assert.throws(() => new AacLcEncoder({ inputRate: 16000, outputRate: 32000, channels: 1, bitrate: 64000 }), RangeError);
  assert.throws(() => new AacLcEncoder({ inputRate: 16000, outputRate: 48000, channels: 1, bitrate: 0 }), RangeError);
  assert.throws(() => new AacLcEncoder({ inputRate: 16000, outputRate: 48000, channels: 1, bitrate: 3000 }), RangeError);
  assert.throws(() => new AacLcEncoder({ inputRate: 96000, outputRate: 48000, channels: 1, bitrate: 64000 }), RangeError);
  const enc = new AacLcEncoder({ inputRate: 16000, outputRate: 48000, channels: 1, bitrate: 64000 });
  assert.equal(enc.frameBits, 1360);
  assert.equal(enc.maxFrameBits, 2720);
  assert.equal(new AacLcEncoder({ inputRate: 16000, outputRate: 48000, channels: 1, bitrate: 320000 }).maxFrameBits, 6144, 'within the decoder buffer');
  assert.deepEqual(enc.flush(), [], 'nothing in, nothing out');
});

const toneCases: [string, number, number, [number, number][]][] = [
  ['1 kHz tone, 16k→48k', 16000, 48000, [[1000, 10000]]],
  ['two tones, 16k→48k', 16000, 48000, [[440, 8000], [3100, 4000]]],
  ['1 kHz tone, 8k→48k', 8000, 48000, [[1000, 10000]]],
  ['1 kHz tone, 16k→44.1k', 16000, 44100, [[1000, 10000]]],
  ['two tones, 8k→44.1k', 8000, 44100, [[440, 8000], [3100, 4000]]],
];

for (const [name, inRate, outRate, parts] of toneCases) {
  test(`${name}, mono 64 kbps: decodes cleanly, SNR ≥ 25 dB against the ideal tone`, needFfmpeg, () => {
    const run = encodeAll(tone(inRate, 2, parts), inRate, outRate);
    checkBudget(run);
    const dec = decodeAligned(run, outRate);
    const ref = toneAt(outRate, run.outSamples, parts);
    const snr = snrDb(dec, ref, 1024, run.outSamples - 1024); // skip the on/off edges
    // The level comes through: least-squares gain of the decoded signal on the ideal one.
    let dot = 0;
    let energy = 0;
    for (let i = 1024; i < run.outSamples - 1024; i++) {
      dot += dec[i]! * ref[i]!;
      energy += ref[i]! ** 2;
    }
    const gain = dot / energy;
    results.push(`${name}: SNR ${snr.toFixed(1)} dB, gain ${gain.toFixed(4)}`);
    assert.ok(snr >= 25, `SNR ${snr.toFixed(1)} dB`);
    assert.ok(Math.abs(gain - 1) < 0.01, `gain ${gain}`);
  });
}

const speechCases: [number, number][] = [
  [16000, 48000],
  [8000, 48000],
  [16000, 44100],
  [8000, 44100],
];

for (const [inRate, outRate] of speechCases) {
  test(`speech-like ${inRate}→${outRate}, mono 64 kbps: SNR ≥ 25 dB, bitrate within target`, needFfmpeg, () => {
    const seconds = 5;
    const x = speechLike(inRate, seconds, 1234);
    const run = encodeAll(x, inRate, outRate);
    checkBudget(run);
    const dec = decodeAligned(run, outRate);
    const ref = idealResample(x, inRate, outRate);
    const snr = snrDb(dec, ref);
    const bytes = run.frames.reduce((s, f) => s + f.length, 0);
    const bitrate = (bytes * 8) / (run.frames.length * (1024 / outRate));
    results.push(`speech-like ${inRate}→${outRate}: SNR ${snr.toFixed(1)} dB, ${(bitrate / 1000).toFixed(1)} kbit/s, ${(run.enc.stats.trials / run.enc.stats.frames).toFixed(2)} trials/frame`);
    assert.ok(snr >= 25, `SNR ${snr.toFixed(1)} dB`);
    assert.ok(bitrate <= 64000 * 1.05, `bitrate ${bitrate}`);
  });
}

test('stereo (CPE, all-M/S, empty side): L = R, SNR ≥ 25 dB, costs a few bits more than mono', needFfmpeg, () => {
  const inRate = 16000;
  const outRate = 48000;
  const x = speechLike(inRate, 3, 99);
  const run = encodeAll(x, inRate, outRate, 2);
  checkBudget(run);
  const dec = decodeAligned(run, outRate, 2, 2);
  const left = new Float64Array(dec.length / 2);
  const right = new Float64Array(dec.length / 2);
  for (let i = 0; i < left.length; i++) {
    left[i] = dec[2 * i]!;
    right[i] = dec[2 * i + 1]!;
  }
  for (let i = 0; i < left.length; i++) assert.ok(Math.abs(left[i]! - right[i]!) <= 1, `L ≠ R at ${i}`);
  const snr = snrDb(left, idealResample(x, inRate, outRate));
  results.push(`stereo speech-like 16000→48000: SNR ${snr.toFixed(1)} dB`);
  assert.ok(snr >= 25, `SNR ${snr.toFixed(1)} dB`);
  const mono = encodeAll(x, inRate, outRate, 1);
  const stereoBytes = run.frames.reduce((s, f) => s + f.length, 0);
  const monoBytes = mono.frames.reduce((s, f) => s + f.length, 0);
  assert.ok(stereoBytes <= monoBytes + 4 * run.frames.length, `${stereoBytes} vs ${monoBytes}`);
});

test('the fixed-point aac_fixed decoder (a second implementation) decodes the same audio', needFfmpeg, () => {
  for (const channels of [1, 2] as const) {
    const x = speechLike(16000, 2, 3);
    const run = encodeAll(x, 16000, 48000, channels);
    const a = decode(run.frames, 48000, channels, 1);
    const b = decode(run.frames, 48000, channels, 1, 'aac_fixed');
    assert.equal(b.length, a.length);
    assert.ok(snrDb(b, a) > 60, `float vs fixed decoder: ${snrDb(b, a).toFixed(1)} dB`);
  }
});

test('silence encodes to tiny frames and decodes to silence', needFfmpeg, () => {
  for (const channels of [1, 2] as const) {
    const run = encodeAll(new Int16Array(16000), 16000, 48000, channels);
    for (const f of run.frames) assert.ok(f.length <= 12, `silent frame of ${f.length} bytes`);
    const dec = decodeAligned(run, 48000, channels, channels);
    assert.ok(dec.every((v) => v === 0));
  }
});

test('image rejection: 3.5 kHz tone 8k→48k leaves ≥ 40 dB less energy above 4.2 kHz', needFfmpeg, () => {
  const run = encodeAll(tone(8000, 1, [[3500, 12000]]), 8000, 48000);
  const dec = decodeAligned(run, 48000);
  // DFT power spectrum of a Hann-windowed 8192-sample stretch from the middle.
  const n = 8192;
  const from = 16000;
  const win = new Float64Array(n);
  for (let i = 0; i < n; i++) win[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n);
  let toneEnergy = 0;
  let highEnergy = 0;
  for (let k = 1; k < n / 2; k++) {
    const freq = (k * 48000) / n;
    let re = 0;
    let im = 0;
    // e^{−iwi} by recurrence: one complex multiply per sample instead of two trig calls.
    const cw = Math.cos((2 * Math.PI * k) / n);
    const sw = Math.sin((2 * Math.PI * k) / n);
    let c = 1;
    let sn = 0;
    for (let i = 0; i < n; i++) {
      const v = win[i]! * dec[from + i]!;
      re += v * c;
      im -= v * sn;
      const c2 = c * cw - sn * sw;
      sn = sn * cw + c * sw;
      c = c2;
    }
    const p = re * re + im * im;
    if (freq > 4200) highEnergy += p;
    else if (Math.abs(freq - 3500) < 100) toneEnergy += p;
  }
  const rejection = 10 * Math.log10(toneEnergy / highEnergy);
  results.push(`image rejection 3.5 kHz 8k→48k: ${rejection.toFixed(1)} dB`);
  assert.ok(rejection >= 40, `rejection ${rejection.toFixed(1)} dB`);
});

test('loud and awkward inputs stay decodable at low and high bitrates', needFfmpeg, () => {
  const r = prng(42);
  const noise = new Int16Array(48000);
  for (let i = 0; i < noise.length; i++) noise[i] = Math.round((r() - 0.5) * 65534);
  const square = new Int16Array(16000);
  for (let i = 0; i < square.length; i++) square[i] = (i >> 4) & 1 ? 32767 : -32768;
  for (const [x, inRate] of [
    [noise, 48000],
    [square, 16000],
  ] as const) {
    for (const bitrate of [16000, 64000, 320000]) {
      for (const channels of [1, 2] as const) {
        const run = encodeAll(x, inRate, 48000, channels, bitrate);
        checkBudget(run);
        decodeAligned(run, 48000, channels, channels);
      }
    }
  }
});

test('output does not depend on how the input is chunked; flush resets for a new stream', () => {
  const x = speechLike(16000, 1, 5);
  const a = encodeAll(x, 16000, 44100, 1, 64000, x.length).frames;
  const b = encodeAll(x, 16000, 44100, 1, 64000, 160).frames;
  assert.deepEqual(b, a);
  const enc = new AacLcEncoder({ inputRate: 16000, outputRate: 44100, channels: 1, bitrate: 64000 });
  for (let round = 0; round < 2; round++) {
    const frames = [...enc.encode(x), ...enc.flush()];
    assert.deepEqual(frames, a, `round ${round}`);
  }
});

test('speed: µs per 48 kHz frame of speech-like input (printed, not asserted)', () => {
  const x = speechLike(16000, 20, 77);
  const run = (): number => {
    const enc = new AacLcEncoder({ inputRate: 16000, outputRate: 48000, channels: 1, bitrate: 64000 });
    const t0 = process.cpuUsage();
    for (let at = 0; at < x.length; at += 320) enc.encode(x.subarray(at, at + 320));
    const t = process.cpuUsage(t0);
    return (t.user + t.system) / enc.stats.frames;
  };
  run(); // warm-up: let the JIT settle
  const us = Math.min(run(), run(), run());
  results.push(`speed: ${us.toFixed(1)} µs per frame (16k→48k mono, 64 kbps) ≈ ${((us * 60 * 48000) / 1024 / 1e6).toFixed(3)} CPU-s per call-minute`);
});

test('summary', () => {
  for (const line of results) console.log(line);
});
