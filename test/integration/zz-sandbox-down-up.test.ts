/**
 * scripts/sandbox down stops exactly what up started (every process in their process groups) and leaves
 * nothing mounted; a warm up then takes under 15 s. Runs last (zz-): it restarts the whole sandbox.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pids, procStat } from '../../plugin/lib/proc.js';
import { SANDBOX_RUN, sandboxCmd, sandboxEnv } from '../helpers/sandbox.js';

const COMPONENTS = ['asterisk', 'nginx', 'sipp-answer', 'sipp-busy', 'sipp-auth', 'sipp-hangup', 'sipp-registrar', 'sipp-video', 'baresip'];

function startedPids(): number[] {
  return COMPONENTS.map((c) => Number(readFileSync(join(SANDBOX_RUN, 'pids', `${c}.pid`), 'utf8').trim()));
}

/** PIDs of live processes whose process group is one of `groups` (a component and all its children). */
function processesInGroups(groups: Set<number>): number[] {
  // A zombie has exited; only its parent's reaping is left.
  return pids().filter((pid) => {
    const st = procStat(pid);
    return !!st && st.state !== 'Z' && groups.has(st.pgrp);
  });
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(dir + '/'));
}

test('down leaves no process it started and nothing mounted; warm up < 15 s', { timeout: 120_000 }, async () => {
  const cache = sandboxEnv().SANDBOX_CACHE!;
  const pids = startedPids();
  const groups = new Set(pids);
  assert.ok(processesInGroups(groups).length >= pids.length, 'all components run before down');

  await sandboxCmd('down');
  assert.deepEqual(processesInGroups(groups), [], 'no process of any started group is left');
  assert.deepEqual(mountsUnder(cache), [], 'nothing mounted under the cache');
  const status = await sandboxCmd('status').catch((e: { stdout: string; code: number }) => e);
  assert.equal((status as { code?: number }).code, 3, 'status exits 3 when stopped');
  assert.match(status.stdout, /asterisk\s+stopped/);

  // Idempotent down.
  await sandboxCmd('down');

  const t0 = performance.now();
  await sandboxCmd('up');
  const seconds = (performance.now() - t0) / 1000;
  console.log(`warm sandbox up: ${seconds.toFixed(1)} s`);
  assert.ok(seconds < 15, `warm up took ${seconds.toFixed(1)} s`);
  const after = await sandboxCmd('status');
  for (const c of COMPONENTS) assert.match(after.stdout, new RegExp(`${c}\\s+running`));
  // Idempotent up: nothing restarted.
  const pidsAfter = startedPids();
  await sandboxCmd('up');
  assert.deepEqual(startedPids(), pidsAfter, 'a second up restarts nothing');
});
