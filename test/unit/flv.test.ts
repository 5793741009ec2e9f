/**
 * FLV tag bodies (what RTMP media messages carry), the muxer from neutral frames and config (bodies built
 * once, whatever the number of outputs), and FLV file framing; a whole file of real AAC from ffmpeg, with
 * onMetaData, must read back in ffprobe as AAC.
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
  flvConfigTags,
  flvFrameBody,
  onMetaData,
} from '../../plugin/media/output/flv.js';
import type { ConfigChange, MediaFrame } from '../../plugin/media/frame.js';
import { LiveStream } from '../../plugin/media/output/live-stream.js';
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

const frame = (track: MediaFrame['track'], dts: number, payload: Buffer, keyframe = true, pts = dts, recurring = false): MediaFrame =>
  ({ track, dts, pts, keyframe, payload, recurring });

test('the muxer: config → onMetaData of the whole stream, then each changed track\'s sequence header at its own time', () => {
  const audio = { codec: 'aac', audioSpecificConfig: Buffer.from([0x11, 0x88]), sampleRate: 48000, channels: 1, bitrate: 64000 } as const;
  const video = { codec: 'h264', avcConfig: Buffer.from([1, 0x42]), width: 1280, height: 720, frameRate: 25 } as const;
  const change: ConfigChange = { stream: { audio, video }, tracks: ['video'], dts: { audio: 980, video: 1000 } };
  const tags = flvConfigTags(change);
  // Key order as the players have always seen it: the bytes are the same as before the muxer existed.
  const meta = onMetaData({
    duration: 0, encoder: 'sip-as-rtmp',
    audiocodecid: 10, audiosamplerate: 48000, audiosamplesize: 16, stereo: false, audiodatarate: 64,
    videocodecid: 7, width: 1280, height: 720, framerate: 25,
  });
  assert.deepEqual(tags, [
    { type: 18, timestampMs: undefined, body: meta },
    { type: 9, timestampMs: 1000, body: avcSequenceHeader(video.avcConfig) },
  ]);
  assert.equal(flvConfigTags(change), tags, 'serialised once per change, whatever the number of outputs');
  const join = flvConfigTags({ ...change, tracks: ['audio', 'video'] });
  assert.deepEqual(join.map((t) => [t.type, t.timestampMs]), [[18, undefined], [8, 980], [9, 1000]]);
  assert.deepEqual(join[1]!.body, aacSequenceHeader(audio.audioSpecificConfig));
  assert.equal(join[0]!.body, tags[0]!.body, 'one metadata body per stream config');
  assert.equal(join[2]!.body, tags[1]!.body, 'one sequence header per track config');
});

test('the muxer: frame bodies are the FLV bodies, once per frame; a recurring payload\'s once while it lives', () => {
  const raw = Buffer.from([1, 2, 3]);
  const f = frame('audio', 0, raw);
  const a = flvFrameBody(f);
  assert.deepEqual(a, aacFrame(raw));
  assert.equal(flvFrameBody(f), a, 'the next output of the same frame: no new body');
  const silent = Buffer.from([0]);
  const s = flvFrameBody(frame('audio', 21, silent, true, 21, true));
  assert.deepEqual(s, aacFrame(silent));
  assert.equal(flvFrameBody(f), a, 'a recurring frame between two outputs does not evict the shared one');
  assert.equal(flvFrameBody(frame('audio', 42, silent, true, 42, true)), s, 'mute\'s silent frame, later: no new body');
  const au = Buffer.from([0, 0, 0, 1, 0x65]);
  const k = flvFrameBody(frame('video', 0, au, true, 0, true));
  assert.deepEqual(k, avcFrame(au, true));
  assert.equal(flvFrameBody(frame('video', 400, au, true, 400, true)), k, 'the looped generated GOP: no new body');
  // Keyed by payload, so what else goes into a video body is checked on a hit.
  assert.deepEqual(flvFrameBody(frame('video', 440, au, false, 440, true)), avcFrame(au, false));
  assert.deepEqual(flvFrameBody(frame('video', 480, au, false, 520, true)), avcFrame(au, false, 40), 'composition time = pts - dts');
  assert.deepEqual(flvFrameBody(frame('video', 480, au, false, 520)), avcFrame(au, false, 40));
});

test('two FLV outputs of one stream get the very same bodies: built once, not once per destination', () => {
  const stream = new LiveStream();
  stream.setAudioFormat({ codec: 'aac', audioSpecificConfig: Buffer.from([0x11, 0x88]), sampleRate: 48000, channels: 1, bitrate: 64000 });
  const outputs = [0, 1].map(() => {
    const bodies: Buffer[] = [];
    stream.addSink({ config: (c) => bodies.push(...flvConfigTags(c).map((t) => t.body)), frame: (f) => bodies.push(flvFrameBody(f)) });
    return bodies;
  });
  stream.setVideoFormat({ codec: 'h264', avcConfig: Buffer.from([1, 0x42]) });
  stream.audioFrame(0, Buffer.from([7]));
  stream.videoFrame(0, Buffer.from([0, 0, 0, 1, 0x65]), true);
  const [a, b] = outputs as [Buffer[], Buffer[]];
  assert.equal(a.length, 6); // on join: metadata, AAC header; on video config: metadata, AVC header; two frames
  assert.equal(b.length, a.length);
  // Each join is its own config change (its own times), yet its metadata and header bodies are shared too.
  a.forEach((body, i) => assert.equal(body, b[i], `body ${i} is one Buffer for both outputs`));
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
