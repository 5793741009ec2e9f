import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BitWriter } from '../../plugin/media/encode/aac/bit-writer.js';
import { Mdct2048, mdctReference } from '../../plugin/media/encode/aac/mdct.js';
import { Resampler } from '../../plugin/media/encode/aac/resample.js';
import { NUM_SWB_LONG_48, SF_CODE, SF_LEN, SPECTRAL_CODE, SPECTRAL_LEN, SWB_OFFSET_LONG_48 } from '../../plugin/media/encode/aac/tables.js';
import { prng } from '../helpers/prng.js';

test('MDCT matches the direct O(N²) formula', () => {
  const r = prng(7);
  const mdct = new Mdct2048(2);
  const x = new Float64Array(2048 + 100);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 60000;
  const out = new Float64Array(1024);
  mdct.forward(x, 100, out);
  const ref = mdctReference(x.subarray(100), 2);
  let maxErr = 0;
  let maxRef = 0;
  for (let k = 0; k < 1024; k++) {
    maxErr = Math.max(maxErr, Math.abs(out[k]! - ref[k]!));
    maxRef = Math.max(maxRef, Math.abs(ref[k]!));
  }
  assert.ok(maxRef > 1e5);
  assert.ok(maxErr < maxRef * 1e-12, `max error ${maxErr} vs max ${maxRef}`);
});

test('MDCT with the sine window reconstructs by overlap-add (TDAC)', () => {
  // Inverse per the spec: y = w · (2/N) Σ X cos(…); with forward scale 2 overlap-add gives x back.
  const r = prng(3);
  const x = new Float64Array(4096);
  for (let i = 0; i < x.length; i++) x[i] = r() - 0.5;
  const mdct = new Mdct2048(2);
  const spec = new Float64Array(1024);
  const y = new Float64Array(4096);
  for (let start = 0; start + 2048 <= 4096; start += 1024) {
    mdct.forward(x, start, spec);
    for (let n = 0; n < 2048; n++) {
      let s = 0;
      for (let k = 0; k < 1024; k++) s += spec[k]! * Math.cos(((2 * Math.PI) / 2048) * (n + 512.5) * (k + 0.5));
      y[start + n]! += Math.sin((Math.PI * (n + 0.5)) / 2048) * (2 / 2048) * s;
    }
  }
  for (let i = 1024; i < 3072; i++) assert.ok(Math.abs(y[i]! - x[i]!) < 1e-9, `sample ${i}`);
});

test('Huffman codebooks are prefix-free and complete (Kraft sum 1)', () => {
  const books: [string, ArrayLike<number>, ArrayLike<number>][] = [['scalefactor', SF_CODE, SF_LEN]];
  for (let cb = 1; cb <= 11; cb++) books.push([`spectral ${cb}`, SPECTRAL_CODE[cb]!, SPECTRAL_LEN[cb]!]);
  const sizes = [121, 81, 81, 81, 81, 81, 81, 64, 64, 169, 169, 289];
  books.forEach(([name, code, len], i) => {
    assert.equal(code.length, sizes[i], name);
    assert.equal(len.length, sizes[i], name);
    let kraft = 0;
    const words: string[] = [];
    for (let j = 0; j < code.length; j++) {
      assert.ok(len[j]! >= 1 && len[j]! <= 19 && code[j]! < 2 ** len[j]!, `${name} entry ${j}`);
      kraft += 2 ** -len[j]!;
      words.push(code[j]!.toString(2).padStart(len[j]!, '0'));
    }
    assert.equal(kraft, 1, `${name} Kraft sum`);
    words.sort();
    for (let j = 1; j < words.length; j++) assert.ok(!words[j]!.startsWith(words[j - 1]!), `${name}: ${words[j - 1]} prefixes ${words[j]}`);
  });
  assert.equal(SF_LEN[60], 1); // difference 0 is the 1-bit code "0"
  assert.equal(SF_CODE[60], 0);
});

test('swb_offset table for 44.1/48 kHz long windows', () => {
  assert.equal(NUM_SWB_LONG_48, 49);
  assert.equal(SWB_OFFSET_LONG_48[0], 0);
  assert.equal(SWB_OFFSET_LONG_48[49], 1024);
  for (let b = 0; b < 49; b++) {
    const w = SWB_OFFSET_LONG_48[b + 1]! - SWB_OFFSET_LONG_48[b]!;
    assert.ok(w > 0 && w % 4 === 0, `band ${b} width ${w}`);
  }
});

test('bit writer: MSB-first, any widths, byte alignment', () => {
  const r = prng(11);
  const w = new BitWriter(4096);
  let expect = '';
  for (let i = 0; i < 2000; i++) {
    const bits = Math.floor(r() * 33);
    const value = bits === 0 ? 0 : Math.floor(r() * 2 ** bits);
    w.write(value, bits);
    expect += bits === 0 ? '' : value.toString(2).padStart(bits, '0');
    assert.equal(w.bitLength, expect.length);
  }
  w.byteAlign();
  expect = expect.padEnd(Math.ceil(expect.length / 8) * 8, '0');
  assert.equal(w.length, expect.length / 8);
  const got = [...w.bytes].map((b) => b.toString(2).padStart(8, '0')).join('');
  assert.equal(got, expect);
  // Bits above `bits` are ignored; reset starts over.
  w.reset();
  w.write(0xff, 3);
  w.write(0, 5);
  assert.deepEqual([...w.bytes], [0xe0]);
  w.byteAlign();
  assert.equal(w.length, 1);
  const small = new BitWriter(1);
  small.write(1, 8);
  assert.throws(() => small.write(1, 8), RangeError);
});

test('resampler: modes, output counts, and chunking does not change the output', () => {
  const cases: [number, number, string][] = [
    [16000, 48000, 'stuff'],
    [8000, 48000, 'stuff'],
    [16000, 44100, 'polyphase'],
    [8000, 44100, 'polyphase'],
    [48000, 48000, 'pass'],
  ];
  const r = prng(5);
  const input = new Int16Array(3001);
  for (let i = 0; i < input.length; i++) input[i] = Math.round((r() - 0.5) * 20000);
  for (const [inRate, outRate, mode] of cases) {
    const run = (chunk: number, readMax: number): Float64Array => {
      const rs = new Resampler(inRate, outRate);
      assert.equal(rs.mode, mode);
      const out = new Float64Array(Math.ceil((input.length * outRate) / inRate) + 10);
      let n = 0;
      for (let at = 0; at < input.length; at += chunk) {
        rs.write(input, at, Math.min(input.length, at + chunk));
        for (let k; (k = rs.read(out, n, readMax)) > 0; ) n += k;
      }
      rs.end();
      for (let k; (k = rs.read(out, n, readMax)) > 0; ) n += k;
      assert.equal(n, Math.ceil((input.length * outRate) / inRate), `${inRate}→${outRate} count`);
      return out.subarray(0, n);
    };
    const a = run(input.length, 1 << 20);
    assert.deepEqual(run(160, 7), a, `${inRate}→${outRate} chunked`);
    assert.deepEqual(run(1, 1024), a, `${inRate}→${outRate} sample by sample`);
    if (mode === 'stuff') {
      const ratio = outRate / inRate;
      for (let i = 0; i < a.length; i++) assert.equal(a[i], i % ratio === 0 ? input[i / ratio]! * ratio : 0);
    }
    if (mode === 'pass') assert.deepEqual([...a], [...input]);
  }
  assert.throws(() => new Resampler(48000, 16000), RangeError);
});

test('resampler: polyphase interpolates a passband tone without shifting it in time', () => {
  const inRate = 16000;
  const outRate = 44100;
  const f = 3000;
  const input = new Int16Array(4000);
  for (let i = 0; i < input.length; i++) input[i] = Math.round(10000 * Math.sin((2 * Math.PI * f * i) / inRate));
  const rs = new Resampler(inRate, outRate);
  rs.write(input);
  rs.end();
  const out = new Float64Array(12000);
  const n = rs.read(out, 0, out.length);
  // The kernel lets part of the first image through (the encoder's MDCT cut removes it), so measure
  // just the 3 kHz component, by correlation over whole stretches.
  let ss = 0;
  let sc = 0;
  for (let i = 2000; i < n - 2000; i++) {
    const w = (2 * Math.PI * f * i) / outRate;
    ss += out[i]! * Math.sin(w);
    sc += out[i]! * Math.cos(w);
  }
  const count = n - 4000;
  const amp = (2 * Math.hypot(ss, sc)) / count;
  const phase = Math.atan2(sc, ss);
  assert.ok(Math.abs(amp - 10000) < 10, `amplitude ${amp}`);
  assert.ok(Math.abs(phase) < 1e-3, `phase ${phase}`);
});
