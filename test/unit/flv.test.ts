/**
 * FLV tag bodies (what RTMP media messages carry) and FLV file framing; a whole file of real AAC from
 * ffmpeg, with onMetaData, must read back in ffprobe as AAC.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import {
  aacFrame,
  aacSequenceHeader,
  avcFrame,
  avcSequenceHeader,
  FlvFileWriter,
  onMetaData,
} from '../../plugin/media/output/flv.js';
import { Amf0EcmaArray, decodeAmf0 } from '../../plugin/rtmp/amf0.js';
import { audioSpecificConfig } from '../../plugin/media/encode/adts.js';
import { splitAdts } from '../helpers/media.js';

const run = promisify(execFile);


test('AAC bodies: sequence header 0xAF 0x00 + ASC, frame 0xAF 0x01 + raw AAC; ASC bits', () => {
  const asc = audioSpecificConfig(1, 48000, 1); // AAC-LC, 48 kHz, mono
  assert.deepEqual(asc, Buffer.from([0x11, 0x88]));
  assert.deepEqual(audioSpecificConfig(1, 44100, 2), Buffer.from([0x12, 0x10])); // LC, 44.1 kHz, stereo
  assert.deepEqual(aacSequenceHeader(asc), Buffer.from([0xaf, 0x00, 0x11, 0x88]));
  assert.deepEqual(aacFrame(Buffer.from([1, 2, 3])), Buffer.from([0xaf, 0x01, 1, 2, 3]));
});

test('AVC bodies: sequence header, key and inter frames with signed composition time', () => {
  assert.deepEqual(avcSequenceHeader(Buffer.from([1, 0x42])), Buffer.from([0x17, 0, 0, 0, 0, 1, 0x42]));
  assert.deepEqual(avcFrame(Buffer.from([9]), true), Buffer.from([0x17, 1, 0, 0, 0, 9]));
  assert.deepEqual(avcFrame(Buffer.from([9]), false, 80), Buffer.from([0x27, 1, 0, 0, 80, 9]));
  assert.deepEqual(avcFrame(Buffer.from([9]), false, -40).subarray(2, 5), Buffer.from([0xff, 0xff, 0xd8]));
});

test('onMetaData is "@setDataFrame", "onMetaData", ECMA array', () => {
  const body = onMetaData({ audiocodecid: 10, audiosamplerate: 48000, stereo: false, encoder: 'sip-as-rtmp' });
  const [a, b, c] = decodeAmf0(body);
  assert.equal(a, '@setDataFrame');
  assert.equal(b, 'onMetaData');
  assert.ok(c instanceof Amf0EcmaArray);
  assert.deepEqual(c.props, { audiocodecid: 10, audiosamplerate: 48000, stereo: false, encoder: 'sip-as-rtmp' });
});

test('FLV file framing: header, tag header with extended timestamp, PreviousTagSize; script tags lose @setDataFrame', () => {
  const w = new FlvFileWriter();
  assert.deepEqual(w.header(true, false), Buffer.from('464c5601040000000900000000', 'hex'));
  assert.equal(w.header(true, true)[4], 5);
  const tag = w.tag(8, 0x12345678, Buffer.from([0xaf, 1, 7]));
  assert.deepEqual(tag, Buffer.from('08000003' + '345678' + '12' + '000000' + 'af0107' + '0000000e', 'hex'));
  const script = w.tag(18, 0, onMetaData({ duration: 0 }));
  const body = script.subarray(11, script.length - 4);
  assert.deepEqual(decodeAmf0(body).slice(0, 1), ['onMetaData']);
  assert.equal(script.readUInt32BE(script.length - 4), 11 + body.length);
  assert.deepEqual(w.toJSON(), { tags: 2, bytes: 26 + tag.length + script.length });
});

test('an FLV file of real AAC (ffmpeg) with onMetaData reads back in ffprobe as AAC 48 kHz', { timeout: 30_000 }, async () => {
  const { stdout: adts } = await run(
    'ffmpeg',
    ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000', '-t', '2', '-c:a', 'aac', '-f', 'adts', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 16 << 20 },
  );
  const { asc, sampleRate, channels, frames } = splitAdts(adts);
  assert.equal(sampleRate, 48000);
  assert.equal(channels, 1);
  assert.ok(frames.length >= 90, `${frames.length} frames`);

  const w = new FlvFileWriter();
  const parts = [
    w.header(true, false),
    w.tag(18, 0, onMetaData({ duration: 0, audiocodecid: 10, audiosamplerate: 48000, audiosamplesize: 16, stereo: false, encoder: 'sip-as-rtmp-test' })),
    w.tag(8, 0, aacSequenceHeader(asc)),
    ...frames.map((f, i) => w.tag(8, Math.round((i * 1024 * 1000) / 48000), aacFrame(f))),
  ];
  const dir = mkdtempSync(join(tmpdir(), 'flv-test-'));
  try {
    const file = join(dir, 'tone.flv');
    writeFileSync(file, Buffer.concat(parts));
    const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-show_format', '-of', 'json', file]);
    const probe = JSON.parse(stdout) as {
      streams: { codec_type: string; codec_name: string; profile: string; sample_rate: string; channels: number; nb_read_frames: string }[];
      format: { format_name: string; tags?: Record<string, string> };
    };
    assert.equal(probe.format.format_name, 'flv');
    assert.equal(probe.streams.length, 1);
    const [s] = probe.streams;
    assert.equal(s?.codec_type, 'audio');
    assert.equal(s?.codec_name, 'aac');
    assert.equal(s?.profile, 'LC');
    assert.equal(s?.sample_rate, '48000');
    assert.equal(s?.channels, 1);
    assert.equal(Number(s?.nb_read_frames), frames.length, 'every AAC frame is readable');
    assert.equal(probe.format.tags?.encoder, 'sip-as-rtmp-test', 'onMetaData was read');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
