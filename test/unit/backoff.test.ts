import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelay } from '../../plugin/lib/backoff.js';

test('backoff grows by the factor up to the cap', () => {
  const o = { initialMs: 100, maxMs: 1000, factor: 2, minFraction: 0 };
  const top = (n: number) => backoffDelay(n, o, () => 1);
  assert.deepEqual([0, 1, 2, 3, 4, 10, 100].map(top), [100, 200, 400, 800, 1000, 1000, 1000]);
});

test('jitter stays within [minFraction*cap, cap]', () => {
  const o = { initialMs: 100, maxMs: 1000, factor: 2, minFraction: 0.5 };
  assert.equal(backoffDelay(2, o, () => 0), 200);
  assert.equal(backoffDelay(2, o, () => 1), 400);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(3, o);
    assert.ok(d >= 400 && d <= 800, String(d));
  }
});
