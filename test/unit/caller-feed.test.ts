/** Generated media toward the SIP party: rates, codecs, timestamps, bursts on coarse ticks, and H.264 that our depacketizer reads back. */
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { before, test } from 'node:test';
import { ffmpegFillVideo } from '../../adapters/ffmpeg/fill-video.js';
import { CallerFeed } from '../../plugin/media/to-caller/caller-feed.js';
import { H264Depacketizer } from '../../plugin/media/ingest/h264-depacketizer.js';
import { parseRtp, type RtpPacket } from '../../plugin/media/ingest/rtp.js';
import type { GeneratedVideo } from '../../plugin/media/timeline/generated-video.js';

let black: GeneratedVideo;
before(async () => {
  black = await ffmpegFillVideo()({ kind: 'black', width: 320, height: 180, fps: 10, seconds: 1 });
});

function capture() {
  const sent: { packet: RtpPacket; port: number }[] = [];
  const socket = {
    send(buf: Buffer, port: number) {
      const r = parseRtp(buf);
      assert.ok(r.ok);
      sent.push({ packet: r.packet, port });
    },
  } as unknown as Socket;
  return { sent, socket };
}

test('silence: 20 ms packets in the leg codec, timestamps by samples, marker on the first, bursts on coarse ticks', () => {
  for (const [encoding, clockRate, size, fill] of [['L16', 16000, 640, 0], ['PCMU', 8000, 160, 0xff], ['PCMA', 8000, 160, 0xd5]] as const) {
    const a = capture();
    const feed = new CallerFeed({ startMs: 1000, alwaysOn: true, audio: { socket: a.socket, target: { address: '127.0.0.1', port: 4000 }, payloadType: 118, encoding, clockRate } });
    feed.tick(999);
    assert.equal(a.sent.length, 0);
    for (let t = 1000; t <= 2000; t += 100) feed.tick(t); // 100 ms ticks: bursts of 5
    assert.equal(a.sent.length, 50, encoding);
    const ps = a.sent.map((s) => s.packet);
    assert.ok(ps.every((p) => p.payload.length === size && p.payload.every((b) => b === fill) && p.payloadType === 118));
    assert.deepEqual(ps.map((p) => p.marker).slice(0, 3), [true, false, false]);
    for (let i = 1; i < ps.length; i++) {
      assert.equal((ps[i]!.timestamp - ps[i - 1]!.timestamp) >>> 0, clockRate / 50);
      assert.equal((ps[i]!.sequenceNumber - ps[i - 1]!.sequenceNumber) & 0xffff, 1);
    }
    assert.deepEqual(feed.stats, { audioPackets: 50, videoPackets: 0, videoFrames: 0 });
  }
});

test('a codec it cannot make silence for sends nothing; a long stall skips ahead instead of bursting', () => {
  const a = capture();
  new CallerFeed({ startMs: 0, alwaysOn: true, audio: { socket: a.socket, target: { address: '127.0.0.1', port: 4000 }, payloadType: 9, encoding: 'G722', clockRate: 8000 } }).tick(1000);
  assert.equal(a.sent.length, 0);
  const b = capture();
  const feed = new CallerFeed({ startMs: 0, alwaysOn: true, audio: { socket: b.socket, target: { address: '127.0.0.1', port: 4000 }, payloadType: 0, encoding: 'PCMU', clockRate: 8000 } });
  feed.tick(100);
  feed.tick(60_000);
  assert.ok(b.sent.length <= 10, `${b.sent.length} packets after a 60 s stall`);
});

test('black video: the GOP at its frame rate on our SSRC, one timestamp per frame, decodable by our depacketizer', () => {
  const a = capture();
  const v = capture();
  const feed = new CallerFeed({
    startMs: 0,
    alwaysOn: true,
    audio: { socket: a.socket, target: { address: '127.0.0.1', port: 4000 }, payloadType: 0, encoding: 'PCMU', clockRate: 8000 },
    video: { socket: v.socket, target: { address: '127.0.0.1', port: 4002 }, payloadType: 99, generated: black, ssrc: 0xabcdef, size: { width: 640, height: 360, fps: 25 } },
  });
  for (let t = 0; t < 2000; t += 20) feed.tick(t);
  assert.equal(feed.stats.videoFrames, 20, '10 fps for 2 s');
  assert.ok(v.sent.every((s) => s.port === 4002 && s.packet.ssrc === 0xabcdef && s.packet.payloadType === 99));
  const d = new H264Depacketizer();
  const aus = v.sent.flatMap((s) => d.push(s.packet));
  assert.equal(aus.length, 20);
  assert.deepEqual(aus.map((u) => u.keyframe), Array.from({ length: 20 }, (_, i) => i % 10 === 0));
  for (let i = 1; i < aus.length; i++) assert.equal((aus[i]!.timestamp - aus[i - 1]!.timestamp) >>> 0, 9000);
});

test('on demand: nothing until asked; keepAudioUntil sends silence for a while; a sound plays once, encoded, then done', () => {
  const a = capture();
  const feed = new CallerFeed({ startMs: 0, alwaysOn: false, audio: { socket: a.socket, target: { address: '127.0.0.1', port: 4000 }, payloadType: 0, encoding: 'PCMU', clockRate: 8000 } });
  for (let t = 0; t <= 1000; t += 20) feed.tick(t);
  assert.equal(a.sent.length, 0, 'off by default');
  feed.keepAudioUntil(1200);
  for (let t = 1020; t <= 2000; t += 20) feed.tick(t);
  assert.equal(a.sent.length, 9, '180 ms of silence (to 1200), no burst for the time it was off');
  assert.equal(a.sent[0]!.packet.marker, true, 'a talkspurt starts with the marker');
  const pcm = new Int16Array(8000 / 10).fill(1000); // 100 ms
  let done = 0;
  feed.play(pcm, () => done++);
  for (let t = 2020; t <= 3000; t += 20) feed.tick(t);
  const sound = a.sent.slice(9);
  assert.equal(sound.length, 5, 'the sound, then nothing');
  assert.equal(done, 1);
  assert.ok(sound.every((s) => s.packet.payload.every((b) => b === sound[0]!.packet.payload[0]) && s.packet.payload[0] !== 0xff), 'μ-law of the sound, not silence');
  assert.equal(sound[0]!.packet.marker, true);
  // Packet 58 (1160-1180 ms) was the last silence, packet 100 (2000-2020 ms) the first of the sound.
  assert.equal((sound[0]!.packet.timestamp - a.sent[8]!.packet.timestamp) >>> 0, 42 * 160, 'timestamps follow the wall clock across the pause');
  feed.play(new Int16Array(8000), () => done++);
  feed.stopSound();
  assert.equal(done, 2, 'a stopped sound is done too');
});

test('an injected stream: held until 60 ms are there, sent in order, silence on underrun; more than 250 ms behind, the oldest goes; video from a keyframe', () => {
  const a = capture();
  const v = capture();
  const feed = new CallerFeed({
    startMs: 0, alwaysOn: false,
    audio: { socket: a.socket, target: { address: '127.0.0.1', port: 4000 }, payloadType: 11, encoding: 'L16', clockRate: 8000 },
    video: { socket: v.socket, target: { address: '127.0.0.1', port: 4002 }, payloadType: 99, ssrc: 7, size: { width: 320, height: 180, fps: 10 } },
  });
  feed.tick(100);
  assert.equal(a.sent.length, 0, 'nothing before the injection (not alwaysOn)');
  feed.startInject();
  const ramp = (from: number, n: number) => Int16Array.from({ length: n }, (_, i) => from + i);
  feed.injectAudio(ramp(0, 400)); // 50 ms: below the prebuffer
  feed.tick(140);
  assert.ok(a.sent.length > 0 && a.sent.every((s) => s.packet.payload.every((b) => b === 0)), 'silence while buffering');
  const silent = a.sent.length;
  feed.injectAudio(ramp(400, 800)); // 150 ms in all
  feed.tick(200);
  const samples = a.sent.slice(silent).flatMap((s) => Array.from({ length: s.packet.payload.length / 2 }, (_, i) => s.packet.payload.readInt16BE(i * 2)));
  assert.deepEqual(samples, Array.from({ length: samples.length }, (_, i) => i), 'in order, from the first sample');
  feed.tick(400); // runs dry
  assert.ok(feed.stats.injected!.underruns >= 1);
  feed.injectAudio(ramp(0, 8000 * 2)); // 2 s at once (a live server's first burst)
  assert.equal(feed.stats.injected!.droppedMs, 1760, 'the 10 ms left from before, then all but the new chunk\'s last 250 ms');
  assert.equal(feed.stats.injected!.queuedMs, 250);

  // Video: P-frames before the first keyframe are not sent; frames go out at the next tick, on our clock.
  const nal = (type: number) => Buffer.from([type, 1, 2, 3]);
  feed.injectVideo([nal(1)], false);
  feed.tick(420);
  assert.equal(v.sent.length, 0);
  feed.injectVideo([nal(7), nal(8), nal(5)], true);
  feed.injectVideo([nal(1)], false);
  feed.tick(440);
  assert.equal(v.sent.length, 0, 'held while the audio that came with it (~230 ms) is queued: lip sync');
  feed.tick(700);
  assert.equal(v.sent.length, 4);
  assert.equal(v.sent.at(-1)!.packet.timestamp - v.sent[0]!.packet.timestamp, 0, 'one tick, one timestamp');
  feed.stopInject();
  feed.tick(1000);
  assert.equal(v.sent.length, 4, 'nothing after the injection (no generated video on this leg)');
  assert.equal(feed.stats.injected, undefined);
});
