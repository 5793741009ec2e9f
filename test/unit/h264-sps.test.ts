/**
 * SPS parsing: real SPS from libx264 (through ffmpeg) checked against what ffprobe reports for the same
 * stream, plus hand-built SPS for the branches x264 never writes (scaling matrices, POC type 1, 4:4:4 with
 * separate planes), and malformed input.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { escapeRbsp, nalType, NalType, splitAnnexB } from '../../plugin/media/encode/h264/nal.js';
import { BitReader, parseSps, type Sps } from '../../plugin/media/encode/h264/sps.js';

const run = promisify(execFile);

/** One frame of libx264 via ffmpeg; returns the SPS and what ffprobe says about the stream. */
async function x264Sps(size: string, args: string[]): Promise<{ sps: Buffer; probe: { width: number; height: number; profile: string; level: number } }> {
  const input = ['-f', 'lavfi', '-i', `testsrc=size=${size}:rate=25`, '-frames:v', '1', ...args, '-c:v', 'libx264', '-f', 'h264'];
  const { stdout } = await run('ffmpeg', ['-nostdin', '-loglevel', 'error', ...input, 'pipe:1'], { encoding: 'buffer', maxBuffer: 16 << 20 });
  const sps = splitAnnexB(stdout).find((n) => nalType(n) === NalType.Sps);
  assert.ok(sps, 'an SPS in the stream');
  const probe = await new Promise<string>((resolve, reject) => {
    const child = execFile('ffprobe', ['-v', 'error', '-f', 'h264', '-show_entries', 'stream=width,height,profile,level', '-of', 'json', '-'],
      (err, out) => (err ? reject(err) : resolve(out)));
    child.stdin!.end(stdout);
  });
  const [s] = (JSON.parse(probe) as { streams: { width: number; height: number; profile: string; level: number }[] }).streams;
  assert.ok(s);
  return { sps, probe: s };
}

const PROFILE_NAMES: Record<number, string> = {
  66: 'Baseline', 77: 'Main', 100: 'High', 110: 'High 10', 122: 'High 4:2:2', 244: 'High 4:4:4 Predictive',
};

function checkAgainstProbe(sps: Sps, probe: { width: number; height: number; profile: string; level: number }): void {
  assert.equal(sps.width, probe.width);
  assert.equal(sps.height, probe.height);
  assert.equal(sps.levelIdc, probe.level);
  const name = PROFILE_NAMES[sps.profileIdc];
  // "Constrained Baseline" = Baseline with constraint_set1_flag.
  assert.equal(probe.profile, sps.profileIdc === 66 && sps.constraintFlags & 0x40 ? `Constrained ${name}` : name);
}

const cases: { name: string; size: string; args: string[]; expect: Partial<Sps> }[] = [
  { name: '320x240 constrained baseline', size: '320x240', args: ['-pix_fmt', 'yuv420p', '-profile:v', 'baseline'],
    expect: { profileIdc: 66, constraintFlags: 0xc0, chromaFormatIdc: 1, width: 320, height: 240, frameMbsOnly: true } },
  { name: '640x360 main (8 rows cropped from 368)', size: '640x360', args: ['-pix_fmt', 'yuv420p', '-profile:v', 'main'],
    expect: { profileIdc: 77, width: 640, height: 360 } },
  { name: '1280x720 high', size: '1280x720', args: ['-pix_fmt', 'yuv420p', '-profile:v', 'high'],
    expect: { profileIdc: 100, chromaFormatIdc: 1, bitDepthLuma: 8, width: 1280, height: 720 } },
  { name: '1920x1080 interlaced high (crop in field pairs)', size: '1920x1080', args: ['-pix_fmt', 'yuv420p', '-flags', '+ildct+ilme'],
    expect: { profileIdc: 100, frameMbsOnly: false, width: 1920, height: 1080 } },
  { name: '330x250 4:4:4 (crop unit 1)', size: '330x250', args: ['-pix_fmt', 'yuv444p'],
    expect: { profileIdc: 244, chromaFormatIdc: 3, width: 330, height: 250 } },
  { name: '640x360 4:2:2 (vertical crop unit 1)', size: '640x360', args: ['-pix_fmt', 'yuv422p'],
    expect: { profileIdc: 122, chromaFormatIdc: 2, width: 640, height: 360 } },
  { name: '640x360 10-bit', size: '640x360', args: ['-pix_fmt', 'yuv420p10le'],
    expect: { profileIdc: 110, bitDepthLuma: 10, bitDepthChroma: 10, width: 640, height: 360 } },
  { name: '176x144 monochrome', size: '176x144', args: ['-pix_fmt', 'gray'],
    expect: { profileIdc: 100, chromaFormatIdc: 0, width: 176, height: 144 } },
];

for (const c of cases) {
  test(`real libx264 SPS: ${c.name}`, { timeout: 30_000 }, async () => {
    const { sps: nal, probe } = await x264Sps(c.size, c.args);
    const sps = parseSps(nal);
    for (const [k, v] of Object.entries(c.expect)) assert.equal(sps[k as keyof Sps], v, k);
    assert.equal(sps.spsId, 0);
    checkAgainstProbe(sps, probe);
  });
}

test('known SPS bytes: libx264 320x240 (with emulation prevention bytes) and the fmtp example QCIF', () => {
  // 320x240 baseline from libx264: contains 00 00 03 twice (in its VUI, after the size).
  const x264 = parseSps(Buffer.from('6742c00dd90141fb011000000300100000030320f142a480', 'hex'));
  assert.deepEqual(x264, {
    profileIdc: 66, constraintFlags: 0xc0, levelIdc: 13, spsId: 0, chromaFormatIdc: 1, bitDepthLuma: 8, bitDepthChroma: 8,
    frameMbsOnly: true, width: 320, height: 240,
  });
  // "Z0IACpZTBYmI": baseline level 1.0, 176x144 (QCIF).
  const qcif = parseSps(Buffer.from('Z0IACpZTBYmI', 'base64'));
  assert.deepEqual([qcif.profileIdc, qcif.levelIdc, qcif.width, qcif.height], [66, 10, 176, 144]);
});

/** Writes u(n), ue(v), se(v) MSB first, then rbsp_trailing_bits. */
class BitWriter {
  private readonly bitsOut: number[] = [];
  u(n: number, v: number): this {
    for (let i = n - 1; i >= 0; i--) this.bitsOut.push(Math.floor(v / 2 ** i) % 2);
    return this;
  }
  ue(v: number): this {
    const len = Math.floor(Math.log2(v + 1));
    return this.u(len, 0).u(len + 1, v + 1);
  }
  se(v: number): this {
    return this.ue(v > 0 ? 2 * v - 1 : -2 * v);
  }
  nal(header: number): Buffer {
    const bits = [...this.bitsOut, 1];
    while (bits.length % 8) bits.push(0);
    const bytes = [];
    for (let i = 0; i < bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8).join(''), 2));
    return Buffer.concat([Buffer.from([header]), escapeRbsp(Buffer.from(bytes))]);
  }
}

interface SynthOptions {
  profile?: number; chroma?: number; separatePlanes?: boolean; scaling?: 'none' | 'default' | 'full';
  pocType?: 0 | 1 | 2; frameMbsOnly?: boolean; mbsW: number; mapUnitsH: number; crop?: [number, number, number, number];
}

/** A hand-built SPS with the given structure (levels and ids fixed). */
function synthSps(o: SynthOptions): Buffer {
  const w = new BitWriter().u(8, o.profile ?? 100).u(8, 0).u(8, 40).ue(3);
  if ((o.profile ?? 100) >= 100) {
    w.ue(o.chroma ?? 1);
    if ((o.chroma ?? 1) === 3) w.u(1, o.separatePlanes ? 1 : 0);
    w.ue(0).ue(0).u(1, 0);
    if (o.scaling === undefined || o.scaling === 'none') {
      w.u(1, 0);
    } else {
      w.u(1, 1);
      const lists = (o.chroma ?? 1) === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) {
        w.u(1, 1); // list present
        if (o.scaling === 'default') {
          w.se(-8); // nextScale 0 at j = 0: "use the default matrix", one code only
        } else {
          // A full list: deltas that wander but never reach 0, so all 16 or 64 are read.
          for (let j = 0; j < (i < 6 ? 16 : 64); j++) w.se(j % 3 === 0 ? 5 : -2);
        }
      }
    }
  }
  w.ue(4); // log2_max_frame_num_minus4
  const poc = o.pocType ?? 0;
  w.ue(poc);
  if (poc === 0) w.ue(2);
  if (poc === 1) {
    w.u(1, 0).se(-3).se(7).ue(3).se(1).se(-1).se(100);
  }
  w.ue(4).u(1, 0).ue(o.mbsW - 1).ue(o.mapUnitsH - 1);
  const fmo = o.frameMbsOnly ?? true;
  w.u(1, fmo ? 1 : 0);
  if (!fmo) w.u(1, 1);
  w.u(1, 1);
  if (o.crop) {
    w.u(1, 1);
    for (const c of o.crop) w.ue(c);
  } else {
    w.u(1, 0);
  }
  w.u(1, 0); // vui_parameters_present_flag
  return w.nal(0x67);
}

test('hand-built SPS: scaling matrices (default and full lists), POC types 1 and 2, separate colour planes, cropping units', () => {
  const base = { mbsW: 40, mapUnitsH: 23, crop: [0, 0, 0, 4] as [number, number, number, number] };
  for (const scaling of ['none', 'default', 'full'] as const) {
    const s = parseSps(synthSps({ ...base, scaling }));
    assert.deepEqual([s.width, s.height, s.spsId, s.levelIdc], [640, 360, 3, 40], scaling);
  }
  const full444 = parseSps(synthSps({ mbsW: 20, mapUnitsH: 15, chroma: 3, scaling: 'full', crop: [1, 2, 3, 4] }));
  assert.deepEqual([full444.width, full444.height, full444.chromaFormatIdc], [320 - 3, 240 - 7, 3], '4:4:4 crops in luma samples');
  // Separate colour planes: ChromaArrayType 0, so crop units are 1 (2 vertically for field coding).
  const planes = parseSps(synthSps({ mbsW: 20, mapUnitsH: 8, chroma: 3, separatePlanes: true, frameMbsOnly: false, crop: [1, 1, 1, 1] }));
  assert.deepEqual([planes.width, planes.height, planes.frameMbsOnly], [318, 256 - 4, false]);
  const poc1 = parseSps(synthSps({ ...base, pocType: 1 }));
  assert.deepEqual([poc1.width, poc1.height], [640, 360]);
  const poc2 = parseSps(synthSps({ ...base, pocType: 2, profile: 77 }));
  assert.deepEqual([poc2.width, poc2.height, poc2.profileIdc, poc2.chromaFormatIdc], [640, 360, 77, 1]);
  // 4:2:2: SubHeightC 1, so bottom 8 rows = offset 8.
  const s422 = parseSps(synthSps({ mbsW: 40, mapUnitsH: 23, chroma: 2, crop: [0, 0, 0, 8] }));
  assert.deepEqual([s422.width, s422.height], [640, 360]);
});

test('BitReader: Exp-Golomb codes', () => {
  const r = new BitReader(Buffer.from([0b10100110, 0b01000010, 0b10000000]));
  // 1 → 0, 010 → 1, 011 → 2, 00100 → 3, 00101 → 4 (as se: +2, -2)
  assert.equal(r.ue(), 0);
  assert.equal(r.ue(), 1);
  assert.equal(r.ue(), 2);
  assert.equal(r.se(), 2);
  assert.equal(r.se(), -2);
  assert.throws(() => new BitReader(Buffer.alloc(8)).ue(), RangeError, '33 zeros');
  assert.throws(() => new BitReader(Buffer.alloc(1)).bits(9), RangeError);
});

test('malformed SPS throws RangeError, never anything else', () => {
  const good = Buffer.from('6764001facd9405005bb011000000300100000030320f1831960', 'hex');
  assert.throws(() => parseSps(Buffer.from('68ce3c80', 'hex')), /NAL type 8/);
  assert.throws(() => parseSps(Buffer.alloc(2)), RangeError);
  // Truncated anywhere before the cropping fields: RangeError.
  for (let n = 0; n < 9; n++) assert.throws(() => parseSps(good.subarray(0, n)), RangeError, `${n} bytes`);
  let seed = 99;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.from(Array.from({ length: 1 + (rnd() % 30) }, rnd));
    b[0] = 0x67;
    try {
      const s = parseSps(b);
      assert.ok(s.width > 0 && s.height > 0 && s.width <= 16384 && s.height <= 16384);
    } catch (e) {
      assert.ok(e instanceof RangeError, String(e));
    }
  }
});
