/**
 * Hostile input, RTMP: what an RTMP server (or anything answering on its port) sends back. AMF0 decoding of
 * arbitrary bytes, of nesting bombs and of mutated encodings of real values; the chunk stream reader fed
 * arbitrary segments; the message parser and the status / Adobe-auth helpers on what comes out. Each returns
 * or throws its module's own error (Amf0Error, ChunkError, MessageError), never anything else; nothing nests
 * past the depth limit; decoded values re-encode; the reader holds no more than it was sent (no allocation on
 * a header's word); valid streams come out identical however they are cut.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Amf0EcmaArray, Amf0Error, decodeAmf0, encodeAmf0, type Amf0Object, type Amf0Value } from '../../plugin/rtmp/amf0.js';
import { ChunkError, ChunkReader, ChunkWriter, type ChunkMessage } from '../../plugin/rtmp/chunk.js';
import { adobeAuthStep, buildCommand, buildSetChunkSize, MessageError, MessageType, parseMessage, statusInfo } from '../../plugin/rtmp/messages.js';
import { fuzz, mutated, peek, splitAt } from '../helpers/fuzz.js';

// ------------------------------------------------------------------------------------------------ AMF0

/** Text as it can travel in UTF-8 (a lone surrogate becomes U+FFFD). */
const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
const amfString = fc.oneof(
  { weight: 8, arbitrary: fc.string({ maxLength: 16, unit: 'binary' }).map(wellFormed) },
  { weight: 1, arbitrary: fc.constantFrom('', '_result', '_error', 'onStatus', 'NetConnection.Connect.Success', 'level', 'code', 'description') },
  // Right around the short/long string boundary (65535 bytes).
  { weight: 1, arbitrary: fc.integer({ min: 0xffff - 2, max: 0xffff + 2 }).map((n) => 'x'.repeat(n)) },
);
const amfKey = fc.oneof({ weight: 6, arbitrary: fc.string({ maxLength: 8, unit: 'binary' }).map(wellFormed) }, { weight: 1, arbitrary: fc.constantFrom('', '__proto__', 'constructor', 'toString', 'level') });

/** Own properties only, in order (a "__proto__" key included), as the decoder builds them. */
function toObject(entries: [string, Amf0Value][]): Amf0Object {
  const o: Amf0Object = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

const { amf } = fc.letrec<{ amf: Amf0Value }>((tie) => ({
  amf: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.double(),
    fc.boolean(),
    amfString,
    fc.constant(null),
    fc.constant(undefined),
    fc.date(),
    fc.array(tie('amf'), { maxLength: 4 }),
    fc.array(fc.tuple(amfKey, tie('amf')), { maxLength: 4 }).map(toObject),
    fc.array(fc.tuple(amfKey, tie('amf')), { maxLength: 4 }).map((e) => new Amf0EcmaArray(toObject(e))),
  ),
}));

/** A comparable form: numbers by Object.is (NaN, -0), dates by time (invalid ones too), objects as ordered entries. */
function canon(v: Amf0Value): unknown {
  if (typeof v === 'number') return Object.is(v, -0) ? 'n:-0' : `n:${v}`;
  if (v instanceof Date) return { date: `${v.getTime()}` };
  if (Array.isArray(v)) return v.map(canon);
  if (v instanceof Amf0EcmaArray) return { ecma: Object.entries(v.props).map(([k, x]) => [k, canon(x)]) };
  if (v !== null && typeof v === 'object') return { object: Object.entries(v).map(([k, x]) => [k, canon(x)]) };
  return v;
}

/** decodeAmf0, allowing only its documented failure. */
function decode(buf: Buffer): Amf0Value[] | undefined {
  try {
    return decodeAmf0(buf);
  } catch (err) {
    if (err instanceof Amf0Error) return undefined;
    throw err;
  }
}

/** Openers of nested containers (strict array of 1, object with key "a", ECMA array with key "a"), then anything. */
const nestingBomb = fc.tuple(fc.array(fc.constantFrom('0a00000001', '03000161', '0800000001000161'), { minLength: 50, maxLength: 300 }), fc.uint8Array({ maxLength: 10 }))
  .map(([openers, tail]) => Buffer.concat([Buffer.from(openers.join(''), 'hex'), Buffer.from(tail)]));

test('fuzz: AMF0 values round-trip through encode/decode', (t) => {
  fuzz(t, fc.array(amf, { minLength: 1, maxLength: 4 }), (values) => {
    assert.deepEqual(canon(decodeAmf0(encodeAmf0(...values))), canon(values));
  }, 1500);
});

test('fuzz: decodeAmf0 on arbitrary bytes, nesting bombs and mutated encodings: values that re-encode, or Amf0Error', (t) => {
  const input = fc.oneof(
    fc.uint8Array({ maxLength: 80, size: 'max' }).map((b) => Buffer.from(b)),
    nestingBomb,
    mutated(fc.array(amf, { minLength: 1, maxLength: 4 }).map((v) => encodeAmf0(...v))),
  );
  fuzz(t, input, (buf) => {
    const values = decode(buf);
    if (!values) return;
    const again = encodeAmf0(...values); // within the depth limit, so it encodes
    assert.deepEqual(canon(decodeAmf0(again)), canon(values));
  }, 2500);
});

test('fuzz: nesting deeper than the limit is an Amf0Error both ways, never a stack overflow', (t) => {
  fuzz(t, fc.tuple(fc.integer({ min: 0, max: 5000 }), fc.constantFrom('array', 'object', 'ecma')), ([depth, kind]) => {
    let v: Amf0Value = 1;
    for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : kind === 'object' ? { a: v } : new Amf0EcmaArray({ a: v });
    let enc: Buffer | undefined;
    try {
      enc = encodeAmf0(v);
    } catch (err) {
      assert.ok(err instanceof Amf0Error && depth > 64, String(err));
    }
    if (enc) assert.equal(decodeAmf0(enc).length, 1);
    // The same shape on the wire, however deep: decoded within the limit or refused.
    const open = kind === 'array' ? '0a00000001' : kind === 'object' ? '03000161' : '0800000001' + '000161';
    const close = kind === 'array' ? '' : '000009';
    const wire = Buffer.from(open.repeat(depth) + '003ff0000000000000' + close.repeat(depth), 'hex');
    const got = decode(wire);
    assert.equal(got !== undefined, depth <= 64);
  }, 300);
});

// ------------------------------------------------------------------------------------------- chunk layer

interface Msg { csid: number; typeId: number; streamId: number; timestamp: number; payload: Buffer }

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const message: fc.Arbitrary<Msg> = fc.record({
  csid: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 2, max: 8 }) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 65599 }) }),
  typeId: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(3, 4, 5, 6, 8, 9, 18, 20) }, { weight: 1, arbitrary: fc.integer({ min: 3, max: 255 }) }),
  streamId: fc.oneof(fc.constantFrom(0, 1), u32),
  timestamp: fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0xfffff0, max: 0x1000010 }), u32),
  payload: fc.uint8Array({ maxLength: 700, size: 'max' }).map((b) => Buffer.from(b)),
}, { noNullPrototype: true });
/** Now and then the sender changes its chunk size (Set Chunk Size, which the reader applies mid-stream). */
const step = fc.oneof({ weight: 8, arbitrary: message.map((m) => ({ m })) }, { weight: 1, arbitrary: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 0x7fffffff })).map((size) => ({ size })) });

function writeStream(steps: ({ m: Msg } | { size: number })[]): { bytes: Buffer; sent: Msg[] } {
  const w = new ChunkWriter();
  const parts: Buffer[] = [];
  const sent: Msg[] = [];
  for (const s of steps) {
    if ('size' in s) {
      const m = { csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: buildSetChunkSize(s.size) };
      parts.push(w.encode(m.csid, m.typeId, m.streamId, m.timestamp, m.payload));
      sent.push(m);
      w.chunkSize = s.size;
    } else {
      parts.push(w.encode(s.m.csid, s.m.typeId, s.m.streamId, s.m.timestamp, s.m.payload));
      sent.push(s.m);
    }
  }
  return { bytes: Buffer.concat(parts), sent };
}

/** What a reader holds: the partial header, and each chunk stream's partly received message. */
function held(r: ChunkReader): number {
  let n = peek<Buffer>(r, 'pending').length;
  for (const st of peek<Map<number, { payload?: Buffer }>>(r, 'streams').values()) n += st.payload?.length ?? 0;
  return n;
}

test('fuzz: chunk streams from the writer, cut at any points, come out identical', (t) => {
  fuzz(t, fc.tuple(fc.array(step, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 40, size: 'max' })), ([steps, cuts]) => {
    const { bytes, sent } = writeStream(steps);
    const r = new ChunkReader();
    const got: ChunkMessage[] = [];
    for (const seg of splitAt(bytes, cuts)) got.push(...r.push(seg));
    assert.deepEqual(got.map((m) => ({ ...m, payload: m.payload.toString('hex') })), sent.map((m) => ({ ...m, timestamp: m.timestamp >>> 0, payload: m.payload.toString('hex') })));
    assert.equal(held(r), 0);
  }, 600);
});

/** Hand-made chunk headers: any fmt and chunk stream id, lengths up to the 16 MiB the format allows. */
const header = fc.record({
  fmt: fc.integer({ min: 0, max: 3 }),
  csid: fc.oneof(fc.integer({ min: 2, max: 63 }), fc.integer({ min: 64, max: 319 }), fc.integer({ min: 320, max: 65599 }), fc.constantFrom(0, 1)),
  ts: fc.oneof(fc.nat({ max: 1000 }), fc.constant(0xffffff), u32),
  length: fc.oneof(fc.nat({ max: 300 }), fc.integer({ min: 0, max: 0xffffff })),
  typeId: fc.integer({ min: 0, max: 255 }),
  streamId: u32,
  body: fc.uint8Array({ maxLength: 200 }),
}, { noNullPrototype: true }).map(({ fmt, csid, ts, length, typeId, streamId, body }) => {
  const basic = csid < 64 ? [(fmt << 6) | csid] : csid < 320 ? [fmt << 6, csid - 64] : [(fmt << 6) | 1, (csid - 64) & 0xff, (csid - 64) >> 8];
  const mh = Buffer.alloc(11);
  mh.writeUIntBE(Math.min(ts, 0xffffff), 0, 3);
  mh.writeUIntBE(length, 3, 3);
  mh[6] = typeId;
  mh.writeUInt32LE(streamId, 7);
  const ext = ts >= 0xffffff ? Buffer.from([ts >>> 24, (ts >>> 16) & 0xff, (ts >>> 8) & 0xff, ts & 0xff]) : Buffer.alloc(0);
  return Buffer.concat([Buffer.from(basic), mh.subarray(0, [11, 7, 3, 0][fmt]), ext, Buffer.from(body)]);
});
const hostileSegment = fc.oneof(
  fc.uint8Array({ maxLength: 100, size: 'max' }).map((b) => Buffer.from(b)),
  fc.array(header, { minLength: 1, maxLength: 20 }).map((h) => Buffer.concat(h)),
  mutated(fc.array(step, { minLength: 1, maxLength: 4 }).map((s) => writeStream(s).bytes)),
  // A tiny chunk size first, so each header is followed by one byte of a message it declares large.
  fc.array(header, { minLength: 1, maxLength: 20 }).map((h) => Buffer.concat([Buffer.from('02000000000004010000000000000001', 'hex'), ...h])),
);

test('fuzz: the chunk reader on arbitrary segments: messages or ChunkError, and it holds no more than it was sent', (t) => {
  fuzz(t, fc.array(hostileSegment, { minLength: 1, maxLength: 6 }), (segments) => {
    const r = new ChunkReader({ maxMessageSize: 1 << 20 }); // as the publisher makes it
    let fed = 0;
    for (const seg of segments) {
      fed += seg.length;
      try {
        for (const m of r.push(seg)) {
          assert.ok(m.payload.length <= 1 << 20);
          assert.ok(m.csid >= 2 && m.csid <= 65599, `csid ${m.csid}`);
        }
      } catch (err) {
        assert.ok(err instanceof ChunkError, `only ChunkError: ${String(err)}`);
        return; // the publisher drops the connection
      }
      assert.ok(peek<Buffer>(r, 'pending').length < 18, 'at most one partial header');
      // Memory follows the bytes received, not the lengths headers declare (at most 2x, from buffer growth).
      assert.ok(held(r) <= 2 * fed + 18, `holds ${held(r)} bytes after ${fed} received`);
    }
  }, 800);
});

// ------------------------------------------------------------------------------------------ messages

const commandPayload = fc.oneof(
  fc.tuple(fc.constantFrom('_result', '_error', 'onStatus', 'close', 'onBWDone'), fc.oneof(fc.nat({ max: 10 }), fc.double()), amf, fc.array(amf, { maxLength: 2 }))
    .map(([name, txn, obj, args]) => buildCommand(name, txn, obj, ...args)),
  fc.tuple(fc.constantFrom('status', 'error', 'warning'), fc.constantFrom('NetConnection.Connect.Success', 'NetConnection.Connect.Rejected', 'NetStream.Publish.Start', 'NetStream.Publish.BadName'), fc.oneof(
    amfString,
    fc.constantFrom('[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ', '[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=needauth&user=u&salt=s&challenge=c&opaque=o', '?reason=authfailed', '?reason=nosuchuser', '?reason=needauth&user=%E0&salt=&challenge'),
  )).map(([level, code, description]) => buildCommand('_error', 1, null, { level, code, description })),
);
const chunkMessage: fc.Arbitrary<ChunkMessage> = fc.record({
  csid: fc.constantFrom(2, 3, 5),
  timestamp: u32,
  typeId: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(1, 2, 3, 4, 5, 6, 8, 9, 15, 17, 18, 20) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
  streamId: fc.constantFrom(0, 1),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 40, size: 'max' }).map((b) => Buffer.from(b)),
    commandPayload,
    mutated(commandPayload),
  ),
}, { noNullPrototype: true });

test('fuzz: parseMessage on arbitrary messages: a typed message or MessageError/Amf0Error; status and auth helpers never throw', (t) => {
  fuzz(t, fc.tuple(chunkMessage, fc.boolean(), fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })), ([m, answered, user, password]) => {
    let parsed;
    try {
      parsed = parseMessage(m);
    } catch (err) {
      assert.ok(err instanceof MessageError || err instanceof Amf0Error, `only MessageError or Amf0Error: ${String(err)}`);
      return;
    }
    if (parsed.kind !== 'command') return;
    assert.equal(typeof parsed.name, 'string');
    assert.equal(typeof parsed.transactionId, 'number');
    assert.ok(Array.isArray(parsed.args));
    const info = statusInfo(parsed);
    for (const v of Object.values(info)) assert.equal(typeof v, 'string');
    // What the publisher does with a rejected connect's description.
    const step = adobeAuthStep(info.description ?? '', user, password, answered, 'c0ffee00');
    if (step) assert.ok((step.kind === 'retry' && typeof step.authParams === 'string') || (step.kind === 'fail' && typeof step.reason === 'string'));
  }, 2500);
});
