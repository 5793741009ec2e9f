/**
 * The FLV reader against the muxer: whatever the chunking (a byte at a time too), the tags come back as
 * written, 32-bit timestamps included; tag bodies parse back into what the muxer put in; a corrupt stream
 * is an error, not an endless buffer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aacFrame, aacSequenceHeader, avcFrame, avcSequenceHeader, FlvFileWriter, FlvTagType, onMetaData, type FlvTagTypeId } from '../../plugin/media/output/flv.js';
import { FlvFormatError, FlvTagReader, parseAudioBody, parseVideoBody, type ReadTag } from '../../plugin/media/output/flv-reader.js';
import { Amf0EcmaArray, decodeAmf0 } from '../../plugin/rtmp/amf0.js';
import { prng } from '../helpers/prng.js';

const AVC_CONFIG = Buffer.from([1, 66, 0xc0, 30, 0xff, 0xe1, 0, 4, 0x67, 66, 0xc0, 30, 1, 0, 2, 0x68, 0xce]);
const ASC = Buffer.from([0x11, 0x90]);
const nalus = (n: number, seed: number) => {
  const rnd = prng(seed);
  const out = Buffer.alloc(4 + n);
  out.writeUInt32BE(n, 0);
  for (let i = 4; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  return out;
};

interface Written {
  type: FlvTagTypeId;
  timestampMs: number;
  body: Buffer;
}

/** A stream with every kind of tag, timestamps past 2^24 ms (4.66 h) and to the 32-bit end. */
function sample(): { bytes: Buffer; tags: Written[] } {
  const w = new FlvFileWriter();
  const tags: Written[] = [
    { type: FlvTagType.Script, timestampMs: 0, body: onMetaData({ width: 640, height: 360, videocodecid: 7 }) },
    { type: FlvTagType.Video, timestampMs: 0, body: avcSequenceHeader(AVC_CONFIG) },
    { type: FlvTagType.Audio, timestampMs: 0, body: aacSequenceHeader(ASC) },
    { type: FlvTagType.Video, timestampMs: 12345, body: avcFrame(nalus(3000, 1), true) },
    { type: FlvTagType.Audio, timestampMs: 12350, body: aacFrame(Buffer.alloc(300, 7)) },
    { type: FlvTagType.Video, timestampMs: 12385, body: avcFrame(nalus(0, 2), false, 80) },
    { type: FlvTagType.Video, timestampMs: 0xffffff, body: avcFrame(nalus(10, 3), false, -40) },
    { type: FlvTagType.Video, timestampMs: 0x1000000, body: avcFrame(nalus(70_000, 4), true) },
    { type: FlvTagType.Audio, timestampMs: 0x7fffffff, body: aacFrame(Buffer.from([1, 2, 3])) },
    { type: FlvTagType.Video, timestampMs: 0xfffffffe, body: Buffer.from([0x17, 2, 0, 0, 0]) }, // end of sequence
  ];
  const bytes = Buffer.concat([w.header(true, true), ...tags.map((t) => w.tag(t.type, t.timestampMs, t.body))]);
  // The writer drops "@setDataFrame" from a script body (as servers store it): the reader sees the rest.
  tags[0]!.body = tags[0]!.body.subarray(16);
  return { bytes, tags };
}

function readAll(bytes: Buffer, sizes: () => number): { tags: ReadTag[]; reader: FlvTagReader } {
  const reader = new FlvTagReader();
  const tags: ReadTag[] = [];
  for (let o = 0; o < bytes.length; ) {
    const n = Math.max(1, sizes());
    // Copied: a chunk from a socket is a buffer of its own, and the reader may keep it.
    tags.push(...reader.push(Buffer.from(bytes.subarray(o, o + n))));
    o += n;
  }
  return { tags, reader };
}

test('round trip: FlvFileWriter → FlvTagReader, in one piece, a byte at a time, and in random chunks', () => {
  const { bytes, tags } = sample();
  const rnd = prng(7);
  const chunkings: [string, () => number][] = [
    ['whole', () => bytes.length],
    ['byte at a time', () => 1],
    ['random 1..40', () => 1 + Math.floor(rnd() * 40)],
    ['random 1..20000', () => 1 + Math.floor(rnd() * 20000)],
  ];
  for (const [name, sizes] of chunkings) {
    const { tags: got, reader } = readAll(bytes, sizes);
    assert.deepEqual(
      got.map((t) => ({ type: t.type, timestampMs: t.timestampMs, body: t.body })),
      tags,
      name,
    );
    assert.deepEqual(reader.stats, { tags: tags.length, skipped: 0 }, name);
  }
});

test('the script tag reads back as onMetaData', () => {
  const { bytes } = sample();
  const [script] = new FlvTagReader().push(bytes);
  assert.equal(script!.type, FlvTagType.Script);
  const [name, meta] = decodeAmf0(script!.body);
  assert.equal(name, 'onMetaData');
  assert.ok(meta instanceof Amf0EcmaArray);
  assert.equal(meta.props.width, 640);
});

test('timestamps: 24 low bits plus the extension byte, unsigned 32 bits', () => {
  const w = new FlvFileWriter();
  const times = [0, 1, 0xfffffe, 0xffffff, 0x1000000, 0x1234567, 0x80000000, 0xffffffff];
  const bytes = Buffer.concat([w.header(false, true), ...times.map((t) => w.tag(FlvTagType.Video, t, avcFrame(nalus(1, t), false)))]);
  assert.deepEqual(new FlvTagReader().push(bytes).map((t) => t.timestampMs), times);
});

test('tags of other types are skipped and counted; an empty push is harmless', () => {
  const w = new FlvFileWriter();
  const other = w.tag(FlvTagType.Video, 5, Buffer.from([0x17, 1, 0, 0, 0]));
  other[0] = 0x0f; // not audio, video or script
  const bytes = Buffer.concat([w.header(false, true), other, w.tag(FlvTagType.Video, 6, avcFrame(nalus(5, 5), true))]);
  const reader = new FlvTagReader();
  assert.deepEqual(reader.push(Buffer.alloc(0)), []);
  const tags = reader.push(bytes);
  assert.deepEqual(tags.map((t) => t.timestampMs), [6]);
  assert.deepEqual(reader.stats, { tags: 1, skipped: 1 });
});

test('bodies are copies: reusing the pushed buffer does not change a tag already read', () => {
  const w = new FlvFileWriter();
  const bytes = Buffer.concat([w.header(false, true), w.tag(FlvTagType.Video, 1, avcFrame(nalus(8, 9), true))]);
  const [tag] = new FlvTagReader().push(bytes);
  const before = Buffer.from(tag!.body);
  bytes.fill(0);
  assert.deepEqual(tag!.body, before);
});

test('parseVideoBody reads what the muxer writes', () => {
  assert.deepEqual(parseVideoBody(avcSequenceHeader(AVC_CONFIG)), { kind: 'avc-config', avcConfig: AVC_CONFIG });
  const au = nalus(50, 11);
  assert.deepEqual(parseVideoBody(avcFrame(au, true)), { kind: 'avc-frame', keyframe: true, compositionTimeMs: 0, nalusAvcc: au });
  assert.deepEqual(parseVideoBody(avcFrame(au, false, 80)), { kind: 'avc-frame', keyframe: false, compositionTimeMs: 80, nalusAvcc: au });
  // Composition time is signed 24 bits.
  assert.equal((parseVideoBody(avcFrame(au, false, -40)) as { compositionTimeMs: number }).compositionTimeMs, -40);
  assert.equal((parseVideoBody(avcFrame(au, false, 0x7fffff)) as { compositionTimeMs: number }).compositionTimeMs, 0x7fffff);
  assert.equal((parseVideoBody(avcFrame(au, false, -0x800000)) as { compositionTimeMs: number }).compositionTimeMs, -0x800000);
  assert.deepEqual(parseVideoBody(Buffer.from([0x17, 2, 0, 0, 0])), { kind: 'avc-end' });
  // Another codec (Sorenson H.263 keyframe, VP6 inter frame): named, not parsed.
  assert.deepEqual(parseVideoBody(Buffer.from([0x12, 9, 9])), { kind: 'other', codecId: 2, keyframe: true });
  assert.deepEqual(parseVideoBody(Buffer.from([0x24])), { kind: 'other', codecId: 4, keyframe: false });
  assert.throws(() => parseVideoBody(Buffer.alloc(0)), FlvFormatError);
  assert.throws(() => parseVideoBody(Buffer.from([0x17, 1, 0, 0])), FlvFormatError);
});

test('parseAudioBody reads what the muxer writes', () => {
  assert.deepEqual(parseAudioBody(aacSequenceHeader(ASC)), { kind: 'aac-config', audioSpecificConfig: ASC });
  const raw = Buffer.from([0x21, 0x10, 0x05]);
  assert.deepEqual(parseAudioBody(aacFrame(raw)), { kind: 'aac-frame', raw });
  assert.deepEqual(parseAudioBody(Buffer.from([0x2f, 0xff])), { kind: 'other', soundFormat: 2 }); // MP3
  assert.throws(() => parseAudioBody(Buffer.alloc(0)), FlvFormatError);
  assert.throws(() => parseAudioBody(Buffer.from([0xaf])), FlvFormatError);
});

test('corrupt input: no FLV signature, or a body over the limit, throws FlvFormatError at once', () => {
  assert.throws(() => new FlvTagReader().push(Buffer.from('GIF89a\0\0\0\x09\0\0\0\0')), FlvFormatError);
  // Fewer than 13 bytes: nothing to decide yet.
  assert.deepEqual(new FlvTagReader().push(Buffer.from('GIF')), []);

  const w = new FlvFileWriter();
  const big = w.tag(FlvTagType.Video, 0, avcFrame(nalus(2000, 12), true));
  assert.throws(() => new FlvTagReader(1000).push(Buffer.concat([w.header(false, true), big])), FlvFormatError);
  // A size field of 16 MiB - 1 (garbage): refused from its 11-byte header, without waiting for the body.
  const header = Buffer.from([FlvTagType.Video, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
  const reader = new FlvTagReader();
  reader.push(w.header(false, true));
  assert.throws(() => reader.push(header), /over the/);
  // Within the limit it is accepted.
  assert.equal(new FlvTagReader(big.length).push(Buffer.concat([w.header(false, true), big])).length, 1);
});

test('a header longer than 9 bytes is skipped whole, wherever the chunks split it; a shorter one is refused', () => {
  const w = new FlvFileWriter();
  const header = Buffer.from([0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 13, 0xaa, 0xbb, 0xcc, 0xdd, 0, 0, 0, 0]); // DataOffset 13
  const bytes = Buffer.concat([header, w.tag(FlvTagType.Video, 7, avcFrame(nalus(4, 13), true)), w.tag(FlvTagType.Video, 8, avcFrame(nalus(4, 14), false))]);
  for (let at = 1; at < bytes.length; at++) {
    const reader = new FlvTagReader();
    const tags = [...reader.push(Buffer.from(bytes.subarray(0, at))), ...reader.push(Buffer.from(bytes.subarray(at)))];
    assert.deepEqual(tags.map((t) => t.timestampMs), [7, 8], `split at ${at}`);
  }
  const short = Buffer.from([0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 5, 0, 0, 0, 0]);
  assert.throws(() => new FlvTagReader().push(short), FlvFormatError);
});
