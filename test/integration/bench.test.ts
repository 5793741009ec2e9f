/**
 * The benchmark's smoke run (npm run bench with 2 calls): proves the harness and the report work against
 * the real sandbox: both pipelines, a video run, the profile, the four report files. It asserts no time:
 * the benchmark measures, CI only checks that it can.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { BenchReport } from '../../scripts/lib/bench-report.js';
import { descendants } from '../../plugin/lib/proc.js';

const root = resolve(fileURLToPath(import.meta.url), '../../../..');

test('bench smoke: 2 calls through the app and through the naive pipeline, a video run, a profile, the report files', { timeout: 300_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  try {
    const r = spawnSync(process.execPath, ['dist/scripts/bench.js', '--n', '2', '--seconds', '5', '--video-n', '1', '--profile', '--out', out], {
      cwd: root, encoding: 'utf8', timeout: 280_000,
    });
    assert.equal(r.status, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    for (const ext of ['json', 'md', 'svg']) assert.ok(existsSync(join(out, `bench.${ext}`)), `bench.${ext} written`);

    const report = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchReport;
    assert.equal(report.machine.cores > 0, true);
    assert.match(report.machine.asterisk, /^Asterisk 22/);
    const runs = report.runs.map((x) => `${x.pipeline} ${x.n}/${x.videoCalls}`);
    assert.deepEqual(runs, ['plugin 2/0', 'naive 2/0', 'plugin 1/1', 'naive 1/1']);
    for (const run of report.runs) {
      assert.equal(run.calls.established, run.n, `${run.pipeline} ${run.n}: every call answered (${run.calls.failures.join('; ')})`);
      assert.equal(run.firstMediaMs?.count, run.n, `${run.pipeline}: every stream seen at the server`);
      assert.ok(run.cpuPerCallMinute.asterisk > 0 && run.cpuPerCallMinute.loadGenerators > 0, 'CPU read from /proc');
      if (run.pipeline === 'plugin') assert.ok((run.latencyMs?.count ?? 0) > 0, 'the app measured its latency');
      else assert.ok(run.cpuPerCallMinute.encoders > 0, 'the naive ffmpegs were found and measured');
    }
    assert.ok(report.profile && report.profile.stages.length > 0, 'the profile was summarized by stage');
    const md = readFileSync(join(out, 'bench.md'), 'utf8');
    assert.match(md, /\| 2 \| plugin \|/);
    assert.match(md, /\| 2 \| naive \|/);
    assert.match(md, /## Plugin vs naive/);
    // The PNG needs Chromium, which the test setup installs; without it the report says why.
    assert.ok(existsSync(join(out, 'bench.png')) || md.includes('PNG'), 'plot rendered or its absence noted');
    // Nothing left behind: the app, the naive controller and their ffmpegs are gone.
    assert.deepEqual(descendants(process.pid), [], 'no child process left');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
