/**
 * Hostile input, video: the H.264 depacketizer fed arbitrary RTP payload sequences (every NAL header type
 * 0-31, the forbidden bit, STAP-A with lying sizes, FU-A with missing starts and ends, random markers,
 * sequence gaps, reordering, timestamp jumps). It never throws; what it hands out is well-formed and within
 * maxAccessUnitBytes; its counters add up; what it holds stays within maxAccessUnitBytes; and a clean
 * keyframe after the garbage starts the stream again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { H264Depacketizer, type AccessUnit } from '../../plugin/media/ingest/h264-depacketizer.js';
import { fuzz, mutated, peek } from '../helpers/fuzz.js';

const nri = fc.integer({ min: 0, max: 3 }).map((n) => n << 5);
/** forbidden_zero_bit: set now and then (a damaged unit). */
const forbidden = fc.oneof({ weight: 20, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(0x80) });
/** Mostly the types that carry state (slices, IDR, SEI, SPS, PPS, AUD), but any of the 32. */
const nalTypeArb = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(1, 5, 6, 7, 8, 9) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 31 }) });
const body = (maxLength: number) => fc.uint8Array({ maxLength, size: 'max' });

/** A NAL unit; slices start with first_mb_in_slice = 0 (a new picture) or not. */
const nalUnit = fc.tuple(forbidden, nri, nalTypeArb, fc.boolean(), body(80)).map(([f, n, type, firstMb, b]) =>
  Buffer.from([f | n | type, firstMb ? 0x88 : 0x08, ...b]));

/** STAP-A: units with true sizes, or lies (0, too big, anything), or trailing garbage. */
const stapA = fc.tuple(
  forbidden, nri,
  fc.array(fc.tuple(nalUnit, fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) })), { maxLength: 5 }),
  fc.oneof({ weight: 6, arbitrary: fc.constant(new Uint8Array(0)) }, { weight: 1, arbitrary: body(3) }),
).map(([f, n, units, tail]) => {
  const parts: Buffer[] = [Buffer.from([f | n | 24])];
  for (const [u, lie] of units) parts.push(Buffer.from([((lie ?? u.length) >> 8) & 0xff, (lie ?? u.length) & 0xff]), u);
  parts.push(Buffer.from(tail));
  return Buffer.concat(parts);
});

/** One FU-A packet with any S/E/R bits and inner type. */
const fuPacket = fc.tuple(forbidden, nri, fc.boolean(), fc.boolean(), fc.boolean(), nalTypeArb, body(60)).map(([f, n, s, e, r, type, frag]) =>
  Buffer.from([f | n | 28, (s ? 0x80 : 0) | (e ? 0x40 : 0) | (r ? 0x20 : 0) | type, ...frag]));

/** A NAL unit cut into FU-A fragments, sometimes with fragments lost (the start, the end, one in the middle). */
const fuSeries = fc.tuple(nalUnit, fc.integer({ min: 1, max: 40 }), fc.array(fc.nat(), { maxLength: 2 })).map(([unit, chunk, drop]) => {
  const rest = unit.subarray(1);
  const out: Buffer[] = [];
  for (let o = 0; o < rest.length || o === 0; o += chunk) {
    const s = o === 0 ? 0x80 : 0;
    const e = o + chunk >= rest.length ? 0x40 : 0;
    out.push(Buffer.concat([Buffer.from([(unit[0]! & 0xe0) | 28, s | e | (unit[0]! & 0x1f)]), rest.subarray(o, o + chunk)]));
    if (rest.length === 0) break;
  }
  for (const d of drop) if (out.length > 1) out.splice(d % out.length, 1);
  return out;
});

/** What one "send" of the far end becomes: usually one packet, sometimes a whole fragmented unit. */
const payloads: fc.Arbitrary<Buffer[]> = fc.oneof(
  { weight: 4, arbitrary: nalUnit.map((p) => [p]) },
  { weight: 2, arbitrary: stapA.map((p) => [p]) },
  { weight: 2, arbitrary: fuPacket.map((p) => [p]) },
  { weight: 2, arbitrary: fuSeries },
  { weight: 1, arbitrary: body(20).map((b) => [Buffer.from(b)]) },
  { weight: 1, arbitrary: mutated(nalUnit).map((p) => [p]) },
);

interface Send {
  payloads: Buffer[];
  /** Sequence number step before this send: mostly 1; gaps, duplicates, reordering, a new sequence space. */
  seq: { rel: number } | { abs: number };
  ts: { same: true } | { step: number };
  marker: boolean;
  lostBefore: number;
}

const send: fc.Arbitrary<Send> = fc.record({
  payloads,
  seq: fc.oneof(
    { weight: 14, arbitrary: fc.constant({ rel: 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: 2, max: 6 }).map((rel) => ({ rel })) },
    { weight: 1, arbitrary: fc.integer({ min: -110, max: 0 }).map((rel) => ({ rel })) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }).map((abs) => ({ abs })) },
  ),
  ts: fc.oneof(
    { weight: 3, arbitrary: fc.constant({ same: true as const }) },
    { weight: 3, arbitrary: fc.constant({ step: 3000 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }).map((step) => ({ step })) },
  ),
  marker: fc.oneof({ weight: 1, arbitrary: fc.constant(true) }, { weight: 2, arbitrary: fc.constant(false) }),
  lostBefore: fc.oneof({ weight: 25, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 }) }),
});

const SPS = Buffer.from([0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16]);
const PPS = Buffer.from([0x68, 0xce, 0x3c, 0x80]);

const sum = (bs: readonly Buffer[] | undefined) => (bs ?? []).reduce((n, b) => n + b.length, 0);

function checkAu(au: AccessUnit, maxBytes: number): void {
  assert.ok(au.nalus.length > 0, 'an access unit has NAL units');
  let bytes = 0;
  for (const n of au.nalus) {
    assert.ok(n.length > 0, 'no empty NAL unit');
    assert.equal(n[0]! & 0x80, 0, 'forbidden bit clear');
    const type = n[0]! & 0x1f;
    assert.ok(type >= 1 && type <= 23, `a plain NAL unit type, not ${type}`);
    bytes += n.length;
  }
  assert.ok(bytes <= maxBytes, `${bytes} bytes within maxAccessUnitBytes ${maxBytes}`);
  assert.equal(au.keyframe, au.nalus.some((n) => (n[0]! & 0x1f) === 5));
  if (au.sps) assert.ok(au.nalus.includes(au.sps) && (au.sps[0]! & 0x1f) === 7);
  if (au.pps) assert.ok(au.nalus.includes(au.pps) && (au.pps[0]! & 0x1f) === 8);
}

test('fuzz: the H.264 depacketizer never throws; its output, counters and memory stay within bounds', (t) => {
  const input = fc.record({
    maxAccessUnitBytes: fc.option(fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 300, max: 5000 })), { nil: undefined }),
    sdpParameterSets: fc.boolean(),
    sends: fc.array(send, { maxLength: 120, size: 'max' }),
  });
  fuzz(t, input, ({ maxAccessUnitBytes, sdpParameterSets, sends }) => {
    const d = new H264Depacketizer({
      ...(maxAccessUnitBytes === undefined ? {} : { maxAccessUnitBytes }),
      ...(sdpParameterSets ? { parameterSets: { sps: SPS, pps: [PPS] } } : {}),
    });
    const max = maxAccessUnitBytes ?? 2 * 1024 * 1024;
    const s = d.stats;
    const out: AccessUnit[] = [];
    let pushed = 0;
    let emptyOrForbidden = 0;
    let seq = 1000;
    let ts = 90_000;
    const emit = (aus: AccessUnit[]) => {
      for (const au of aus) {
        checkAu(au, max);
        if (out.length === 0) assert.ok(au.keyframe, 'the first access unit handed out is an IDR');
        out.push(au);
      }
    };
    const checkState = () => {
      assert.equal(s.packets, pushed, 'every packet counted');
      // Each packet is dropped as out of order, or sorted by structure (empty / forbidden-bit ones count as malformed only).
      assert.equal(s.outOfOrder + s.single + s.stapA + s.fuA + s.unsupported + emptyOrForbidden, s.packets, JSON.stringify(s));
      assert.ok(s.malformed >= emptyOrForbidden);
      assert.equal(s.accessUnits, out.length);
      assert.equal(s.keyframes, out.filter((a) => a.keyframe).length);
      // Memory: the open unit's NAL units and FU-A fragments, and NAL units carried to the next unit.
      const held = sum(peek<Buffer[]>(d, 'nalus')) + sum(peek<Buffer[]>(d, 'fuParts'));
      assert.ok(held <= max, `holds ${held} bytes, max ${max}`);
      assert.ok(sum(peek<Buffer[] | undefined>(d, 'carry')) <= max);
    };
    for (const x of sends) {
      seq = 'abs' in x.seq ? x.seq.abs : seq + x.seq.rel;
      if ('step' in x.ts) ts = (ts + x.ts.step) >>> 0;
      x.payloads.forEach((payload, i) => {
        const before = s.outOfOrder;
        const aus = d.push({ sequenceNumber: (seq + i) & 0xffff, timestamp: ts, marker: x.marker && i === x.payloads.length - 1, payload }, i === 0 ? x.lostBefore : 0);
        pushed++;
        if (s.outOfOrder === before && (payload.length === 0 || payload[0]! & 0x80)) emptyOrForbidden++;
        emit(aus);
        checkState();
      });
      seq += x.payloads.length - 1;
    }
    emit(d.flush());
    checkState();

    // Whatever state the garbage left, a complete keyframe after a gap starts the stream again.
    const carried = sum(peek<Buffer[] | undefined>(d, 'carry'));
    const idr = Buffer.concat([Buffer.from([0x65, 0x88]), Buffer.alloc(150, 0x5a)]);
    const stap = Buffer.concat([Buffer.from([0x78, 0, SPS.length]), SPS, Buffer.from([0, PPS.length]), PPS]);
    const fus = [idr.subarray(1, 80), idr.subarray(80)].map((frag, i) => Buffer.concat([Buffer.from([0x7c, (i === 0 ? 0x80 : 0x40) | 5]), frag]));
    const kfTs = (ts + 123_456) >>> 0;
    const kfSeq = peek<number>(d, 'nextSeq') + 10; // a gap ahead of the last in-order packet
    const before = out.length;
    [stap, ...fus].forEach((payload, i) => {
      emit(d.push({ sequenceNumber: (kfSeq + i) & 0xffff, timestamp: kfTs, marker: i === fus.length, payload }));
    });
    if (max >= carried + SPS.length + PPS.length + idr.length) {
      const got = out.slice(before);
      assert.equal(got.length, 1, `recovers with the keyframe: ${JSON.stringify(d.toJSON())}`);
      assert.ok(got[0]!.keyframe && got[0]!.timestamp === kfTs);
      assert.equal(d.waitingForKeyframe, false);
    }
  }, 400);
});

test('fuzz: single arbitrary payloads on a fresh depacketizer never throw', (t) => {
  fuzz(t, fc.tuple(body(200), fc.boolean(), fc.integer({ min: 0, max: 0xffff })), ([payload, marker, sequenceNumber]) => {
    const d = new H264Depacketizer({ maxAccessUnitBytes: 100 });
    for (const au of [...d.push({ sequenceNumber, timestamp: 0, marker, payload: Buffer.from(payload) }), ...d.flush()]) checkAu(au, 100);
    assert.equal(d.stats.packets, 1);
  }, 2000);
});
