import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alawToPcm, linearToAlaw, linearToUlaw, pcmToAlaw, pcmToUlaw, ulawToPcm } from '../../plugin/media/encode/g711.js';
import { l16ToPcm, pcmToL16 } from '../../plugin/media/encode/pcm.js';

const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

test('μ-law decodes to the G.711 table values', () => {
  const pcm = ulawToPcm(all);
  const at = (b: number) => pcm[b];
  assert.equal(at(0xff), 0);
  assert.equal(at(0x7f), 0);
  assert.equal(at(0x00), -32124);
  assert.equal(at(0x80), 32124);
  assert.equal(at(0xfe), 8);
  assert.equal(at(0x7e), -8);
  assert.equal(at(0xef), 132);
  assert.equal(at(0x8f), 16764);
  assert.equal(at(0x0f), -16764);
  assert.equal(at(0x01), -31100);
  // Symmetric, and each half monotonic.
  for (let b = 0; b < 128; b++) assert.equal(at(b)! + at(b + 128)!, 0);
  for (let b = 0x80; b < 0xff; b++) assert.ok(at(b)! > at(b + 1)!);
});

test('A-law decodes to the G.711 table values', () => {
  const pcm = alawToPcm(all);
  const at = (b: number) => pcm[b];
  assert.equal(at(0xd5), 8);
  assert.equal(at(0x55), -8);
  assert.equal(at(0xaa), 32256);
  assert.equal(at(0x2a), -32256);
  assert.equal(at(0x80), 5504);
  assert.equal(at(0x00), -5504);
  assert.equal(at(0xd4), 24);
  for (let b = 0; b < 128; b++) assert.equal(at(b)! + at(b + 128)!, 0);
});

test('encoders: known codes, including the extremes', () => {
  assert.deepEqual([...pcmToUlaw(Int16Array.from([0, -1, 32767, -32768, 8, -8]))], [0xff, 0x7f, 0x80, 0x00, 0xfe, 0x7e]);
  assert.deepEqual([...pcmToAlaw(Int16Array.from([0, -1, 32767, -32768, 8, -9]))], [0xd5, 0x55, 0xaa, 0x2a, 0xd5, 0x55]);
});

test('every code survives decode → encode', () => {
  const u = ulawToPcm(all);
  const a = alawToPcm(all);
  for (let b = 0; b < 256; b++) {
    assert.equal(linearToUlaw(u[b]!), b === 0x7f ? 0xff : b, `μ-law ${b}`); // 0x7f is "-0"
    assert.equal(linearToAlaw(a[b]!), b, `A-law ${b}`);
  }
});

test('every 16-bit sample round-trips within the quantisation step, monotonically', () => {
  const x = new Int16Array(65536);
  for (let i = 0; i < 65536; i++) x[i] = i - 32768;
  for (const [name, enc, dec] of [['μ-law', pcmToUlaw, ulawToPcm], ['A-law', pcmToAlaw, alawToPcm]] as const) {
    const y = dec(enc(x));
    let worst = 0;
    for (let i = 0; i < 65536; i++) {
      const err = Math.abs(y[i]! - x[i]!);
      // Half a step of the sample's segment: the step is 1/16 of the segment's base.
      assert.ok(err <= Math.max(8, (Math.abs(x[i]!) + 132) / 32 + 1), `${name} ${x[i]} → ${y[i]}`);
      if (i > 0) assert.ok(y[i]! >= y[i - 1]!, `${name} monotonic at ${x[i]}`);
      worst = Math.max(worst, err);
    }
    assert.ok(worst < 1100, `${name} worst ${worst}`);
  }
});

test('a tone through G.711 keeps ~38 dB SNR', () => {
  const n = 8000;
  const x = new Int16Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.round(16000 * Math.sin((2 * Math.PI * 1000 * i) / 8000 + 0.3));
  for (const y of [ulawToPcm(pcmToUlaw(x)), alawToPcm(pcmToAlaw(x))]) {
    let sig = 0;
    let noise = 0;
    for (let i = 0; i < n; i++) {
      sig += x[i]! ** 2;
      noise += (y[i]! - x[i]!) ** 2;
    }
    const snr = 10 * Math.log10(sig / noise);
    assert.ok(snr > 35 && snr < 45, `SNR ${snr.toFixed(1)} dB`);
  }
});

test('decoders write into a given array (view of the needed length) or allocate', () => {
  const dst = new Int16Array(400);
  const out = ulawToPcm(Buffer.from([0x80, 0x00]), dst);
  assert.equal(out.buffer, dst.buffer);
  assert.deepEqual([...out], [32124, -32124]);
  assert.equal(alawToPcm(Buffer.alloc(160, 0xd5), dst).buffer, dst.buffer);
  const small = new Int16Array(1);
  assert.notEqual(ulawToPcm(Buffer.alloc(2), small).buffer, small.buffer);
});

test('L16 is big-endian on the wire, host order in the array', () => {
  const payload = Buffer.from([0x12, 0x34, 0xff, 0xfe, 0x80, 0x00, 0x7f, 0xff, 0x00, 0x01, 0xaa]);
  assert.deepEqual([...l16ToPcm(payload)], [0x1234, -2, -32768, 32767, 1]); // the odd byte is ignored
  // Same as Node's big-endian reader.
  const pcm = l16ToPcm(payload);
  for (let i = 0; i < pcm.length; i++) assert.equal(pcm[i], payload.readInt16BE(2 * i));
  const x = Int16Array.from([0, 1, -1, 256, -256, 32767, -32768]);
  assert.deepEqual(l16ToPcm(pcmToL16(x)), x);
  assert.equal(pcmToL16(Int16Array.from([0x0102])).toString('hex'), '0102');
  const dst = new Int16Array(320);
  assert.equal(l16ToPcm(Buffer.alloc(640), dst), dst);
});

/** The textbook encoders (CCITT / Sun g711.c style): segment search in a table of segment ends. */
const SEG_END = [0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff, 0x3fff, 0x7fff];
function segmentOf(v: number): number {
  let seg = 0;
  while (seg < 8 && v > SEG_END[seg]!) seg++;
  return seg;
}
function refUlaw(x: number): number {
  const sign = x < 0 ? 0x80 : 0;
  const m = Math.min(Math.abs(x), 32635) + 0x84;
  const seg = segmentOf(m);
  return ~(sign | (seg << 4) | ((m >> (seg + 3)) & 0x0f)) & 0xff;
}
function refAlaw(x: number): number {
  const mask = x >= 0 ? 0xd5 : 0x55;
  const m = x >= 0 ? x : -x - 1;
  const seg = segmentOf(m);
  const aval = seg === 0 ? (m >> 4) & 0x0f : (seg << 4) | ((m >> (seg + 3)) & 0x0f);
  return (aval ^ mask) & 0xff;
}

test('encoders agree with the textbook segment search on every 16-bit sample', () => {
  for (let x = -32768; x < 32768; x++) {
    assert.equal(linearToUlaw(x), refUlaw(x), `μ-law ${x}`);
    assert.equal(linearToAlaw(x), refAlaw(x), `A-law ${x}`);
  }
});

test('μ-law zero: both codes decode to 0, and 0 always encodes to 0xff', () => {
  const z = ulawToPcm(Buffer.from([0x7f, 0xff]));
  assert.deepEqual([...z], [0, 0]);
  assert.deepEqual([...pcmToUlaw(z)], [0xff, 0xff]);
  // -1 … -3 encode to 0x7f ("-0", which decodes to 0 too); ±4 is the first step to ±8, symmetrically.
  assert.deepEqual([...pcmToUlaw(Int16Array.of(-1, -3, 3, -4, 4))], [0x7f, 0x7f, 0xff, 0x7e, 0xfe]);
});

test('encoders write into a given buffer (view of the needed length) or allocate', () => {
  const dst = Buffer.alloc(400);
  const pcm = Int16Array.from([0, 32767, -32768]);
  const u = pcmToUlaw(pcm, dst);
  assert.equal(u.buffer, dst.buffer);
  assert.equal(u.byteOffset, dst.byteOffset);
  assert.deepEqual([...u], [0xff, 0x80, 0x00]);
  const a = pcmToAlaw(pcm, dst.subarray(0, 3));
  assert.equal(a.length, 3);
  assert.equal(a.buffer, dst.buffer);
  assert.deepEqual([...a], [0xd5, 0xaa, 0x2a]);
  const small = Buffer.alloc(1);
  const grown = pcmToUlaw(pcm, small);
  assert.notEqual(grown.buffer, small.buffer);
  assert.equal(grown.length, 3);
});
