/**
 * Hostile input, media edge: the RTP and RTCP parsers, the RTP gate and the jitter buffer fed arbitrary
 * and mutated datagrams. No throw, parses that agree with the bytes, every datagram counted exactly once,
 * the jitter buffer's bound and its accounting (received = every way a packet leaves or stays) hold.
 * Bounded by default; FUZZ_RUNS / FUZZ_SEED widen it (see test/helpers/fuzz.ts).
 */
import assert from 'node:assert/strict';
import type { RemoteInfo } from 'node:dgram';
import { test } from 'node:test';
import fc from 'fast-check';
import { JitterBuffer, MAX_JUMP } from '../../plugin/media/ingest/jitter-buffer.js';
import { buildKeyframeRequest, buildReceiverReport, parseRtcp, RTCP_BYE, RTCP_RR, RTCP_SDES, RTCP_SR, type ReportBlock } from '../../plugin/media/ingest/rtcp.js';
import { RtpGate } from '../../plugin/media/ingest/rtp-gate.js';
import { parseRtp, serializeRtp, type RtpPacket, type RtpPacketInit } from '../../plugin/media/ingest/rtp.js';
import { seqDiff } from '../../plugin/media/ingest/seq.js';
import { fuzz, mutated, peek } from '../helpers/fuzz.js';

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
// fast-check's default size keeps arrays under ~10 elements; 'max' spreads lengths up to maxLength.
const bytes = (maxLength: number) => fc.uint8Array({ maxLength, size: 'max' }).map((a) => Buffer.from(a));

const rtpInit: fc.Arbitrary<RtpPacketInit> = fc.record({
  marker: fc.boolean(),
  payloadType: fc.oneof(fc.constantFrom(0, 8, 9, 96, 99, 101, 118, 127), fc.integer({ min: 0, max: 127 })),
  sequenceNumber: u16,
  timestamp: u32,
  ssrc: u32,
  csrcs: fc.array(u32, { maxLength: 15, size: 'max' }),
  extension: fc.option(
    fc.record({
      profile: fc.oneof(fc.constantFrom(0xbede, 0x1000), u16),
      data: fc.integer({ min: 0, max: 8 }).chain((n) => fc.uint8Array({ minLength: 4 * n, maxLength: 4 * n })).map((a) => Buffer.from(a)),
    }, { noNullPrototype: true }),
    { nil: undefined },
  ),
  payload: bytes(160),
  padding: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 })),
}, { noNullPrototype: true });
const validRtp = rtpInit.map((p) => serializeRtp(p));
/** Arbitrary bytes, valid packets, and valid packets with 1-8 edits (flips, truncation, extension, splices). */
const anyDatagram = fc.oneof(bytes(64), validRtp, mutated(validRtp));

function within(outer: Buffer, view: Buffer): void {
  assert.equal(view.buffer, outer.buffer, 'a view of the datagram');
  assert.ok(view.byteOffset >= outer.byteOffset && view.byteOffset + view.length <= outer.byteOffset + outer.length, 'inside the datagram');
}

const fields = (p: RtpPacket) => ({ ...p, csrcs: [...p.csrcs] });

/** An accepted parse must describe exactly the bytes it came from, and serialise back to them. */
function checkParsed(buf: Buffer, p: RtpPacket): void {
  const b0 = buf[0]!;
  assert.equal(p.version, 2);
  assert.equal(b0 >> 6, 2);
  assert.ok(p.payloadType >= 0 && p.payloadType <= 127 && !(p.payloadType >= 64 && p.payloadType <= 95), 'RTCP-range payload types go to RTCP');
  assert.equal(p.marker, (buf[1]! & 0x80) !== 0);
  assert.equal(p.sequenceNumber, buf.readUInt16BE(2));
  assert.equal(p.timestamp, buf.readUInt32BE(4));
  assert.equal(p.ssrc, buf.readUInt32BE(8));
  const cc = b0 & 0x0f;
  assert.equal(p.csrcs.length, cc, 'CSRC count matches CC');
  p.csrcs.forEach((c, i) => assert.equal(c, buf.readUInt32BE(12 + 4 * i)));
  let header = 12 + 4 * cc;
  assert.equal(p.extension !== undefined, (b0 & 0x10) !== 0);
  if (p.extension) {
    within(buf, p.extension.data);
    assert.equal(p.extension.data.byteOffset - buf.byteOffset, header + 4);
    assert.equal(p.extension.data.length, 4 * buf.readUInt16BE(header + 2));
    header += 4 + p.extension.data.length;
  }
  assert.equal(p.padding, (b0 & 0x20) !== 0);
  const pad = p.padding ? buf[buf.length - 1]! : 0;
  if (p.padding) assert.ok(pad >= 1);
  within(buf, p.payload);
  assert.equal(p.payload.byteOffset - buf.byteOffset, header, 'payload starts after the header');
  assert.equal(header + p.payload.length + pad, buf.length, 'header + payload + padding = datagram');

  const again = serializeRtp({
    marker: p.marker, payloadType: p.payloadType, sequenceNumber: p.sequenceNumber, timestamp: p.timestamp, ssrc: p.ssrc,
    csrcs: p.csrcs, extension: p.extension, payload: p.payload, padding: pad,
  });
  assert.equal(again.length, buf.length);
  // Identical up to the padding (whose filler bytes are not kept), and the padding count itself.
  assert.deepEqual(again.subarray(0, header + p.payload.length), buf.subarray(0, header + p.payload.length));
  assert.equal(again[again.length - 1], buf[buf.length - 1]);
  const r2 = parseRtp(again);
  assert.ok(r2.ok, 're-serialised packet parses');
  assert.deepEqual(fields(r2.packet), fields(p));
}

test('fuzz: parseRtp never throws; accepted parses are self-consistent and re-serialise to the same fields', (t) => {
  fuzz(t, anyDatagram, (buf) => {
    const r = parseRtp(buf);
    if (r.ok) checkParsed(buf, r.packet);
    else assert.ok(['too-short', 'bad-version', 'bad-csrc-length', 'bad-extension-length', 'bad-padding', 'rtcp'].includes(r.reason), r.reason);
  }, 3000);
});

test('fuzz: a serialised packet parses back to what was written', (t) => {
  fuzz(t, rtpInit, (init) => {
    const buf = serializeRtp(init);
    const r = parseRtp(buf);
    if (init.payloadType >= 64 && init.payloadType <= 95) {
      assert.deepEqual(r, { ok: false, reason: 'rtcp' });
      return;
    }
    assert.ok(r.ok, JSON.stringify(r));
    const { padding, extension, ...rest } = init;
    const expected: RtpPacket = { version: 2, padding: (padding ?? 0) > 0, ...rest, ...(extension ? { extension } : {}) };
    assert.deepEqual(fields(r.packet), fields(expected));
  }, 1000);
});

// ------------------------------------------------------------------------------------------------ RTCP

const reportBlock: fc.Arbitrary<ReportBlock> = fc.record({
  ssrc: u32, fractionLost: fc.integer({ min: 0, max: 255 }), cumulativeLost: fc.integer({ min: -0x800000, max: 0x7fffff }),
  highestSeq: u32, jitter: u32, lastSr: u32, delaySinceLastSr: u32,
});

function senderReport(ssrc: number, reports: ReportBlock[]): Buffer {
  const rr = buildReceiverReport(ssrc, reports); // same report blocks, after a 20-byte sender info in an SR
  const out = Buffer.alloc(rr.length + 20);
  out[0] = 0x80 | reports.length;
  out[1] = RTCP_SR;
  out.writeUInt16BE(out.length / 4 - 1, 2);
  out.writeUInt32BE(ssrc, 4);
  for (let i = 8; i < 28; i++) out[i] = (i * 37 + ssrc) & 0xff;
  rr.copy(out, 28, 8);
  return out;
}

function bye(ssrcs: number[], reason?: string): Buffer {
  const r = reason === undefined ? Buffer.alloc(0) : Buffer.from(reason, 'utf8').subarray(0, 255);
  const body = 4 * ssrcs.length + (reason === undefined ? 0 : 1 + r.length);
  const out = Buffer.alloc(4 + Math.ceil(body / 4) * 4);
  out[0] = 0x80 | ssrcs.length;
  out[1] = RTCP_BYE;
  out.writeUInt16BE(out.length / 4 - 1, 2);
  ssrcs.forEach((s, i) => out.writeUInt32BE(s, 4 + 4 * i));
  if (reason !== undefined) {
    out[4 + 4 * ssrcs.length] = r.length;
    r.copy(out, 5 + 4 * ssrcs.length);
  }
  return out;
}

const rtcpPacket = fc.oneof(
  fc.tuple(u32, fc.array(reportBlock, { maxLength: 4, size: 'max' }), fc.option(fc.string({ maxLength: 40 }), { nil: undefined }))
    .map(([ssrc, reports, cname]) => buildReceiverReport(ssrc, reports, cname && Buffer.byteLength(cname) <= 255 ? cname : undefined)),
  fc.tuple(u32, fc.array(reportBlock, { maxLength: 4, size: 'max' })).map(([ssrc, reports]) => senderReport(ssrc, reports)),
  fc.tuple(u32, u32, fc.string({ maxLength: 20 })).map(([a, b, cname]) => buildKeyframeRequest(a, b, cname)),
  fc.tuple(fc.array(u32, { maxLength: 31, size: 'max' }), fc.option(fc.string({ maxLength: 30 }), { nil: undefined })).map(([s, reason]) => bye(s, reason)),
);
const validRtcp = fc.array(rtcpPacket, { minLength: 1, maxLength: 4 }).map((ps) => Buffer.concat(ps));

/** What parseRtcp returns must be a prefix of the datagram's packets, each inside the input. */
function checkRtcp(buf: Buffer): { packets: number; error?: string } {
  const r = parseRtcp(buf);
  let off = 0;
  for (const p of r.packets) {
    assert.ok(off + 4 <= buf.length, 'a packet header inside the input');
    const b0 = buf[off]!;
    const type = buf[off + 1]!;
    const count = b0 & 0x1f;
    const end = off + (buf.readUInt16BE(off + 2) + 1) * 4;
    assert.ok(end <= buf.length, `packet at ${off} extends past the input (${end} > ${buf.length})`);
    const bodyLength = end - off - 4 - (b0 & 0x20 ? buf[end - 1]! : 0);
    switch (p.type) {
      case 'sr':
        assert.equal(type, RTCP_SR);
        assert.equal(p.reports.length, count);
        assert.ok(bodyLength >= 24 + 24 * count);
        break;
      case 'rr':
        assert.equal(type, RTCP_RR);
        assert.equal(p.reports.length, count);
        assert.ok(bodyLength >= 4 + 24 * count);
        break;
      case 'sdes':
        assert.equal(type, RTCP_SDES);
        assert.equal(p.chunks.length, count);
        for (const c of p.chunks) for (const item of c.items) assert.ok(item.type >= 1 && Buffer.byteLength(item.value) <= 255 * 3);
        break;
      case 'bye':
        assert.equal(type, RTCP_BYE);
        assert.equal(p.ssrcs.length, count);
        assert.ok(bodyLength >= 4 * count);
        break;
      case 'other':
        assert.equal(p.packetType, type);
        assert.equal(p.count, count);
        break;
    }
    for (const rb of 'reports' in p ? p.reports : []) assert.ok(rb.fractionLost <= 255 && rb.cumulativeLost >= -0x800000 && rb.cumulativeLost <= 0x7fffff);
    off = end;
  }
  if (r.error === undefined) assert.equal(off, buf.length, 'no error means the whole datagram was read');
  else assert.equal(typeof r.error, 'string');
  return { packets: r.packets.length, ...(r.error === undefined ? {} : { error: r.error }) };
}

test('fuzz: parseRtcp never throws and never returns a packet extending past the input', (t) => {
  fuzz(t, fc.oneof(bytes(96), validRtcp, mutated(validRtcp)), (buf) => {
    checkRtcp(buf);
  }, 3000);
});

test('fuzz: valid compound RTCP parses whole', (t) => {
  fuzz(t, fc.array(rtcpPacket, { minLength: 1, maxLength: 4 }), (ps) => {
    const r = checkRtcp(Buffer.concat(ps));
    assert.equal(r.error, undefined);
    // A keyframe request is RR + SDES + PLI: count what parseRtcp sees, not what we built.
    assert.ok(r.packets >= ps.length);
  }, 1000);
});

// ------------------------------------------------------------------------------------------------ gate

const EXPECTED = { address: '127.0.0.1', port: 10010 };
const remote = (address: string, port: number): RemoteInfo => ({ address, port, family: 'IPv4', size: 0 });

test('fuzz: the RTP gate counts every datagram exactly once, under exactly one verdict', (t) => {
  const input = fc.record({
    payloadTypes: fc.uniqueArray(fc.integer({ min: 0, max: 127 }), { maxLength: 4 }),
    checkSource: fc.boolean(),
    datagrams: fc.array(fc.record({ buf: anyDatagram, fromExpected: fc.boolean() }), { maxLength: 40, size: 'max' }),
  });
  fuzz(t, input, ({ payloadTypes, checkSource, datagrams }) => {
    const g = new RtpGate({ payloadTypes, ...(checkSource ? { expectedSource: EXPECTED } : {}) });
    const keys = ['accepted', 'rejected', 'rejectedSource', 'wrongPayloadType'] as const;
    let bytesAccepted = 0;
    for (const d of datagrams) {
      const before = { ...g.counters };
      const reasonsBefore = { ...g.rejectReasons };
      const from = d.fromExpected ? remote(EXPECTED.address, EXPECTED.port) : remote('10.9.8.7', 4000);
      const pkt = g.accept(d.buf, from);
      const delta = keys.map((k) => g.counters[k] - before[k]);
      assert.deepEqual(delta.filter((x) => x !== 0), [1], `one verdict per datagram: ${JSON.stringify(delta)}`);
      const verdict = keys[delta.indexOf(1)]!;
      const parsed = parseRtp(d.buf);
      const expected = checkSource && !d.fromExpected ? 'rejectedSource'
        : !parsed.ok ? 'rejected'
          : !payloadTypes.includes(parsed.packet.payloadType) ? 'wrongPayloadType' : 'accepted';
      assert.equal(verdict, expected);
      assert.equal(pkt !== undefined, verdict === 'accepted');
      if (verdict === 'rejected' && !parsed.ok) assert.equal(g.rejectReasons[parsed.reason], (reasonsBefore[parsed.reason] ?? 0) + 1);
      if (pkt) bytesAccepted += d.buf.length;
    }
    const c = g.counters;
    assert.equal(c.accepted + c.rejected + c.rejectedSource + c.wrongPayloadType, datagrams.length, 'accepted + rejected = fed');
    assert.equal(Object.values(g.rejectReasons).reduce((a, b) => a + b, 0), c.rejected, 'every rejection has a reason');
    assert.equal(c.bytes, bytesAccepted);
  }, 400);
});

// --------------------------------------------------------------------------------------- jitter buffer

type JbOp =
  | { kind: 'push'; seq: { rel: number } | { abs: number }; ssrc: number; dt: number; weird?: number | undefined }
  | { kind: 'pop'; dt: number }
  | { kind: 'drain' };

const jbOp: fc.Arbitrary<JbOp> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('push' as const),
      // Mostly the next one; then small gaps, late and duplicate ones, jumps around MAX_JUMP, anything.
      seq: fc.oneof(
        { weight: 8, arbitrary: fc.constant({ rel: 1 }) },
        { weight: 2, arbitrary: fc.integer({ min: 2, max: 30 }).map((rel) => ({ rel })) },
        { weight: 2, arbitrary: fc.integer({ min: -120, max: 0 }).map((rel) => ({ rel })) },
        { weight: 1, arbitrary: fc.integer({ min: MAX_JUMP - 30, max: MAX_JUMP + 30 }).map((rel) => ({ rel })) },
        { weight: 1, arbitrary: u16.map((abs) => ({ abs })) },
      ),
      ssrc: fc.oneof({ weight: 8, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.constant(2) }, { weight: 1, arbitrary: u32 }),
      dt: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.integer({ min: -100, max: 1500 })),
      // Now and then an arrival time no clock gives.
      weird: fc.oneof({ weight: 30, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(NaN, Infinity, -Infinity, -1e300, 1e300, -0.5) }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('pop' as const), dt: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.integer({ min: -50, max: 3000 })) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drain' as const }) },
);

test('fuzz: the jitter buffer never throws, stays within its bound, and accounts for every packet', (t) => {
  const input = fc.record({
    depthMs: fc.integer({ min: 0, max: 300 }),
    maxPackets: fc.option(fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 2000 })), { nil: undefined }),
    ops: fc.array(jbOp, { maxLength: 250, size: 'max' }),
  });
  fuzz(t, input, ({ depthMs, maxPackets, ops }) => {
    const jb = new JitterBuffer({ depthMs, ...(maxPackets === undefined ? {} : { maxPackets }) });
    const bound = Math.max(1, Math.min(maxPackets ?? 500, MAX_JUMP + 1)) + 1; // "so the bound is maxPackets + 1"
    const pushed = new Set<RtpPacket>();
    const released = new Set<RtpPacket>();
    let last: RtpPacket | undefined;
    let breaks = 0;
    let clock = 1000;
    let cursor = 0;
    const take = (out: RtpPacket[]) => {
      for (const p of out) {
        assert.ok(pushed.has(p), 'released packets were pushed');
        assert.ok(!released.has(p), 'each packet released once');
        released.add(p);
        if (last && (p.ssrc !== last.ssrc || seqDiff(p.sequenceNumber, last.sequenceNumber) <= 0)) breaks++;
        last = p;
      }
    };
    const check = () => {
      const s = jb.stats;
      assert.ok(s.depth >= 0 && s.depth <= bound, `depth ${s.depth} within ${bound}`);
      assert.ok(s.maxDepth >= s.depth && s.maxDepth <= bound);
      const candidate = peek<RtpPacket | undefined>(jb, 'candidate') ? 1 : 0;
      assert.equal(s.received, s.released + s.duplicates + s.late + s.strays + s.overflow + s.depth + candidate, JSON.stringify(s));
      // stats.released counts a resync's flushed packets at once; pop()/drain() hands them out next.
      assert.equal(s.released, released.size + (peek<RtpPacket[] | undefined>(jb, 'flushed')?.length ?? 0));
      // In sequence order, except where a resync started a new sequence space.
      assert.ok(breaks <= s.resyncs, `${breaks} order breaks, ${s.resyncs} resyncs`);
      if (s.depth === 0) assert.ok(jb.nextReleaseMs() === undefined || jb.nextReleaseMs() === -Infinity);
    };
    for (const op of ops) {
      if (op.kind === 'push') {
        clock += op.dt;
        const seq = 'abs' in op.seq ? op.seq.abs : (cursor + op.seq.rel) & 0xffff;
        cursor = seq;
        const p: RtpPacket = { version: 2, padding: false, marker: false, payloadType: 0, sequenceNumber: seq, timestamp: (seq * 160) >>> 0, ssrc: op.ssrc, csrcs: [], payload: Buffer.alloc(0) };
        pushed.add(p);
        jb.push(p, op.weird ?? clock);
      } else if (op.kind === 'pop') {
        take(jb.pop(clock + op.dt));
      } else {
        take(jb.drain());
        assert.equal(jb.stats.depth, 0);
      }
      check();
    }
    take(jb.drain());
    check();
  }, 300);
});
