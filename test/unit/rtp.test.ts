import assert from 'node:assert/strict';
import { test } from 'node:test';
import { captureFfmpegRtp } from '../helpers/rtp-capture.js';
import {
  EXTENSION_PROFILE_ONE_BYTE,
  EXTENSION_PROFILE_TWO_BYTE,
  looksLikeRtcp,
  parseRtp,
  serializeRtp,
  type RtpPacket,
  type RtpParse,
} from '../../plugin/media/ingest/rtp.js';

function ok(r: RtpParse): RtpPacket {
  if (!r.ok) assert.fail(`rejected: ${r.reason}`);
  return r.packet;
}

function reason(r: RtpParse): string {
  assert.equal(r.ok, false);
  return r.ok ? '' : r.reason;
}

/** 12-byte header by hand: V=2, flags in b0 low bits, b1 = M|PT. */
function header(b0: number, b1: number, seq = 0x1234, ts = 0xdeadbeef, ssrc = 0x01020304): Buffer {
  const b = Buffer.alloc(12);
  b[0] = b0;
  b[1] = b1;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(ts, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

test('fixed header fields, marker and payload type', () => {
  const buf = Buffer.concat([header(0x80, 0x80 | 96, 65535, 0xffffffff, 0xcafebabe), Buffer.from([1, 2, 3])]);
  const p = ok(parseRtp(buf));
  assert.equal(p.version, 2);
  assert.equal(p.padding, false);
  assert.equal(p.marker, true);
  assert.equal(p.payloadType, 96);
  assert.equal(p.sequenceNumber, 65535);
  assert.equal(p.timestamp, 0xffffffff);
  assert.equal(p.ssrc, 0xcafebabe);
  assert.deepEqual(p.csrcs, []);
  assert.equal(p.extension, undefined);
  assert.deepEqual([...p.payload], [1, 2, 3]);

  const q = ok(parseRtp(Buffer.concat([header(0x80, 0), Buffer.from([9])])));
  assert.equal(q.marker, false);
  assert.equal(q.payloadType, 0);
  assert.equal(ok(parseRtp(header(0x80, 127))).payloadType, 127);
  assert.equal(ok(parseRtp(header(0x80, 0x80 | 8))).payloadType, 8);
});

test('an empty payload is valid', () => {
  const p = ok(parseRtp(header(0x80, 0)));
  assert.equal(p.payload.length, 0);
});

test('CSRC list for every count 1..15', () => {
  for (let cc = 1; cc <= 15; cc++) {
    const csrcs = Array.from({ length: cc }, (_, i) => (0xf0000000 + i * 0x01010101) >>> 0);
    const words = Buffer.alloc(4 * cc);
    csrcs.forEach((c, i) => words.writeUInt32BE(c, 4 * i));
    const buf = Buffer.concat([header(0x80 | cc, 0), words, Buffer.from('payload')]);
    const p = ok(parseRtp(buf));
    assert.deepEqual(p.csrcs, csrcs, `cc=${cc}`);
    assert.equal(p.payload.toString(), 'payload', `cc=${cc}`);
    // One byte short of the CSRC list is rejected, not read past the end.
    assert.equal(reason(parseRtp(buf.subarray(0, 12 + 4 * cc - 1))), 'bad-csrc-length', `cc=${cc}`);
  }
});

test('header extension: one-byte profile (RFC 8285 0xBEDE)', () => {
  // One element: ID 1, L=0 (1 byte) = 0x7f, then padding to the word.
  const ext = Buffer.from([0xbe, 0xde, 0x00, 0x01, 0x10, 0x7f, 0x00, 0x00]);
  const p = ok(parseRtp(Buffer.concat([header(0x90, 0), ext, Buffer.from([0xaa, 0xbb])])));
  assert.equal(p.extension?.profile, EXTENSION_PROFILE_ONE_BYTE);
  assert.deepEqual([...p.extension!.data], [0x10, 0x7f, 0, 0]);
  assert.deepEqual([...p.payload], [0xaa, 0xbb]);
});

test('header extension: two-byte profile, after CSRCs', () => {
  const ext = Buffer.from([0x10, 0x00, 0x00, 0x02, 0x05, 0x03, 1, 2, 3, 0, 0, 0]);
  const csrc = Buffer.from([0, 0, 0, 7]);
  const p = ok(parseRtp(Buffer.concat([header(0x91, 0), csrc, ext, Buffer.from([0xcc])])));
  assert.deepEqual(p.csrcs, [7]);
  assert.equal(p.extension?.profile, EXTENSION_PROFILE_TWO_BYTE);
  assert.equal(p.extension!.data.length, 8);
  assert.deepEqual([...p.payload], [0xcc]);
});

test('header extension: zero length', () => {
  const p = ok(parseRtp(Buffer.concat([header(0x90, 0), Buffer.from([0xbe, 0xde, 0, 0]), Buffer.from([5, 6])])));
  assert.equal(p.extension?.profile, 0xbede);
  assert.equal(p.extension!.data.length, 0);
  assert.deepEqual([...p.payload], [5, 6]);
});

test('header extension: truncated header or data is rejected', () => {
  assert.equal(reason(parseRtp(header(0x90, 0))), 'bad-extension-length');
  assert.equal(reason(parseRtp(Buffer.concat([header(0x90, 0), Buffer.from([0xbe, 0xde, 0])]))), 'bad-extension-length');
  // Claims 2 words, carries 1.
  assert.equal(reason(parseRtp(Buffer.concat([header(0x90, 0), Buffer.from([0xbe, 0xde, 0, 2, 1, 2, 3, 4])]))), 'bad-extension-length');
  // Claims 0xffff words.
  assert.equal(reason(parseRtp(Buffer.concat([header(0x90, 0), Buffer.from([0xbe, 0xde, 0xff, 0xff]), Buffer.alloc(100)]))), 'bad-extension-length');
});

test('padding: the count byte trims the payload', () => {
  const buf = Buffer.concat([header(0xa0, 0), Buffer.from([1, 2, 3, 0, 0, 3])]);
  const p = ok(parseRtp(buf));
  assert.equal(p.padding, true);
  assert.deepEqual([...p.payload], [1, 2, 3]);
  // Padding that is the whole payload leaves it empty.
  assert.equal(ok(parseRtp(Buffer.concat([header(0xa0, 0), Buffer.from([0, 0, 0, 4])]))).payload.length, 0);
  // With an extension, padding is counted from the end, payload sits between.
  const withExt = Buffer.concat([header(0xb0, 0), Buffer.from([0xbe, 0xde, 0, 1, 0, 0, 0, 0]), Buffer.from([7, 8, 0, 2])]);
  assert.deepEqual([...ok(parseRtp(withExt)).payload], [7, 8]);
});

test('padding larger than the payload, or zero, is rejected', () => {
  assert.equal(reason(parseRtp(Buffer.concat([header(0xa0, 0), Buffer.from([1, 2, 4])]))), 'bad-padding');
  assert.equal(reason(parseRtp(Buffer.concat([header(0xa0, 0), Buffer.from([1, 2, 0])]))), 'bad-padding');
  assert.equal(reason(parseRtp(Buffer.concat([header(0xa0, 0), Buffer.from([255])]))), 'bad-padding');
  // Padding must not eat into the CSRC list or extension.
  assert.equal(reason(parseRtp(Buffer.concat([header(0xa1, 0), Buffer.from([0, 0, 0, 4])]))), 'bad-padding');
  // P set with no payload byte at all: the last header byte is not a padding count.
  assert.equal(reason(parseRtp(header(0xa0, 0, 1, 2, 0x00000005))), 'bad-padding');
});

test('version other than 2 is rejected', () => {
  for (const v of [0, 1, 3]) {
    assert.equal(reason(parseRtp(Buffer.concat([header(v << 6, 0), Buffer.alloc(20)]))), 'bad-version', `v=${v}`);
  }
});

test('truncated headers at every length 0..11', () => {
  const full = Buffer.concat([header(0x80, 0), Buffer.alloc(4)]);
  for (let n = 0; n < 12; n++) assert.equal(reason(parseRtp(full.subarray(0, n))), 'too-short', `length ${n}`);
  assert.equal(parseRtp(full.subarray(0, 12)).ok, true);
});

test('payload is a view of the input, not a copy', () => {
  const backing = Buffer.alloc(100);
  header(0x81, 0).copy(backing, 10);
  backing.writeUInt32BE(99, 22);
  const buf = backing.subarray(10, 40);
  const p = ok(parseRtp(buf));
  assert.equal(p.payload.buffer, buf.buffer);
  assert.equal(p.payload.byteOffset, buf.byteOffset + 16);
  assert.equal(p.payload.length, 14);
  buf[16] = 0x42;
  assert.equal(p.payload[0], 0x42);
});

test('RTCP on the same port is recognised (RFC 5761) and not parsed as RTP', () => {
  for (const pt of [200, 201, 202, 203, 204, 205, 206, 207]) {
    const b = Buffer.from([0x80, pt, 0, 1, 0, 0, 0, 1]);
    assert.equal(looksLikeRtcp(b), true, String(pt));
    assert.equal(reason(parseRtp(Buffer.concat([b, Buffer.alloc(20)]))), 'rtcp');
  }
  for (const b1 of [0, 8, 9, 96, 0x80 | 96, 127, 0x80 | 0, 0x80 | 63]) {
    assert.equal(looksLikeRtcp(Buffer.concat([header(0x80, b1)])), false, String(b1));
  }
  assert.equal(looksLikeRtcp(Buffer.from([0x80, 200])), false); // too short to be RTCP
  assert.equal(looksLikeRtcp(Buffer.from([0x40, 200, 0, 1])), false); // version 1
});

test('serialize → parse round trip', () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (let k = 0; k < 500; k++) {
    const cc = rnd(16);
    const extWords = rnd(3) === 0 ? -1 : rnd(4);
    const init = {
      marker: rnd(2) === 1,
      payloadType: rnd(128),
      sequenceNumber: rnd(65536),
      timestamp: (rnd(65536) * 65536 + rnd(65536)) >>> 0,
      ssrc: (rnd(65536) * 65536 + rnd(65536)) >>> 0,
      csrcs: Array.from({ length: cc }, () => rnd(0x7fffffff)),
      payload: Buffer.from(Array.from({ length: rnd(200) }, () => rnd(256))),
      padding: rnd(3) === 0 ? 1 + rnd(255) : 0,
      ...(extWords >= 0 ? { extension: { profile: rnd(65536), data: Buffer.alloc(4 * extWords, rnd(256)) } } : {}),
    };
    if (looksLikeRtcp(Buffer.from([0x80, init.payloadType | (init.marker ? 0x80 : 0), 0, 0]))) continue;
    const p = ok(parseRtp(serializeRtp(init)));
    assert.equal(p.marker, init.marker);
    assert.equal(p.payloadType, init.payloadType);
    assert.equal(p.sequenceNumber, init.sequenceNumber);
    assert.equal(p.timestamp, init.timestamp);
    assert.equal(p.ssrc, init.ssrc);
    assert.deepEqual(p.csrcs, init.csrcs);
    assert.equal(p.padding, init.padding > 0);
    assert.deepEqual(p.payload, init.payload);
    assert.deepEqual(p.extension, init.extension);
  }
});

test('serialize: exact bytes, and values the wire cannot carry throw', () => {
  const b = serializeRtp({ marker: true, payloadType: 0, sequenceNumber: 1, timestamp: 160, ssrc: 0x12345678, csrcs: [], payload: Buffer.from([0xff]) });
  assert.equal(b.toString('hex'), '80800001000000a012345678ff');
  const base = { marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, csrcs: [] as number[], payload: Buffer.alloc(0) };
  assert.throws(() => serializeRtp({ ...base, csrcs: new Array<number>(16).fill(1) }), RangeError);
  assert.throws(() => serializeRtp({ ...base, padding: 256 }), RangeError);
  assert.throws(() => serializeRtp({ ...base, extension: { profile: 0xbede, data: Buffer.alloc(3) } }), RangeError);
  assert.throws(() => serializeRtp({ ...base, payloadType: 128 }), RangeError);
});

test('fuzz: random and mutated buffers never throw, accepted ones are consistent', () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed % n;
  };
  const valid = serializeRtp({
    marker: true, payloadType: 96, sequenceNumber: 5, timestamp: 6, ssrc: 7, csrcs: [1, 2],
    extension: { profile: 0xbede, data: Buffer.alloc(8) }, payload: Buffer.alloc(30), padding: 4,
  });
  for (let k = 0; k < 20000; k++) {
    let buf: Buffer;
    if (k % 2 === 0) {
      buf = Buffer.from(Array.from({ length: rnd(64) }, () => rnd(256)));
      if (buf.length > 0 && rnd(2)) buf[0] = 0x80 | (buf[0]! & 0x3f); // mostly version 2, to reach deeper
    } else {
      buf = Buffer.from(valid.subarray(0, rnd(valid.length + 1)));
      for (let m = rnd(4); m > 0 && buf.length > 0; m--) buf[rnd(buf.length)] = rnd(256);
    }
    const r = parseRtp(buf);
    if (r.ok) {
      const p = r.packet;
      assert.equal(p.payload.buffer, buf.buffer);
      assert.ok(p.payload.byteOffset >= buf.byteOffset + 12 + 4 * p.csrcs.length);
      assert.ok(p.payload.byteOffset + p.payload.length <= buf.byteOffset + buf.length);
    }
  }
});

test('real capture: ffmpeg -f rtp PCMU parses with consecutive sequence and timestamps', async () => {
  const { media: got, control } = await captureFfmpegRtp([
    '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=8000', '-t', '0.5',
    '-af', 'asetnsamples=n=160:p=0', '-c:a', 'pcm_mulaw', '-ssrc', '305419896', '-payload_type', '0',
  ], '&pkt_size=172');
  assert.ok(got.length >= 20, `${got.length} packets`);
  const packets = got.map((b) => ok(parseRtp(b)));
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!;
    assert.equal(p.ssrc, 305419896);
    assert.equal(p.payloadType, 0);
    assert.equal(p.payload.length, 160); // 20 ms of 8 kHz μ-law
    if (i > 0) {
      assert.equal(p.sequenceNumber, (packets[i - 1]!.sequenceNumber + 1) & 0xffff);
      assert.equal(p.timestamp, (packets[i - 1]!.timestamp + packets[i - 1]!.payload.length) >>> 0);
    }
  }
  // ffmpeg's RTCP (a sender report) is told apart from RTP.
  assert.ok(control.length >= 1);
  for (const c of control) {
    assert.equal(looksLikeRtcp(c), true);
    assert.equal(reason(parseRtp(c)), 'rtcp');
  }
});
