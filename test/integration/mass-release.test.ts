/**
 * Many calls ending at once leave nothing in Asterisk (issue 20): `/call/terminate` of 200 calls at once,
 * and a `kill -9` of the app with 100 calls up and a restart. Each time, within 10 s, Asterisk holds no
 * channel, bridge or PJSIP endpoint of ours, checked over ARI (and the CLI for PJSIP, which ARI can't list).
 * The app runs as a child (`node dist/plugin/main.js`) with an ARI app name of its own, so what is "ours"
 * is exactly what carries its key prefix. The far end is the benchmark's sipp (answers every call, sends audio).
 * MASS_HOLD_MINUTES (`npm run soak:200`: 10) holds the calls that long before the terminates: the app's memory
 * and CPU are sampled every minute, memory must be flat after the first two, and every call must stay up and
 * on time (no re-anchor; the worst drift and late audio are reported).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, test } from 'node:test';
import { callKeyPrefix } from '../../plugin/calls/call-service.js';
import type { CallView } from '../../plugin/calls/types.js';
import { waitFor } from '../helpers/app.js';
import { killChildApps, startChildApp, type ChildApp } from '../helpers/child-app.js';
import { asteriskObjects, countObjects } from '../../scripts/lib/asterisk-objects.js';
import { sandboxAri, sandboxEnv, uniqueId } from '../helpers/sandbox.js';
import type { AudioTimelineStats } from '../../plugin/media/timeline/audio-timeline.js';

const env = sandboxEnv();
const ari = sandboxAri();
const APP = 'sip-as-rtmp-mass';
const PREFIX = callKeyPrefix(APP);
const CALLS = Number(process.env.MASS_CALLS ?? 200);
const KILLED_CALLS = Number(process.env.MASS_KILLED_CALLS ?? 100);
const HOLD_MINUTES = Number(process.env.MASS_HOLD_MINUTES ?? 0);
/** The bound the issue sets for a mass release (ms). */
const RELEASE_MS = 10_000;

const start = (): Promise<ChildApp> =>
  startChildApp('mass-release', { ARI_APP: APP, STARTUP_RATE_PER_SEC: '1000', MAX_CALLS: String(CALLS), RTP_PORT_MIN: '30000', RTP_PORT_MAX: '31999' }, 30_000);

/** Every call the app lists (find_all answers 404 when there are none). */
async function views(app: ChildApp): Promise<CallView[]> {
  const j = (await app.post('/call/find_all', {})).json;
  return Array.isArray(j) ? (j as CallView[]) : [];
}

let leftBehind = false;
/** The test's app: a failed test's is killed before the next starts (they share the SIP port). */
let running: ChildApp | undefined;
afterEach(async () => {
  await running?.kill();
  running = undefined;
});
after(async () => {
  killChildApps();
  // A failure with calls up: one more start releases them (it reaps what carries its prefix).
  if (leftBehind) {
    const app = await start().catch(() => undefined);
    if (app) await app.stop();
  }
});

/** Ours in Asterisk now: channels and bridges by id, PJSIP endpoints by name. */
const ours = async () => countObjects(await asteriskObjects(ari), (id) => id.startsWith(PREFIX));
const none = (o: Awaited<ReturnType<typeof ours>>) => o.channels + o.bridges + o.endpoints === 0;

/** Waits until each of `n` calls has its two channels (call, media leg) and its bridge in Asterisk. */
async function bridged(n: number): Promise<Awaited<ReturnType<typeof ours>>> {
  let o = await ours();
  await waitFor(async () => {
    o = await ours();
    return o.channels >= 2 * n && o.bridges >= n;
  }, 20_000, `${n} calls' channels and bridges`).catch(async (err: Error) => {
    const lone = (await ari.bridges.list()).filter((b) => b.id.startsWith(PREFIX) && b.channels.length < 2);
    throw new Error(`${err.message}: ${JSON.stringify(o)}; bridges without both channels: ${JSON.stringify(lone.map((b) => ({ id: b.id, channels: b.channels })))}`);
  });
  return o;
}

/** How long (ms) from `since` until nothing of ours is left, within RELEASE_MS; fails with what is left. */
async function released(since: number): Promise<number> {
  let clearAt = 0;
  await waitFor(async () => {
    if (!none(await ours())) return false;
    clearAt = performance.now();
    return true;
  }, 3 * RELEASE_MS, 'nothing of ours left in Asterisk').catch(async (err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(await ours())} left`);
  });
  const ms = Math.round(clearAt - since);
  assert.ok(ms <= RELEASE_MS, `Asterisk clear of ours only ${ms} ms after`);
  return ms;
}

/** Places `n` calls to the benchmark far end (25 a second, as a busy backend would) and waits until all are up. */
async function placeCalls(app: ChildApp, n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const callId = `${tag}-${i}`;
    const r = await app.post('/call/startup', {
      callId, callee: 'bench', sipDomain: '127.0.0.1', sipPort: env.SIPP_BENCH_PORT, hasAudio: 'true', hasVideo: 'false', rtmpUrl: env.RTMP_URL, rtmpStream: callId,
    });
    assert.equal(r.status, 200, r.text);
    leftBehind = true;
    ids.push(callId);
    await new Promise((res) => setTimeout(res, 40));
  }
  let counts: Record<string, number> = {};
  await waitFor(async () => {
    counts = {};
    for (const v of await views(app)) counts[v.status] = (counts[v.status] ?? 0) + 1;
    return counts.ESTABLISHED === n;
  }, 60_000, `${n} calls ESTABLISHED`).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(counts)}`);
  });
  return ids;
}

/** The child's RSS (MB) and CPU seconds so far, from /proc. */
function usage(app: ChildApp): { rssMb: number; cpuS: number } {
  const status = readFileSync(`/proc/${app.child.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
  const stat = readFileSync(`/proc/${app.child.pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMb: rssKb / 1024, cpuS: (Number(f[11]) + Number(f[12])) / 100 }; // utime, stime (fields 14, 15) in clock ticks
}

/** Holds the calls `minutes`, sampling the app every minute; then checks memory and every call's timeline. */
async function hold(app: ChildApp, n: number, minutes: number): Promise<void> {
  const samples: { minute: number; rssMb: number; cpuS: number }[] = [];
  const u0 = usage(app);
  for (let m = 1; m <= minutes; m++) {
    await new Promise((r) => setTimeout(r, 60_000));
    const u = usage(app);
    samples.push({ minute: m, rssMb: u.rssMb, cpuS: u.cpuS - u0.cpuS });
    console.log(`# minute ${m}: RSS ${u.rssMb.toFixed(0)} MB (${(u.rssMb / n).toFixed(2)} MB/call), app CPU ${((u.cpuS - u0.cpuS) / (n * m)).toFixed(3)} s per call-minute so far`);
  }
  const vs = await views(app);
  const up = vs.filter((v) => v.status === 'ESTABLISHED').length;
  const tls = vs.map((v) => (v.media as { timeline: AudioTimelineStats }).timeline);
  const worst = (k: 'maxAbsDriftMs' | 'lateSamplesDropped' | 'silenceSamples') => Math.max(...tls.map((t) => t[k]));
  console.log(`# after ${minutes} min: ${up}/${n} up; re-anchors ${tls.reduce((a, t) => a + t.reanchors, 0)}, worst drift ${worst('maxAbsDriftMs').toFixed(1)} ms, worst late samples ${worst('lateSamplesDropped')}, worst silence filled ${worst('silenceSamples')} samples`);
  assert.equal(up, n, 'every call is still up');
  // Flat after warm-up: the end against the highest sample of the first half (minute 2 on). One sample is
  // not a baseline: RSS saws with V8's collections (once 183, 162, 176 MB at minutes 1-3, then 180 to the
  // end); a leak keeps climbing through the second half and ends above the first half's peak.
  const end = samples.at(-1)!;
  const firstHalf = samples.filter((x) => x.minute >= 2 && x.minute <= Math.ceil(minutes / 2));
  if (firstHalf.length > 0 && end.minute > firstHalf.at(-1)!.minute) {
    const peak = Math.max(...firstHalf.map((x) => x.rssMb));
    console.log(`# RSS: peak ${peak.toFixed(1)} MB over minutes ${firstHalf[0]!.minute}-${firstHalf.at(-1)!.minute}, ${end.rssMb.toFixed(1)} MB at minute ${end.minute}`);
    assert.ok(end.rssMb <= peak * 1.05, `RSS grew ${(end.rssMb - peak).toFixed(1)} MB past the first half's peak`);
  }
}

test(`${CALLS} calls${HOLD_MINUTES ? ` held ${HOLD_MINUTES} min,` : ''} ended by /call/terminate at once: nothing of ours left in Asterisk within 10 s`, { timeout: 180_000 + HOLD_MINUTES * 70_000 }, async () => {
  assert.ok(none(await ours()), `nothing of ours before: ${JSON.stringify(await ours())}`);
  const app = await start();
  running = app;
  const ids = await placeCalls(app, CALLS, uniqueId('mass'));
  console.log(`# ${CALLS} calls up: ${JSON.stringify(await bridged(CALLS))} of ours in Asterisk`);
  if (HOLD_MINUTES > 0) await hold(app, CALLS, HOLD_MINUTES);

  const t0 = performance.now();
  const answers = await Promise.all(ids.map((callId) => app.post('/call/terminate', { callId })));
  const answeredMs = Math.round(performance.now() - t0);
  assert.deepEqual(answers.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text}`), [], 'every terminate is accepted');
  console.log(`# ${CALLS} terminates answered in ${answeredMs} ms`);
  const ms = await released(t0);
  leftBehind = false;
  console.log(`# Asterisk clear of ours ${ms} ms after the terminates were sent`);
  // Every call ends as asked (FINISH), none with a failed release step.
  await waitFor(async () => (await views(app)).every((v) => v.status === 'FINISH'), 10_000, 'every call FINISH');
  const failedSteps = app.lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('release step failed'));
  assert.deepEqual(failedSteps, [], 'no release step failed');
  assert.equal(await app.stop(), 0);
});

test(`kill -9 with ${KILLED_CALLS} calls up, then a restart: nothing of ours left in Asterisk within 10 s of it`, { timeout: 180_000 }, async () => {
  const first = await start();
  running = first;
  await placeCalls(first, KILLED_CALLS, uniqueId('killed'));
  await bridged(KILLED_CALLS);
  await first.kill();
  const left = await ours();
  console.log(`# killed with ${KILLED_CALLS} calls up: ${JSON.stringify(left)} of ours left in Asterisk`);
  assert.ok(left.channels >= 2 * KILLED_CALLS && left.bridges >= KILLED_CALLS, 'Asterisk keeps them on its own');

  const t0 = performance.now();
  const second = await start();
  running = second;
  const startedMs = Math.round(performance.now() - t0);
  const ms = await released(t0);
  leftBehind = false;
  const reaped = second.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('released what was left in the PBX'));
  console.log(`# restart took ${startedMs} ms (${JSON.stringify(reaped && { channels: reaped.channels, bridges: reaped.bridges })} reaped); Asterisk clear of ours ${ms} ms after the restart began`);
  assert.ok(reaped, 'the restart says what it released');
  assert.equal(await second.stop(), 0);
});
