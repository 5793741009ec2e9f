import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JitterBuffer } from '../../plugin/media/ingest/jitter-buffer.js';
import type { RtpPacket } from '../../plugin/media/ingest/rtp.js';
import { seqDiff, tsDiff } from '../../plugin/media/ingest/seq.js';

const payload = Buffer.alloc(160);
function pkt(seq: number, ssrc = 1): RtpPacket {
  seq &= 0xffff;
  return { version: 2, padding: false, marker: false, payloadType: 0, sequenceNumber: seq, timestamp: (seq * 160) >>> 0, ssrc, csrcs: [], payload };
}
const seqs = (ps: RtpPacket[]) => ps.map((p) => p.sequenceNumber);

/** received = every way a packet can leave or stay. */
function assertAccounted(jb: JitterBuffer, pendingCandidate = 0): void {
  const s = jb.stats;
  assert.equal(s.received, s.released + s.duplicates + s.late + s.strays + s.overflow + s.depth + pendingCandidate, JSON.stringify(s));
}

test('seq/timestamp arithmetic wraps', () => {
  assert.equal(seqDiff(0, 65535), 1);
  assert.equal(seqDiff(65535, 0), -1);
  assert.equal(seqDiff(100, 100), 0);
  assert.equal(seqDiff(32767, 0), 32767);
  assert.equal(seqDiff(32768, 0), -32768);
  assert.equal(tsDiff(5, 0xfffffffb), 10);
  assert.equal(tsDiff(0xfffffffb, 5), -10);
  assert.equal(tsDiff(0x7fffffff, 0), 0x7fffffff);
});

test('in-order packets pass with zero delay', () => {
  const jb = new JitterBuffer({ depthMs: 100 });
  for (let i = 0; i < 100; i++) {
    const t = 1000 + 20 * i;
    jb.push(pkt(500 + i), t);
    assert.deepEqual(seqs(jb.pop(t)), [500 + i]);
    assert.equal(jb.stats.depth, 0);
  }
  // Several pushed before one pop come out together, still without waiting.
  jb.push(pkt(600), 5000);
  jb.push(pkt(601), 5000);
  assert.deepEqual(seqs(jb.pop(5000)), [600, 601]);
  assert.deepEqual(jb.pop(5000), []);
  const s = jb.stats;
  assert.deepEqual([s.received, s.released, s.lost, s.late, s.duplicates, s.reordered, s.maxDepth], [102, 102, 0, 0, 0, 0, 2]);
  assertAccounted(jb);
});

test('reorder within the depth is fixed', () => {
  const jb = new JitterBuffer({ depthMs: 60 });
  jb.push(pkt(1), 0);
  assert.deepEqual(seqs(jb.pop(0)), [1]);
  jb.push(pkt(3), 20);
  jb.push(pkt(4), 30);
  assert.deepEqual(seqs(jb.pop(30)), []);
  assert.equal(jb.nextReleaseMs(), 80);
  jb.push(pkt(2), 45);
  assert.equal(jb.nextReleaseMs(), 45);
  assert.deepEqual(seqs(jb.pop(45)), [2, 3, 4]);
  assert.deepEqual([jb.stats.lost, jb.stats.reordered, jb.stats.depth], [0, 1, 0]);
  assert.equal(jb.nextReleaseMs(), undefined);
  assertAccounted(jb);
});

test('a gap is declared lost depthMs after the packet behind it arrived', () => {
  const jb = new JitterBuffer({ depthMs: 60 });
  jb.push(pkt(10), 0);
  jb.pop(0);
  jb.push(pkt(13), 20); // 11 and 12 missing
  jb.push(pkt(14), 40);
  assert.deepEqual(seqs(jb.pop(79)), []);
  assert.deepEqual(seqs(jb.pop(80)), [13, 14]);
  assert.equal(jb.stats.lost, 2);
  // Then a second gap, timed from its own head.
  jb.push(pkt(16), 100);
  assert.deepEqual(seqs(jb.pop(159)), []);
  assert.deepEqual(seqs(jb.pop(160)), [16]);
  assert.equal(jb.stats.lost, 3);
  // The lost ones arriving now are late: dropped and counted.
  jb.push(pkt(12), 170);
  jb.push(pkt(15), 170);
  assert.deepEqual(jb.pop(170), []);
  assert.equal(jb.stats.late, 2);
  assertAccounted(jb);
});

test('a gap is given up early when the packet behind it would otherwise come too late for its consumer', () => {
  const jb = new JitterBuffer({ depthMs: 60 });
  jb.push(pkt(10), 0);
  jb.pop(0);
  jb.push(pkt(12), 20); // 11 missing
  const asked: number[] = [];
  // The consumer's deadline: packet 12 must go by 50 ms.
  const overdue = (head: RtpPacket) => (asked.push(head.sequenceNumber), head.sequenceNumber === 12 && now >= 50);
  let now = 30;
  assert.deepEqual(seqs(jb.pop(now, overdue)), []);
  now = 50;
  assert.deepEqual(seqs(jb.pop(now, overdue)), [12]);
  assert.deepEqual([jb.stats.lost, asked], [1, [12, 12]]);
  // Without a deadline, the depth alone decides (as before).
  jb.push(pkt(14), 100);
  assert.deepEqual(seqs(jb.pop(159, () => false)), []);
  assert.deepEqual(seqs(jb.pop(160, () => false)), [14]);
  assertAccounted(jb);
});

test('depth 0 never waits', () => {
  const jb = new JitterBuffer({ depthMs: 0 });
  jb.push(pkt(1), 0);
  jb.push(pkt(3), 0);
  assert.deepEqual(seqs(jb.pop(0)), [1, 3]);
  assert.equal(jb.stats.lost, 1);
});

test('duplicates are counted, held or already released', () => {
  const jb = new JitterBuffer({ depthMs: 100 });
  jb.push(pkt(1), 0);
  jb.pop(0);
  jb.push(pkt(1), 5); // already released
  jb.push(pkt(3), 20);
  jb.push(pkt(3), 21); // held
  assert.deepEqual(jb.pop(21), []);
  jb.push(pkt(2), 22);
  assert.deepEqual(seqs(jb.pop(22)), [2, 3]);
  jb.push(pkt(2), 30);
  assert.deepEqual([jb.stats.duplicates, jb.stats.late, jb.stats.released], [3, 0, 3]);
  assertAccounted(jb);
});

test('wrap 65535 → 0, with reorder across the wrap', () => {
  const jb = new JitterBuffer({ depthMs: 100 });
  const out: number[] = [];
  const order = [65533, 65534, 0, 65535, 2, 1, 3];
  order.forEach((s, i) => {
    jb.push(pkt(s), i * 20);
    out.push(...seqs(jb.pop(i * 20)));
  });
  assert.deepEqual(out, [65533, 65534, 65535, 0, 1, 2, 3]);
  assert.deepEqual([jb.stats.lost, jb.stats.reordered], [0, 2]);
  // A late packet from before the wrap is late, not a jump.
  jb.push(pkt(65530), 200);
  assert.equal(jb.stats.late, 1);
  assert.equal(jb.stats.resyncs, 0);
});

test('big sequence jump resynchronises instead of counting thousands lost', () => {
  const jb = new JitterBuffer({ depthMs: 60 });
  for (let i = 0; i < 10; i++) {
    jb.push(pkt(100 + i), i * 20);
    jb.pop(i * 20);
  }
  jb.push(pkt(5000), 200);
  assert.deepEqual(jb.pop(200), []); // one far packet alone is only a candidate
  jb.push(pkt(5001), 220);
  assert.deepEqual(seqs(jb.pop(220)), [5000, 5001]);
  jb.push(pkt(5002), 240);
  assert.deepEqual(seqs(jb.pop(240)), [5002]);
  assert.deepEqual([jb.stats.resyncs, jb.stats.lost, jb.stats.late, jb.stats.strays], [1, 0, 0, 0]);
  assertAccounted(jb);

  // Backwards beyond the misorder window is a restart too; the confirming packet may come first.
  jb.push(pkt(4001), 260);
  jb.push(pkt(4000), 261);
  assert.deepEqual(seqs(jb.pop(261)), [4000, 4001]);
  assert.equal(jb.stats.resyncs, 2);
  assertAccounted(jb);
});

test('a single stray far packet is dropped without disturbing the stream', () => {
  const jb = new JitterBuffer({ depthMs: 60 });
  const out: number[] = [];
  for (let i = 0; i < 20; i++) {
    jb.push(pkt(100 + i), i * 20);
    if (i === 5) jb.push(pkt(30000), i * 20); // e.g. a very old packet
    if (i === 9) jb.push(pkt(100 + i, 99), i * 20); // a leftover of another source
    out.push(...seqs(jb.pop(i * 20)));
  }
  assert.deepEqual(out, Array.from({ length: 20 }, (_, i) => 100 + i));
  assert.deepEqual([jb.stats.resyncs, jb.stats.strays, jb.stats.lost], [0, 1, 0]);
  assertAccounted(jb, 1); // the source-99 packet is still a candidate
  jb.push(pkt(120), 2000); // candidates expire
  assert.equal(jb.stats.strays, 2);
  assertAccounted(jb);
});

test('SSRC change resynchronises, releasing the old stream first without waiting for its gaps', () => {
  const jb = new JitterBuffer({ depthMs: 1000 });
  jb.push(pkt(10), 0);
  jb.pop(0);
  jb.push(pkt(12), 20); // 11 missing: 12 waits
  jb.push(pkt(13), 40);
  jb.push(pkt(7, 2), 60); // new source, near the same numbers
  jb.push(pkt(8, 2), 80);
  const out = jb.pop(80);
  assert.deepEqual(out.map((p) => `${p.ssrc}:${p.sequenceNumber}`), ['1:12', '1:13', '2:7', '2:8']);
  assert.deepEqual([jb.stats.resyncs, jb.stats.lost], [1, 1]);
  jb.push(pkt(9, 2), 100);
  jb.push(pkt(13, 1), 100); // the old source again: a candidate, not a resync
  assert.deepEqual(seqs(jb.pop(100)), [9]);
  assertAccounted(jb, 1);
});

test('maxPackets bounds what is held', () => {
  const jb = new JitterBuffer({ depthMs: 1000, maxPackets: 10 });
  jb.push(pkt(1), 0);
  jb.pop(0);
  for (let s = 3; s <= 30; s++) jb.push(pkt(s), s); // 2 is missing, so all are held
  assert.deepEqual([jb.stats.depth, jb.stats.maxDepth, jb.stats.overflow], [10, 10, 18]);
  assert.deepEqual(seqs(jb.pop(1003)), [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.equal(jb.stats.lost, 1);
  assertAccounted(jb);
  // Full again behind a gap: the missing packet itself is still taken, and unblocks the rest.
  for (let s = 14; s <= 30; s++) jb.push(pkt(s), 1100);
  assert.equal(jb.stats.depth, 10);
  jb.push(pkt(13), 1101);
  assert.deepEqual(seqs(jb.pop(1101)), Array.from({ length: 11 }, (_, i) => 13 + i));
  assert.equal(jb.stats.maxDepth, 11);
  assertAccounted(jb);
  assert.deepEqual(Object.keys(jb.toJSON()).sort(), [...Object.keys(jb.stats), 'depthMs'].sort());
});

test('drain releases everything held; reset forgets the stream but keeps counters', () => {
  const jb = new JitterBuffer({ depthMs: 1000 });
  jb.push(pkt(1), 0);
  jb.push(pkt(4), 0);
  jb.push(pkt(6), 0);
  assert.deepEqual(seqs(jb.drain()), [1, 4, 6]);
  assert.equal(jb.stats.lost, 3);
  assert.deepEqual(jb.drain(), []);
  jb.push(pkt(8), 0);
  jb.push(pkt(10), 0);
  jb.reset();
  assert.equal(jb.stats.depth, 0);
  jb.push(pkt(40000), 10); // no jump after a reset: a fresh start
  assert.deepEqual(seqs(jb.pop(10)), [40000]);
  assert.deepEqual([jb.stats.resyncs, jb.stats.received], [0, 6]);
});

test('simulated network: loss, duplication, jitter, across two wraps — order kept, every packet accounted', () => {
  let seed = 2024;
  const rnd = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 0x1_0000_0000;
  };
  const depthMs = 60;
  const jb = new JitterBuffer({ depthMs });
  const sends: { p: RtpPacket; at: number }[] = [];
  const N = 140_000;
  for (let i = 0; i < N; i++) {
    if (rnd() < 0.05) continue; // lost in the network
    const at = i * 20 + (rnd() < 0.1 ? rnd() * 120 : rnd() * 10); // mostly tight, sometimes 120 ms late
    sends.push({ p: pkt(60000 + i), at });
    if (rnd() < 0.02) sends.push({ p: pkt(60000 + i), at: at + rnd() * 50 });
  }
  sends.sort((a, b) => a.at - b.at);
  const released: RtpPacket[] = [];
  let timer = 0;
  for (const { p, at } of sends) {
    for (; timer < at; timer += 5) released.push(...jb.pop(timer)); // a 5 ms tick between arrivals
    jb.push(p, at);
    released.push(...jb.pop(at));
  }
  released.push(...jb.drain());
  let span = 1;
  for (let i = 1; i < released.length; i++) {
    const d = seqDiff(released[i]!.sequenceNumber, released[i - 1]!.sequenceNumber);
    assert.ok(d > 0, `at ${i}`);
    span += d;
  }
  const s = jb.stats;
  assertAccounted(jb);
  assert.equal(s.released, released.length);
  // Every sequence number from the first released to the last was either released or declared lost.
  assert.equal(s.released + s.lost, span);
  assert.ok(span > N - 3);
  assert.ok(s.late > 0 && s.reordered > 0 && s.duplicates > 0 && s.lost > 0.05 * N);
  assert.equal(s.resyncs, 0);
  assert.ok(s.maxDepth < 20, String(s.maxDepth));
});
