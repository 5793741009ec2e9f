import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { ConfigChange, MediaFrame } from '../../plugin/media/frame.js';
import { LiveStream } from '../../plugin/media/output/live-stream.js';
import { Push, type PushOptions } from '../../plugin/media/output/push.js';
import { describeRtmpError } from '../../plugin/media/output/sink.js';
import type { OutputSink } from '../../plugin/media/output/sink.js';

/**
 * Records what a push hands its sink: 'cfg:a0,v40' = config of audio (at 0) and video (at 40);
 * 'a21' = an audio frame at 21; 'v160K' / 'v200P' = a video keyframe / other frame.
 */
class FakeSink extends EventEmitter implements OutputSink {
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
  config(c: ConfigChange) {
    this.written.push(`cfg:${c.tracks.map((t) => `${t[0]}${c.dts[t]}`).join(',')}`);
  }
  frame(f: MediaFrame) {
    this.written.push(f.track === 'audio' ? `a${f.dts}` : `v${f.dts}${f.keyframe ? 'K' : 'P'}`);
  }
  async close() {
    this.closed = true;
  }
}

const asc = Buffer.from([0x11, 0x88]);

test('frames produced while connecting are queued and sent in order after the config', async () => {
  const stream = new LiveStream();
  stream.setAudioFormat({ codec: 'aac', audioSpecificConfig: asc, sampleRate: 48000, channels: 1, bitrate: 64000 });
  const pub = new FakeSink();
  const push = new Push(stream, () => pub);
  const started = push.start();
  stream.audioFrame(0, Buffer.from([1]));
  stream.audioFrame(21, Buffer.from([2]));
  assert.deepEqual(pub.written, []);
  pub.ok();
  await started;
  assert.equal(push.state, 'PUBLISHING');
  stream.audioFrame(43, Buffer.from([3]));
  // The audio config (at the audio track's time, 0), then the frames.
  assert.deepEqual(pub.written, ['cfg:a0', 'a0', 'a21', 'a43']);
  await push.close();
  assert.ok(pub.closed);
  assert.equal(stream.sinkCount, 0);
});

test('a refused publish is FAILED with the server\'s words and leaves the stream', async () => {
  const stream = new LiveStream();
  const pub = new FakeSink();
  const push = new Push(stream, () => pub);
  const states: string[] = [];
  push.on('state', ({ state, reason }) => states.push(`${state} ${reason ?? ''}`.trim()));
  const started = push.start();
  pub.refuse(Object.assign(new Error('publish refused'), { code: 'NetStream.Publish.BadName', description: 'Already publishing' }));
  await assert.rejects(started);
  assert.deepEqual(states, ['FAILED NetStream.Publish.BadName: Already publishing']);
  assert.equal(stream.sinkCount, 0);
  assert.ok(pub.closed);
});

test('with reconnect off, a drop after publishing is FAILED; describeRtmpError prefers the server text, else the message', async () => {
  const stream = new LiveStream();
  const pub = new FakeSink();
  const push = new Push(stream, () => pub, { reconnect: false });
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
  stream.setAudioFormat({ codec: 'aac', audioSpecificConfig: asc, sampleRate: 48000, channels: 1, bitrate: 64000 });
  const pub = new FakeSink();
  const push = new Push(stream, () => pub, { maxQueue: 10 });
  const started = push.start();
  for (let i = 0; i < 50; i++) stream.audioFrame(i * 21, Buffer.from([i]));
  pub.ok();
  await started;
  assert.equal(pub.written.length, 10);
  assert.equal(pub.written[0], 'cfg:a0', 'config is never dropped');
  // 51 items queued (the config and 50 frames), 10 kept: the oldest frames go. (With FLV bodies queued,
  // the AAC sequence header was one more item, and the first one dropped.)
  assert.equal(push.stats.queuedDropped, 41);
  assert.deepEqual(pub.written.slice(1), Array.from({ length: 9 }, (_, k) => `a${(41 + k) * 21}`), 'the newest frames are kept');
  await push.close();
});

test('a drop after publishing reconnects: config first, video from the next keyframe, audio at once', async () => {
  const stream = new LiveStream();
  stream.setAudioFormat({ codec: 'aac', audioSpecificConfig: asc, sampleRate: 48000, channels: 1, bitrate: 64000 });
  stream.setVideoFormat({ codec: 'h264', avcConfig: Buffer.from([1, 2, 3]) });
  const pubs: FakeSink[] = [];
  const push = new Push(stream, () => {
    const p = new FakeSink();
    pubs.push(p);
    return p;
  }, { reconnect: { initialMs: 5, maxMs: 5 } });
  const states: string[] = [];
  push.on('state', ({ state }) => states.push(state));
  const started = push.start();
  pubs[0]!.ok();
  await started;
  pubs[0]!.emit('close', { error: new Error('socket hang up') });
  assert.equal(push.state, 'RECONNECTING');
  assert.ok(pubs[0]!.closed);
  stream.audioFrame(100, Buffer.from([1]));
  assert.equal(push.stats.droppedWhileDown, 1);
  // The first retry is refused: it tries again.
  await new Promise((r) => setTimeout(r, 20));
  pubs[1]!.refuse(new Error('ECONNREFUSED'));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(push.state, 'RECONNECTING');
  pubs[2]!.ok();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(push.state, 'PUBLISHING');
  assert.deepEqual(states, ['PUBLISHING', 'RECONNECTING', 'PUBLISHING']);
  stream.videoFrame(120, Buffer.from([9]), false);
  stream.audioFrame(121, Buffer.from([2]));
  stream.videoFrame(160, Buffer.from([9]), true);
  stream.videoFrame(200, Buffer.from([9]), false);
  // Both tracks' config, each at its track's last time (audio 100, video none yet: 0).
  assert.deepEqual(pubs[2]!.written, ['cfg:a100,v0', 'a121', 'v160K', 'v200P']);
  assert.equal(push.stats.reconnects, 1);
  await push.close();
  assert.equal(push.state, 'CLOSED');
});

/** A push whose first connection publishes; later ones do what `then` says (nothing: they hang). */
function droppablePush(stream: LiveStream, then: (p: FakeSink) => void, opts: PushOptions) {
  const counter = { made: 0 };
  const push = new Push(stream, () => {
    counter.made++;
    const p = new FakeSink();
    if (counter.made === 1) p.ok();
    else then(p);
    return p;
  }, opts);
  return { push, counter };
}

test('close while reconnecting stops the retries', async () => {
  const stream = new LiveStream();
  const { push, counter } = droppablePush(stream, () => {}, { reconnect: { initialMs: 5, maxMs: 5 } });
  await push.start();
  (push as unknown as { sink: FakeSink }).sink.emit('close', {});
  await push.close();
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(counter.made, 1, 'no connection attempt after close');
});

test('mute sends silent frames, a sound replaces the audio (once, then back; or looped), config untouched', async () => {
  const stream = new LiveStream();
  stream.setAudioFormat({ codec: 'aac', audioSpecificConfig: asc, sampleRate: 48000, channels: 1, bitrate: 64000 });
  const pub = new FakeSink();
  const bodies: string[] = [];
  pub.config = (c: ConfigChange) => void bodies.push(`${c.dts.audio}:${c.stream.audio!.audioSpecificConfig.toString('hex')}`);
  pub.frame = (f: MediaFrame) => void bodies.push(`${f.dts}:${f.payload.toString('hex')}`);
  const push = new Push(stream, () => pub);
  const started = push.start();
  pub.ok();
  await started;
  const frame = (ts: number) => stream.audioFrame(ts, Buffer.from([0xaa]));
  frame(0);
  push.mute(Buffer.from([0x00]));
  assert.equal(push.muted, true);
  frame(21);
  let ended = 0;
  push.on('soundEnded', () => ended++);
  push.playSound([Buffer.from([0x01]), Buffer.from([0x02])], false);
  frame(43);
  frame(64);
  frame(85); // the sound is over: muted again
  push.unmute();
  frame(107);
  push.playSound([Buffer.from([0x05])], true);
  frame(128);
  frame(149);
  push.stopSound();
  frame(171);
  assert.deepEqual(bodies, ['0:' + asc.toString('hex'), '0:aa', '21:00', '43:01', '64:02', '85:00', '107:aa', '128:05', '149:05', '171:aa']);
  assert.equal(ended, 1);
  assert.equal(push.soundEnabled, false);
  await push.close();
});

test('reconnect attempts are bounded: after maxReconnectAttempts refusals the push is FAILED with the last reason', async () => {
  const stream = new LiveStream();
  const { push, counter } = droppablePush(stream, (p) => p.refuse(new Error('connect ECONNREFUSED')), { reconnect: { initialMs: 1, maxMs: 2 }, maxReconnectAttempts: 3 });
  const states: string[] = [];
  push.on('state', ({ state, reason }) => states.push(`${state}${reason ? ` ${reason}` : ''}`));
  await push.start();
  (push as unknown as { sink: FakeSink }).sink.emit('close', {});
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(counter.made, 4, 'the first connection and 3 attempts');
  assert.equal(push.state, 'FAILED');
  assert.deepEqual(states, ['PUBLISHING', 'RECONNECTING the server closed the connection', 'FAILED connect ECONNREFUSED (gave up after 3 reconnect attempts)']);
  assert.equal(stream.sinkCount, 0);
});

test('mute is per output: another push of the same stream gets the call\'s audio, and the stream\'s frame is untouched', async () => {
  const stream = new LiveStream();
  stream.setAudioFormat({ codec: 'aac', audioSpecificConfig: asc, sampleRate: 48000, channels: 1, bitrate: 64000 });
  const seen: MediaFrame[][] = [[], []];
  const pushes = [0, 1].map((i) => {
    const pub = new FakeSink();
    pub.frame = (f: MediaFrame) => void seen[i]!.push(f);
    pub.ok();
    return new Push(stream, () => pub);
  });
  await Promise.all(pushes.map((p) => p.start()));
  const silent = Buffer.from([0x00]);
  pushes[0]!.mute(silent);
  const live = Buffer.from([0xaa]);
  stream.audioFrame(21, live);
  assert.equal(seen[0]![0]!.payload, silent);
  assert.equal(seen[0]![0]!.dts, 21);
  assert.equal(seen[1]![0]!.payload, live, 'the other output gets the stream\'s own frame');
  assert.equal(seen[1]![0]!.payload[0], 0xaa);
  await Promise.all(pushes.map((p) => p.close()));
});
