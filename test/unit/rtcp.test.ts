import assert from 'node:assert/strict';
import { test } from 'node:test';
import { captureFfmpegRtp } from '../helpers/rtp-capture.js';
import {
  buildKeyframeRequest,
  buildPli,
  buildReceiverReport,
  NTP_UNIX_OFFSET_S,
  ntpMiddle32,
  ntpToMs,
  parseRtcp,
  type ReportBlock,
  type RtcpPacket,
} from '../../plugin/media/ingest/rtcp.js';
import { parseRtp } from '../../plugin/media/ingest/rtp.js';

/** Common header + body; length field from the body size (which must be a multiple of 4). */
function rtcp(count: number, pt: number, body: Buffer, padding = 0): Buffer {
  const pad = Buffer.alloc(padding);
  if (padding) pad[padding - 1] = padding;
  const h = Buffer.from([0x80 | (padding ? 0x20 : 0) | count, pt, 0, 0]);
  h.writeUInt16BE((body.length + padding) / 4, 2);
  return Buffer.concat([h, body, pad]);
}

function u32(...v: number[]): Buffer {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeUInt32BE(x >>> 0, 4 * i));
  return b;
}

function block(ssrc: number, fraction: number, cumulative: number, rest: number[]): Buffer {
  const b = u32(ssrc, 0, ...rest);
  b[4] = fraction;
  b.writeIntBE(cumulative, 5, 3);
  return b;
}

const sdesChunk = (ssrc: number, items: [number, string][]): Buffer => {
  const parts = [u32(ssrc)];
  for (const [t, v] of items) parts.push(Buffer.from([t, Buffer.byteLength(v)]), Buffer.from(v));
  let len = parts.reduce((n, p) => n + p.length, 0) + 1;
  while (len % 4) len++;
  return Buffer.concat([...parts, Buffer.alloc(len - parts.reduce((n, p) => n + p.length, 0))]);
};

test('sender report with two report blocks', () => {
  const body = Buffer.concat([
    u32(0x11111111, 0xe8a1b2c3, 0x80000000, 123456, 1000, 160000),
    block(0x22222222, 64, 5, [0x0001ffff, 12, 0xb2c38000, 65536]),
    block(0x33333333, 255, -3, [0x00020010, 0, 0, 0]),
  ]);
  const { packets, error } = parseRtcp(rtcp(2, 200, body));
  assert.equal(error, undefined);
  assert.deepEqual(packets, [{
    type: 'sr', ssrc: 0x11111111, ntpSeconds: 0xe8a1b2c3, ntpFraction: 0x80000000, rtpTimestamp: 123456,
    packetCount: 1000, octetCount: 160000,
    reports: [
      { ssrc: 0x22222222, fractionLost: 64, cumulativeLost: 5, highestSeq: 0x0001ffff, jitter: 12, lastSr: 0xb2c38000, delaySinceLastSr: 65536 },
      { ssrc: 0x33333333, fractionLost: 255, cumulativeLost: -3, highestSeq: 0x00020010, jitter: 0, lastSr: 0, delaySinceLastSr: 0 },
    ],
  } satisfies RtcpPacket]);
});

test('compound SR + SDES (CNAME, NAME; several chunks)', () => {
  const sr = rtcp(0, 200, u32(7, 1, 2, 3, 4, 5));
  const sdes = rtcp(2, 202, Buffer.concat([sdesChunk(7, [[1, 'asterisk@127.0.0.1'], [2, 'Bob']]), sdesChunk(8, [[1, 'abc']])]));
  const { packets, error } = parseRtcp(Buffer.concat([sr, sdes]));
  assert.equal(error, undefined);
  assert.equal(packets.length, 2);
  assert.equal(packets[0]!.type, 'sr');
  assert.deepEqual(packets[1], {
    type: 'sdes',
    chunks: [
      { ssrc: 7, items: [{ type: 1, value: 'asterisk@127.0.0.1' }, { type: 2, value: 'Bob' }] },
      { ssrc: 8, items: [{ type: 1, value: 'abc' }] },
    ],
  });
});

test('receiver report and BYE (with and without reason), padding on the last packet', () => {
  const rr = rtcp(1, 201, Buffer.concat([u32(9), block(10, 0, 0, [1, 2, 3, 4])]));
  const bye = rtcp(2, 203, Buffer.concat([u32(9, 10), Buffer.from([6, ...Buffer.from('hangup'), 0])]), 4);
  const { packets, error } = parseRtcp(Buffer.concat([rr, bye]));
  assert.equal(error, undefined);
  assert.deepEqual(packets[0], { type: 'rr', ssrc: 9, reports: [{ ssrc: 10, fractionLost: 0, cumulativeLost: 0, highestSeq: 1, jitter: 2, lastSr: 3, delaySinceLastSr: 4 }] });
  assert.deepEqual(packets[1], { type: 'bye', ssrcs: [9, 10], reason: 'hangup' });
  assert.deepEqual(parseRtcp(rtcp(1, 203, u32(42))).packets, [{ type: 'bye', ssrcs: [42] }]);
});

test('unknown packet types are kept by type (APP, feedback, XR)', () => {
  const { packets, error } = parseRtcp(Buffer.concat([rtcp(0, 201, u32(1)), rtcp(1, 206, u32(1, 2)), rtcp(3, 207, u32(0))]));
  assert.equal(error, undefined);
  assert.deepEqual(packets.slice(1), [{ type: 'other', packetType: 206, count: 1 }, { type: 'other', packetType: 207, count: 3 }]);
});

test('truncated and garbage input: an error string and the packets before it, never a throw', () => {
  const sr = rtcp(1, 200, Buffer.concat([u32(7, 1, 2, 3, 4, 5), block(1, 0, 0, [0, 0, 0, 0])]));
  for (let n = 0; n < sr.length; n++) {
    const r = parseRtcp(sr.subarray(0, n));
    assert.equal(typeof r.error, 'string', `length ${n}`);
    assert.deepEqual(r.packets, []);
  }
  const good = rtcp(0, 201, u32(1));
  const cases: [Buffer, RegExp][] = [
    [Buffer.alloc(0), /too short/],
    [Buffer.from([0x40, 200, 0, 0]), /bad version 1/],
    [Buffer.concat([good, Buffer.from([0x80, 201, 0, 9])]), /claims 40 bytes/],
    [Buffer.concat([good, Buffer.from([0x80, 201])]), /truncated header/],
    [rtcp(2, 200, u32(7, 1, 2, 3, 4, 5)), /SR with 2 blocks/],
    [rtcp(1, 201, u32(7)), /RR with 1 blocks/],
    [rtcp(1, 202, u32(7, 0x01056162)), /SDES item of 5 bytes overruns/],
    [rtcp(1, 202, u32(7, 0x01026162)), /no end item/],
    [rtcp(1, 202, u32(7, 0x01016141)), /SDES item truncated/],
    [rtcp(2, 202, sdesChunk(7, [[1, 'a']])), /SDES chunk 1 truncated/],
    [rtcp(3, 203, u32(1, 2)), /BYE with 3 sources/],
    [rtcp(1, 203, Buffer.concat([u32(1), Buffer.from([9, 0x61, 0, 0])])), /BYE reason/],
    [Buffer.from([0xa0, 201, 0, 1, 0, 0, 0, 0]), /bad padding 0/],
    [Buffer.from([0xa0, 201, 0, 1, 0, 0, 0, 9]), /bad padding 9/],
  ];
  for (const [buf, re] of cases) {
    const r = parseRtcp(buf);
    assert.match(r.error ?? '', re, buf.toString('hex'));
  }
  // The good packet before a bad one is still returned.
  assert.equal(parseRtcp(Buffer.concat([good, Buffer.from([0x80, 201, 0, 9])])).packets.length, 1);

  let seed = 99;
  const rnd = (n: number) => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed % n;
  };
  const valid = Buffer.concat([sr, rtcp(1, 202, sdesChunk(7, [[1, 'cname']])), rtcp(1, 203, u32(7))]);
  for (let k = 0; k < 20000; k++) {
    const buf = Buffer.from(valid.subarray(0, rnd(valid.length + 1)));
    for (let m = rnd(4); m > 0 && buf.length > 0; m--) buf[rnd(buf.length)] = rnd(256);
    const r = parseRtcp(buf);
    assert.ok(Array.isArray(r.packets));
  }
});

test('PLI bytes per RFC 4585 §6.3.1 (PT 206, FMT 1, length 2)', () => {
  const b = buildPli(0x01020304, 0xa0b0c0d0);
  assert.equal(b.toString('hex'), '81ce000201020304a0b0c0d0');
  assert.deepEqual(parseRtcp(b), { packets: [{ type: 'other', packetType: 206, count: 1 }] });
});

test('keyframe request: a compound that starts with an RR (Asterisk drops RTCP that does not), then CNAME, then PLI', () => {
  const b = buildKeyframeRequest(5, 9, 'sip-as-rtmp');
  assert.equal(b[1], 201, 'first packet: RR');
  assert.deepEqual(parseRtcp(b).packets, [
    { type: 'rr', ssrc: 5, reports: [] },
    { type: 'sdes', chunks: [{ ssrc: 5, items: [{ type: 1, value: 'sip-as-rtmp' }] }] },
    { type: 'other', packetType: 206, count: 1 },
  ]);
  assert.equal(b.subarray(b.length - 12).toString('hex'), buildPli(5, 9).toString('hex'));
});

test('receiver report: builds what the parser reads; CNAME makes a compound', () => {
  assert.equal(buildReceiverReport(5).toString('hex'), '80c9000100000005');
  const r: ReportBlock = { ssrc: 6, fractionLost: 12, cumulativeLost: -2, highestSeq: 0x1ffff, jitter: 40, lastSr: 0x12345678, delaySinceLastSr: 3000 };
  for (let len = 0; len <= 9; len++) {
    const cname = 'x'.repeat(len);
    const b = buildReceiverReport(5, [r, { ...r, ssrc: 7, cumulativeLost: 1e9 }], cname);
    assert.equal(b.length % 4, 0);
    const { packets, error } = parseRtcp(b);
    assert.equal(error, undefined, `cname length ${len}`);
    assert.deepEqual(packets, [
      { type: 'rr', ssrc: 5, reports: [r, { ...r, ssrc: 7, cumulativeLost: 0x7fffff }] },
      { type: 'sdes', chunks: [{ ssrc: 5, items: [{ type: 1, value: cname }] }] },
    ]);
  }
  assert.throws(() => buildReceiverReport(1, new Array<ReportBlock>(32).fill(r)), RangeError);
});

test('NTP time: ms since 1900, and the middle 32 bits for LSR', () => {
  assert.equal(ntpToMs(0, 0), 0);
  assert.equal(ntpToMs(1, 0x80000000), 1500);
  assert.equal(ntpToMs(3_900_000_000, 0x40000000), 3_900_000_000_250);
  assert.equal(ntpToMs(NTP_UNIX_OFFSET_S, 0) - NTP_UNIX_OFFSET_S * 1000, 0);
  assert.equal(ntpMiddle32(0xe8a1b2c3, 0x80004000), 0xb2c38000);
});

test('real capture: the sender report ffmpeg sends with its RTP', async () => {
  const { media, control } = await captureFfmpegRtp([
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=8000', '-t', '0.3',
    '-c:a', 'pcm_alaw', '-ssrc', '2000000001', '-payload_type', '8',
  ]);
  assert.ok(control.length >= 1 && media.length >= 1);
  const { packets, error } = parseRtcp(control[0]!);
  assert.equal(error, undefined);
  const sr = packets[0]!;
  assert.equal(sr.type, 'sr');
  if (sr.type !== 'sr') return;
  assert.equal(sr.ssrc, 2000000001);
  const first = parseRtp(media[0]!);
  assert.ok(first.ok);
  // ffmpeg stamps its SR from the send time: at or after the first packet's timestamp, within the capture.
  if (first.ok) {
    const ahead = (sr.rtpTimestamp - first.packet.timestamp) >>> 0;
    assert.ok(ahead <= 0.5 * 8000, `SR RTP timestamp ${sr.rtpTimestamp} vs first packet ${first.packet.timestamp}`);
  }
  // Its NTP clock is the wall clock.
  const unixMs = ntpToMs(sr.ntpSeconds, sr.ntpFraction) - NTP_UNIX_OFFSET_S * 1000;
  assert.ok(Math.abs(unixMs - Date.now()) < 60_000, `${unixMs} vs ${Date.now()}`);
});
