/**
 * The console's server-side pieces without the sandbox: the HTTP-FLV preview sink (framing, keyframe
 * gating, timestamps from 0, a slow viewer), the stats sampler, SSE framing, the demo's view, and the
 * page's modules as the routes serve them.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import Fastify from 'fastify';
import { CALL_STATUSES, FINAL_CALL_STATUSES, FINAL_PUSH_STATES, LIVE_PUSH_STATES, PUSH_STATES } from '../../plugin/calls/states.js';
import { registerConsole } from '../../plugin/console/routes.js';
import { createLogger } from '../../plugin/lib/log.js';
import { OUTPUT_STATES } from '../../plugin/media/output/states.js';
import { CallStatsSampler } from '../../plugin/console/call-stats.js';
import { sseFrame } from '../../plugin/console/live-feed.js';
import { FlvByteSink } from '../../plugin/media/output/flv-stream.js';
import { aacFrame, aacSequenceHeader, avcFrame, avcSequenceHeader, onMetaData } from '../../plugin/media/output/flv.js';
import type { ConfigChange, MediaFrame } from '../../plugin/media/frame.js';
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
const audio = (dts: number, payload: Buffer): MediaFrame => ({ track: 'audio', dts, pts: dts, keyframe: true, payload });
const video = (dts: number, keyframe: boolean, payload = nal): MediaFrame => ({ track: 'video', dts, pts: dts, keyframe, payload });
/** What LiveStream sends a sink joining with both tracks configured: audio's last time 5000, video's 4990. */
const joined: ConfigChange = {
  stream: { audio: { codec: 'aac', audioSpecificConfig: ASC, sampleRate: 48000, channels: 1, bitrate: 64000 }, video: { codec: 'h264', avcConfig: AVCC } },
  tracks: ['audio', 'video'],
  dts: { audio: 5000, video: 4990 },
};

test('a viewer joining mid-stream gets headers first, times from 0, and video from a keyframe on', () => {
  const c = collector();
  const sink = new FlvByteSink(c.out, { hasAudio: true, hasVideo: true });
  assert.equal(c.all()[4], 0x05, 'FLV flags: audio + video');
  sink.config(joined); // metadata, then the AAC and AVC sequence headers
  sink.frame(audio(5021, Buffer.from([1, 2])));
  sink.frame(video(5030, false)); // a P-frame before any keyframe: undecodable, skipped
  sink.frame(video(5100, true));
  sink.frame(video(5166, false));
  const t = tags(c.all());
  assert.deepEqual(t.map((x) => [x.type, x.ts]), [[18, 0], [8, 0], [9, 0], [8, 21], [9, 100], [9, 166]]);
  assert.equal(sink.stats.dropped, 1);
  // The RTMP outputs' very bodies (the file framing drops "@setDataFrame" from the metadata).
  const meta = onMetaData({ duration: 0, encoder: 'sip-as-rtmp', audiocodecid: 10, audiosamplerate: 48000, audiosamplesize: 16, stereo: false, audiodatarate: 64, videocodecid: 7 });
  assert.deepEqual(t.map((x) => x.body), [
    meta.subarray(meta.indexOf('onMetaData') - 3),
    aacSequenceHeader(ASC), avcSequenceHeader(AVCC), aacFrame(Buffer.from([1, 2])), avcFrame(nal, true), avcFrame(nal, false),
  ]);
});

test('a slow viewer: frames are skipped (video until the next keyframe), then it is cut off', () => {
  const c = collector();
  let overflow = 0;
  const out = { write: c.out.write, writableLength: 0 };
  const sink = new FlvByteSink(out, { hasAudio: true, hasVideo: true, dropAboveBytes: 100, closeAboveBytes: 1000, onOverflow: () => overflow++ });
  sink.frame(video(0, true));
  out.writableLength = 200;
  sink.frame(video(33, false));
  sink.frame(audio(40, Buffer.from([1])));
  out.writableLength = 0;
  sink.frame(video(66, false)); // still waiting for a keyframe
  sink.frame(video(99, true));
  assert.deepEqual(tags(c.all()).map((x) => x.ts), [0, 99]);
  out.writableLength = 2000;
  sink.frame(audio(120, Buffer.from([1])));
  sink.frame(audio(140, Buffer.from([1])));
  assert.equal(overflow, 1, 'cut off once');
});

test('an audio-only preview says so in its header and ignores video', () => {
  const c = collector();
  const sink = new FlvByteSink(c.out, { hasAudio: true, hasVideo: false });
  sink.config(joined); // the video sequence header is left out too
  sink.frame(video(0, true));
  sink.frame(audio(0, Buffer.from([1])));
  assert.equal(c.all()[4], 0x04);
  assert.deepEqual(tags(c.all()).map((x) => x.type), [18, 8, 8]);
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
    clock: { senderPpm: null, delayErrorMs: 0, reanchors: 0 },
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
  const lines = renderProgress({ elapsedS: 3, call, stats: undefined, watch: 'ffplay rtmp://h/live/s', consoleUrl: 'http://h/console/' }, false);
  const text = lines.join('\n');
  assert.match(text, /status {4}ESTABLISHED \(SIP 200\) Answered/);
  assert.match(text, /RING \+0\.01s → ESTABLISHED \+0\.25s/);
  assert.match(text, /1\/1 outputs publishing/);
  assert.match(text, /ffplay rtmp:\/\/h\/live\/s/);
  assert.doesNotMatch(text, /\x1b/);
  assert.match(renderProgress({ elapsedS: 3, call, stats: undefined, watch: '', consoleUrl: '' }, true).join(''), /\x1b\[32mESTABLISHED/);
});

/** The relative specifiers a served ES module imports (`import … from '…'`, `export … from '…'`, `import '…'`). */
function relativeImports(js: string): string[] {
  const specs = [...js.matchAll(/^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
  return specs.filter((s) => s.startsWith('.'));
}

test('the page\'s modules are served with everything they import, resolved as the browser does (calls/states.js → media/output/states.js)', async () => {
  const app = Fastify();
  const calls = { changes: new EventEmitter(), list: () => [] } as never;
  registerConsole(app, { prefix: '/rest-api', calls, log: createLogger({ level: 'silent' }), tokenRequired: false, streamPrefix: 'rtmp_' });
  try {
    await app.ready();
    const get = async (url: string) => {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, `${url}: ${res.statusCode} (imported but not served: add it to SHARED_MODULES in console/routes.ts)`);
      assert.match(String(res.headers['content-type']), /^text\/javascript/, url);
      return res.body;
    };
    // Both states modules, directly: what they declare is the server's own lists.
    const states = await get('/console/lib/calls/states.js');
    const output = await get('/console/lib/media/output/states.js');
    assert.deepEqual(relativeImports(states), ['../media/output/states.js']);
    assert.equal(new URL('../media/output/states.js', 'http://console.test/console/lib/calls/states.js').pathname, '/console/lib/media/output/states.js');
    for (const s of [...CALL_STATUSES, ...FINAL_CALL_STATUSES, ...LIVE_PUSH_STATES, ...FINAL_PUSH_STATES, 'PENDING']) assert.ok(states.includes(`'${s}'`), `calls/states.js names ${s}`);
    for (const s of OUTPUT_STATES) assert.ok(output.includes(`'${s}'`), `media/output/states.js names ${s}`);
    assert.deepEqual(PUSH_STATES, ['PENDING', ...OUTPUT_STATES]);
    assert.doesNotMatch(states + output, /from\s*['"]node:/, 'no Node imports in a module the browser loads');

    // And the whole graph from the page: every relative import, transitively, answers 200 at the URL the browser asks for.
    const seen = new Set<string>();
    const queue = ['/console/console.js'];
    while (queue.length) {
      const url = queue.shift()!;
      if (seen.has(url)) continue;
      seen.add(url);
      const body = await get(url);
      for (const spec of relativeImports(body)) queue.push(new URL(spec, `http://console.test${url}`).pathname);
    }
    for (const url of ['/console/lib/calls/states.js', '/console/lib/media/output/states.js', '/console/lib/calls/validate.js']) assert.ok(seen.has(url), `the page imports ${url}`);
  } finally {
    await app.close();
  }
});
