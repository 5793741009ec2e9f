/**
 * The benchmark's smoke run (npm run bench with 2 calls): proves the harness and the report work against
 * the real sandbox: both pipelines, the app with the slate and without a fill, a video run, a transcoded
 * call (its ffmpeg child found and measured), the profile, the four report files. It asserts no time: the
 * benchmark measures, CI only checks that it can.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { BenchReport } from '../../scripts/lib/bench-report.js';
import { descendants } from '../../plugin/lib/proc.js';
import { REPO_ROOT } from '../../scripts/lib/repo-root.js';


test('bench smoke: 2 calls through the app (slate, no fill) and the naive pipeline, a video run, a transcoded call, a profile, the report files; nothing left in Asterisk after any run', { timeout: 300_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  try {
    const r = spawnSync(process.execPath, [
      'dist/scripts/bench.js', '--n', '2', '--seconds', '5', '--video-n', '1', '--fill', 'slate,none',
      '--transcode', '352x288', '--transcode-n', '1', '--transcode-passthrough', 'false', '--profile', '--out', out,
      // CI runs other tests alongside: no waiting for a quiet machine, no second runs; 1 s to settle.
      '--quiet-pct', '100', '--other-limit', '100', '--settle', '1',
    ], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 280_000 });
    assert.equal(r.status, 0, `bench failed:\n${r.stderr.slice(-3000)}`);
    for (const ext of ['json', 'md', 'svg']) assert.ok(existsSync(join(out, `bench.${ext}`)), `bench.${ext} written`);

    const report = JSON.parse(readFileSync(join(out, 'bench.json'), 'utf8')) as BenchReport;
    assert.equal(report.machine.cores > 0, true);
    assert.match(report.machine.asterisk, /^Asterisk 22/);
    const runs = report.runs.map((x) => `${x.pipeline} ${x.n}/${x.videoCalls}${x.fill ? ` ${x.fill}` : ''}${x.transcode ? ` ${x.transcode.mode}` : ''}`);
    assert.deepEqual(runs, ['plugin 2/0 slate', 'plugin 2/0 none', 'naive 2/0', 'plugin 1/1 slate', 'naive 1/1', 'plugin 1/1 slate auto']);
    for (const run of report.runs) {
      assert.equal(run.calls.established, run.n, `${run.pipeline} ${run.n}: every call answered (${run.calls.failures.join('; ')})`);
      assert.equal(run.firstMediaMs?.count, run.n, `${run.pipeline}: every stream seen at the server`);
      assert.ok(run.cpuPerCallMinute.asterisk > 0 && run.cpuPerCallMinute.loadGenerators > 0, 'CPU read from /proc');
      // Every run released everything in Asterisk once its pipeline stopped (checked over ARI, within 10 s).
      assert.deepEqual({ ...run.leftInAsterisk, afterMs: 0 }, { channels: 0, bridges: 0, endpoints: 0, afterMs: 0 }, `${run.pipeline} ${run.n}: left in Asterisk`);
      if (run.pipeline === 'plugin') assert.ok((run.latencyMs?.count ?? 0) > 0, 'the app measured its latency');
      else assert.ok(run.cpuPerCallMinute.encoders > 0, 'the naive ffmpegs were found and measured');
    }
    // The slate gives every audio-only stream a video track; none gives none.
    const [slate, none] = report.runs;
    assert.equal(slate!.streams?.withVideo, 2, 'slate: video tracks');
    assert.ok((slate!.streams?.videoBytesPerSec ?? 0) > 0, 'slate: video bytes');
    assert.equal(none!.streams?.withVideo, 0, 'none: no video track');
    assert.equal(none!.streams?.videoBytesPerSec, 0);
    // The stubborn caller transcoded, its ffmpeg child's CPU counted.
    const t = report.runs.at(-1)!;
    assert.equal(t.streams?.transcoded, 1, `the call was transcoded (${t.calls.failures.join('; ')})`);
    assert.equal(t.streams?.sizes, '352x288 ×1');
    assert.ok(t.cpuPerCallMinute.encoders > 0, 'the transcoder was found and measured');
    assert.ok(report.profile && report.profile.stages.length > 0, 'the profile was summarized by stage');
    const md = readFileSync(join(out, 'bench.md'), 'utf8');
    // The pipeline cell names the bridge (MEDIA_BRIDGE) the run used: "plugin (native bridge)".
    assert.match(md, /\| 2 \| plugin( \(\w+ bridge\))? \|/);
    assert.match(md, /\| 2 \| naive( \(\w+ bridge\))? \|/);
    assert.match(md, /Left in Asterisk after each run.*nothing, in every run/);
    assert.match(md, /## Plugin vs naive/);
    assert.match(md, /## Fill video cost: slate vs no video track/);
    assert.match(md, /## Transcoded video calls/);
    // The PNG needs Chromium, which the test setup installs; without it the report says why.
    assert.ok(existsSync(join(out, 'bench.png')) || md.includes('PNG'), 'plot rendered or its absence noted');
    // Nothing left behind: the app, the naive controller and their ffmpegs are gone.
    assert.deepEqual(descendants(process.pid), [], 'no child process left');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
