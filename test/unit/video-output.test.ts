import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { before, test } from 'node:test';
import { ffmpegFillVideo } from '../../adapters/ffmpeg/fill-video.js';
import type { FrameSink } from '../../plugin/media/frame.js';
import { LiveStream } from '../../plugin/media/output/live-stream.js';
import type { VideoTranscoder, VideoTranscoderEvents, VideoTranscoderOptions } from '../../plugin/media/ports.js';
import type { GeneratedVideo } from '../../plugin/media/timeline/generated-video.js';
import { VideoOutput, type VideoOutputOptions } from '../../plugin/media/timeline/video-output.js';

let black: GeneratedVideo;
before(async () => {
  black = await ffmpegFillVideo()({ kind: 'black', width: 320, height: 180, fps: 10, seconds: 1 });
});

/** Records the video a sink receives: 'H' = a video config (its AVC record in `config`), 'K' keyframe, 'P' other frame. */
function recorder() {
  const out: { ts: number; kind: string; config?: string; size?: string }[] = [];
  const sink: FrameSink = {
    config: (c) => {
      const v = c.stream.video!;
      if (c.tracks.includes('video')) out.push({ ts: c.dts.video, kind: 'H', config: v.avcConfig.toString('hex'), size: `${v.width}x${v.height}` });
    },
    frame: (f) => {
      if (f.track === 'video') out.push({ ts: f.dts, kind: f.keyframe ? 'K' : 'P' });
    },
  };
  return { out, sink };
}

/** A transcoder that records what it is given; the test makes it answer. */
class FakeTranscoder extends EventEmitter<VideoTranscoderEvents> implements VideoTranscoder {
  readonly writes: { ts: number; keyframe: boolean }[] = [];
  readonly configs: Buffer[] = [];
  closed = false;
  readonly pid = 4242;
  readonly stats = { framesIn: 0, framesOut: 0, dropped: 0 };
  constructor(readonly o: VideoTranscoderOptions) {
    super();
  }
  inputConfig(c: Buffer): void {
    this.configs.push(c);
  }
  write(ts: number, _avcc: Buffer, keyframe: boolean): void {
    this.writes.push({ ts, keyframe });
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

const CALLER_CFG = Buffer.from('01640028ffe1000467640028', 'hex');
const TX_CFG = Buffer.from('0142c01effe1000467420c1e', 'hex');
const au = (key: boolean) => Buffer.from([0, 0, 0, 1, key ? 0x65 : 0x41]);
const flush = () => new Promise((r) => setImmediate(r));

function setup(over: Partial<VideoOutputOptions> = {}) {
  const stream = new LiveStream();
  const { out, sink } = recorder();
  stream.addSink(sink);
  const transcoders: FakeTranscoder[] = [];
  const events: string[] = [];
  const fillSizes: string[] = [];
  const v = new VideoOutput(stream, {
    idleMs: 500, defaultSize: { width: 320, height: 180 }, sizeWaitMs: 0,
    fill: (s) => (fillSizes.push(`${s.width}x${s.height}`), { now: undefined, later: Promise.resolve(black) }),
    keyframeIntervalMs: 2000, transcode: 'auto',
    transcoder: (o) => {
      const t = new FakeTranscoder(o);
      transcoders.push(t);
      return t;
    },
    onEvent: (e, d) => events.push(`${e}: ${d}`),
    ...over,
  });
  return { v, out, transcoders, events, fillSizes };
}

test('the fill GOP: starts with a keyframe, one keyframe per GOP, SPS dimensions', () => {
  assert.equal(black.frames.length, 10);
  assert.equal(black.frames[0]!.keyframe, true);
  assert.equal(black.frames.filter((f) => f.keyframe).length, 1);
  assert.deepEqual([black.width, black.height], [320, 180]);
});

test('audio-only: the fill from the first tick at the default size, a keyframe each GOP', async () => {
  const { v, out, fillSizes } = setup();
  await flush();
  assert.deepEqual(fillSizes, ['320x180']);
  v.tick(0, 1000);
  v.tick(2050, 3050);
  assert.equal(v.current, 'generated');
  assert.equal(out[0]!.kind, 'H');
  assert.equal(out[0]!.size, '320x180');
  const keys = out.filter((o) => o.kind === 'K').map((o) => o.ts);
  assert.deepEqual(keys, [0, 1000, 2000], 'the 1 s GOP loops with fresh timestamps');
  assert.equal(out.filter((o) => o.kind !== 'H').length, 21);
  assert.deepEqual(v.toJSON().size, '320x180');
  assert.equal(v.mode, 'passthrough');
});

test('generated from the start, the caller\'s video from its first keyframe, generated again when it stops', async () => {
  const { v, out } = setup({ defaultSize: { width: 1280, height: 720 } });
  await flush();
  v.tick(0, 1000);
  v.tick(250, 1000);
  assert.equal(v.current, 'generated');
  assert.deepEqual(out.map((o) => o.kind).join(''), 'HKPP');

  v.callerFormat(CALLER_CFG, 1280, 720);
  v.callerFrame(260, au(false), false, 1010);
  assert.equal(v.current, 'generated', 'not before a keyframe');
  assert.equal(v.wantsKeyframe, true);
  assert.equal(v.counters.droppedUntilKeyframe, 1);
  v.tick(300, 1050);
  v.callerFrame(300, au(true), true, 1060); // same ts as a generated frame: nudged on
  v.callerFrame(340, au(false), false, 1100);
  assert.equal(v.current, 'caller');
  assert.equal(v.wantsKeyframe, false);
  const afterSwitch = out.slice(out.findIndex((o) => o.config === CALLER_CFG.toString('hex')));
  assert.deepEqual(afterSwitch.map((o) => o.kind).join(''), 'HKP', 'caller header, then its keyframe');
  v.tick(400, 1200);
  assert.equal(v.current, 'caller');

  v.tick(900, 1700); // 600 ms without caller video
  assert.equal(v.current, 'generated');
  const back = out.slice(out.findLastIndex((o) => o.kind === 'H'));
  assert.equal(back[0]!.config, black.avcConfig.toString('hex'), 'the fill header again');
  assert.equal(back[1]!.kind, 'K', 'the GOP restarts on its keyframe');
  const ts = out.filter((o) => o.kind !== 'H').map((o) => o.ts);
  assert.ok(ts.every((t, i) => i === 0 || t > ts[i - 1]!), `timestamps increase: ${ts.join(',')}`);
  assert.equal(new Set(out.filter((o) => o.kind === 'H').map((o) => o.size)).size, 1, 'one size');
});

test('a video call takes the caller\'s size from its first SPS; the fill is made at that size', async () => {
  const { v, out, fillSizes } = setup({ sizeWaitMs: 1500, defaultSize: { width: 640, height: 360 } });
  v.tick(0, 1000);
  v.tick(500, 1500);
  assert.equal(v.streamSize, undefined, 'waiting for the caller');
  assert.equal(out.length, 0);
  v.callerFormat(CALLER_CFG, 352, 288);
  v.callerFrame(520, au(true), true, 1520);
  assert.deepEqual(v.streamSize, { width: 352, height: 288 });
  assert.equal(v.current, 'caller');
  await flush();
  assert.deepEqual(fillSizes, ['352x288']);
  assert.equal(v.mode, 'passthrough');
});

test('no SPS within the wait: the default size; a caller of another size is transcoded (scaled), never passed through', async () => {
  const { v, out, transcoders, events } = setup({ sizeWaitMs: 1500, defaultSize: { width: 640, height: 360 } });
  v.tick(0, 1000);
  v.tick(1500, 2500);
  assert.deepEqual(v.streamSize, { width: 640, height: 360 });
  await flush();
  v.tick(1600, 2600);
  assert.equal(v.current, 'generated');
  v.callerFormat(CALLER_CFG, 352, 288);
  assert.equal(v.mode, 'transcode');
  assert.match(events[0]!, /TRANSCODE: the caller's size 352x288 is not the stream's 640x360/);
  const t = transcoders[0]!;
  assert.deepEqual([t.o.width, t.o.height, t.o.keyframeIntervalMs], [640, 360, 2000]);
  assert.deepEqual(t.configs, [CALLER_CFG]);
  v.callerFrame(1700, au(true), true, 2700);
  assert.deepEqual(t.writes, [{ ts: 1700, keyframe: true }]);
  assert.equal(out.filter((o) => o.kind === 'H').length, 1, 'nothing of the caller\'s own goes out');
  t.emit('config', { avcConfig: TX_CFG, width: 640, height: 360 });
  t.emit('frame', { ts: 1700, avcc: au(true), keyframe: true });
  assert.equal(v.current, 'caller');
  const hs = out.filter((o) => o.kind === 'H');
  assert.deepEqual(hs.map((h) => h.size), ['640x360', '640x360']);
  assert.equal(hs[1]!.config, TX_CFG.toString('hex'));
});

test('keyframes overdue despite requests: transcode, primed with the GOP, its first keyframe after what was published', async () => {
  const { v, out, transcoders, events } = setup({ sizeWaitMs: 1500 });
  v.callerFormat(CALLER_CFG, 320, 180);
  await flush();
  // 25 fps from the caller, one keyframe at the start and none after.
  let now = 1000;
  for (let i = 0; i <= 56; i++, now += 40) {
    v.callerFrame(i * 40, au(i === 0), i === 0, now);
    v.tick(i * 40, now);
  }
  assert.equal(v.mode, 'passthrough', '2.24 s: within the margin');
  assert.ok(v.requestKeyframeAfterMs < 2000 && v.asksKeyframes);
  v.callerFrame(2280, au(false), false, now);
  v.tick(2280, now);
  assert.equal(v.mode, 'transcode');
  assert.equal(v.asksKeyframes, false, 'no more requests: the transcoder makes the keyframes');
  assert.match(events[0]!, /no keyframe from the caller for 2\.3 s despite requests/);
  const t = transcoders[0]!;
  assert.equal(t.o.firstKeyframeAfterMs, 2281, 'the first frame the stream has not carried yet, after the GOP\'s start');
  assert.equal(t.writes.length, 58, 'primed with the whole GOP since the keyframe');
  assert.equal(t.writes[0]!.keyframe, true);
  // Its output for the primed frames has old timestamps: dropped. The forced keyframe goes out.
  t.emit('config', { avcConfig: TX_CFG, width: 320, height: 180 });
  t.emit('frame', { ts: 0, avcc: au(true), keyframe: true });
  t.emit('frame', { ts: 2280, avcc: au(false), keyframe: false });
  v.callerFrame(2320, au(false), false, now + 40);
  assert.deepEqual(t.writes.at(-1), { ts: 2320, keyframe: false }, 'then the caller\'s frames go to the transcoder');
  t.emit('frame', { ts: 2320, avcc: au(true), keyframe: true });
  t.emit('frame', { ts: 2360, avcc: au(false), keyframe: false });
  const tail = out.slice(out.findLastIndex((o) => o.kind === 'H'));
  assert.deepEqual(tail.map((o) => `${o.kind}${o.kind === 'H' ? '' : o.ts}`), ['H', 'K2320', 'P2360']);
  assert.equal(v.counters.transcodedFrames, 2);
  assert.equal(v.counters.maxKeyframeIntervalMs, 2320);
  await v.close();
  assert.equal(t.closed, true);
});

test('video flows but no keyframe ever comes (the first was lost, requests ignored): transcode, the fill meanwhile', async () => {
  const { v, out, transcoders, events } = setup({ sizeWaitMs: 1500 });
  let now = 0;
  for (; now <= 2200; now += 40) {
    v.callerActive(now);
    v.tick(now, now);
    if (now === 1520) await flush(); // the size is decided: its fill arrives
  }
  assert.equal(v.mode, 'passthrough');
  assert.equal(v.current, 'generated', 'the fill from the default size on');
  now = 2280;
  v.callerActive(now);
  v.tick(now, now);
  assert.equal(v.mode, 'transcode');
  assert.match(events[0]!, /no keyframe from the caller for 2\.\d s/);
  assert.equal(transcoders[0]!.writes.length, 0, 'nothing to prime it with');
  v.callerFormat(CALLER_CFG, 320, 180);
  assert.deepEqual(transcoders[0]!.configs, [CALLER_CFG], 'the first SPS goes to the transcoder');
  assert.ok(out.filter((o) => o.kind === 'K').length >= 1, 'the fill meanwhile');
});

test('VIDEO_TRANSCODE=never keeps passthrough; always transcodes from the caller\'s first SPS', async () => {
  const never = setup({ transcode: 'never', sizeWaitMs: 1000 });
  never.v.callerFormat(CALLER_CFG, 320, 180);
  let now = 0;
  for (let i = 0; i < 100; i++, now += 40) {
    never.v.callerFrame(i * 40, au(i === 0), i === 0, now);
    never.v.tick(i * 40, now);
  }
  assert.equal(never.v.mode, 'passthrough');
  assert.equal(never.transcoders.length, 0);

  const always = setup({ transcode: 'always', sizeWaitMs: 1000 });
  always.v.callerFormat(CALLER_CFG, 320, 180);
  assert.equal(always.v.mode, 'transcode');
  assert.match(always.events[0]!, /always/);
  // Also when the size was decided first (the default, the same as the caller's).
  const later = setup({ transcode: 'always', sizeWaitMs: 0 });
  later.v.callerFormat(CALLER_CFG, 320, 180);
  assert.equal(later.v.mode, 'transcode');
  assert.deepEqual(later.transcoders[0]!.configs, [CALLER_CFG]);
});

test('a transcoder that fails: the stream shows the fill from then on', async () => {
  const { v, transcoders, events } = setup({ transcode: 'always', sizeWaitMs: 1000 });
  v.callerFormat(CALLER_CFG, 320, 180);
  await flush();
  const t = transcoders[0]!;
  t.emit('config', { avcConfig: TX_CFG, width: 320, height: 180 });
  t.emit('frame', { ts: 0, avcc: au(true), keyframe: true });
  assert.equal(v.current, 'caller');
  t.emit('error', new Error('ffmpeg exited (SIGKILL)'));
  assert.match(events.at(-1)!, /TRANSCODE_FAILED: ffmpeg exited/);
  v.callerFrame(40, au(false), false, 40);
  v.tick(100, 100);
  assert.equal(v.current, 'generated');
  assert.equal(v.toJSON().transcodeFailed, true);
});

test('generated frames are marked recurring (the GOP loops: muxers serialise it once), the caller\'s are not', async () => {
  const stream = new LiveStream();
  const seen: { gen: boolean; recurring: boolean | undefined }[] = [];
  const v = new VideoOutput(stream, { idleMs: 500, defaultSize: { width: 320, height: 180 }, sizeWaitMs: 0, fill: () => ({ now: black, later: Promise.resolve(black) }), keyframeIntervalMs: 2000, transcode: 'never' });
  await flush();
  stream.addSink({ config: () => {}, frame: (f) => seen.push({ gen: v.current === 'generated', recurring: f.recurring }) });
  v.tick(0, 1000);
  v.tick(150, 1000); // two generated frames: 0 and 100
  v.callerFormat(CALLER_CFG, 320, 180);
  v.callerFrame(200, au(true), true, 1010);
  assert.deepEqual(seen, [{ gen: true, recurring: true }, { gen: true, recurring: true }, { gen: false, recurring: false }]);
});

test('VIDEO_FILL=none: no fill, only the caller\'s video', () => {
  const stream = new LiveStream();
  const { out, sink } = recorder();
  stream.addSink(sink);
  const v = new VideoOutput(stream, { idleMs: 500, defaultSize: { width: 320, height: 180 }, sizeWaitMs: 0, keyframeIntervalMs: 2000, transcode: 'never' });
  v.tick(1000, 1000);
  assert.equal(out.length, 0);
  assert.equal(v.current, 'none');
});
