import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AudioTimeline } from '../../plugin/media/timeline/audio-timeline.js';
import { JitterBuffer } from '../../plugin/media/ingest/jitter-buffer.js';
import type { RtpPacket } from '../../plugin/media/ingest/rtp.js';

const RATE = 8000;
const PKT = 160; // 20 ms
const DELAY = 60;
const DELAY_SAMPLES = (DELAY * RATE) / 1000;
const START = 10_000;
/**
 * The resampler takes this many samples ahead of what plays (its kernel's half width): they count as
 * pulled (silence included) before they play, and a packet is late once they are pulled.
 */
const LOOKAHEAD = 8;

/** A recognisable, never-zero signal: sample i of the call. */
const signal = (i: number) => ((i * 7) % 30000) + 1;
function packetSamples(k: number): Int16Array {
  const s = new Int16Array(PKT);
  for (let j = 0; j < PKT; j++) s[j] = signal(k * PKT + j);
  return s;
}

interface Push {
  at: number;
  ts: number;
  samples: Int16Array;
}

/** Runs pushes and reads in time order (a push before a read at the same ms); returns all output. */
function run(tl: AudioTimeline, pushes: Push[], reads: number[]): Int16Array {
  const events = [
    ...pushes.map((p) => ({ at: p.at, push: p as Push | undefined })),
    ...reads.map((at) => ({ at, push: undefined as Push | undefined })),
  ].sort((a, b) => a.at - b.at || (a.push ? 0 : 1) - (b.push ? 0 : 1));
  const chunks: Int16Array[] = [];
  for (const e of events) {
    if (e.push) tl.push(e.push.ts, e.push.samples, e.push.at);
    else chunks.push(tl.read(e.at));
  }
  const out = new Int16Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const every = (fromMs: number, toMs: number, stepMs: number) => {
  const r: number[] = [];
  for (let t = fromMs; t <= toMs; t += stepMs) r.push(START + t);
  return r;
};

/** Packets 0..n-1, sent every 20 ms from call time 0, timestamps from ts0. */
function stream(n: number, ts0 = 1000, skip: (k: number) => boolean = () => false): Push[] {
  const r: Push[] = [];
  for (let k = 0; k < n; k++) if (!skip(k)) r.push({ at: START + 20 * k, ts: (ts0 + PKT * k) >>> 0, samples: packetSamples(k) });
  return r;
}

/** The expected output for packets 0..n-1 played `DELAY` after their send time, `total` samples long. */
function expected(n: number, total: number, missing: (k: number) => boolean = () => false): Int16Array {
  const e = new Int16Array(total);
  for (let k = 0; k < n; k++) if (!missing(k)) e.set(packetSamples(k), DELAY_SAMPLES + k * PKT);
  return e;
}

function firstDiff(a: Int16Array, b: Int16Array): string {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `sample ${i}: ${a[i]} vs ${b[i]}`;
  return 'same';
}

test('continuous input comes out delayed by delayMs, exactly', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const out = run(tl, stream(100), every(0, 2100, 7).concat(START + 2100));
  assert.equal(out.length, 2100 * 8);
  assert.equal(firstDiff(out, expected(100, out.length)), 'same');
  assert.equal(tl.samplesOut, out.length);
  assert.deepEqual(
    [tl.stats.silenceSamples, tl.stats.lateSamplesDropped, tl.stats.reanchors, tl.stats.packets],
    [out.length + LOOKAHEAD - 100 * PKT, 0, 0, 100],
  );
});

test('a 200 ms gap gives exactly 200 ms of zeros and no shift afterwards', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const gap = (k: number) => k >= 40 && k < 50;
  const out = run(tl, stream(100, 1000, gap), every(0, 2100, 10));
  assert.equal(firstDiff(out, expected(100, out.length, gap)), 'same');
  assert.equal(tl.stats.silenceSamples, out.length + LOOKAHEAD - 90 * PKT);
  assert.equal(tl.stats.reanchors, 0);
});

test('reordered packets released by the jitter buffer land in the right place; a lost one leaves a hole', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const jb = new JitterBuffer({ depthMs: 40 });
  const pushes = stream(100, 1000, (k) => k === 50);
  const p20 = pushes.findIndex((p) => p.ts === 1000 + 20 * PKT);
  pushes[p20]!.at += 30; // 20 arrives after 21
  const packets: { at: number; p: RtpPacket; samples: Int16Array }[] = pushes.map((p) => ({
    at: p.at,
    samples: p.samples,
    p: { version: 2, padding: false, marker: false, payloadType: 0, sequenceNumber: (p.ts - 1000) / PKT, timestamp: p.ts, ssrc: 1, csrcs: [], payload: Buffer.alloc(0) },
  }));
  packets.sort((a, b) => a.at - b.at);
  const samplesOf = new Map(packets.map((x) => [x.p, x.samples]));
  const chunks: Int16Array[] = [];
  let i = 0;
  for (let now = START; now <= START + 2100; now++) {
    for (; i < packets.length && packets[i]!.at <= now; i++) jb.push(packets[i]!.p, packets[i]!.at);
    // Released packets are pushed with their release time: held ones arrive "late" by design.
    for (const p of jb.pop(now)) tl.push(p.timestamp, samplesOf.get(p)!, now);
    if (now % 10 === 0) chunks.push(tl.read(now));
  }
  const out = Int16Array.from(chunks.flatMap((c) => [...c]));
  assert.equal(firstDiff(out, expected(100, out.length, (k) => k === 50)), 'same');
  assert.deepEqual([jb.stats.reordered, jb.stats.lost], [1, 1]);
  assert.deepEqual([tl.stats.lateSamplesDropped, tl.stats.reanchors], [0, 0]);
});

test('a packet arriving after its place was played is dropped and counted', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const pushes = stream(100);
  pushes[30]!.at += 100; // plays at 660 ms, arrives at 700 ms
  const out = run(tl, pushes, every(0, 2100, 5));
  assert.equal(firstDiff(out, expected(100, out.length, (k) => k === 30)), 'same');
  assert.deepEqual([tl.stats.lateSamplesDropped, tl.stats.reanchors], [PKT, 0]);
  // Partly late: only the part already played is dropped.
  const t2 = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const p2 = stream(100);
  p2[30]!.at += 75; // plays at 660 ms; the read at 670 ms came before it: 10 ms (+ the look-ahead) already taken
  const out2 = run(t2, p2, every(0, 2100, 5));
  assert.equal(t2.stats.lateSamplesDropped, 80 + LOOKAHEAD);
  assert.deepEqual(out2.subarray(DELAY_SAMPLES + 30 * PKT + 88, DELAY_SAMPLES + 31 * PKT), packetSamples(30).subarray(88));
});

test('a burst after a 100 ms stall plays in place: only what was due during the stall is lost, no re-anchor, no surplus', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const pushes = stream(150);
  // Packets 30-34 (sent 600-680 ms) held up and handed over at 700 ms with packet 35, as after an event-loop stall.
  for (let k = 30; k < 35; k++) pushes[k]!.at = START + 700;
  const out = run(tl, pushes, every(0, 3100, 10));
  assert.equal(tl.stats.reanchors, 0);
  // 30 played (as silence) at 660 ms before it came, and the first 10 ms of 31 (plus the look-ahead) by the read at 690.
  assert.equal(tl.stats.lateSamplesDropped, PKT + 80 + LOOKAHEAD);
  assert.equal(tl.stats.maxLateRunSamples, PKT + 80 + LOOKAHEAD, 'one hole: 30 whole and the start of 31');
  const from = DELAY_SAMPLES + 32 * PKT;
  assert.equal(firstDiff(out.subarray(from), expected(150, out.length).subarray(from)), 'same', 'the rest plays where it belongs');
  assert.equal(tl.stats.ratioPpm, 0, 'no surplus to steer off');
});

test('a backlog at the start (100 ms of packets at once) moves the start, unheard: no surplus, no steering', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const pushes = stream(150);
  // Packets 0-4 (sent 0-80 ms) queued before the leg was up, handed over with packet 5 at 100 ms.
  for (let k = 0; k < 6; k++) pushes[k]!.at = START + 100;
  const out = run(tl, pushes, every(0, 3100, 10));
  assert.equal(tl.stats.reanchors, 0);
  assert.ok(Math.abs(tl.stats.startSkippedMs - 100) <= 3, `start moved ${tl.stats.startSkippedMs} ms`);
  // Everything from packet 3 on plays DELAY after it was sent, as if the first packet had come on time.
  const from = DELAY_SAMPLES + 3 * PKT;
  assert.equal(firstDiff(out.subarray(from), expected(150, out.length).subarray(from)), 'same');
  assert.equal(tl.stats.ratioPpm, 0, 'no surplus to steer off');
  assert.ok(Math.abs(tl.stats.maxAbsDelayErrorMs) <= 3, `delay error ${tl.stats.maxAbsDelayErrorMs} ms`);
});

test('a delay that steps up and stays (+100 ms) re-anchors once, after 60 ms of late arrivals', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const pushes = stream(150).map((p, k) => (k >= 50 ? { ...p, at: p.at + 100 } : p));
  const out = run(tl, pushes, every(0, 3100, 10));
  assert.equal(tl.stats.reanchors, 1);
  assert.equal(tl.stats.lastReanchor?.cause, 'behind');
  assert.equal(tl.stats.lastReanchor?.packet, 54, 'packets 50-52 came late, the fourth re-anchored');
  // From the re-anchor on, every packet plays 100 ms later than before, whole.
  const at = DELAY_SAMPLES + 100 * 8 + 53 * PKT;
  assert.deepEqual(out.subarray(at, at + PKT), packetSamples(53));
  assert.equal(tl.stats.lateSamplesDropped, 3 * PKT);
  assert.equal(tl.stats.maxLateRunSamples, 3 * PKT, 'one hole of three packets (50-52, back to back)');
});

test('RTP timestamp wrap (starting near 2^32) is seamless', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  const out = run(tl, stream(100, 2 ** 32 - 50 * PKT - 37), every(0, 2100, 13));
  assert.equal(firstDiff(out, expected(100, out.length)), 'same');
  assert.equal(tl.stats.reanchors, 0);
});

test('a big timestamp jump (either way, or a new random base) re-anchors without silence', () => {
  for (const jump of [5_000_000, -5_000_000, 0x9e3779b9, 3 * RATE]) {
    const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
    const pushes = stream(100).map((p, k) => (k >= 50 ? { ...p, ts: (p.ts + jump) >>> 0 } : p));
    // Some arrival jitter around the jump, as on a real network.
    pushes[50]!.at += 3;
    pushes[51]!.at -= 2;
    const out = run(tl, pushes, every(0, 2100, 10));
    assert.equal(firstDiff(out, expected(100, out.length)), 'same', `jump ${jump}`);
    assert.equal(tl.stats.reanchors, 1, `jump ${jump}`);
    assert.equal(tl.stats.silenceSamples, out.length + LOOKAHEAD - 100 * PKT);
  }
});

test('after a pause in the stream (hold), a timestamp jump lands on arrival time', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  // 1 s of audio, 3 s nothing, then packets whose timestamps continue as if no time had passed.
  const pushes = stream(50).concat(stream(50).map((p, k) => ({ ...p, at: START + 4000 + 20 * k, ts: (1000 + PKT * (50 + k)) >>> 0 })));
  const out = run(tl, pushes, every(0, 5100, 10));
  assert.equal(tl.stats.reanchors, 1);
  // Why, for whoever reads the call's stats: continuing packets behind the cursor, after 3 s of nothing. The
  // second one re-anchors: it came paced, not in a burst with the first (which could have been a stall's).
  assert.deepEqual({ ...tl.stats.lastReanchor, driftMs: undefined }, { cause: 'behind', packet: 52, driftMs: undefined, afterGapMs: 3020 });
  const resume = DELAY_SAMPLES + 4000 * 8;
  assert.deepEqual(out.subarray(resume + PKT, resume + 2 * PKT), packetSamples(1));
  assert.equal(tl.stats.lateSamplesDropped, PKT, 'the first packet after the pause');
  assert.equal(tl.stats.silenceSamples, out.length + LOOKAHEAD - 99 * PKT);
});

test('a burst after a long stall (300 ms, 1 s: the app, the far end or the network) plays in place without re-anchoring', () => {
  for (const stallMs of [300, 1000]) {
    const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
    const pushes = stream(150);
    // Everything sent during the stall handed over at its end, within a millisecond, with the next packet.
    const n = stallMs / 20;
    for (let k = 30; k <= 30 + n; k++) pushes[k]!.at = START + 600 + stallMs + (k - 30) * 0.02;
    const out = run(tl, pushes, every(0, 4100, 10));
    assert.equal(tl.stats.reanchors, 0, `${stallMs} ms: ${JSON.stringify(tl.stats.lastReanchor)}`);
    assert.equal(tl.jumps, 0, "the video is not moved either");
    const from = DELAY_SAMPLES + (30 + n) * PKT;
    assert.equal(firstDiff(out.subarray(from), expected(150, out.length).subarray(from)), 'same', `${stallMs} ms: the rest plays where it belongs`);
    assert.ok(tl.stats.lateSamplesDropped <= (stallMs - DELAY + 20) * 8 + LOOKAHEAD, `${stallMs} ms: ${tl.stats.lateSamplesDropped} late samples`);
  }
});

test('60 simulated seconds with irregular reads: samples out == 60 × rate, exactly', () => {
  for (const rate of [8000, 16000, 44100, 48000]) {
    let seed = rate;
    const rnd = () => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed / 0x1_0000_0000;
    };
    const pkt = rate / 50;
    const tl = new AudioTimeline({ sampleRate: rate, delayMs: 80 }, START);
    const samples = new Int16Array(pkt).fill(1000);
    let total = 0;
    let nextPacket = 0;
    const dst = new Int16Array(700);
    for (let now = START; now < START + 60_000; now += rnd() * 45 + 0.1) {
      for (; START + nextPacket * 20 <= now; nextPacket++) {
        tl.push(nextPacket * pkt, samples, now); // up to 45 ms late, as the reads are irregular
      }
      // Mix read() and readInto() with a small array that cannot always take everything.
      total += rnd() < 0.5 ? tl.read(now).length : tl.readInto(now, dst);
    }
    total += tl.read(START + 60_000).length;
    assert.equal(total, 60 * rate, `rate ${rate}`);
    assert.equal(tl.samplesOut, 60 * rate);
    assert.equal(tl.read(START + 60_000).length, 0);
    assert.equal(tl.read(START + 59_000).length, 0); // time going backwards owes nothing
  }
});

/**
 * Simulates a sender whose clock runs `ratio` times ours, its packets up to `jitterMs` late; returns
 * what a listener would notice.
 */
function driftRun(ratio: number, minutes: number, opts: { correct?: boolean; jitterMs?: number; firstLateMs?: number } = {}) {
  const maxDriftMs = 120;
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY, maxDriftMs, driftCorrection: opts.correct !== false }, START);
  const durationMs = minutes * 60_000;
  const n = Math.floor((durationMs / 20) * ratio);
  assert.ok(n < 32000); // packet numbers fit in the sample values
  const playedAt = new Float64Array(n).fill(NaN);
  const arrival = new Float64Array(n);
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 0x1_0000_0000;
  };
  let k = 0;
  let worstDrift = 0;
  let pos = 0;
  for (let now = START; now <= START + durationMs; now += 5) {
    for (; k < n && START + (k * 20) / ratio <= now; k++) {
      // Packet k carries its number in every sample; timestamps advance by the sender's clock.
      arrival[k] = START + (k * 20) / ratio;
      tl.push((k * PKT) >>> 0, new Int16Array(PKT).fill(k + 1), arrival[k]! + (k > 0 ? rnd() * (opts.jitterMs ?? 0) : opts.firstLateMs ?? 0));
      worstDrift = Math.max(worstDrift, Math.abs(tl.stats.driftMs));
    }
    const out = tl.read(now);
    for (let j = 0; j < out.length; j++) {
      const id = out[j]! - 1;
      if (id >= 0 && id < n && Number.isNaN(playedAt[id]!)) playedAt[id] = START + ((pos + j) * 1000) / RATE;
    }
    pos += out.length;
  }
  let worstLatency = 0;
  let bestLatency = Infinity;
  let skipped = 0;
  for (let i = 0; i < k; i++) {
    if (Number.isNaN(playedAt[i]!)) {
      if (arrival[i]! < START + durationMs - DELAY - maxDriftMs - 20) skipped++; // not still queued at the end
      continue;
    }
    // Packet i's samples start playing one sample after the previous packet's (interpolated values round either way).
    const latency = playedAt[i]! - arrival[i]!;
    worstLatency = Math.max(worstLatency, latency);
    bestLatency = Math.min(bestLatency, latency);
  }
  return { tl, worstDrift, worstLatency, bestLatency, skipped, maxDriftMs, samplesOut: pos };
}

// The first packet late by 12 ms (the app busy setting the call up, as measured): its anchor is 12 ms off too.
for (const [ppm, minutes, jitterMs, firstLateMs] of [[1000, 10, 0, 0], [-1000, 10, 0, 0], [5000, 2, 0, 12], [-5000, 2, 0, 12], [300, 5, 30, 0], [-300, 5, 30, 0]] as const) {
  test(`sender clock ${ppm} ppm off for ${minutes} min${jitterMs ? `, 0-${jitterMs} ms jitter` : ''}${firstLateMs ? `, first packet ${firstLateMs} ms late` : ''}: absorbed, no skip, no gap, delay within ±20 ms`, () => {
    const r = driftRun(1 + ppm / 1e6, minutes, { jitterMs, firstLateMs });
    const s = r.tl.stats;
    assert.equal(s.reanchors, 0);
    assert.equal(r.skipped, 0, 'no packet skipped');
    // Silence only before the first packet (the stream goes on to the end, so the look-ahead holds audio).
    // A late first packet costs no latency: the next one moves the start (unheard) to its own time.
    assert.ok(Math.abs(s.silenceSamples - DELAY_SAMPLES) <= 2, `no gap: ${s.silenceSamples} samples of silence`);
    assert.ok(Math.abs(s.startSkippedMs - firstLateMs) <= 0.5, `start moved ${s.startSkippedMs} ms`);
    assert.equal(s.lateSamplesDropped, 0);
    assert.ok(r.bestLatency >= DELAY - 20 && r.worstLatency <= DELAY + jitterMs + firstLateMs + 20, `latency ${r.bestLatency.toFixed(1)}..${r.worstLatency.toFixed(1)} ms`);
    assert.ok(s.maxAbsDelayErrorMs <= 20, `delay error up to ${s.maxAbsDelayErrorMs} ms`);
    assert.ok(Math.abs(s.senderClockPpm! - ppm) < 10, `estimated ${s.senderClockPpm} ppm`);
    assert.equal(r.samplesOut, minutes * 60 * RATE);
  });
}

test('without drift correction (driftCorrection: false) a 0.1% fast sender is bounded by re-anchoring', () => {
  const r = driftRun(1.001, 10, { correct: false });
  const s = r.tl.stats;
  // 600 s × 1 ms/s of surplus audio, shed in steps of maxDriftMs.
  assert.ok(s.reanchors >= 4 && s.reanchors <= 6, `reanchors ${s.reanchors}`);
  assert.ok(r.worstDrift <= r.maxDriftMs, `drift ${r.worstDrift}`);
  assert.ok(r.worstLatency <= DELAY + r.maxDriftMs + 1, `latency ${r.worstLatency}`);
  assert.ok(r.skipped <= s.reanchors * 7, `skipped ${r.skipped}`);
  assert.equal(r.samplesOut, 10 * 60 * RATE);
});

test('a timestamp jump before anything was heard re-bases the stream: not a re-anchor, but the video follows', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  // The sender's second packet is 5.4 s ahead in timestamp, 16 ms after its first (CI saw this on a leg).
  const pushes = stream(100).map((p, k) => (k >= 1 ? { ...p, ts: (p.ts + 43_200) >>> 0 } : p));
  pushes[1]!.at -= 4;
  const out = run(tl, pushes, every(0, 2100, 10));
  assert.deepEqual([tl.stats.reanchors, tl.stats.startRebases, tl.stats.lastReanchor], [0, 1, null]);
  assert.equal(tl.jumps, 1);
  // The same jump once audio has played is an audible re-anchor.
  const late = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  run(late, stream(100).map((p, k) => (k >= 10 ? { ...p, ts: (p.ts + 43_200) >>> 0 } : p)), every(0, 2100, 10));
  assert.deepEqual([late.stats.reanchors, late.stats.startRebases, late.stats.lastReanchor?.cause], [1, 0, 'ahead']);
  // Nothing of the re-based stream is lost: it plays on without a hole (the signal is never zero).
  assert.equal(tl.stats.lateSamplesDropped, 0);
  const from = DELAY_SAMPLES + PKT;
  assert.equal(out.subarray(from, from + 97 * PKT).indexOf(0), -1);
});

test('memory stays bounded: far-ahead packets re-anchor; a stalled reader overflows, then recovers', () => {
  const tl = new AudioTimeline({ sampleRate: RATE, delayMs: DELAY }, START);
  tl.push(0, packetSamples(0), START);
  tl.push(10 * RATE, packetSamples(1), START + 20); // 10 s ahead by timestamp, on time by arrival
  assert.equal(tl.stats.startRebases, 1, 'before anything was heard: a re-base');
  assert.ok(tl.bufferedSamples <= (DELAY + 40) * 8, String(tl.bufferedSamples));
  // Nobody reads for 5 s while packets keep coming.
  for (let k = 2; k < 250; k++) tl.push(10 * RATE + (k - 1) * PKT, packetSamples(k), START + 20 * k);
  assert.ok(tl.stats.overflowSamples > 0);
  const caughtUp = tl.read(START + 5000);
  assert.equal(caughtUp.length, 5000 * 8);
  // Then the stream continues normally, in place.
  for (let k = 250; k < 300; k++) tl.push(10 * RATE + (k - 1) * PKT, packetSamples(k), START + 20 * k);
  const out = tl.read(START + 6000);
  const at = (START + 20 * 260 + DELAY - 5000 - START) * 8;
  assert.deepEqual(out.subarray(at, at + PKT), packetSamples(260));
  assert.deepEqual(Object.keys(tl.toJSON()).sort(), [...Object.keys(tl.stats), 'bufferedMs'].sort());
});
