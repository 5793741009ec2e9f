/**
 * The console's server-side pieces without the sandbox: the HTTP-FLV preview sink (framing, keyframe
 * gating, timestamps from 0, a slow viewer), the stats sampler, SSE framing, and the demo's view.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CallStatsSampler } from '../../plugin/console/call-stats.js';
import { sseFrame } from '../../plugin/console/live-feed.js';
import { FlvPreviewSink } from '../../plugin/console/preview-sink.js';
import { aacFrame, aacSequenceHeader, avcFrame, avcSequenceHeader } from '../../plugin/media/output/flv.js';
import type { MediaHealth } from '../../plugin/media/ingest/health.js';
import { renderProgress } from '../../scripts/lib/progress-view.js';

/** Reads back FLV tags: [type, timestamp, first body bytes]. */
function tags(buf: Buffer): { type: number; ts: number; body: Buffer }[] {
  assert.equal(buf.subarray(0, 3).toString(), 'FLV');
  const out = [];
  let at = 13;
  while (at < buf.length) {
    const size = buf.readUIntBE(at + 1, 3);
    const ts = buf.readUIntBE(at + 4, 3) | (buf[at + 7]! << 24);
    out.push({ type: buf[at]!, ts, body: buf.subarray(at + 11, at + 11 + size) });
    at += 11 + size + 4;
  }
  return out;
}

function collector(queued = 0) {
  const chunks: Buffer[] = [];
  return { chunks, out: { write: (b: Buffer) => (chunks.push(b), true), writableLength: queued }, all: () => Buffer.concat(chunks) };
}

const ASC = Buffer.from([0x11, 0x88]);
const AVCC = Buffer.from([1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 0, 1, 0, 0]);
const nal = Buffer.from([0, 0, 0, 2, 0x65, 0x88]);

test('a viewer joining mid-stream gets headers first, times from 0, and video from a keyframe on', () => {
  const c = collector();
  const sink = new FlvPreviewSink(c.out, { hasAudio: true, hasVideo: true });
  assert.equal(c.all()[4], 0x05, 'FLV flags: audio + video');
  sink.writeMetadata(Buffer.from([2, 0, 1, 0x61]));
  sink.writeAudio(5000, aacSequenceHeader(ASC));
  sink.writeVideo(4990, avcSequenceHeader(AVCC));
  sink.writeAudio(5021, aacFrame(Buffer.from([1, 2])));
  sink.writeVideo(5030, avcFrame(nal, false)); // a P-frame before any keyframe: undecodable, skipped
  sink.writeVideo(5100, avcFrame(nal, true));
  sink.writeVideo(5166, avcFrame(nal, false));
  const t = tags(c.all());
  assert.deepEqual(t.map((x) => [x.type, x.ts]), [[18, 0], [8, 0], [9, 0], [8, 21], [9, 100], [9, 166]]);
  assert.equal(sink.stats.dropped, 1);
});

test('a slow viewer: frames are skipped (video until the next keyframe), then it is cut off', () => {
  const c = collector();
  let overflow = 0;
  const out = { write: c.out.write, writableLength: 0 };
  const sink = new FlvPreviewSink(out, { hasAudio: true, hasVideo: true, dropAboveBytes: 100, closeAboveBytes: 1000, onOverflow: () => overflow++ });
  sink.writeVideo(0, avcFrame(nal, true));
  out.writableLength = 200;
  sink.writeVideo(33, avcFrame(nal, false));
  sink.writeAudio(40, aacFrame(Buffer.from([1])));
  out.writableLength = 0;
  sink.writeVideo(66, avcFrame(nal, false)); // still waiting for a keyframe
  sink.writeVideo(99, avcFrame(nal, true));
  assert.deepEqual(tags(c.all()).map((x) => x.ts), [0, 99]);
  out.writableLength = 2000;
  sink.writeAudio(120, aacFrame(Buffer.from([1])));
  sink.writeAudio(140, aacFrame(Buffer.from([1])));
  assert.equal(overflow, 1, 'cut off once');
});

test('an audio-only preview says so in its header and ignores video', () => {
  const c = collector();
  const sink = new FlvPreviewSink(c.out, { hasAudio: true, hasVideo: false });
  sink.writeVideo(0, avcFrame(nal, true));
  sink.writeAudio(0, aacFrame(Buffer.from([1])));
  assert.equal(c.all()[4], 0x04);
  assert.deepEqual(tags(c.all()).map((x) => x.type), [8]);
});

test('stats: bitrate from two samples, loss in %, pushes with their reconnects', () => {
  const s = new CallStatsSampler();
  const h = (audioBytes: number): MediaHealth => ({
    audio: { received: 990, lost: 10, rejected: 3, jitterMs: 1.234, buffered: 2 },
    video: null,
    output: { audioBytes, videoBytes: 0, keyframeIntervalMs: null },
    avOffsetMs: null,
    latencyMs: { p50: 73, p99: 85 },
    jitterDepthMs: 60,
  });
  const push = { mediaSessionId: 'm1', status: 'PUBLISHING', stats: { reconnects: 2 } } as never;
  assert.equal(s.sample('k', h(0), [push], 0).bitrateKbps, 0, 'no rate from one sample');
  const st = s.sample('k', h(6000), [push], 1000);
  assert.equal(st.audioKbps, 48);
  assert.deepEqual(st.audio, { received: 990, lost: 10, lossPct: 1, rejected: 3, jitterMs: 1.2 });
  assert.deepEqual(st.pushes, [{ mediaSessionId: 'm1', status: 'PUBLISHING', reconnects: 2 }]);
  assert.equal(st.jitterBufferMs, 60);
});

test('SSE frames: event line, one data line of JSON, blank line', () => {
  assert.equal(sseFrame('call', { a: 'x\ny' }), 'event: call\ndata: {"a":"x\\ny"}\n\n');
});

test('the demo view shows status, timeline, stream and where to watch; colours only on a terminal', () => {
  const call = {
    callId: 'c1', callee: 'softphone', status: 'ESTABLISHED', sipStatus: 200, info: 'Answered', reason: null, rtmpStreamStatus: 'PUBLISHING',
    createdAt: '2026-01-01T00:00:00.000Z',
    events: [{ at: '2026-01-01T00:00:00.010Z', type: 'RING' }, { at: '2026-01-01T00:00:00.250Z', type: 'ESTABLISHED' }, { at: '2026-01-01T00:00:00.300Z', type: 'STREAM_PUBLISHING' }],
    pushes: [{ status: 'PUBLISHING' }],
  } as never;
  const lines = renderProgress({ elapsedS: 3, call, stats: undefined, watchUrl: 'rtmp://h/live/s', consoleUrl: 'http://h/console/' }, false);
  const text = lines.join('\n');
  assert.match(text, /status {4}ESTABLISHED \(SIP 200\) Answered/);
  assert.match(text, /RING \+0\.01s → ESTABLISHED \+0\.25s/);
  assert.match(text, /1\/1 outputs publishing/);
  assert.match(text, /ffplay rtmp:\/\/h\/live\/s/);
  assert.doesNotMatch(text, /\x1b/);
  assert.match(renderProgress({ elapsedS: 3, call, stats: undefined, watchUrl: '', consoleUrl: '' }, true).join(''), /\x1b\[32mESTABLISHED/);
});
