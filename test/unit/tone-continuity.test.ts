/** The tone-continuity check the drift tests rely on: it must see gaps and skips, and nothing else. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toneContinuity } from '../helpers/audio-analysis.js';

const RATE = 48000;
/** `seconds` of a tone at `hz`, its phase advanced by `skip(i)` samples from sample i on, silent where `mute(i)`. */
function tone(hz: number, seconds: number, skip: (i: number) => number = () => 0, mute: (i: number) => boolean = () => false): Float32Array {
  const x = new Float32Array(RATE * seconds);
  for (let i = 0; i < x.length; i++) x[i] = mute(i) ? 0 : 0.3 * Math.sin((2 * Math.PI * hz * (i + skip(i))) / RATE);
  return x;
}

test('a clean tone a few Hz off (a drifting sender): no gap, no jump, its frequency measured', () => {
  const r = toneContinuity(tone(1005, 10), RATE, 1000, 1, 9);
  assert.equal(r.phaseJumps.length, 0, JSON.stringify(r.phaseJumps));
  assert.ok(r.longestGapMs <= 2, String(r.longestGapMs));
  assert.ok(Math.abs(r.freqHz - 1005) < 0.5, String(r.freqHz));
});

test('a skip of 0.2 ms (10 samples at 48 kHz) is one jump, where it happened', () => {
  const r = toneContinuity(tone(1000, 6, (i) => (i >= 3 * RATE ? 10 : 0)), RATE, 1000, 1, 5);
  assert.equal(r.phaseJumps.length, 1, JSON.stringify(r.phaseJumps));
  assert.ok(Math.abs(r.phaseJumps[0]!.at - 3) < 0.005);
});

test('12 ms of silence is a 12 ms gap (to the 2 ms block)', () => {
  const r = toneContinuity(tone(1000, 6, undefined, (i) => i >= 3 * RATE && i < 3 * RATE + 0.012 * RATE), RATE, 1000, 1, 5);
  assert.ok(r.longestGapMs >= 10 && r.longestGapMs <= 14, String(r.longestGapMs));
});
