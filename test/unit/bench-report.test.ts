import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  costRatios,
  fillRatios,
  findChromium,
  pipelineCost,
  renderMarkdown,
  renderSvg,
  sortRuns,
  totalCost,
  transcodeRows,
  videoCell,
  videoRatios,
  writeReport,
  type BenchReport,
  type BenchRun,
  type FillKind,
  type TranscodeInfo,
} from '../../scripts/lib/bench-report.js';

function run(pipeline: BenchRun['pipeline'], n: number, o: { video?: number; realtime?: number; cpu?: number; machine?: number } = {}): BenchRun {
  const cpu = o.cpu ?? (pipeline === 'plugin' ? 0.2 : 0.9);
  return {
    pipeline,
    n,
    videoCalls: o.video ?? 0,
    seconds: 60,
    cpuPerCallMinute:
      pipeline === 'plugin'
        ? { plugin: cpu / 2, encoders: cpu / 2, asterisk: 0.3, nginx: 0.05, loadGenerators: 0.4, observer: 0.01 }
        : { encoders: cpu, asterisk: 0.3, nginx: 0.05, loadGenerators: 0.4, observer: 0.01 },
    memPerCallMb: pipeline === 'plugin' ? { plugin: 1.5, encoders: 9.25, asterisk: 0.4 } : { encoders: 31, asterisk: 0.4 },
    ...(pipeline === 'plugin' ? { latencyMs: { p50: 41.4, p99: 87.6, max: 120, count: 1000 } } : {}),
    firstMediaMs: { p50: 480, p99: 700, max: 812.5, count: n },
    calls: { placed: n, established: n, realtime: o.realtime ?? n, failed: 0, failures: [] },
    outputs: { maxDriftMs: 12, maxStallMs: 40 },
    machineCpuPct: o.machine ?? n * (pipeline === 'plugin' ? 0.8 : 2.2),
  };
}

const report: BenchReport = {
  createdAt: '2025-01-02T03:04:05.678Z',
  machine: { cpuModel: 'AMD EPYC 7B13', cores: 2, memGiB: 7.75, kernel: '6.1.0-28-amd64', os: 'Debian GNU/Linux 12 (bookworm)', node: 'v20.19.0', ffmpeg: '5.1.6', asterisk: '20.11.0', nginx: '1.22.1 | rtmp' },
  settings: { codec: 'PCMU', audioBitrate: 64000, warmupSeconds: 10, rtmps: false },
  runs: [
    run('naive', 10),
    run('plugin', 1),
    run('naive', 1),
    run('plugin', 10),
    run('plugin', 10, { video: 10, cpu: 0.6 }),
    run('naive', 10, { video: 10, cpu: 1.8 }),
    run('plugin', 100),
    { ...run('naive', 100, { realtime: 61, machine: 100 }), calls: { placed: 100, established: 98, realtime: 61, failed: 2, failures: ['503 Service Unavailable', '503 Service Unavailable'] } },
  ],
  profile: {
    n: 100,
    pipeline: 'plugin',
    totalMs: 10_000,
    busyMs: 4_000,
    stages: [
      { stage: 'idle', selfMs: 6000, pct: 60 },
      { stage: 'RTP', selfMs: 1500, pct: 15, pctBusy: 37.5 },
      { stage: 'FLV', selfMs: 1000, pct: 10, pctBusy: 25 },
      { stage: 'other', selfMs: 1500, pct: 15, pctBusy: 37.5 },
    ],
    topFunctions: [{ name: 'onMessage', url: 'file:///work/main/dist/plugin/media/ingest/rtp.js', line: 41, selfMs: 800, pct: 8, stage: 'RTP' }],
  },
  notes: ['Load generators ran on the same machine.'],
};

test('costs: relay = plugin + encoders, total adds Asterisk and nginx only', () => {
  const p = run('plugin', 10);
  assert.ok(Math.abs(pipelineCost(p) - 0.2) < 1e-9);
  assert.ok(Math.abs(totalCost(p) - 0.55) < 1e-9);
  assert.ok(Math.abs(pipelineCost(run('naive', 10)) - 0.9) < 1e-9);
  const r = costRatios(report.runs);
  assert.deepEqual(r.map((x) => [x.n, x.videoCalls]), [[1, 0], [10, 0], [10, 10], [100, 0]]);
  assert.ok(Math.abs(r[0]!.relay - 0.2 / 0.9) < 1e-9);
  const v = videoRatios(report.runs);
  assert.deepEqual(v.map((x) => [x.n, x.pipeline]), [[10, 'plugin'], [10, 'naive']]);
  assert.ok(Math.abs(v[0]!.relay - 3) < 1e-9);
});

test('markdown: one row per run, sorted, ratio and video tables, profile, notes', () => {
  const md = renderMarkdown(report, { plot: 'bench.png' });
  assert.match(md, /^# /);
  assert.match(md, /2025-01-02 03:04:05 UTC/);
  assert.match(md, /AMD EPYC 7B13/);
  assert.match(md, /1\.22\.1 \\\| rtmp/, 'pipes in cells are escaped');
  assert.match(md, /!\[[^\]]*\]\(bench\.png\)/);

  const rows = md.split('\n').filter((l) => /^\| \d+ \| (plugin|naive) \| \d+ \| [^|]+ \| \d/.test(l));
  assert.equal(rows.length, report.runs.length, rows.join('\n'));
  assert.deepEqual(
    rows.map((l) => l.split(' | ').slice(0, 3).join(' ')),
    ['| 1 plugin 0', '| 1 naive 0', '| 10 plugin 0', '| 10 plugin 10', '| 10 naive 0', '| 10 naive 10', '| 100 plugin 0', '| 100 naive 0'],
  );
  const plugin10 = rows[2]!.split(' | ');
  assert.equal(plugin10[3], '—', 'no fill recorded (an older report)');
  assert.equal(plugin10[4], '0.20 (0.10 + 0.10)');
  assert.equal(plugin10[7], '0.55');
  assert.equal(plugin10[8], '0.40');
  assert.equal(plugin10[9], '10.8 (1.5 + 9.3)');
  assert.equal(plugin10[10], '41 / 88');
  assert.equal(plugin10[11], '480 / 813');
  assert.equal(plugin10[12], '10/10');
  assert.equal(rows[3]!.split(' | ')[3], "caller's H.264");
  const naive1 = rows[1]!.split(' | ');
  assert.equal(naive1[3], 'none');
  assert.equal(naive1[4], '0.90');
  assert.equal(naive1[10], '—', 'no latency for naive');
  assert.match(rows[7]!, /\*\*61\/100\*\* ⚠/);

  assert.match(md, /## Plugin vs naive/);
  assert.match(md, /^\| 1 \| 0 \| 0\.20 \| 0\.90 \| \*\*0\.22\*\* \|/m);
  assert.match(md, /^\| 10 \| 10 \| 0\.60 \| 1\.80 \| \*\*0\.33\*\* \|/m);
  assert.match(md, /## Video calls vs audio-only/);
  assert.match(md, /^\| 10 \| plugin \| 0\.20 \| 0\.60 \| \*\*3\.00\*\* \|/m);
  assert.match(md, /## Failures[\s\S]*503 Service Unavailable/);
  assert.equal(md.match(/503 Service Unavailable/g)?.length, 1, 'failures deduplicated');
  assert.match(md, /## Where the app's CPU goes/);
  assert.match(md, /^\| RTP \| [^|]+ \| 1500 \| 37\.5 \| 15\.0 \|/m);
  assert.match(md, /`onMessage` \| plugin\/media\/ingest\/rtp\.js:42 \| RTP/);
  assert.match(md, /## Notes\n\n- Load generators ran on the same machine\./);
});

test('markdown: no video or ratio section without matching runs; empty report', () => {
  const md = renderMarkdown({ ...report, runs: [run('plugin', 5)], profile: undefined, notes: undefined });
  assert.doesNotMatch(md, /Plugin vs naive/);
  assert.doesNotMatch(md, /Video calls/);
  assert.doesNotMatch(md, /CPU goes/);
  assert.doesNotMatch(md, /Fill video cost/);
  assert.doesNotMatch(md, /Transcoded video calls/);
  assert.match(renderMarkdown({ ...report, runs: [] }), /No runs\./);
});

// A report of the fill and transcode runs: slate vs none at 10 and 50, naive alongside, a video run, and
// the stubborn far end passed through and transcoded at two sizes.
function pluginRun(n: number, fill: FillKind, app: number, o: { video?: number; realtime?: number; mem?: number; received?: number; transcode?: TranscodeInfo; children?: number } = {}): BenchRun {
  const r = run('plugin', n, { video: o.video ?? (o.transcode ? n : 0), ...(o.realtime !== undefined ? { realtime: o.realtime } : {}) });
  return {
    ...r,
    fill,
    cpuPerCallMinute: { ...r.cpuPerCallMinute, plugin: app, encoders: o.children ?? 0 },
    memPerCallMb: { plugin: o.mem ?? 1, encoders: o.children ? 20 : 0, asterisk: 0.4 },
    streams: {
      withVideo: fill === 'none' && !o.video && !o.transcode ? 0 : n, transcoded: o.transcode && o.transcode.mode !== 'never' ? n : 0,
      sizes: fill === 'none' && !o.video ? '' : `640x360 ×${n}`,
      audioBytesPerSec: 8000, ...(fill === 'none' && !o.video ? { videoBytesPerSec: 0 } : { videoBytesPerSec: 1250 }),
      receivedBytesPerSec: o.received ?? 8500,
      wireBytesPerSec: (o.received ?? 8500) + 200,
    },
    oneOffChildCpuPerCall: fill === 'slate' ? 0.15 : 0,
    oneOffChildrenSec: fill === 'slate' ? 4.25 : 0,
    ...(o.transcode ? { transcode: o.transcode } : {}),
  };
}
const stubborn = (mode: TranscodeInfo['mode'], streamSize: string): TranscodeInfo => ({ mode, farEnd: 'sipp-stubborn', callerSize: '352x288', streamSize });
const fillReport: BenchReport = {
  ...report,
  profile: { ...report.profile!, n: 50, fill: 'slate' },
  findings: ['The slate costs 10 %.'],
  runs: [
    pluginRun(50, 'none', 0.2, { mem: 1.2, received: 8600 }),
    pluginRun(10, 'slate', 0.33, { mem: 1.6, received: 10_100 }),
    run('naive', 10),
    pluginRun(10, 'none', 0.3, { mem: 1.5, received: 8700 }),
    pluginRun(50, 'slate', 0.25, { realtime: 48, mem: 1.4, received: 10_000 }),
    run('naive', 50),
    pluginRun(10, 'slate', 0.5, { video: 10 }),
    pluginRun(5, 'slate', 0.4, { transcode: stubborn('auto', '640x360'), children: 2.4 }),
    pluginRun(5, 'slate', 0.4, { transcode: stubborn('never', '352x288') }),
    pluginRun(5, 'slate', 0.4, { transcode: stubborn('auto', '352x288'), children: 1.2 }),
  ],
};

test('fills and transcodes: sorted, compared with their own kind only', () => {
  const sorted = sortRuns(fillReport.runs).map((r) => `${r.n} ${r.pipeline} ${r.videoCalls} ${r.fill ?? '-'} ${r.transcode ? `${r.transcode.mode} ${r.transcode.streamSize}` : ''}`.trim());
  assert.deepEqual(sorted, [
    '5 plugin 5 slate never 352x288', '5 plugin 5 slate auto 352x288', '5 plugin 5 slate auto 640x360',
    '10 plugin 0 slate', '10 plugin 0 none', '10 plugin 10 slate', '10 naive 0 -',
    '50 plugin 0 slate', '50 plugin 0 none', '50 naive 0 -',
  ]);
  const f = fillRatios(fillReport.runs);
  assert.deepEqual(f.map((x) => [x.n, x.fill]), [[10, 'slate'], [50, 'slate']]);
  assert.ok(Math.abs(f[0]!.app - 1.1) < 1e-9);
  assert.ok(Math.abs(f[1]!.app - 1.25) < 1e-9);
  // plugin vs naive: one row per fill; the video run has no naive counterpart; transcode runs never compared.
  assert.deepEqual(costRatios(fillReport.runs).map((x) => [x.n, x.videoCalls, x.fill]), [[10, 0, 'slate'], [10, 0, 'none'], [50, 0, 'slate'], [50, 0, 'none']]);
  // video vs audio: the audio run with the video run's fill.
  const v = videoRatios(fillReport.runs);
  assert.deepEqual(v.map((x) => [x.n, x.audio.fill]), [[10, 'slate']]);
  const t = transcodeRows(fillReport.runs);
  assert.deepEqual(t.map((x) => `${x.run.transcode!.mode} ${x.run.transcode!.streamSize}`), ['never 352x288', 'auto 352x288', 'auto 640x360']);
  assert.ok(Math.abs(t[0]!.relay - 1) < 1e-9);
  assert.ok(Math.abs(t[1]!.relay - 1.6 / 0.4) < 1e-9);
  assert.ok(Math.abs(t[2]!.relay - 2.8 / 0.4) < 1e-9, 'the 640x360 run compared with the passthrough at another size');
  assert.equal(videoCell(t[2]!.run), 'sipp-stubborn 352x288, transcode → 640x360 (5/5 transcoded)');
  assert.equal(videoCell(t[0]!.run), 'sipp-stubborn 352x288, passthrough (0/5 transcoded)');
});

test('markdown: the fill section (ratio, target, bytes), the transcode section, plugin vs naive per fill', () => {
  const md = renderMarkdown(fillReport);
  assert.match(md, /## Fill video cost: slate vs no video track/);
  assert.match(md, /^\| 10 \| slate \| 0\.33 vs 0\.30 \| \*\*1\.10\*\* \| yes \|/m);
  assert.match(md, /^\| 50 \| slate \| 0\.25 vs 0\.20 \| \*\*1\.25\*\* \| \*\*no\*\* ⚠ \|/m);
  assert.match(md, /^\| 50 \| slate \|.*\| 41\/88 vs 41\/88 \| \*\*48\/50\*\* ⚠ vs 50\/50 \|/m, 'latency and real-time of both runs');
  assert.match(md, /^\| 10 \| slate \| 10\/10 vs 0\/10 \| 1250 \| 8000 \| 10100 vs 8700 \| 10300 vs 8900 \| \+1400 \| 0\.15 vs 0\.00 \| 4\.3 \|$/m);
  assert.match(md, /## Transcoded video calls/);
  assert.match(md, /^\| 5 \| sipp-stubborn: 352x288 → 352x288 \| passthrough \(never\) \| 0\/5 \| 0\.40 \| 0\.00 \| \*\*0\.40\*\* \| 0\.7 \| 1\.00 \|/m);
  assert.match(md, /^\| 5 \| sipp-stubborn: 352x288 → 640x360 \| transcode \(auto\) \| 5\/5 \| 0\.40 \| 2\.40 \| \*\*2\.80\*\* \| 4\.7 \| 7\.00 \|/m);
  assert.match(md, /## Plugin vs naive/);
  assert.match(md, /^\| 10 \| 0 \/ slate \| 0\.33 \| 0\.90 \|/m);
  assert.match(md, /^\| 10 \| 0 \/ none \| 0\.30 \| 0\.90 \|/m);
  assert.match(md, /## Where the app's CPU goes \(profile, N = 50, plugin, fill slate\)/);
  assert.match(md, /## Findings\n\n- The slate costs 10 %\.\n/);
  assert.ok(md.indexOf('## Findings') < md.indexOf('## Results'), 'findings before the tables');
  // Results: one row per run, the video track named.
  const rows = md.split('\n').filter((l) => /^\| \d+ \| (plugin|naive) \| \d+ \| /.test(l));
  assert.equal(rows.length, fillReport.runs.length);
  assert.deepEqual(rows.slice(3, 7).map((l) => l.split(' | ')[3]), ['slate', 'none', "caller's H.264", 'none']);
  // machine CPU with the share no counted process used.
  assert.match(renderMarkdown({ ...fillReport, runs: [{ ...fillReport.runs[1]!, machineCpuPct: 40, otherCpuPct: 6.25 }] }), /\| 40\.0 \(6\.3\) \|$/m);
});

test('svg: one line per plugin fill, dashed for none, and the legend names them', () => {
  const svg = renderSvg(fillReport);
  assertBalanced(svg);
  assert.equal(svg.match(/data-pipeline="plugin" data-fill="slate"/g)?.length, 2);
  assert.equal(svg.match(/data-pipeline="plugin" data-fill="none"/g)?.length, 2);
  assert.equal(svg.match(/data-pipeline="naive"/g)?.length, 2);
  assert.match(svg, /<polyline [^>]*stroke-dasharray="6 4"/);
  assert.match(svg, />plugin, slate</);
  assert.match(svg, />plugin, no video</);
  // The N=5 transcode runs and the video run are not plotted: N = 10 and 50 only.
  assert.doesNotMatch(svg, />5<\/text>/);
});

/** Checks every opened tag is closed in order. */
function assertBalanced(svg: string): void {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, close, name, self] = m;
    if (self) continue;
    if (close) assert.equal(stack.pop(), name, `unexpected </${name}>`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, []);
}

test('svg: two panels, both series, 100 % line, hollow marker for non-real-time runs', () => {
  const svg = renderSvg(report);
  assert.ok(svg.startsWith('<svg'));
  assert.match(svg, /width="960" height="540"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assertBalanced(svg);
  assert.doesNotMatch(svg, /href=|url\(/, 'no external resources');
  assert.equal(svg.match(/data-pipeline="plugin"/g)?.length, 2);
  assert.equal(svg.match(/data-pipeline="naive"/g)?.length, 2);
  assert.match(svg, /relay CPU-s per call-minute vs concurrent calls/);
  assert.match(svg, /whole-machine CPU % vs concurrent calls/);
  assert.match(svg, /AMD EPYC 7B13, 2 cores/);
  assert.match(svg, /class="ref"[^>]*stroke-dasharray/);
  // N=100 naive in both panels; video-only runs are not plotted.
  assert.equal(svg.match(/class="not-realtime"/g)?.length, 2);
  assert.equal(svg.match(/<circle [^>]*r="5" fill="#1f6fb4"/g)?.length, 3 * 2 + 1, 'plugin: 3 audio runs × 2 panels + legend');
  const empty = renderSvg({ ...report, runs: [] });
  assertBalanced(empty);
  assert.match(empty, /no audio-only runs/);
});

test('writeReport without Chromium: json/md/svg, no png, a note', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bench-report-test-'));
  try {
    const out = await writeReport(report, join(dir, 'docs'), 'b', { chromium: join(dir, 'no-such-chromium') });
    assert.equal(out.png, undefined);
    const json = JSON.parse(await readFile(out.json, 'utf8')) as BenchReport;
    assert.equal(json.runs.length, report.runs.length);
    assert.match(json.notes!.at(-1)!, /No PNG plot.*Chromium not found/);
    assert.equal(report.notes!.length, 1, 'input not mutated');
    const md = await readFile(out.md, 'utf8');
    assert.match(md, /\(b\.svg\)/);
    assert.match(md, /No PNG plot/);
    assert.ok((await readFile(out.svg, 'utf8')).startsWith('<svg'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('writeReport with Chromium renders a 960×540 PNG', { skip: findChromium() ? false : 'no Chromium here', timeout: 90_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bench-report-test-'));
  try {
    const out = await writeReport(report, dir);
    assert.ok(out.png, 'png rendered');
    const png = await readFile(out.png);
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
    assert.equal(png.readUInt32BE(16), 960);
    assert.equal(png.readUInt32BE(20), 540);
    assert.ok((await stat(out.png)).size > 10_000);
    assert.match(await readFile(out.md, 'utf8'), /\(bench\.png\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
