import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AudioLatency, MsHistogram } from '../../plugin/media/timeline/latency.js';
import { MediaTicker } from '../../plugin/media/timeline/ticker.js';

test('histogram: quantiles in 1 ms buckets, merge of the sparse form', () => {
  const h = new MsHistogram();
  for (let i = 1; i <= 100; i++) h.add(i);
  assert.equal(h.quantile(0.5), 50);
  assert.equal(h.quantile(0.99), 99);
  assert.equal(h.max, 100);
  const m = new MsHistogram();
  m.merge(h.sparse(), h.max);
  m.merge([[2000, 1]], 2000); // beyond 1 s: the last bucket
  assert.equal(m.count, 101);
  assert.equal(m.quantile(1), 1000);
  assert.equal(new MsHistogram().quantile(0.5), undefined);
});

test('audio latency: a packet is out with the first frame whose window holds its first sample', () => {
  // 16 kHz leg, 48 kHz out: 20 ms packets = 320 leg samples = 960 output samples.
  const l = new AudioLatency(16000, 48000);
  l.placed(0, 0); // starts at output 0: frame 0's new half is [0, 1024)
  l.placed(342, 20); // starts at output 1026: frame 1
  l.frameOut(0, 90);
  assert.equal(l.histogram.count, 1);
  l.frameOut(1, 111);
  assert.deepEqual(l.histogram.sparse(), [[90, 1], [91, 1]]);
});

test("ticker: a call's time zero is snapped up to the tick grid", () => {
  let t = 1000;
  const k = new MediaTicker(21.25, () => t);
  assert.equal(k.alignUp(1000), 1000);
  assert.equal(k.alignUp(1000.5), 1021.25);
  assert.equal(k.alignUp(1042.5), 1042.5);
  t = 1010;
  assert.equal(k.alignUp(t), 1021.25);
});
