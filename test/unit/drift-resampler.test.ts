/**
 * The drift resampler against the direct formula: a tone resampled at a ratio near 1 must equal the same
 * tone evaluated at the fractional positions the ratio walks through.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DriftResampler } from '../../plugin/media/timeline/drift-resampler.js';

/** Runs `seconds` of `signal` through the resampler in tick-sized chunks; returns output and positions. */
function run(signal: (x: number) => number, rate: number, seconds: number, ratioAt: (k: number) => number) {
  const r = new DriftResampler();
  const total = rate * seconds;
  const out = new Int16Array(total);
  const positions = new Float64Array(total);
  let fed = 0;
  let x = 0; // the input position of output k (the first output sits on input sample 0)
  for (let k = 0; k < total; ) {
    const n = Math.min(total - k, Math.round(rate * 0.0213)); // one AAC frame's worth per tick
    const ratio = ratioAt(k);
    const need = r.inputNeeded(n, ratio);
    const input = new Int16Array(need);
    for (let i = 0; i < need; i++) input[i] = Math.round(signal(fed + i));
    fed += need;
    r.process(input, out.subarray(k, k + n), n, ratio);
    for (let i = 0; i < n; i++, x += ratio) positions[k + i] = x;
    k += n;
  }
  return { out, positions };
}

function snrDb(out: Int16Array, positions: Float64Array, signal: (x: number) => number, skip: number): number {
  let s = 0;
  let e = 0;
  for (let k = skip; k < out.length; k++) {
    const want = signal(positions[k]!);
    s += want * want;
    e += (out[k]! - want) ** 2;
  }
  return 10 * Math.log10(s / e);
}

const tone = (hz: number, rate: number) => (x: number) => 12000 * Math.sin((2 * Math.PI * hz * x) / rate);

for (const [rate, hz, min] of [[16000, 1000, 65], [16000, 3000, 58], [8000, 1000, 60], [8000, 3000, 35]] as const) {
  for (const ppm of [1000, -1000, 5000, -5000]) {
    test(`${hz} Hz tone at ${rate} Hz through a ${ppm} ppm ratio: SNR over ${min} dB`, () => {
      const f = tone(hz, rate);
      const { out, positions } = run(f, rate, 3, () => 1 + ppm / 1e6);
      const snr = snrDb(out, positions, f, 64);
      assert.ok(snr > min, `SNR ${snr.toFixed(1)} dB`);
    });
  }
}

test('a ratio that changes every tick (the controller at work) leaves no discontinuity', () => {
  const f = tone(1000, 16000);
  const { out, positions } = run(f, 16000, 5, (k) => 1 + 0.004 * Math.sin(k / 3000));
  const snr = snrDb(out, positions, f, 64);
  assert.ok(snr > 65, `SNR ${snr.toFixed(1)} dB`);
});

test('ratio 1 from the start: the output is the input, sample for sample', () => {
  const f = (x: number) => ((x * 7919) % 60001) - 30000;
  const { out } = run(f, 8000, 2, () => 1);
  for (let k = 0; k < out.length; k++) assert.equal(out[k], Math.round(f(k)), `sample ${k}`);
});

test('cost: one call-minute at 16 kHz', () => {
  const f = tone(1000, 16000);
  const t0 = process.cpuUsage();
  run(f, 16000, 60, () => 1.0003);
  const { user, system } = process.cpuUsage(t0);
  // Includes making the test signal (Math.sin per sample) and the bookkeeping.
  console.log(`# a call-minute at 16 kHz through the resampler: ${((user + system) / 1000).toFixed(1)} ms CPU, signal included`);
});
