/**
 * RtmpSink: an output's neutral frames and config, muxed to FLV and written to an RtmpPublisher (a stub
 * here: the publisher has its own tests); and Push over it, as the app wires them.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { RtmpSink, type FlvPublisher } from '../../adapters/rtmp/rtmp-sink.js';
import { aacFrame, aacSequenceHeader, avcFrame, avcSequenceHeader, onMetaData } from '../../plugin/media/output/flv.js';
import { LiveStream } from '../../plugin/media/output/live-stream.js';
import { Push } from '../../plugin/media/output/push.js';
import type { OutputError } from '../../plugin/media/output/sink.js';

/** Records every message: [kind, time, body]. */
class StubPublisher extends EventEmitter implements FlvPublisher {
  readonly written: ['meta' | 'audio' | 'video', number | undefined, Buffer][] = [];
  started = 0;
  closed = 0;
  async start() {
    this.started++;
  }
  writeMetadata(body: Buffer) {
    this.written.push(['meta', undefined, body]);
  }
  writeAudio(ts: number, body: Buffer) {
    this.written.push(['audio', ts, body]);
  }
  writeVideo(ts: number, body: Buffer) {
    this.written.push(['video', ts, body]);
  }
  async close() {
    this.closed++;
  }
}

const ASC = Buffer.from([0x11, 0x88]);
const AVCC = Buffer.from([1, 0x42, 0xc0, 0x1e]);
const audioConfig = { codec: 'aac', audioSpecificConfig: ASC, sampleRate: 48000, channels: 1, bitrate: 64000 } as const;

test('RtmpSink writes config as onMetaData + sequence headers and frames as FLV bodies at their dts; start, close and \'close\' are the publisher\'s', async () => {
  const pub = new StubPublisher();
  const sink = new RtmpSink(pub);
  await sink.start();
  assert.equal(pub.started, 1);
  let dropped: OutputError | undefined;
  sink.on('close', ({ error }) => (dropped = error));

  sink.config({ stream: { audio: audioConfig, video: { codec: 'h264', avcConfig: AVCC, width: 640, height: 360 } }, tracks: ['audio', 'video'], dts: { audio: 100, video: 80 } });
  const au = Buffer.from([0, 0, 0, 1, 0x65]);
  sink.frame({ track: 'audio', dts: 121, pts: 121, keyframe: true, payload: Buffer.from([9, 9]) });
  sink.frame({ track: 'video', dts: 120, pts: 160, keyframe: true, payload: au });
  const meta = onMetaData({
    duration: 0, encoder: 'sip-as-rtmp', audiocodecid: 10, audiosamplerate: 48000, audiosamplesize: 16, stereo: false, audiodatarate: 64,
    videocodecid: 7, width: 640, height: 360,
  });
  assert.deepEqual(pub.written, [
    ['meta', undefined, meta],
    ['audio', 100, aacSequenceHeader(ASC)],
    ['video', 80, avcSequenceHeader(AVCC)],
    ['audio', 121, aacFrame(Buffer.from([9, 9]))],
    ['video', 120, avcFrame(au, true, 40)], // message time is the dts; the composition offset rides in the body
  ]);

  const err = Object.assign(new Error('stream broke'), { code: 'NetStream.Publish.BadName', description: 'Already publishing' });
  pub.emit('close', { error: err });
  assert.equal(dropped, err);
  await sink.close();
  assert.equal(pub.closed, 1);
});

test('Push over RtmpSink: the outputs of one call share each FLV body; a muted one sends one silent body, never copied per frame', async () => {
  const stream = new LiveStream();
  stream.setAudioFormat(audioConfig);
  const pubs = [new StubPublisher(), new StubPublisher(), new StubPublisher()];
  const pushes = pubs.map((p) => new Push(stream, () => new RtmpSink(p), { reconnect: false }));
  await Promise.all(pushes.map((p) => p.start()));
  const silent = Buffer.from([0x00, 0x01]);
  pushes[2]!.mute(silent);
  for (let i = 0; i < 3; i++) stream.audioFrame(i * 21, Buffer.from([0xaa, i]));

  const [a, b, muted] = pubs.map((p) => p.written) as [StubPublisher['written'], StubPublisher['written'], StubPublisher['written']];
  assert.equal(a.length, 5); // metadata, AAC header, 3 frames
  a.forEach((m, i) => {
    assert.deepEqual(m, b[i]);
    assert.equal(m[2], b[i]![2], `message ${i}: one Buffer for both outputs`);
  });
  assert.deepEqual(a.slice(2).map((m) => m[2]), [0, 1, 2].map((i) => aacFrame(Buffer.from([0xaa, i]))));
  const silentBodies = muted.slice(2).map((m) => m[2]);
  assert.deepEqual(silentBodies[0], aacFrame(silent));
  assert.ok(silentBodies.every((x) => x === silentBodies[0]), 'the silent body is built once');
  assert.deepEqual(muted.slice(2).map((m) => m[1]), [0, 21, 42], 'with the live timestamps');

  // A drop reaches the push through the sink, with the server's words.
  pubs[0]!.emit('close', { error: Object.assign(new Error('x'), { code: 'NetConnection.Connect.Closed', description: 'bye' }) });
  assert.equal(pushes[0]!.state, 'FAILED');
  assert.equal(pushes[0]!.failureReason, 'NetConnection.Connect.Closed: bye');
  await Promise.all(pushes.map((p) => p.close()));
  assert.equal(stream.sinkCount, 0);
});
