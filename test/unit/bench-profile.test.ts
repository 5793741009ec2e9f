import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultStage, readCpuProfile, selfTimes, summarizeProfile, type CpuProfile, type CpuProfileNode } from '../../scripts/lib/cpu-profile.js';

const D = 'file:///work/main/dist/';

test('defaultStage maps project files, dependencies and Node internals', () => {
  const cases: [string, string | null][] = [
    [`${D}plugin/media/ingest/rtp.js`, 'RTP'],
    [`${D}plugin/media/ingest/rtp-gate.js`, 'RTP'],
    [`${D}plugin/media/ingest/rtcp.js`, 'RTP'],
    [`${D}plugin/media/ingest/seq.js`, 'RTP'],
    [`${D}adapters/rtp/port-pool.js`, 'RTP'],
    ['node:dgram', 'RTP'],
    ['node:internal/dgram', 'RTP'],
    [`${D}plugin/media/ingest/jitter-buffer.js`, 'buffer'],
    [`${D}plugin/media/timeline/audio-timeline.js`, 'buffer'],
    [`${D}plugin/media/encode/g711.js`, 'buffer'],
    [`${D}plugin/media/encode/pcm.js`, 'buffer'],
    [`${D}plugin/media/timeline/sync.js`, 'buffer'],
    [`${D}plugin/media/timeline/ticker.js`, 'buffer'],
    [`${D}plugin/media/encode/aac/encoder.js`, 'encoder'],
    [`${D}adapters/ffmpeg/pcm-decode.js`, 'encoder'],
    [`${D}adapters/ffmpeg/aac-encoder.js`, 'encoder'],
    ['node:child_process', 'encoder'],
    ['node:internal/child_process', 'encoder'],
    [`${D}plugin/media/ingest/h264-depacketizer.js`, 'video'],
    [`${D}plugin/media/ingest/video-ingest.js`, 'video'],
    [`${D}plugin/media/timeline/video-output.js`, 'video'],
    [`${D}plugin/media/to-caller/caller-feed.js`, 'video'],
    [`${D}plugin/media/output/flv.js`, 'FLV'],
    [`${D}plugin/media/output/live-stream.js`, 'FLV'],
    [`${D}adapters/rtmp/publisher.js`, 'RTMP'],
    [`${D}plugin/media/output/push.js`, 'RTMP'],
    [`${D}adapters/ari/client.js`, 'ARI'],
    [`${D}adapters/asterisk/pbx.js`, 'ARI'],
    [`${D}adapters/ami/client.js`, 'ARI'],
    ['file:///work/main/node_modules/ws/lib/receiver.js', 'ARI'],
    [`${D}adapters/sip/uas.js`, 'SIP'],
    [`${D}plugin/sip/sdp.js`, 'SIP'],
    [`${D}plugin/rest/server.js`, 'REST'],
    ['file:///work/main/node_modules/fastify/lib/route.js', 'REST'],
    ['file:///work/main/node_modules/light-my-request/index.js', 'REST'],
    ['file:///work/main/node_modules/find-my-way/index.js', 'REST'],
    ['file:///work/main/node_modules/avvio/boot.js', 'REST'],
    [`${D}plugin/calls/call-service.js`, 'calls'],
    [`${D}adapters/hooks/rest-hooks.js`, 'calls'],
    ['file:///work/main/node_modules/pino/pino.js', 'logging'],
    ['file:///work/main/node_modules/sonic-boom/index.js', 'logging'],
    // Inherit from the caller:
    ['node:net', null],
    ['node:internal/stream_base_commons', null],
    ['node:internal/streams/writable', null],
    ['node:internal/async_hooks', null], // not 'buffer' because of "sync"
    ['node:buffer', null],
    ['', null],
    [`${D}plugin/media/call-media.js`, null],
    [`${D}plugin/main.js`, null],
    ['file:///work/main/node_modules/some-other/index.js', null],
  ];
  for (const [url, stage] of cases) assert.equal(defaultStage(url, 'f'), stage, url);
});

function node(id: number, functionName: string, url: string, children: number[] = [], lineNumber = 0): CpuProfileNode {
  return { id, callFrame: { functionName, url, lineNumber, columnNumber: 0, scriptId: 0 }, hitCount: 0, children };
}

/**
 * (root) 1
 *   (program) 2, (idle) 3, (garbage collector) 4
 *   main 5 [plugin/main.js, unclassified]
 *     onMessage 6 [node:dgram → RTP]
 *       handle 7 [rtp.js → RTP]
 *         from 8 [node:buffer:5 → inherits RTP]
 *     writeTag 9 [flv.js → FLV]
 *       from 10 [node:buffer:5 → inherits FLV]
 *         alloc 11 [native → inherits FLV]
 *     publish 12 [rtmp/publisher.js → RTMP]
 *       write 13 [node:net] → writeGeneric 14 [node:internal/stream_base_commons → inherits RTMP]
 *     listOnTimeout 15 [node:internal/timers → other]
 */
const synthetic: CpuProfile = {
  nodes: [
    node(1, '(root)', '', [2, 3, 4, 5]),
    node(2, '(program)', ''),
    node(3, '(idle)', ''),
    node(4, '(garbage collector)', ''),
    node(5, 'main', `${D}plugin/main.js`, [6, 9, 12, 15]),
    node(6, 'onMessage', 'node:dgram', [7], 900),
    node(7, 'handle', `${D}plugin/media/ingest/rtp.js`, [8]),
    node(8, 'from', 'node:buffer', [], 5),
    node(9, 'writeTag', `${D}plugin/media/output/flv.js`, [10]),
    node(10, 'from', 'node:buffer', [11], 5),
    node(11, 'alloc', ''),
    node(12, 'publish', `${D}adapters/rtmp/publisher.js`, [13]),
    node(13, 'write', 'node:net', [14]),
    node(14, 'writeGeneric', 'node:internal/stream_base_commons'),
    node(15, 'listOnTimeout', 'node:internal/timers'),
  ],
  startTime: 0,
  // Sample stamps (µs): 100, 1100, 3100, 6100, 10100, 15100, 21100, 28100, 36100, 45100; endTime 46100.
  // Sample i lasts until sample i+1 (i.e. timeDeltas[i+1]); the last one until endTime.
  samples: [2, 8, 8, 10, 14, 15, 3, 4, 6, 11],
  timeDeltas: [100, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000],
  endTime: 46100,
};

test('self time: sample i lasts timeDeltas[i+1], the last one until endTime', () => {
  const self = selfTimes(synthetic);
  assert.deepEqual(Object.fromEntries(self), { 2: 1, 8: 5, 10: 4, 14: 5, 15: 6, 3: 7, 4: 8, 6: 9, 11: 1 });
});

test('stage attribution: nearest classified frame on the path, fallbacks at the root', () => {
  const s = summarizeProfile(synthetic);
  assert.equal(s.totalMs, 46);
  assert.equal(s.busyMs, 38);
  const stages = Object.fromEntries(s.stages.map((x) => [x.stage, x.selfMs]));
  assert.deepEqual(stages, { RTP: 14, gc: 8, idle: 8, other: 6, FLV: 5, RTMP: 5 });
  assert.deepEqual(
    s.stages.map((x) => x.stage),
    ['RTP', 'gc', 'idle', 'other', 'FLV', 'RTMP'],
  );
  const rtp = s.stages.find((x) => x.stage === 'RTP')!;
  assert.equal(rtp.pct, 30.4);
  assert.equal(rtp.pctBusy, 36.8);
  assert.equal(s.stages.find((x) => x.stage === 'idle')!.pctBusy, undefined);
  const sum = s.stages.reduce((a, x) => a + x.selfMs, 0);
  assert.equal(sum, s.totalMs);

  // Buffer.from from rtp.js and from flv.js is one function: merged, 5 + 4 ms.
  assert.deepEqual(s.topFunctions[0], { name: 'from', url: 'node:buffer', line: 5, stage: 'RTP/FLV', selfMs: 9, pct: 19.6 });
  assert.equal(s.topFunctions[1]!.name, 'onMessage');
  assert.ok(!s.topFunctions.some((f) => f.name === '(idle)' || f.name === '(root)'));
  assert.ok(s.topFunctions.some((f) => f.name === '(garbage collector)'));
});

test('a custom classifier; parent-linked nodes; hitCount-only profiles', () => {
  const s = summarizeProfile(synthetic, (url) => (url.includes('main.js') ? 'app' : null));
  assert.deepEqual(Object.fromEntries(s.stages.map((x) => [x.stage, x.selfMs])), { app: 30, gc: 8, idle: 8 });

  // Same tree, linked child → parent instead.
  const parentOf = new Map<number, number>();
  for (const n of synthetic.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const linked: CpuProfile = {
    ...synthetic,
    nodes: synthetic.nodes.map(({ children: _c, ...n }) => (parentOf.has(n.id) ? { ...n, parent: parentOf.get(n.id)! } : n)),
  };
  assert.deepEqual(summarizeProfile(linked).stages, summarizeProfile(synthetic).stages);

  const hits: CpuProfile = {
    nodes: [node(1, '(root)', '', [2]), { ...node(2, 'parse', `${D}plugin/media/ingest/rtp.js`, [3]), hitCount: 3 }, { ...node(3, 'x', 'node:buffer'), hitCount: 1 }],
    startTime: 0,
    endTime: 4000,
  };
  assert.deepEqual(summarizeProfile(hits).stages, [{ stage: 'RTP', selfMs: 4, pct: 100, pctBusy: 100 }]);
});

test('a real profile from node --cpu-prof parses and lands in the right stages', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'prof-test-'));
  try {
    const media = new URL('../../plugin/media/', import.meta.url).href;
    const script = `
      import { parseRtp, serializeRtp } from '${media}ingest/rtp.js';
      import { ulawToPcm } from '${media}encode/g711.js';
      import { aacFrame } from '${media}output/flv.js';
      const pkt = serializeRtp({ marker: false, payloadType: 0, sequenceNumber: 1, timestamp: 160, ssrc: 1234, csrcs: [], payload: Buffer.alloc(160, 0x55) });
      const spin = (ms, f) => { const end = performance.now() + ms; let n = 0; while (performance.now() < end) { f(); n++; } return n; };
      spin(150, () => parseRtp(pkt));
      const ulaw = Buffer.alloc(160, 0x55);
      spin(150, () => ulawToPcm(ulaw));
      const raw = Buffer.alloc(200, 1);
      spin(150, () => aacFrame(raw));
    `;
    const r = spawnSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
    assert.equal(files.length, 1);
    const profile = readCpuProfile(join(dir, files[0]!));
    const s = summarizeProfile(profile);
    assert.ok(s.totalMs > 300, `total ${s.totalMs} ms`);
    const ms = (stage: string) => s.stages.find((x) => x.stage === stage)?.selfMs ?? 0;
    for (const stage of ['RTP', 'buffer', 'FLV']) assert.ok(ms(stage) > 20, `${stage}: ${JSON.stringify(s.stages)}`);
    assert.ok(Math.abs(s.stages.reduce((a, x) => a + x.selfMs, 0) - s.totalMs) < 1);
    assert.ok(s.topFunctions.length > 0 && s.topFunctions.length <= 15);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
