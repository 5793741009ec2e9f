/** AMF0: round trips of every type we use, a real nginx-rtmp answer, and hostile input. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Amf0EcmaArray, Amf0Error, decodeAmf0, encodeAmf0, type Amf0Value } from '../../plugin/rtmp/amf0.js';

const roundTrip = (...values: Amf0Value[]) => decodeAmf0(encodeAmf0(...values));

test('numbers, booleans, null and undefined round-trip with their markers', () => {
  for (const n of [0, 1, -1.5, 3.141592653589793, 2 ** 53, Number.MAX_VALUE, -0, Infinity]) {
    assert.deepEqual(roundTrip(n), [n]);
  }
  assert.ok(Number.isNaN(roundTrip(NaN)[0] as number));
  assert.deepEqual(encodeAmf0(1), Buffer.from('003ff0000000000000', 'hex'));
  assert.deepEqual(encodeAmf0(true, false), Buffer.from('01010100', 'hex'));
  assert.deepEqual(encodeAmf0(null, undefined), Buffer.from('0506', 'hex'));
  assert.deepEqual(roundTrip(true, false, null, undefined), [true, false, null, undefined]);
});

test('strings: short, UTF-8, and long strings past 65535 bytes', () => {
  assert.deepEqual(encodeAmf0('live'), Buffer.from('0200046c697665', 'hex'));
  assert.deepEqual(roundTrip('', 'héllo ☎'), ['', 'héllo ☎']);
  const max = 'x'.repeat(0xffff);
  assert.equal(encodeAmf0(max)[0], 0x02, 'exactly 65535 bytes is still a short string');
  const long = 'y'.repeat(70_000);
  const enc = encodeAmf0(long);
  assert.equal(enc[0], 0x0c, 'long string marker');
  assert.equal(enc.readUInt32BE(1), 70_000);
  assert.deepEqual(decodeAmf0(enc), [long]);
  // byte length counts, not characters: 30000 × 3-byte chars = 90000 bytes
  const wide = '☎'.repeat(30_000);
  assert.equal(encodeAmf0(wide)[0], 0x0c);
  assert.deepEqual(roundTrip(wide), [wide]);
});

test('objects, ECMA arrays, strict arrays, dates and nesting', () => {
  const obj = { app: 'live', fpad: false, capabilities: 15, nothing: null, undef: undefined };
  assert.deepEqual(roundTrip(obj), [obj]);
  assert.deepEqual(encodeAmf0({ a: 1 }), Buffer.from('0300016100' + '3ff0000000000000' + '000009', 'hex'));

  const ecma = new Amf0EcmaArray({ duration: 0, audiocodecid: 10, encoder: 'sip-as-rtmp', stereo: false });
  const enc = encodeAmf0(ecma);
  assert.equal(enc[0], 0x08);
  assert.equal(enc.readUInt32BE(1), 4, 'count hint');
  const [back] = decodeAmf0(enc);
  assert.ok(back instanceof Amf0EcmaArray);
  assert.deepEqual(back.props, ecma.props);

  assert.deepEqual(roundTrip([1, 'two', [3, [4]], { five: 5 }, null]), [[1, 'two', [3, [4]], { five: 5 }, null]]);
  assert.deepEqual(roundTrip([]), [[]]);

  const d = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
  assert.deepEqual(roundTrip(d), [d]);

  const nested = { a: { b: { c: [new Amf0EcmaArray({ d: { e: 'deep' } })] } }, '': 'empty key' };
  assert.deepEqual(roundTrip(nested, 'after'), [nested, 'after']);
});

test('a real nginx-rtmp _result for connect decodes into typed fields', () => {
  // Captured from the sandbox's nginx-rtmp 1.1.4 (payload of the type-20 message on chunk stream 3).
  const hex =
    '0200075f726573756c74003ff0000000000000030006666d7356657202000d464d532f332c302c312c313233000c6361706162696c69746965' +
    '7300403f0000000000000000090300056c6576656c0200067374617475730004636f646502001d4e6574436f6e6e656374696f6e2e436f6e6e' +
    '6563742e53756363657373000b6465736372697074696f6e020015436f6e6e656374696f6e207375636365656465642e000e6f626a65637445' +
    '6e636f64696e67000000000000000000000009';
  const buf = Buffer.from(hex, 'hex');
  assert.deepEqual(decodeAmf0(buf), [
    '_result',
    1,
    { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
    { level: 'status', code: 'NetConnection.Connect.Success', description: 'Connection succeeded.', objectEncoding: 0 },
  ]);
  // and our encoder produces the same bytes for the same values
  assert.deepEqual(
    encodeAmf0('_result', 1, { fmsVer: 'FMS/3,0,1,123', capabilities: 31 }, {
      level: 'status',
      code: 'NetConnection.Connect.Success',
      description: 'Connection succeeded.',
      objectEncoding: 0,
    }),
    buf,
  );
});

test('malformed input throws Amf0Error with an offset, never hangs', () => {
  const bad: [string, string][] = [
    ['00 3ff0', 'truncated number'],
    ['02 0010 6162', 'string shorter than its length'],
    ['0c ffffffff 00', 'long string longer than the input'],
    ['03 0001 61', 'object key without a value'],
    ['03 0001 61 00 3ff0000000000000', 'object without end marker'],
    ['0a 7fffffff', 'strict array count beyond the input'],
    ['08 00000001 0001 61 05', 'ECMA array without end marker'],
    ['09', 'stray object end'],
    ['07 0001', 'reference'],
    ['11 01', 'AMF3 switch'],
    ['ee', 'unknown marker'],
    ['0b 0000000000000000', 'date without time zone'],
  ];
  for (const [hex, why] of bad) {
    assert.throws(() => decodeAmf0(Buffer.from(hex.replace(/ /g, ''), 'hex')), Amf0Error, why);
  }
  // Deep nesting is refused instead of overflowing the stack.
  const deep = Buffer.concat(Array.from({ length: 20_000 }, () => Buffer.from('0a00000001', 'hex'))); // [[[[...]]]]
  assert.throws(() => decodeAmf0(deep), Amf0Error);
  // Random garbage: always a typed error or a value, within the time of the loop.
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
    try {
      decodeAmf0(b);
    } catch (e) {
      assert.ok(e instanceof Amf0Error, String(e));
    }
  }
});

test('a "__proto__" key from the network stays an own property', () => {
  const buf = Buffer.concat([Buffer.from('03', 'hex'), Buffer.from('0009', 'hex'), Buffer.from('__proto__'), Buffer.from('0101' + '000009', 'hex')]);
  const [o] = decodeAmf0(buf) as [Record<string, unknown>];
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(o, '__proto__')?.value, true);
});
