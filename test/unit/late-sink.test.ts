import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigChange, FrameSink, MediaFrame } from '../../plugin/media/frame.js';
import { LateSink } from '../../plugin/media/output/late-sink.js';

const cfg: ConfigChange = { stream: {}, tracks: [], dts: { audio: 0, video: 0 } };
const frame = (dts: number): MediaFrame => ({ track: 'audio', dts, pts: dts, keyframe: true, payload: Buffer.alloc(1), recurring: false });

function recorder(): FrameSink & { got: string[] } {
  const got: string[] = [];
  return { got, config: () => got.push('config'), frame: (f) => got.push(`f${f.dts}`) };
}

test('what came before the receiver is handed over in order, then frames pass straight through', () => {
  const late = new LateSink();
  late.config(cfg);
  late.frame(frame(0));
  late.frame(frame(20));
  const r = recorder();
  late.attach(r);
  late.frame(frame(40));
  late.config(cfg);
  assert.deepEqual(r.got, ['config', 'f0', 'f20', 'f40', 'config']);
});

test('bounded: frames past maxHeld are counted, configs kept; discard() lets go', () => {
  const late = new LateSink(2);
  for (let i = 0; i < 5; i++) late.frame(frame(i));
  late.config(cfg);
  assert.equal(late.dropped, 3);
  const r = recorder();
  late.attach(r);
  assert.deepEqual(r.got, ['f0', 'f1', 'config']);
  const gone = new LateSink();
  gone.frame(frame(0));
  gone.discard();
  gone.frame(frame(1));
  const r2 = recorder();
  gone.attach(r2);
  assert.deepEqual(r2.got, []);
});
