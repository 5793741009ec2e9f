/** NAL unit framing: Annex B start codes, AVCC length prefixes, emulation prevention. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  escapeRbsp,
  isVcl,
  joinAnnexB,
  nalType,
  NalType,
  splitAnnexB,
  splitAvcc,
  toAvcc,
  unescapeRbsp,
} from '../../plugin/media/encode/h264/nal.js';

const run = promisify(execFile);
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const hexes = (bs: Buffer[]) => bs.map((b) => b.toString('hex'));

test('NAL type and VCL classification', () => {
  assert.equal(nalType(hex('67 42')), NalType.Sps);
  assert.equal(nalType(hex('68')), NalType.Pps);
  assert.equal(nalType(hex('65')), NalType.Idr);
  assert.equal(nalType(hex('41')), NalType.Slice);
  assert.equal(nalType(Buffer.alloc(0)), -1);
  assert.deepEqual([0, 1, 2, 5, 6, 7, 24].map(isVcl), [false, true, true, true, false, false, false]);
});

test('splitAnnexB: 3- and 4-byte start codes, leading junk and trailing zeros, empty units', () => {
  const stream = hex('ff 00 00 00 01 67 42 00 00 01 68 ce 00 00 00 00 01 65 88 00 00 03 01 00 00 01 00 00 01 41 9a 00 00');
  assert.deepEqual(hexes(splitAnnexB(stream)), ['6742', '68ce', '658800000301', '419a']);
  assert.deepEqual(splitAnnexB(Buffer.alloc(0)), []);
  assert.deepEqual(splitAnnexB(hex('00 00 01')), []);
  assert.deepEqual(splitAnnexB(hex('01 02 03 04')), [], 'no start code: nothing');
  assert.deepEqual(hexes(splitAnnexB(hex('00 00 01 09'))), ['09']);
  // Bytes > 1 let the scan skip ahead; a start code right after such a run is still found.
  assert.deepEqual(hexes(splitAnnexB(hex('00 00 01 61 ff ff ff 00 00 01 62 02 00 00 01 63'))), ['61ffffff', '6202', '63']);
  // Views, not copies.
  const units = splitAnnexB(stream);
  assert.equal(units[0]!.buffer, stream.buffer);
});

test('joinAnnexB and toAvcc frame units in one buffer; splitAvcc reverses toAvcc', () => {
  const units = [hex('67 42 c0 1e'), hex('68 ce 3c 80'), hex('65 88 84')];
  assert.deepEqual(joinAnnexB(units), hex('00000001 6742c01e 00000001 68ce3c80 00000001 658884'));
  assert.deepEqual(hexes(splitAnnexB(joinAnnexB(units))), hexes(units));
  const avcc = toAvcc(units);
  assert.deepEqual(avcc, hex('00000004 6742c01e 00000004 68ce3c80 00000003 658884'));
  assert.deepEqual(hexes(splitAvcc(avcc)), hexes(units));
  assert.deepEqual(hexes(splitAvcc(hex('0002 6742 0001 68'), 2)), ['6742', '68']);
  assert.deepEqual(toAvcc([]), Buffer.alloc(0));
  assert.throws(() => splitAvcc(hex('00000005 6742')), RangeError);
  assert.throws(() => splitAvcc(hex('000000')), RangeError);
});

test('unescapeRbsp removes emulation prevention bytes, and returns the input itself when there are none', () => {
  assert.deepEqual(unescapeRbsp(hex('00 00 03 01')), hex('00 00 01'));
  assert.deepEqual(unescapeRbsp(hex('11 00 00 03 00 00 03 02 22')), hex('11 00 00 00 00 02 22'));
  assert.deepEqual(unescapeRbsp(hex('00 00 03')), hex('00 00'), 'a final 03 (after cabac_zero_words)');
  assert.deepEqual(unescapeRbsp(hex('00 00 03 03 00 03')), hex('00 00 03 00 03'), 'only the 03 right after 00 00 goes');
  const plain = hex('67 42 c0 1e 00 03 00 00 04');
  assert.equal(unescapeRbsp(plain), plain);
});

test('escapeRbsp inserts exactly what unescapeRbsp removes (random RBSPs rich in zeros)', () => {
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (let i = 0; i < 500; i++) {
    const rbsp = Buffer.from(Array.from({ length: rnd() % 40 }, () => [0, 0, 1, 2, 3, rnd()][rnd() % 6]!));
    const escaped = escapeRbsp(rbsp);
    assert.equal(escaped.includes(hex('000000')) || escaped.includes(hex('000001')) || escaped.includes(hex('000002')), false);
    assert.deepEqual(unescapeRbsp(escaped), rbsp);
  }
  assert.deepEqual(escapeRbsp(hex('00 00 00 00 01')), hex('00 00 03 00 00 03 01'));
});

test('real ffmpeg Annex B output splits into SPS, PPS, SEI, IDR and then slices, and joins back', async () => {
  const { stdout } = await run('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-frames:v', '5',
    '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '0', '-f', 'h264', 'pipe:1',
  ], { encoding: 'buffer', maxBuffer: 16 << 20 });
  const units = splitAnnexB(stdout);
  assert.deepEqual(units.map(nalType), [7, 8, 6, 5, 1, 1, 1, 1]);
  for (const u of units) assert.equal(u[0]! & 0x80, 0, 'forbidden bit clear');
  // x264 writes 4-byte start codes for parameter sets and the first slice, 3-byte ones elsewhere; 4-byte
  // ones everywhere only lengthen the stream by one byte per unit.
  const joined = joinAnnexB(units);
  assert.ok(joined.length >= stdout.length, `${joined.length} vs ${stdout.length}`);
  assert.deepEqual(hexes(splitAnnexB(joined)), hexes(units));
});
