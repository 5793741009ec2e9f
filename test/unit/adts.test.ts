import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { AdtsSplitter, audioSpecificConfig, type AdtsFrame } from '../../plugin/media/encode/adts.js';

/** An ADTS frame by hand (ISO/IEC 14496-3 §1.A.2.2): MPEG-4, layer 0. */
function adts(raw: Buffer, o: { profile?: number; rateIndex?: number; channels?: number; crc?: boolean; blocks?: number } = {}): Buffer {
  const { profile = 1, rateIndex = 3, channels = 1, crc = false, blocks = 1 } = o;
  const headerLength = crc ? 9 : 7;
  const len = headerLength + raw.length;
  const h = Buffer.alloc(headerLength);
  h[0] = 0xff;
  h[1] = 0xf0 | (crc ? 0 : 1);
  h[2] = (profile << 6) | (rateIndex << 2) | (channels >> 2);
  h[3] = ((channels & 3) << 6) | (len >> 11);
  h[4] = (len >> 3) & 0xff;
  h[5] = ((len & 7) << 5) | 0x1f; // buffer fullness 0x7FF (VBR)
  h[6] = 0xfc | (blocks - 1);
  if (crc) h.writeUInt16BE(0xbeef, 7);
  return Buffer.concat([h, raw]);
}

const raws = Array.from({ length: 12 }, (_, i) => Buffer.alloc(20 + ((i * 37) % 300), i + 1));
const stream = Buffer.concat(raws.map((r) => adts(r)));

function pushAll(s: AdtsSplitter, chunks: Buffer[]): AdtsFrame[] {
  return chunks.flatMap((c) => s.push(c));
}

test('whole frames in one chunk', () => {
  const s = new AdtsSplitter();
  const frames = s.push(stream);
  assert.deepEqual(frames.map((f) => f.raw), raws);
  assert.deepEqual(frames[0], { raw: raws[0], profile: 1, sampleRate: 48000, channels: 1, samples: 1024 });
  assert.deepEqual(s.stats, { frames: 12, resyncBytes: 0, multiBlockFrames: 0 });
  assert.equal(s.pendingBytes, 0);
  // raw is a view of the chunk, not a copy.
  assert.equal(frames[3]!.raw.buffer, stream.buffer);
});

test('chunks split anywhere, down to 1-byte pushes', () => {
  const s = new AdtsSplitter();
  const frames = pushAll(s, [...stream].map((b) => Buffer.from([b])));
  assert.deepEqual(frames.map((f) => f.raw), raws);
  assert.equal(s.stats.resyncBytes, 0);

  let seed = 5;
  for (let round = 0; round < 50; round++) {
    const t = new AdtsSplitter();
    const chunks: Buffer[] = [];
    for (let at = 0; at < stream.length; ) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      const n = 1 + (seed % 400);
      chunks.push(stream.subarray(at, at + n));
      at += n;
    }
    assert.deepEqual(pushAll(t, chunks).map((f) => f.raw), raws, `round ${round}`);
  }
});

test('garbage before and between frames is skipped and counted, whatever the chunking', () => {
  const fake = Buffer.from([0xff, 0xf1, 0x50, 0x80, 0x00, 0x1f, 0xfc]); // sync word, but frame length 0
  const junkA = Buffer.concat([Buffer.from('ffmpeg said something\n'), Buffer.from([0xff, 0xff, 0xff, 0x00, 0xff])]);
  const junkB = Buffer.concat([fake, Buffer.from([0xff, 0xf9, 0xff, 0xfe, 0x12])]); // sync + layer 01 / reserved rate
  const parts: Buffer[] = [Buffer.from('junk at start')];
  raws.forEach((r, i) => {
    parts.push(adts(r));
    if (i === 3) parts.push(junkA);
    if (i === 7) parts.push(junkB);
  });
  const input = Buffer.concat(parts);
  for (const chunk of [input.length, 1, 2, 7, 64, 1000]) {
    const s = new AdtsSplitter();
    const chunks: Buffer[] = [];
    for (let at = 0; at < input.length; at += chunk) chunks.push(input.subarray(at, at + chunk));
    const frames = pushAll(s, chunks);
    assert.deepEqual(frames.map((f) => f.raw), raws, `chunk ${chunk}`);
    assert.equal(s.stats.resyncBytes, 13 + junkA.length + junkB.length, `chunk ${chunk}`);
  }
});

test('after garbage, a frame needs the next header to confirm it; a frame alone between garbage is dropped', () => {
  const s = new AdtsSplitter();
  assert.deepEqual(s.push(Buffer.concat([Buffer.from('xx'), adts(raws[0]!)])), []);
  assert.deepEqual(s.push(adts(raws[1]!).subarray(0, 7)).map((f) => f.raw), [raws[0]]);
  const t = new AdtsSplitter();
  const lonely = t.push(Buffer.concat([Buffer.from('xx'), adts(raws[0]!), Buffer.from('yy'), adts(raws[1]!), adts(raws[2]!)]));
  assert.deepEqual(lonely.map((f) => f.raw), [raws[1], raws[2]]);
});

test('a frame cut short (valid header, missing body) costs at most the frame behind it', () => {
  const cut = adts(Buffer.alloc(40, 0xee)).subarray(0, 30);
  const input = Buffer.concat([...raws.slice(0, 3).map((r) => adts(r)), cut, ...raws.slice(3).map((r) => adts(r))]);
  const out = new AdtsSplitter().push(input).map((f) => f.raw);
  assert.deepEqual(out.slice(0, 3), raws.slice(0, 3));
  assert.deepEqual(out.slice(-8), raws.slice(4));
  assert.ok(out.length <= 12);
});

test('header with CRC (protection_absent = 0): 9 bytes, raw excludes the CRC', () => {
  const s = new AdtsSplitter();
  const input = Buffer.concat(raws.slice(0, 4).map((r) => adts(r, { crc: true, rateIndex: 8, channels: 2 })));
  const frames = pushAll(s, [...input].map((b) => Buffer.from([b])));
  assert.deepEqual(frames.map((f) => f.raw), raws.slice(0, 4));
  assert.equal(frames[0]!.sampleRate, 16000);
  assert.equal(frames[0]!.channels, 2);
});

test('a change of stream parameters relocks; multi-block frames are counted and skipped', () => {
  const s = new AdtsSplitter();
  const input = Buffer.concat([
    adts(raws[0]!), adts(raws[1]!),
    adts(raws[2]!, { rateIndex: 4 }), adts(raws[3]!, { rateIndex: 4 }), adts(raws[4]!, { rateIndex: 4, blocks: 2 }), adts(raws[5]!, { rateIndex: 4 }),
    adts(raws[6]!, { rateIndex: 4 }),
  ]);
  const frames = s.push(input);
  assert.deepEqual(frames.map((f) => [f.raw, f.sampleRate]), [
    [raws[0], 48000], [raws[1], 48000], [raws[2], 44100], [raws[3], 44100], [raws[5], 44100], [raws[6], 44100],
  ]);
  assert.equal(s.stats.multiBlockFrames, 1);
  assert.equal(s.stats.resyncBytes, 0);
});

test('real ffmpeg AAC (1 s of 48 kHz mono) splits into ~47 frames of 1024 samples', () => {
  const out = execFileSync('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000', '-t', '1',
    '-c:a', 'aac', '-f', 'adts', 'pipe:1',
  ], { maxBuffer: 1 << 24 });
  const whole = new AdtsSplitter().push(out);
  assert.ok(whole.length >= 46 && whole.length <= 49, `${whole.length} frames`);
  for (const f of whole) {
    assert.deepEqual([f.profile, f.sampleRate, f.channels, f.samples], [1, 48000, 1, 1024]);
    assert.ok(f.raw.length > 0);
  }
  const sum = whole.reduce((n, f) => n + f.raw.length + 7, 0);
  assert.equal(sum, out.length); // every byte accounted: no CRC, no garbage
  // Same frames when the pipe delivers it byte by byte.
  const s = new AdtsSplitter();
  const bytewise = pushAll(s, [...out].map((b) => Buffer.from([b])));
  assert.deepEqual(bytewise.map((f) => f.raw), whole.map((f) => f.raw));
  assert.equal(s.stats.resyncBytes, 0);
  // And its ASC is the one for its header fields.
  assert.deepEqual([...audioSpecificConfig(whole[0]!.profile, whole[0]!.sampleRate, whole[0]!.channels)], [0x11, 0x88]);
});

test('AudioSpecificConfig: 5 bits object type, 4 bits rate index, 4 bits channels', () => {
  assert.deepEqual([...audioSpecificConfig(1, 48000, 1)], [0x11, 0x88]);
  assert.deepEqual([...audioSpecificConfig(1, 44100, 2)], [0x12, 0x10]);
  assert.deepEqual([...audioSpecificConfig(1, 16000, 1)], [0x14, 0x08]);
  assert.deepEqual([...audioSpecificConfig(1, 8000, 1)], [0x15, 0x88]);
  assert.throws(() => audioSpecificConfig(1, 22000, 1), RangeError);
  assert.throws(() => audioSpecificConfig(1, 48000, 0), RangeError);
  assert.throws(() => audioSpecificConfig(4, 48000, 1), RangeError);
});
