/** The single-node side of the cluster port: the in-memory registry, and the CPU headroom a node reports. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CpuHeadroom } from '../../plugin/cluster/headroom.js';
import { InMemoryRegistry } from '../../plugin/cluster/registry.js';

test('in-memory registry: callIds unique, MAX_CALLS places, a released place free again; placement is always this node', async () => {
  const r = new InMemoryRegistry('solo', { maxCalls: 2, self: () => ({ name: 'solo', url: 'http://127.0.0.1:8081/rest-api', headroom: 1, max: 2, calls: 0 }) });
  assert.equal(r.shared, false);
  assert.deepEqual(await r.place('a'), { ok: true, node: 'solo' });
  assert.deepEqual(await r.reserve('a'), { ok: false, why: 'conflict', message: 'callId a already exists' });
  assert.ok((await r.reserve('b')).ok);
  const full = await r.reserve('c');
  assert.ok(!full.ok && full.why === 'capacity');
  await r.release('a');
  assert.ok((await r.reserve('c')).ok);
  assert.equal(await r.owner('c'), 'solo');
  assert.equal(await r.owner('zzz'), undefined);
  assert.deepEqual((await r.nodes()).map((n) => n.id), ['solo']);
  assert.ok((await r.takeStartup()).ok, 'the node\'s own bucket is the limit');
});

test('CPU headroom: between 0 and the cores this process may use, sampled at most once a second', () => {
  let now = 0;
  const h = new CpuHeadroom(() => now);
  assert.ok(h.cores > 0);
  assert.equal(h.sample(), h.cores, 'before a second has passed: nothing measured yet');
  // Burn some CPU over a "second" of the fake clock: the reading is of the real counters, so only its range is known.
  const end = Date.now() + 200;
  while (Date.now() < end) { /* busy */ }
  now = 1000;
  const v = h.sample();
  assert.ok(v >= 0 && v <= h.cores, String(v));
});

test('CPU headroom: the calls it covers are those up through the whole window it measured', () => {
  let now = 0;
  const h = new CpuHeadroom(() => now);
  now = 1000;
  h.sample(3);
  assert.equal(h.coveredCalls(), 0, 'the first window started with none');
  now = 1500;
  h.sample(5); // within the window: no new value
  now = 2000;
  h.sample(6);
  assert.equal(h.coveredCalls(), 3, 'three calls were up all through the second window; the three new ones are not in it yet');
  now = 3000;
  h.sample(2);
  assert.equal(h.coveredCalls(), 2, 'calls that ended within the window are not counted');
});
