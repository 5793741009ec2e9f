import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Resampler } from '../../plugin/media/encode/aac/resample.js';
import { decodeAdts, encodeNative, hasFfmpeg, toneAmplitude } from '../helpers/aac-quality.js';

// The upsampler's level: flat passband and exact DC gain for every call rate → AAC rate, alone and
// through the whole encoder (whose MDCT zeroing above the input's Nyquist removes the images).

const pairs: [number, number][] = [
  [8000, 48000],
  [16000, 48000],
  [8000, 44100],
  [16000, 44100],
];
const fractions = [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45]; // of the input rate
const AMP = 10000;

function resampleAll(x: Float64Array | Int16Array, inRate: number, outRate: number): Float64Array {
  const rs = new Resampler(inRate, outRate);
  rs.write(x);
  rs.end();
  const out = new Float64Array(Math.ceil((x.length * outRate) / inRate));
  assert.equal(rs.read(out, 0, out.length), out.length);
  return out;
}

function sine(rate: number, n: number, freq: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = AMP * Math.sin((2 * Math.PI * freq * i) / rate);
  return x;
}

for (const [inRate, outRate] of pairs) {
  test(`resampler ${inRate}→${outRate}: DC gain exact, passband within ±0.1 dB up to 0.45·${inRate}`, (t) => {
    const rs = new Resampler(inRate, outRate);
    // DC: the mean over whole periods of the output's phase pattern (up samples) is the input.
    const dc = resampleAll(new Int16Array(inRate).fill(12345), inRate, outRate);
    const period = rs.up;
    const from = Math.ceil(outRate / 4 / period) * period;
    const to = from + Math.floor(outRate / 2 / period) * period;
    let sum = 0;
    for (let i = from; i < to; i++) sum += dc[i]!;
    assert.ok(Math.abs(sum / (to - from) / 12345 - 1) < 1e-12, `DC gain ${sum / (to - from) / 12345}`);
    // Passband: the fitted amplitude of the tone itself (an image is a different frequency).
    let worst = 0;
    for (const frac of fractions) {
      const f = frac * inRate;
      const y = resampleAll(sine(inRate, inRate, f), inRate, outRate);
      const db = 20 * Math.log10(toneAmplitude(y, f, outRate, outRate / 4, (3 * outRate) / 4) / AMP);
      assert.ok(Math.abs(db) <= 0.1, `${f} Hz: ${db.toFixed(4)} dB`);
      if (Math.abs(db) > Math.abs(worst)) worst = db;
    }
    t.diagnostic(`largest passband deviation ${worst.toFixed(5)} dB`);
  });

  test(`encoder ${inRate}→${outRate}, 64 kb/s, decoded by ffmpeg: tones up to 0.45·${inRate} keep their level within ±0.1 dB`, { skip: hasFfmpeg ? false : 'ffmpeg not installed' }, (t) => {
    // One stream: half a second of each tone; each is measured in its middle quarter second.
    const seg = inRate / 2;
    const x = new Int16Array(seg * fractions.length);
    fractions.forEach((frac, k) => x.set(Int16Array.from(sine(inRate, seg, frac * inRate), Math.round), k * seg));
    const dec = decodeAdts(encodeNative(x, inRate, outRate).stream).subarray(1024); // the priming frame
    const outSeg = outRate / 2;
    let worst = 0;
    fractions.forEach((frac, k) => {
      const f = frac * inRate;
      const at = k * outSeg;
      const db = 20 * Math.log10(toneAmplitude(dec.subarray(at), f, outRate, Math.floor(outSeg / 4), Math.floor((3 * outSeg) / 4)) / AMP);
      assert.ok(Math.abs(db) <= 0.1, `${f} Hz: ${db.toFixed(4)} dB`);
      if (Math.abs(db) > Math.abs(worst)) worst = db;
    });
    t.diagnostic(`largest level deviation ${worst.toFixed(4)} dB`);
  });
}
