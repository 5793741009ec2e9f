import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { encodeBlackGop } from '../../adapters/ffmpeg/black-gop.js';
import type { FrameSink } from '../../plugin/media/frame.js';
import { LiveStream } from '../../plugin/media/output/live-stream.js';
import { VideoOutput, type GeneratedVideo } from '../../plugin/media/timeline/video-output.js';

let black: GeneratedVideo;
before(async () => {
  black = await encodeBlackGop({ width: 320, height: 180, fps: 10, seconds: 1 });
});

/** Records the video a sink receives: 'H' = a video config (its AVC record in `config`), 'K' keyframe, 'P' other frame. */
function recorder() {
  const out: { ts: number; kind: string; config?: string }[] = [];
  const sink: FrameSink = {
    config: (c) => {
      if (c.tracks.includes('video')) out.push({ ts: c.dts.video, kind: 'H', config: c.stream.video!.avcConfig.toString('hex') });
    },
    frame: (f) => {
      if (f.track === 'video') out.push({ ts: f.dts, kind: f.keyframe ? 'K' : 'P' });
    },
  };
  return { out, sink };
}

test('the black GOP: starts with a keyframe, one keyframe per GOP, SPS dimensions', () => {
  assert.equal(black.frames.length, 10);
  assert.equal(black.frames[0]!.keyframe, true);
  assert.equal(black.frames.filter((f) => f.keyframe).length, 1);
  assert.deepEqual([black.width, black.height], [320, 180]);
});

test('generated from the start, the caller\'s video from its first keyframe, generated again when it stops', () => {
  const stream = new LiveStream();
  const { out, sink } = recorder();
  stream.addSink(sink);
  const v = new VideoOutput(stream, black, { idleMs: 500 });

  v.tick(0, 1000); // the first tick: the GOP's keyframe at once
  v.tick(250, 1000); // then frames every 100 ms: 100, 200
  assert.equal(v.current, 'generated');
  assert.deepEqual(out.map((o) => o.kind).join(''), 'HKPP');
  assert.deepEqual(out.slice(1).map((o) => o.ts), [0, 100, 200]);

  const callerCfg = Buffer.from('01640028ffe1000467640028', 'hex');
  v.callerFormat(callerCfg, 1280, 720);
  v.callerFrame(260, Buffer.from([0, 0, 0, 1, 0x41]), false, 1010);
  assert.equal(v.current, 'generated', 'not before a keyframe');
  assert.equal(v.wantsKeyframe, true);
  assert.equal(v.counters.droppedUntilKeyframe, 1);
  v.tick(300, 1050);
  v.callerFrame(300, Buffer.from([0, 0, 0, 1, 0x65]), true, 1060); // same ts as a generated frame: nudged on
  v.callerFrame(340, Buffer.from([0, 0, 0, 1, 0x41]), false, 1100);
  assert.equal(v.current, 'caller');
  assert.equal(v.wantsKeyframe, false);
  const afterSwitch = out.slice(out.findIndex((o) => o.config === callerCfg.toString('hex')));
  assert.deepEqual(afterSwitch.map((o) => o.kind).join(''), 'HKP', 'caller header, then its keyframe');
  v.tick(400, 1200); // caller still fresh: nothing generated
  assert.equal(v.current, 'caller');

  v.tick(900, 1700); // 600 ms without caller video
  assert.equal(v.current, 'generated');
  const back = out.slice(out.findLastIndex((o) => o.kind === 'H'));
  assert.equal(back[0]!.config, black.avcConfig.toString('hex'), 'the generated header again');
  assert.equal(back[1]!.kind, 'K', 'the GOP restarts on its keyframe');
  const ts = out.filter((o) => o.kind !== 'H').map((o) => o.ts);
  assert.ok(ts.every((t, i) => i === 0 || t > ts[i - 1]!), `timestamps increase: ${ts.join(',')}`);
  assert.deepEqual(v.counters, { generatedFrames: v.counters.generatedFrames, callerFrames: 2, droppedUntilKeyframe: 1, switchesToGenerated: 2, switchesToCaller: 1 });
});

test('without a generated GOP the output only carries the caller\'s video', () => {
  const stream = new LiveStream();
  const { out, sink } = recorder();
  stream.addSink(sink);
  const v = new VideoOutput(stream, undefined, { idleMs: 500 });
  v.tick(1000, 1000);
  assert.equal(out.length, 0);
  assert.equal(v.current, 'none');
});

test('generated frames are marked recurring (the GOP loops: muxers serialise it once), the caller\'s are not', () => {
  const stream = new LiveStream();
  const seen: { gen: boolean; recurring: boolean | undefined }[] = [];
  const v = new VideoOutput(stream, black, { idleMs: 500 });
  stream.addSink({ config: () => {}, frame: (f) => seen.push({ gen: v.current === 'generated', recurring: f.recurring }) });
  v.tick(0, 1000);
  v.tick(150, 1000); // two generated frames: 0 and 100
  v.callerFormat(Buffer.from('01640028ffe1000467640028', 'hex'));
  v.callerFrame(200, Buffer.from([0, 0, 0, 1, 0x65]), true, 1010);
  assert.deepEqual(seen, [{ gen: true, recurring: true }, { gen: true, recurring: true }, { gen: false, recurring: false }]);
});
