import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  costRatios,
  findChromium,
  pipelineCost,
  renderMarkdown,
  renderSvg,
  totalCost,
  videoRatios,
  writeReport,
  type BenchReport,
  type BenchRun,
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

  const rows = md.split('\n').filter((l) => /^\| \d+ \| (plugin|naive) \| \d+ \| \d/.test(l));
  assert.equal(rows.length, report.runs.length, rows.join('\n'));
  assert.deepEqual(
    rows.map((l) => l.split(' | ').slice(0, 3).join(' ')),
    ['| 1 plugin 0', '| 1 naive 0', '| 10 plugin 0', '| 10 plugin 10', '| 10 naive 0', '| 10 naive 10', '| 100 plugin 0', '| 100 naive 0'],
  );
  const plugin10 = rows[2]!.split(' | ');
  assert.equal(plugin10[3], '0.20 (0.10 + 0.10)');
  assert.equal(plugin10[6], '0.55');
  assert.equal(plugin10[7], '0.40');
  assert.equal(plugin10[8], '10.8 (1.5 + 9.3)');
  assert.equal(plugin10[9], '41 / 88');
  assert.equal(plugin10[10], '480 / 813');
  assert.equal(plugin10[11], '10/10');
  const naive1 = rows[1]!.split(' | ');
  assert.equal(naive1[3], '0.90');
  assert.equal(naive1[9], '—', 'no latency for naive');
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
  assert.match(renderMarkdown({ ...report, runs: [] }), /No runs\./);
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
