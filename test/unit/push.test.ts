import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { LiveStream } from '../../plugin/media/live-stream.js';
import { describeRtmpError, Push, type Publisher } from '../../plugin/media/push.js';

class FakePublisher extends EventEmitter implements Publisher {
  written: string[] = [];
  closed = false;
  startResult: Promise<void>;
  private resolveStart!: () => void;
  private rejectStart!: (e: Error) => void;
  constructor() {
    super();
    this.startResult = new Promise((res, rej) => {
      this.resolveStart = res;
      this.rejectStart = rej;
    });
  }
  start() {
    return this.startResult;
  }
  ok() {
    this.resolveStart();
  }
  refuse(e: Error) {
    this.rejectStart(e);
  }
  writeMetadata() {
    this.written.push('meta');
  }
  writeAudio(ts: number, body: Buffer) {
    this.written.push(`a${ts}:${body[1]}`);
  }
  writeVideo(ts: number) {
    this.written.push(`v${ts}`);
  }
  async close() {
    this.closed = true;
  }
}

const asc = Buffer.from([0x11, 0x88]);

test('frames produced while connecting are queued and sent in order after the headers', async () => {
  const stream = new LiveStream();
  stream.setAudioFormat({ audioSpecificConfig: asc, sampleRate: 48000, channels: 1, bitrate: 64000 });
  const pub = new FakePublisher();
  const push = new Push(stream, pub);
  const started = push.start();
  stream.audioFrame(0, Buffer.from([1]));
  stream.audioFrame(21, Buffer.from([2]));
  assert.deepEqual(pub.written, []);
  pub.ok();
  await started;
  assert.equal(push.state, 'PUBLISHING');
  stream.audioFrame(43, Buffer.from([3]));
  // AAC sequence header (packet type 0), then raw frames (packet type 1).
  assert.deepEqual(pub.written, ['meta', 'a0:0', 'a0:1', 'a21:1', 'a43:1']);
  await push.close();
  assert.ok(pub.closed);
  assert.equal(stream.sinkCount, 0);
});

test('a refused publish is FAILED with the server\'s words and leaves the stream', async () => {
  const stream = new LiveStream();
  const pub = new FakePublisher();
  const push = new Push(stream, pub);
  const states: string[] = [];
  push.on('state', ({ state, reason }) => states.push(`${state} ${reason ?? ''}`.trim()));
  const started = push.start();
  pub.refuse(Object.assign(new Error('publish refused'), { code: 'NetStream.Publish.BadName', description: 'Already publishing' }));
  await assert.rejects(started);
  assert.deepEqual(states, ['FAILED NetStream.Publish.BadName: Already publishing']);
  assert.equal(stream.sinkCount, 0);
  assert.ok(pub.closed);
});

test('a drop after publishing is FAILED; describeRtmpError prefers the server text, else the message', async () => {
  const stream = new LiveStream();
  const pub = new FakePublisher();
  const push = new Push(stream, pub);
  const started = push.start();
  pub.ok();
  await started;
  pub.emit('close', { error: new Error('socket hang up') });
  assert.equal(push.state, 'FAILED');
  assert.equal(push.failureReason, 'socket hang up');
  assert.equal(describeRtmpError(Object.assign(new Error('m'), { code: 'ETIMEDOUT' })), 'm');
});

test('the queue is bounded while connecting', async () => {
  const stream = new LiveStream();
  stream.setAudioFormat({ audioSpecificConfig: asc, sampleRate: 48000, channels: 1, bitrate: 64000 });
  const pub = new FakePublisher();
  const push = new Push(stream, pub, { maxQueue: 10 });
  const started = push.start();
  for (let i = 0; i < 50; i++) stream.audioFrame(i * 21, Buffer.from([i]));
  pub.ok();
  await started;
  assert.equal(pub.written.length, 10);
  assert.equal(pub.written[0], 'meta', 'headers are never dropped');
  assert.equal(push.stats.queuedDropped, 42);
  await push.close();
});
