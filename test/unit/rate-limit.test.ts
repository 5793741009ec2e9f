import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from '../../plugin/lib/rate-limit.js';

test('token bucket: a burst, then the sustained rate, and how long to wait', () => {
  const b = new TokenBucket(10, 20, 0);
  let ok = 0;
  for (let i = 0; i < 30; i++) if (b.take(0).ok) ok++;
  assert.equal(ok, 20, 'the burst');
  assert.deepEqual(b.take(0), { ok: false, retryInMs: 100 });
  assert.equal(b.take(100).ok, true, 'one token per 100 ms at 10/s');
  assert.equal(b.take(150).ok, false);
  let later = 0;
  for (let i = 0; i < 100; i++) if (b.take(10_000).ok) later++;
  assert.equal(later, 20, 'never more than the burst, however long it waited');
  assert.throws(() => new TokenBucket(0, 1, 0), RangeError);
});
