/**
 * The RTMP chunk stream (writer and reader), the client handshake, and the message parser: exact bytes
 * at the chunk-size boundaries, extended timestamps, header compression, interleaving, peer chunk size,
 * and a real nginx-rtmp capture.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkError, ChunkReader, ChunkWriter, type ChunkMessage } from '../../plugin/rtmp/chunk.js';
import { ClientHandshake, HandshakeError } from '../../plugin/rtmp/handshake.js';
import { buildCommand, buildConnect, buildSetPeerBandwidth, buildUserControl, MessageType, parseMessage, statusInfo } from '../../plugin/rtmp/messages.js';
import { decodeAmf0 } from '../../plugin/rtmp/amf0.js';
import { chunkFlood } from '../helpers/rtmp-flood.js';

const payload = (n: number, seed = 1) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff));

function readAll(bytes: Buffer, chunkSize: number, byteByByte = false): ChunkMessage[] {
  const r = new ChunkReader();
  r.setChunkSize(chunkSize);
  if (!byteByByte) return r.push(bytes);
  const out: ChunkMessage[] = [];
  for (let i = 0; i < bytes.length; i++) out.push(...r.push(bytes.subarray(i, i + 1)));
  return out;
}

/** Cut one encoded message back into its chunks (header bytes of the first chunk given). */
function splitChunks(enc: Buffer, firstHeader: number, contHeader: number, chunkSize: number, length: number): Buffer[] {
  const chunks: Buffer[] = [];
  let off = 0;
  for (let left = length, first = true; left > 0 || first; first = false) {
    const n = Math.min(chunkSize, left);
    const size = (first ? firstHeader : contHeader) + n;
    chunks.push(enc.subarray(off, off + size));
    off += size;
    left -= n;
  }
  assert.equal(off, enc.length);
  return chunks;
}

test('messages of chunkSize-1, chunkSize, chunkSize+1 and 3*chunkSize split exactly at the chunk size', () => {
  const cs = 128;
  for (const [len, chunks] of [
    [cs - 1, 1],
    [cs, 1],
    [cs + 1, 2],
    [3 * cs, 3],
  ] as const) {
    const w = new ChunkWriter();
    w.chunkSize = cs;
    const body = payload(len);
    const enc = w.encode(4, MessageType.Audio, 1, 1000, body);
    // fmt 0 on csid 4: 1 + 11 header bytes, then one 1-byte fmt 3 header (0xC4) per continuation chunk
    assert.equal(enc.length, 12 + (chunks - 1) + len, `length for ${len}`);
    assert.deepEqual(enc.subarray(0, 12), Buffer.from([0x04, 0x00, 0x03, 0xe8, len >> 16, (len >> 8) & 0xff, len & 0xff, 8, 1, 0, 0, 0]));
    for (let c = 1; c < chunks; c++) assert.equal(enc[12 + c * cs + (c - 1)], 0xc4, `continuation header ${c} of ${len}`);
    const [msg, ...rest] = readAll(enc, cs);
    assert.equal(rest.length, 0);
    assert.deepEqual(msg, { csid: 4, timestamp: 1000, typeId: 8, streamId: 1, payload: body });
    assert.deepEqual(readAll(enc, cs, true), [msg], 'same result fed one byte at a time');
  }
});

test('an empty message is one header and no payload', () => {
  const enc = new ChunkWriter().encode(3, 20, 0, 0, Buffer.alloc(0));
  assert.equal(enc.length, 12);
  assert.deepEqual(readAll(enc, 128)[0]?.payload, Buffer.alloc(0));
});

test('extended timestamp: fmt 0 at ≥ 0xFFFFFF, repeated on every continuation chunk', () => {
  for (const ts of [0xffffff, 0x12345678, 0xffffffff]) {
    const w = new ChunkWriter();
    w.chunkSize = 128;
    const body = payload(300);
    const enc = w.encode(6, MessageType.Video, 1, ts, body);
    assert.equal(enc.readUIntBE(1, 3), 0xffffff, 'timestamp field says "extended"');
    assert.equal(enc.readUInt32BE(12), ts, 'extended timestamp after the 11-byte header');
    const chunks = splitChunks(enc, 16, 5, 128, 300);
    assert.equal(chunks.length, 3);
    for (const c of chunks.slice(1)) {
      assert.equal(c[0], 0xc6);
      assert.equal(c.readUInt32BE(1), ts, 'continuation chunk carries the extended timestamp');
    }
    assert.deepEqual(readAll(enc, 128), [{ csid: 6, timestamp: ts, typeId: 9, streamId: 1, payload: body }]);
    assert.deepEqual(readAll(enc, 128, true).map((m) => m.timestamp), [ts]);
  }
  // just below the threshold: no extension
  const enc = new ChunkWriter().encode(4, 8, 1, 0xfffffe, payload(10));
  assert.equal(enc.length, 12 + 10);
});

test('header compression: fmt 0, then fmt 1 on a length change, fmt 2 on same length; extended deltas', () => {
  const w = new ChunkWriter();
  const r = new ChunkReader();
  const sent: [number, number][] = [
    [0, 10],
    [21, 12], // length changed → fmt 1, delta 21
    [42, 12], // same length, type, stream → fmt 2, delta 21
    [42 + 0x1000000, 12], // delta ≥ 0xFFFFFF → fmt 2 with extended delta
    [42 + 0x1000000 + 23, 12], // back to a small delta after an extended one
    [5, 12], // backwards → fmt 0
  ];
  const fmts: number[] = [];
  const got: number[] = [];
  for (const [ts, len] of sent) {
    const enc = w.encode(4, MessageType.Audio, 1, ts, payload(len, ts & 0xff));
    fmts.push(enc[0]! >> 6);
    for (const m of r.push(enc)) {
      got.push(m.timestamp);
      assert.deepEqual(m.payload, payload(len, ts & 0xff));
    }
  }
  assert.deepEqual(fmts, [0, 1, 2, 2, 2, 0]);
  assert.deepEqual(got, sent.map(([ts]) => ts));
  assert.deepEqual(w.stats, { messages: 6, bytes: w.stats.bytes, fmt0: 2, fmt1: 1, fmt2: 3 });
  // a different message stream id on the same chunk stream forces fmt 0
  assert.equal(w.encode(4, MessageType.Audio, 2, 100, payload(12))[0]! >> 6, 0);
});

test('timestamps wrap at 2^32 and keep using small deltas', () => {
  const w = new ChunkWriter();
  const r = new ChunkReader();
  const ts = [0xfffffff0, 0xfffffffa, 2 ** 32 + 4, 2 ** 32 + 30];
  const out: number[] = [];
  const fmts: number[] = [];
  for (const t of ts) {
    const enc = w.encode(4, 8, 1, t, payload(5));
    fmts.push(enc[0]! >> 6);
    out.push(...r.push(enc).map((m) => m.timestamp));
  }
  assert.deepEqual(out, [0xfffffff0, 0xfffffffa, 4, 30]);
  assert.deepEqual(fmts, [0, 2, 2, 2]);
});

test('the reader reassembles interleaved chunk streams', () => {
  const cs = 128;
  const w = new ChunkWriter();
  w.chunkSize = cs;
  const audio = payload(300, 3);
  const video = payload(400, 9);
  const a = splitChunks(w.encode(4, 8, 1, 0xffffff + 5, audio), 16, 5, cs, 300); // extended, 3 chunks
  const v = splitChunks(w.encode(6, 9, 1, 40, video), 12, 1, cs, 400); // 4 chunks
  const cmd = w.encode(3, 20, 0, 0, buildCommand('onStatus', 0, null, { code: 'x' }));
  const wire = Buffer.concat([a[0]!, v[0]!, v[1]!, cmd, a[1]!, v[2]!, a[2]!, v[3]!]);
  for (const byteByByte of [false, true]) {
    const msgs = readAll(wire, cs, byteByByte);
    assert.deepEqual(
      msgs.map((m) => [m.csid, m.typeId, m.timestamp, m.payload.length]),
      [
        [3, 20, 0, cmd.length - 12],
        [4, 8, 0xffffff + 5, 300],
        [6, 9, 40, 400],
      ],
    );
    assert.deepEqual(msgs[1]!.payload, audio);
    assert.deepEqual(msgs[2]!.payload, video);
  }
});

test('the reader honours a peer Set Chunk Size from the very next chunk', () => {
  const w = new ChunkWriter(); // starts at 128, as the peer does
  const setChunk = w.encode(2, MessageType.SetChunkSize, 0, 0, Buffer.from([0, 0, 0x10, 0])); // 4096
  w.chunkSize = 4096;
  const big = payload(3000);
  const msg = w.encode(3, 20, 0, 7, big);
  assert.equal(msg.length, 12 + 3000, 'one chunk at 4096');
  for (const byteByByte of [false, true]) {
    const r = new ChunkReader();
    const wire = Buffer.concat([setChunk, msg]);
    const out: ChunkMessage[] = [];
    if (byteByByte) for (const b of wire) out.push(...r.push(Buffer.from([b])));
    else out.push(...r.push(wire));
    assert.equal(r.chunkSize, 4096);
    assert.deepEqual(out.map((m) => m.typeId), [1, 20]);
    assert.deepEqual(out[1]!.payload, big);
  }
  // the highest bit is reserved and ignored; 0 is refused
  const r = new ChunkReader();
  r.push(new ChunkWriter().encode(2, 1, 0, 0, Buffer.from([0x80, 0, 1, 0])));
  assert.equal(r.chunkSize, 256);
  assert.throws(() => new ChunkReader().push(new ChunkWriter().encode(2, 1, 0, 0, Buffer.from([0, 0, 0, 0]))), ChunkError);
});

test('fmt 3 starting a new message repeats the previous delta; 2- and 3-byte chunk stream ids', () => {
  // Hand-made: fmt 0 ts 100 len 2 on csid 5, fmt 2 delta 20, then fmt 3 (new message, delta 20 again).
  const wire = Buffer.from([0x05, 0, 0, 100, 0, 0, 2, 8, 1, 0, 0, 0, 0xaa, 0xbb, 0x85, 0, 0, 20, 0xcc, 0xdd, 0xc5, 0xee, 0xff]);
  assert.deepEqual(
    readAll(wire, 128).map((m) => [m.timestamp, m.payload.toString('hex')]),
    [
      [100, 'aabb'],
      [120, 'ccdd'],
      [140, 'eeff'],
    ],
  );
  for (const csid of [63, 64, 319, 320, 65599]) {
    const w = new ChunkWriter();
    const enc = w.encode(csid, 9, 1, 10, payload(200));
    const basic = csid < 64 ? 1 : csid < 320 ? 2 : 3;
    assert.equal(enc.length, basic + 11 + basic + 200, `csid ${csid}`);
    assert.deepEqual(readAll(enc, 128).map((m) => m.csid), [csid]);
  }
  assert.throws(() => new ChunkWriter().encode(1, 9, 1, 0, payload(1)), RangeError);
  assert.throws(() => new ChunkWriter().encode(65600, 9, 1, 0, payload(1)), RangeError);
});

test('Abort drops a partial message; protocol violations throw ChunkError', () => {
  const w = new ChunkWriter();
  const partial = splitChunks(w.encode(4, 8, 1, 0, payload(300)), 12, 1, 128, 300);
  const abort = w.encode(2, MessageType.Abort, 0, 0, Buffer.from([0, 0, 0, 4]));
  const next = w.encode(4, 8, 1, 50, payload(10)); // fmt 1 (new length) after the aborted message
  const r = new ChunkReader();
  const out = r.push(Buffer.concat([partial[0]!, abort, next]));
  assert.deepEqual(out.map((m) => [m.typeId, m.payload.length]), [
    [2, 4],
    [8, 10],
  ]);
  assert.equal(r.stats.aborted, 1);

  assert.throws(() => new ChunkReader().push(Buffer.from([0x44, 0, 0, 0, 0, 0, 1, 8, 0])), /starts with a fmt 1 header/);
  const huge = new ChunkWriter().encode(4, 9, 1, 0, payload(2000));
  assert.throws(() => new ChunkReader({ maxMessageSize: 1000 }).push(huge), /exceeds the 1000-byte limit/);
});

test('a real nginx-rtmp server stream (connect → publish → unpublish) parses, in one go or byte by byte', () => {
  // Captured from the sandbox's nginx-rtmp 1.1.4 after the handshake: Window Ack Size, Set Peer Bandwidth,
  // Set Chunk Size 4096, _result(connect), _result(createStream), onStatus Publish.Start, onStatus Unpublish.Success.
  const hex =
    '020000000000040500000000004c4b40020000000000050600000000004c4b400202000000000004010000000000001000030000000000be1400' +
    '0000000200075f726573756c74003ff0000000000000030006666d7356657202000d464d532f332c302c312c313233000c6361706162696c6974' +
    '69657300403f0000000000000000090300056c6576656c0200067374617475730004636f646502001d4e6574436f6e6e656374696f6e2e436f6e' +
    '6e6563742e53756363657373000b6465736372697074696f6e020015436f6e6e656374696f6e207375636365656465642e000e6f626a656374456e' +
    '636f64696e670000000000000000000000090300000000001d14000000000200075f726573756c7400401000000000000005003ff0000000000000' +
    '0500000000006914010000000200086f6e537461747573000000000000000000050300056c6576656c0200067374617475730004636f6465020017' +
    '4e657453747265616d2e5075626c6973682e5374617274000b6465736372697074696f6e0200105374617274207075626c697368696e67000009' +
    '0500000000006c14010000000200086f6e537461747573000000000000000000050300056c6576656c0200067374617475730004636f646502001b' +
    '4e657453747265616d2e556e7075626c6973682e53756363657373000b6465736372697074696f6e02000f53746f70207075626c697368696e67000009';
  const wire = Buffer.from(hex, 'hex');
  for (const byteByByte of [false, true]) {
    const r = new ChunkReader();
    const msgs = byteByByte ? [...wire].flatMap((b) => r.push(Buffer.from([b]))) : r.push(wire);
    const parsed = msgs.map(parseMessage);
    assert.deepEqual(parsed.slice(0, 3), [
      { kind: 'windowAckSize', size: 5_000_000 },
      { kind: 'setPeerBandwidth', size: 5_000_000, limitType: 2 },
      { kind: 'setChunkSize', size: 4096 },
    ]);
    const cmds = parsed.slice(3).map((p) => (p.kind === 'command' ? [p.name, p.transactionId, p.streamId, statusInfo(p).code] : p.kind));
    assert.deepEqual(cmds, [
      ['_result', 1, 0, 'NetConnection.Connect.Success'],
      ['_result', 4, 0, undefined],
      ['onStatus', 0, 1, 'NetStream.Publish.Start'],
      ['onStatus', 0, 1, 'NetStream.Unpublish.Success'],
    ]);
    assert.equal(r.chunkSize, 4096);
  }
});

test('client handshake: C0+C1 layout, S0+S1+S2 in pieces, C2 echoes S1, wrong version refused', () => {
  const hs = new ClientHandshake(() => 0x01020304, (n) => Buffer.alloc(n, 0xab));
  const hello = hs.hello();
  assert.equal(hello.length, 1537);
  assert.equal(hello[0], 3);
  assert.equal(hello.readUInt32BE(1), 0x01020304);
  assert.equal(hello.readUInt32BE(5), 0, 'zero bytes: simple handshake');
  assert.equal(hello[9], 0xab);

  const s1 = payload(1536, 5);
  const server = Buffer.concat([Buffer.from([3]), s1, payload(1536, 6), Buffer.from('after')]);
  assert.equal(hs.push(server.subarray(0, 1000)), undefined);
  assert.equal(hs.push(server.subarray(1000, 3000)), undefined);
  const done = hs.push(server.subarray(3000));
  assert.ok(done);
  assert.equal(done.c2.length, 1536);
  assert.deepEqual(done.c2.subarray(0, 4), s1.subarray(0, 4));
  assert.equal(done.c2.readUInt32BE(4), 0x01020304);
  assert.deepEqual(done.c2.subarray(8), s1.subarray(8));
  assert.equal(done.rest.toString(), 'after');

  assert.throws(() => new ClientHandshake().push(Buffer.from('HTTP/1.1 400')), (e: unknown) => e instanceof HandshakeError && /not an RTMP server/.test(e.message) && !/72|"H"/.test(e.message));
  assert.throws(() => new ClientHandshake().push(Buffer.from([6])), /not an RTMP server \(its answer is not RTMP version 3\)/);
});

test('message parser and builders: user control, peer bandwidth, connect object', () => {
  const msg = (typeId: number, p: Buffer): ChunkMessage => ({ csid: 2, timestamp: 0, typeId, streamId: 0, payload: p });
  assert.deepEqual(parseMessage(msg(4, buildUserControl(6, 0xdeadbeef))), { kind: 'userControl', event: 6, value: 0xdeadbeef });
  assert.deepEqual(parseMessage(msg(6, buildSetPeerBandwidth(2_500_000, 2))), { kind: 'setPeerBandwidth', size: 2_500_000, limitType: 2 });
  assert.throws(() => parseMessage(msg(5, Buffer.from([0, 1]))), /Window Acknowledgement Size message too short/);
  // AMF3 command: one format byte, then AMF0
  const amf3 = parseMessage(msg(17, Buffer.concat([Buffer.from([0]), buildCommand('onStatus', 0, null, { level: 'error', code: 'C', description: 'D' })])));
  assert.equal(amf3.kind, 'command');
  if (amf3.kind === 'command') assert.deepEqual(statusInfo(amf3), { level: 'error', code: 'C', description: 'D' });

  const [name, tid, obj] = decodeAmf0(buildConnect({ app: 'live', tcUrl: 'rtmp://h/live', flashVer: 'FMLE/3.0', authParams: '?authmod=adobe&user=u' }));
  assert.equal(name, 'connect');
  assert.equal(tid, 1);
  assert.deepEqual(obj, {
    app: 'live?authmod=adobe&user=u',
    type: 'nonprivate',
    flashVer: 'FMLE/3.0',
    tcUrl: 'rtmp://h/live?authmod=adobe&user=u',
    fpad: false,
    capabilities: 15,
    audioCodecs: 4071,
    videoCodecs: 252,
    videoFunction: 1,
  });
  const [, , withQuery] = decodeAmf0(buildConnect({ app: 'app?t=1', tcUrl: 'rtmp://h/app?t=1', flashVer: 'f', authParams: '?authmod=adobe' })) as [unknown, unknown, { app: string }];
  assert.equal(withQuery.app, 'app?t=1&authmod=adobe');
});

test('a 3 s A/V stream crossing 2^24 ms (and 2^32), multi-chunk messages, a reconnect after the crossing: exact chunk headers, read back exactly', () => {
  const cs = 128;
  for (const origin of [2 ** 24 - 1500, 2 ** 32 - 1500]) {
    // Audio every 21.33 ms (300 bytes: 3 chunks), video every 40 ms (900 bytes: 8 chunks), in time order.
    const sent: { csid: number; typeId: number; ts: number; body: Buffer }[] = [];
    for (let i = 0; i * 21.333 < 3000; i++) sent.push({ csid: 4, typeId: 8, ts: origin + Math.round(i * 21.333), body: payload(300, i) });
    for (let i = 0; i * 40 < 3000; i++) sent.push({ csid: 6, typeId: 9, ts: origin + i * 40, body: payload(900, i + 7) });
    sent.sort((a, b) => a.ts - b.ts || a.csid - b.csid);
    const reconnectAt = sent.findIndex((m) => m.ts >= origin + 2500); // well after the crossing

    const w = new ChunkWriter();
    w.chunkSize = cs;
    const wires: Buffer[][] = [[], []];
    const seen = new Set<string>();
    sent.forEach((m, i) => {
      if (i === reconnectAt) w.reset(); // a new connection: every chunk stream starts again with fmt 0
      const enc = w.encode(m.csid, m.typeId, 1, m.ts, m.body);
      const fmt = enc[0]! >> 6;
      const field = enc.readUIntBE(1, 3);
      const ext = field === 0xffffff;
      const first = 1 + [11, 7, 3][fmt]! + (ext ? 4 : 0);
      const chunks = splitChunks(enc, first, ext ? 5 : 1, cs, m.body.length);
      const wire = m.ts >>> 0;
      if (fmt === 0) assert.equal(ext ? enc.readUInt32BE(12) : field, wire, 'fmt 0: the absolute time, extended from 0xFFFFFF up');
      assert.equal(ext, fmt === 0 && wire >= 0xffffff, `message ${i}: extended only for an absolute time ≥ 0xFFFFFF (deltas here are small)`);
      for (const c of chunks.slice(1)) {
        assert.equal(c[0], 0xc0 | m.csid);
        // The spec (5.3.1.3), FFmpeg and nginx-rtmp: a fmt 3 chunk repeats the extended field of its message.
        if (ext) assert.equal(c.readUInt32BE(1), wire);
      }
      seen.add(`fmt${fmt}${ext ? '+ext' : ''}`);
      wires[i < reconnectAt ? 0 : 1]!.push(enc);
    });
    // fmt 0 starts each connection, plain on one side of the crossing and extended on the other (2^24: before
    // and after; 2^32: after the wrap, times are small again); fmt 2 carries the rest (lengths never change).
    assert.deepEqual([...seen].sort(), ['fmt0', 'fmt0+ext', 'fmt2'], `origin ${origin}`);

    // Each connection read back by a reader of its own, in one go and byte by byte.
    const expect = (from: number, to: number) => sent.slice(from, to).map((m) => [m.csid, m.ts >>> 0, m.body.length]);
    for (const byteByByte of [false, true]) {
      const got = wires.map((parts) => readAll(Buffer.concat(parts), cs, byteByByte).map((m) => [m.csid, m.timestamp, m.payload.length]));
      assert.deepEqual(got[0], expect(0, reconnectAt));
      assert.deepEqual(got[1], expect(reconnectAt, sent.length));
    }
    const [msg] = readAll(Buffer.concat(wires[1]!), cs).slice(-1);
    assert.deepEqual(msg!.payload, sent.at(-1)!.body);
  }
});

test('a 50 MB flood of never-finished messages over many chunk streams: ChunkError at the total cap, never holding more', () => {
  const cap = 8 * 1024 * 1024;
  const r = new ChunkReader({ maxMessageSize: 1 << 20 }); // as the publisher's session makes it (default cap: 8 MiB)
  const rss0 = process.memoryUsage().rss;
  let fed = 0;
  let maxHeld = 0;
  let error: unknown;
  for (const piece of chunkFlood({ totalBytes: 50 * 1024 * 1024 })) {
    // In socket-sized reads, as a connection delivers them.
    for (let off = 0; off < piece.length && !error; off += 16 * 1024) {
      try {
        r.push(piece.subarray(off, off + 16 * 1024));
      } catch (err) {
        error = err;
      }
      maxHeld = Math.max(maxHeld, r.bufferedBytes);
    }
    if (error) break;
    fed += piece.length;
  }
  assert.ok(error instanceof ChunkError, String(error));
  assert.match(error.message, /partial messages would hold \d+ bytes across \d+ chunk streams, over the 8388608-byte limit/);
  assert.ok(maxHeld <= cap, `held ${maxHeld}`);
  assert.ok(maxHeld > cap / 2, 'the cap, not something else, stopped it');
  assert.ok(fed < 9 * 1024 * 1024, `stopped near the cap, after ${fed} bytes`);
  console.log(`# refused after ${(fed / 1048576).toFixed(1)} MiB of the flood; held at most ${(maxHeld / 1048576).toFixed(2)} MiB; RSS delta ${((process.memoryUsage().rss - rss0) / 1048576).toFixed(1)} MiB`);
});

test('the total cap: legitimate interleaved large messages fit; maxBufferedBytes sets it; completed and aborted messages free their share', () => {
  const w = new ChunkWriter();
  w.chunkSize = 1000;
  const r = new ChunkReader({ maxBufferedBytes: 5000 });
  r.setChunkSize(1000);
  // Two 2000-byte messages interleaved (audio and video): 4000 held at most, both complete.
  const a = splitChunks(w.encode(4, 8, 1, 0, payload(2000)), 12, 1, 1000, 2000);
  const v = splitChunks(w.encode(6, 9, 1, 0, payload(2000, 3)), 12, 1, 1000, 2000);
  assert.deepEqual(r.push(Buffer.concat([a[0]!, v[0]!])), []);
  assert.equal(r.bufferedBytes, 2000);
  assert.deepEqual(r.push(Buffer.concat([a[1]!, v[1]!])).map((m) => m.payload.length), [2000, 2000]);
  assert.equal(r.bufferedBytes, 0);
  // An aborted partial message gives its bytes back.
  const part = splitChunks(w.encode(5, 9, 1, 0, payload(3000)), 12, 1, 1000, 3000);
  r.push(part[0]!);
  assert.equal(r.bufferedBytes, 1000);
  r.abort(5);
  assert.equal(r.bufferedBytes, 0);
  // Three partial 3000-byte messages: the third's growth would pass 5000.
  const third = [7, 8, 9].map((c) => splitChunks(w.encode(c, 9, 1, 0, payload(3000)), 12, 1, 1000, 3000));
  r.push(Buffer.concat([third[0]![0]!, third[1]![0]!, third[2]![0]!, third[0]![1]!, third[1]![1]!]));
  assert.equal(r.bufferedBytes, 5000, 'up to the cap');
  assert.throws(() => r.push(third[2]![1]!), /partial messages would hold 6000 bytes across 3 chunk streams, over the 5000-byte limit/);
  assert.equal(r.bufferedBytes, 5000, 'never above it');
});
