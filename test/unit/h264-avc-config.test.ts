/**
 * AVCDecoderConfigurationRecord: built from in-band SPS/PPS it must equal, byte for byte, the record ffmpeg
 * writes into FLV and MP4 for the same stream; sprop-parameter-sets from an ffmpeg SDP; the tracker that
 * says when the sequence header must be sent again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  AvcConfigTracker,
  buildAvcDecoderConfig,
  parseAvcDecoderConfig,
  parseSpropParameterSets,
} from '../../plugin/media/encode/h264/avc-config.js';
import { nalType, NalType, splitAnnexB } from '../../plugin/media/encode/h264/nal.js';
import { parseSps } from '../../plugin/media/encode/h264/sps.js';
import { captureFfmpegRtp } from '../helpers/rtp-capture.js';

const run = promisify(execFile);
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function encoderArgs(size: string, extra: string[]): string[] {
  return ['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=25`, '-frames:v', '3', '-bf', '0', ...extra, '-c:v', 'libx264'];
}

/** Annex B from libx264 (in-band SPS/PPS). */
async function annexB(size: string, extra: string[]): Promise<Buffer> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-loglevel', 'error', ...encoderArgs(size, extra), '-f', 'h264', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 16 << 20 });
  return stdout;
}

function parameterSets(stream: Buffer): { sps: Buffer; pps: Buffer } {
  const units = splitAnnexB(stream);
  const sps = units.find((n) => nalType(n) === NalType.Sps);
  const pps = units.find((n) => nalType(n) === NalType.Pps);
  assert.ok(sps && pps);
  return { sps, pps };
}

/** The AVC sequence header's record in an FLV file: the first video tag with AVCPacketType 0. */
function flvAvcConfig(flv: Buffer): Buffer {
  assert.equal(flv.subarray(0, 3).toString(), 'FLV');
  for (let o = flv.readUInt32BE(5) + 4; o + 11 <= flv.length; ) {
    const type = flv[o]!;
    const size = flv.readUIntBE(o + 1, 3);
    const body = flv.subarray(o + 11, o + 11 + size);
    if (type === 9 && (body[0]! & 0x0f) === 7 && body[1] === 0) return body.subarray(5);
    o += 11 + size + 4;
  }
  assert.fail('no AVC sequence header');
}

/** The avcC box's payload in an MP4 file. */
function mp4AvcConfig(mp4: Buffer): Buffer {
  const i = mp4.indexOf('avcC');
  assert.ok(i > 4, 'an avcC box');
  return mp4.subarray(i + 4, i - 4 + mp4.readUInt32BE(i - 4));
}

/** Remux an Annex B stream with ffmpeg (-c copy): ffmpeg builds the record from the in-band parameter sets. */
async function remux(stream: Buffer, format: 'flv' | 'mp4'): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'avcc-test-'));
  try {
    writeFileSync(join(dir, 'in.h264'), stream);
    const out = join(dir, `out.${format}`);
    await run('ffmpeg', ['-nostdin', '-loglevel', 'error', '-f', 'h264', '-i', join(dir, 'in.h264'), '-c', 'copy', '-f', format, out]);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const variants: { name: string; size: string; args: string[]; extension: boolean }[] = [
  { name: 'baseline 320x240', size: '320x240', args: ['-pix_fmt', 'yuv420p', '-profile:v', 'baseline'], extension: false },
  { name: 'main 640x360', size: '640x360', args: ['-pix_fmt', 'yuv420p', '-profile:v', 'main'], extension: false },
  { name: 'high 1280x720', size: '1280x720', args: ['-pix_fmt', 'yuv420p', '-profile:v', 'high'], extension: true },
  { name: 'high 4:4:4 320x240', size: '320x240', args: ['-pix_fmt', 'yuv444p'], extension: true },
];

for (const v of variants) {
  test(`build from in-band SPS/PPS = ffmpeg's FLV and MP4 record, byte for byte: ${v.name}`, { timeout: 30_000 }, async () => {
    const stream = await annexB(v.size, v.args);
    const { sps, pps } = parameterSets(stream);
    const ours = buildAvcDecoderConfig(sps, pps);
    const [flv, mp4] = await Promise.all([remux(stream, 'flv'), remux(stream, 'mp4')]);
    assert.equal(ours.toString('hex'), flvAvcConfig(flv).toString('hex'));
    assert.equal(ours.toString('hex'), mp4AvcConfig(mp4).toString('hex'));

    const parsed = parseAvcDecoderConfig(ours);
    assert.deepEqual([parsed.profile, parsed.compatibility, parsed.level], [sps[1], sps[2], sps[3]]);
    assert.equal(parsed.lengthSize, 4);
    assert.deepEqual(parsed.sps, [sps]);
    assert.deepEqual(parsed.pps, [pps]);
    const info = parseSps(sps);
    if (v.extension) {
      assert.deepEqual([parsed.chromaFormat, parsed.bitDepthLuma, parsed.bitDepthChroma], [info.chromaFormatIdc, 8, 8]);
    } else {
      assert.equal(parsed.chromaFormat, undefined);
      assert.equal(ours.length, 6 + 2 + sps.length + 1 + 2 + pps.length);
    }
  });
}

test('record layout by hand: several PPS, and parse of records without the High extension or malformed', () => {
  const sps = hex('6742c00dd90141fb011000000300100000030320f142a480');
  const rec = buildAvcDecoderConfig(sps, [hex('68ce3c80'), hex('6853')]);
  assert.deepEqual(rec.subarray(0, 8), hex('01 42 c0 0d ff e1 0018'));
  assert.deepEqual(rec.subarray(8 + sps.length), hex('02 0004 68ce3c80 0002 6853'));
  assert.deepEqual(parseAvcDecoderConfig(rec).pps, [hex('68ce3c80'), hex('6853')]);

  // High profile written by an older muxer, without the extension: still parses.
  const high = hex('6764001facd9405005bb011000000300100000030320f1831960');
  const full = buildAvcDecoderConfig(high, hex('68ebe3cb22c0'));
  assert.deepEqual(full.subarray(-4), hex('fd f8 f8 00'));
  const short = parseAvcDecoderConfig(full.subarray(0, -4));
  assert.equal(short.chromaFormat, undefined);
  assert.deepEqual(short.sps, [high]);

  assert.throws(() => parseAvcDecoderConfig(hex('02 42 c0 0d ff e1 0000')), /configurationVersion 2/);
  assert.throws(() => parseAvcDecoderConfig(hex('01 42 c0 0d ff e1 0010 6742')), RangeError);
  assert.throws(() => parseAvcDecoderConfig(rec.subarray(0, rec.length - 1)), RangeError);
  assert.throws(() => parseAvcDecoderConfig(hex('01 42 c0')), RangeError);
  assert.throws(() => buildAvcDecoderConfig(sps, []), RangeError);
  assert.throws(() => buildAvcDecoderConfig(hex('68ce3c80'), hex('68ce3c80')), RangeError, 'not an SPS');
});

test('sprop-parameter-sets: the RFC-style example, whole attribute lines, junk', () => {
  const example = parseSpropParameterSets('packetization-mode=1;sprop-parameter-sets=Z0IACpZTBYmI,aMljiA==;profile-level-id=42000a');
  assert.deepEqual(example.sps, Buffer.from('Z0IACpZTBYmI', 'base64'));
  assert.deepEqual(example.pps, [Buffer.from('aMljiA==', 'base64')]);
  assert.deepEqual([parseSps(example.sps!).width, parseSps(example.sps!).height], [176, 144]);

  const line = parseSpropParameterSets('a=fmtp:99 packetization-mode=1; Sprop-Parameter-Sets=Z0IACpZTBYmI,aMljiA==,aO48gA==; profile-level-id=42000a');
  assert.equal(line.pps?.length, 2);
  assert.deepEqual(parseSpropParameterSets('packetization-mode=1;profile-level-id=42000a'), {});
  assert.deepEqual(parseSpropParameterSets(''), {});
  // Not base64, empty entries, a SEI, a unit with the forbidden bit: skipped.
  const junk = parseSpropParameterSets('sprop-parameter-sets=!!!,,Bg==,5wAA,aMljiA==');
  assert.equal(junk.sps, undefined);
  assert.deepEqual(junk.pps, [Buffer.from('aMljiA==', 'base64')]);
});

test('sprop-parameter-sets from ffmpeg\'s own SDP build the record ffmpeg writes into FLV', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sprop-test-'));
  try {
    const sdpFile = join(dir, 'out.sdp');
    const args = encoderArgs('640x360', ['-pix_fmt', 'yuv420p', '-preset', 'ultrafast']);
    await captureFfmpegRtp([...args, '-flags', '+global_header', '-payload_type', '99', '-sdp_file', sdpFile]);
    const fmtp = readFileSync(sdpFile, 'utf8').split(/\r?\n/).find((l) => l.startsWith('a=fmtp:'));
    assert.ok(fmtp, 'an fmtp line');
    const { sps, pps } = parseSpropParameterSets(fmtp);
    assert.ok(sps && pps?.length === 1, fmtp);
    assert.deepEqual([parseSps(sps).width, parseSps(sps).height], [640, 360]);
    await run('ffmpeg', ['-nostdin', '-loglevel', 'error', ...args, '-f', 'flv', join(dir, 'out.flv')]);
    assert.equal(buildAvcDecoderConfig(sps, pps).toString('hex'), flvAvcConfig(readFileSync(join(dir, 'out.flv'))).toString('hex'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tracker: a record at the first parameter sets, none for repeats, a new one on a resolution or PPS change', { timeout: 30_000 }, async () => {
  const small = parameterSets(await annexB('320x240', ['-pix_fmt', 'yuv420p']));
  const large = parameterSets(await annexB('640x360', ['-pix_fmt', 'yuv420p']));
  const idr = hex('6588840021');
  const slice = hex('419a0c');
  const t = new AvcConfigTracker();
  assert.equal(t.update({ nalus: [slice] }), undefined, 'nothing known yet');
  assert.equal(t.update({ nalus: [small.sps, idr] }), undefined, 'no PPS yet');
  const first = t.update({ nalus: [small.pps, idr] });
  assert.ok(first);
  assert.deepEqual(first, buildAvcDecoderConfig(small.sps, small.pps));
  assert.equal(t.current, first);
  assert.deepEqual([t.width, t.height], [320, 240]);
  // x264 repeats identical SPS/PPS on every IDR (new Buffers, same bytes).
  assert.equal(t.update({ nalus: [Buffer.from(small.sps), Buffer.from(small.pps), idr] }), undefined);
  assert.equal(t.update({ nalus: [slice] }), undefined);

  const second = t.update({ nalus: [large.sps, large.pps, idr] });
  assert.deepEqual(second, buildAvcDecoderConfig(large.sps, large.pps));
  assert.deepEqual([t.width, t.height], [640, 360]);
  assert.equal(parseAvcDecoderConfig(second!).pps.length, 1, 'the new SPS brought its own PPS: the old set went');

  // A PPS alone that changes (same id 0): new record.
  const otherPps = hex('68ee3c8099');
  const third = t.update({ nalus: [otherPps, idr] });
  assert.deepEqual(parseAvcDecoderConfig(third!).pps, [otherPps]);
  // A second PPS id joins the set.
  const pps1 = hex('6842' + 'ee3c80'); // ue "010" = pic_parameter_set_id 1
  const fourth = t.update({ nalus: [pps1, slice] });
  assert.deepEqual(parseAvcDecoderConfig(fourth!).pps, [otherPps, pps1]);

  // An SPS that cannot be read is ignored and counted.
  assert.equal(t.update({ nalus: [hex('6700'), idr] }), undefined);
  assert.deepEqual(t.toJSON(), { records: 4, badSps: 1, width: 640, height: 360, profile: 100, level: 30 });
});

test('tracker: parameter sets from the SDP give the record at the first access unit, until the stream sends others', () => {
  const { sps, pps } = parseSpropParameterSets('sprop-parameter-sets=Z0IACpZTBYmI,aMljiA==');
  const t = new AvcConfigTracker({ sps, pps: pps ?? [] });
  assert.equal(t.current, undefined);
  const rec = t.update({ nalus: [hex('6588840021')] });
  assert.deepEqual(rec, buildAvcDecoderConfig(sps!, pps!));
  assert.deepEqual([t.width, t.height], [176, 144]);
  assert.equal(t.update({ nalus: [hex('6588840021')] }), undefined);
});
