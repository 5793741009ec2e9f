/**
 * The cluster registry against a real Redis (Debian's redis-server): three nodes in this process, each
 * with its own connection; one of them reaches Redis through a proxy the test can cut (a partition, or a
 * node that died, as the others see it).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RedisRegistry } from '../../adapters/redis/redis-registry.js';
import type { CallRecord, RegistryEvents } from '../../plugin/cluster/registry.js';
import { createLogger } from '../../plugin/lib/log.js';
import { waitFor } from '../helpers/app.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';

const LEASE_MS = 1500;
const log = createLogger({ level: 'silent' });
let redis: TestRedis;
let proxy: Awaited<ReturnType<typeof tcpProxy>>;
const nodes: RedisRegistry[] = [];
let cluster = 0;

function node(name: string, o: { url?: string; maxCalls?: number; rate?: number; headroom?: number; max?: number } = {}): RedisRegistry {
  const r = new RedisRegistry({
    url: o.url ?? redis.url, cluster: `t${cluster}`, name, log, leaseMs: LEASE_MS,
    maxCalls: o.maxCalls ?? 25, startupRatePerSec: o.rate ?? 1000,
    self: () => ({ url: `http://${name}.invalid`, headroom: o.headroom ?? 1, max: o.max ?? 100, calls: 0 }),
  });
  nodes.push(r);
  return r;
}

/** Every event of a kind from several nodes, in one list. */
function collect<K extends keyof RegistryEvents>(regs: RedisRegistry[], kind: K): RegistryEvents[K][0][] {
  const out: RegistryEvents[K][0][] = [];
  for (const r of regs) (r as unknown as { on(k: K, f: (e: RegistryEvents[K][0]) => void): void }).on(kind, (e) => out.push(e));
  return out;
}

const rec = (callId: string, status = 'ESTABLISHED'): CallRecord => ({ callId, node: '', status, view: { callId, status, events: [], sessionId: `s-${callId}` } });

before(async () => {
  redis = await startRedis();
  proxy = await tcpProxy(redis.port);
});
after(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await proxy.close();
  await redis.stop();
});

test('three nodes join; 30 startups at once under MAX_CALLS=25 take exactly 25 places; a callId is taken once', async () => {
  cluster++;
  const [a, b, c] = [node('a'), node('b'), node('c')];
  await Promise.all([a.start(), b.start(), c.start()]);
  assert.deepEqual((await a.nodes()).map((n) => n.name).sort(), ['a', 'b', 'c']);
  const regs = [a, b, c];
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => regs[i % 3]!.reserve(`call-${i}`)));
  assert.equal(results.filter((r) => r.ok).length, 25);
  assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && r.why === 'capacity'));
  const dup = await Promise.all([a.reserve('same'), b.reserve('same')]);
  // The cluster is full: free one place, then two nodes race for one callId.
  await a.release('call-0');
  await b.release('call-1'); // not b's: stays
  const race = await Promise.all([a.reserve('same'), b.reserve('same'), c.reserve('same')]);
  assert.equal(race.filter((r) => r.ok).length, 1, JSON.stringify({ dup, race }));
  assert.ok(race.some((r) => !r.ok && r.why === 'conflict'));
  await Promise.all(regs.map((r) => r.stop()));
});

test('placement: a burst spreads by headroom, each node under its own cap, and a node to skip is skipped', async () => {
  cluster++;
  // Headroom 0.30, 0.20 and 0.10 cores, a call reckoned at CALL_CORES (0.007): the first 15 go to a, then a and b share.
  const [a, b, c] = [node('a', { headroom: 0.3, maxCalls: 100 }), node('b', { headroom: 0.2, max: 12, maxCalls: 100 }), node('c', { headroom: 0.1, maxCalls: 100 })];
  await Promise.all([a.start(), b.start(), c.start()]);
  const placed = await Promise.all(Array.from({ length: 30 }, (_, i) => c.place(`p-${i}`)));
  const count = (r: RedisRegistry) => placed.filter((p) => p.ok && p.node === r.nodeId).length;
  assert.ok(placed.every((p) => p.ok));
  assert.ok(count(a) > count(b) && count(b) >= count(c), `a ${count(a)}, b ${count(b)}, c ${count(c)}`);
  assert.equal(count(a) + count(b) + count(c), 30);
  const skipA = await c.place('p-skip', [a.nodeId]);
  assert.ok(skipA.ok && skipA.node !== a.nodeId);
  const load = new Map((await c.nodes()).map((n) => [n.id, n.load]));
  assert.equal(load.get(a.nodeId), count(a));
  assert.equal(load.get(skipA.node), (skipA.node === b.nodeId ? count(b) : count(c)) + 1);
  // b at its cap of 12: never given more.
  await Promise.all(Array.from({ length: 20 }, (_, i) => b.place(`q-${i}`, [a.nodeId])));
  assert.equal((await b.nodes()).find((n) => n.id === b.nodeId)!.load, 12);
  await Promise.all([a, b, c].map((r) => r.stop()));
});

test('a node cut off: reported lost once by one reaper, its calls FAILED naming it, one hook event; it fences itself and rejoins new', async () => {
  cluster++;
  const [a, b] = [node('a'), node('b')];
  const c = node('c', { url: `redis://127.0.0.1:${proxy.port}` });
  await Promise.all([a.start(), b.start(), c.start()]);
  for (const id of ['c1', 'c2', 'c3']) assert.ok((await c.reserve(id)).ok);
  assert.ok((await a.reserve('a1')).ok);
  await c.putCalls([rec('c1'), rec('c2'), rec('c3', 'RING')]);
  await a.putCalls([rec('a1')]);
  const lost = collect([a, b], 'lost');
  const events = collect([a, b], 'event');
  const fenced = collect([c], 'fenced');
  const oldId = c.nodeId;
  const cutAt = Date.now();
  proxy.cut(true);
  await waitFor(async () => lost.length > 0 && events.length >= 3, 4 * LEASE_MS, 'the lost node reported').catch((e) => { console.log({ lost, events, fenced }); throw e; });
  const reportedMs = Date.now() - cutAt;
  assert.ok(fenced.length === 1 && fenced[0]!.oldId === oldId, 'the cut-off node fenced itself');
  await new Promise((r) => setTimeout(r, 1500)); // any second report would have come by now
  assert.equal(lost.length, 1);
  assert.deepEqual(lost[0]!.calls.map((x) => x.callId).sort(), ['c1', 'c2', 'c3']);
  assert.equal(events.length, 3, 'one hook event per call, across the cluster');
  for (const e of events) {
    assert.equal(e.body.status, 'FAILED');
    assert.match(String(e.body.info), /node c \(c#[0-9a-f]+\) lost/);
    assert.equal(e.body.nodeId, 'c');
  }
  const all = await b.calls();
  assert.deepEqual(all.filter((x) => x.status === 'FAILED').map((x) => x.callId).sort(), ['c1', 'c2', 'c3']);
  assert.equal(all.find((x) => x.callId === 'a1')?.status, 'ESTABLISHED', 'no other call disturbed');
  // Their places are free again; the lost node's callIds stay taken while their records are shown.
  assert.ok((await a.reserve('new-1')).ok);
  assert.equal((await a.reserve('c1')).ok, false);
  // Back on the network: c is someone new, and its old self's writes are refused.
  proxy.cut(false);
  await waitFor(async () => (await a.nodes()).some((n) => n.id === c.nodeId), 5000, 'c back under a new id');
  assert.notEqual(c.nodeId, oldId);
  await c.putCalls([rec('c1', 'ESTABLISHED')]);
  assert.equal((await a.call('c1'))?.status, 'FAILED', 'a reaped call is never shown live again');
  console.log(`  cut-off node reported lost after ${reportedMs} ms (lease ${LEASE_MS} ms)`);
  await Promise.all([a, b, c].map((r) => r.stop()));
});

test('Redis restarted mid-call: nodes re-register, put their calls back, and nobody is fenced', async () => {
  cluster++;
  const [a, b] = [node('a'), node('b')];
  await Promise.all([a.start(), b.start()]);
  const fenced = collect([a, b], 'fenced');
  const resets = collect([a, b], 'reset');
  // The app's answer to 'reset': take its places again and put its records back.
  for (const r of [a, b]) r.on('reset', () => void r.reserve(`${r.nodeId}-call`).then(() => r.putCalls([rec(`${r.nodeId}-call`)])));
  for (const r of [a, b]) {
    await r.reserve(`${r.nodeId}-call`);
    await r.putCalls([rec(`${r.nodeId}-call`)]);
  }
  await redis.restart(200);
  await waitFor(async () => resets.length === 2, 3 * LEASE_MS, 'both nodes saw the reset');
  await waitFor(async () => (await a.calls()).length === 2, 2000, 'calls back');
  assert.equal(fenced.length, 0);
  assert.equal((await a.nodes()).length, 2);
  await Promise.all([a, b].map((r) => r.stop()));
});

test('the startup rate holds for the cluster, not per node', async () => {
  cluster++;
  const [a, b] = [node('a', { rate: 5 }), node('b', { rate: 5 })];
  await Promise.all([a.start(), b.start()]);
  const r = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).takeStartup()));
  // Burst of twice the rate, plus at most one token refilled meanwhile.
  const ok = r.filter((x) => x.ok).length;
  assert.ok(ok >= 10 && ok <= 11, `took ${ok}`);
  const refused = r.find((x) => !x.ok);
  assert.ok(refused && !refused.ok && refused.why === 'rate' && (refused.retryInMs ?? 0) > 0);
  await Promise.all([a, b].map((x) => x.stop()));
});
