/**
 * Faults against the real sandbox: the RTMP server killed and restarted 10 times during one call; the
 * push giving up after its attempts (and the call kept, with RTMP_FAILURE_ACTION=continue); a call whose
 * RTP stops (FAILED_BY_RTP_ACTIVITY). The media leg goes through a relay the test can cut.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { isPublished } from '../helpers/audio-analysis.js';
import { ffmpegChildren, startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { impairmentRelay } from '../helpers/impair.js';
import { SANDBOX_RUN, sandboxCmd, uniqueId } from '../helpers/sandbox.js';

const run = promisify(execFile);
let t: TestApp | undefined;
after(async () => {
  await t?.stop();
  await sandboxCmd('up'); // nginx back, whatever happened
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each test runs its own app (settings differ), stopped whatever happens. */
async function withApp(overrides: Record<string, string>, fn: (app: TestApp) => Promise<void>, opts: Parameters<typeof startTestApp>[1] = {}): Promise<void> {
  t = await startTestApp(overrides, opts);
  try {
    await fn(t);
  } finally {
    await t.stop();
    t = undefined;
  }
}

function rtmpPort(app: TestApp): number {
  return Number(new URL(app.env.RTMP_URL!.replace('rtmp', 'http')).port);
}

const portOpen = (port: number) => new Promise<boolean>((resolve) => {
  const s = connect(port, '127.0.0.1');
  s.on('connect', () => (s.destroy(), resolve(true)));
  s.on('error', () => resolve(false));
});

/** Kill nginx-rtmp outright (its whole process group), as a crash would. */
async function killNginx(app: TestApp): Promise<void> {
  const pid = Number(readFileSync(join(SANDBOX_RUN, 'pids', 'nginx.pid'), 'utf8'));
  process.kill(-pid, 'SIGKILL');
  await waitFor(async () => !(await portOpen(rtmpPort(app))), 5000, 'nginx gone');
}

async function startCall(app: TestApp, extra: Record<string, unknown> = {}): Promise<{ callId: string; stream: string; key: string }> {
  const callId = uniqueId('fault');
  const stream = uniqueId('fs');
  const r = await app.post('/call/startup', { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: app.env.BARESIP_PORT, hasAudio: 'true', rtmpUrl: app.env.RTMP_URL, rtmpStream: stream, ...extra });
  assert.equal(r.status, 200, r.text);
  assert.equal((await app.waitStatus(callId, ['ESTABLISHED', 'FAILED'])).status, 'ESTABLISHED');
  await waitFor(async () => (await app.find(callId))?.rtmpStreamStatus === 'PUBLISHING', 5000, 'publishing');
  return { callId, stream, key: app.app.calls.get(callId)!.key };
}

/** The first audio timestamp a player gets from nginx now (s). */
async function firstAudioPts(url: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-rw_timeout', '5000000', '-select_streams', 'a', '-show_entries', 'packet=pts_time', '-read_intervals', '%+#3', '-of', 'csv=p=0', url], { timeout: 15_000 });
  return Number(stdout.trim().split('\n')[0]);
}

test('nginx killed and restarted 10 times during one call: the call stays up, the stream is back within 3 s each time, timestamps go on', { timeout: 180_000 }, async () => {
  await withApp({}, async (app) => {
    const { callId, stream, key } = await startCall(app);
    const answeredAt = Date.now();
    const published = `rtmp_${stream}`;
    const resumes: number[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      await killNginx(app);
      await waitFor(async () => {
        const s = (await app.find(callId))?.rtmpStreamStatus ?? '';
        seen.add(s);
        return s === 'RECONNECTING';
      }, 5000, 'RECONNECTING');
      await sleep(500);
      await sandboxCmd('up');
      const back = Date.now();
      await waitFor(async () => (await isPublished(app.env.RTMP_STAT_URL!, published)) && (await app.find(callId))?.rtmpStreamStatus === 'PUBLISHING', 10_000, `published again (round ${i + 1})`);
      resumes.push(Date.now() - back);
      assert.equal((await app.find(callId))?.status, 'ESTABLISHED', 'the call stays up');
    }
    const joinedAt = (Date.now() - answeredAt) / 1000;
    const pts = await firstAudioPts(`${app.env.RTMP_URL}/${published}`);
    const view = (await app.find(callId))!;
    const push = ((await app.post('/push/find', { streamName: stream })).json as { stats: { reconnects: number; droppedWhileDown: number } }[])[0]!;
    console.log(`# resumed ${resumes.map((ms) => (ms / 1000).toFixed(2)).join(' ')} s after each restart; stream statuses seen: ${[...seen].join(', ')}; push ${JSON.stringify(push.stats)}`);
    console.log(`# a player joining ${joinedAt.toFixed(1)} s after the answer gets audio stamped t=${pts.toFixed(1)} s`);
    assert.ok(resumes.every((ms) => ms <= 3000), `resumed within 3 s: ${resumes.join(', ')} ms`);
    assert.equal(push.stats.reconnects, 10);
    // The stream's clock is the call's: after 10 outages it still reads the time since the answer.
    assert.ok(Math.abs(pts - joinedAt) < 2, `timestamps continue from the call's start (${pts} s vs ${joinedAt} s)`);
    assert.deepEqual(view.events.filter((e) => e.type === 'STREAM_RECONNECTING').length, 10);
    assert.equal((await app.post('/call/terminate', { callId })).status, 200);
    await app.assertNoLeaks([key]);
  });
});

test('RTMP_RECONNECT_ATTEMPTS exhausted: the output is FAILED with the reason; RTMP_FAILURE_ACTION=continue keeps the call, which can be pushed again', { timeout: 60_000 }, async () => {
  await withApp({ RTMP_RECONNECT_ATTEMPTS: '2', RTMP_RECONNECT_MAX_MS: '400', RTMP_FAILURE_ACTION: 'continue' }, async (app) => {
    const { callId, stream, key } = await startCall(app);
    await killNginx(app);
    const failed = await (async () => {
      await waitFor(async () => (await app.find(callId))?.rtmpStreamStatus === 'FAILED', 10_000, 'stream FAILED');
      return (await app.find(callId))!;
    })();
    const why = failed.events.findLast((e) => e.type === 'STREAM_FAILED')?.detail ?? '';
    console.log(`# gave up: ${why}`);
    assert.match(why, /gave up after 2 reconnect attempts/);
    assert.equal(failed.status, 'ESTABLISHED', 'the call is kept');
    await sandboxCmd('up');
    const again = await app.post('/push/startup', { streamName: stream, rtmpUrl: app.env.RTMP_URL });
    assert.equal(again.status, 200, again.text);
    await waitFor(async () => isPublished(app.env.RTMP_STAT_URL!, `rtmp_${stream}`), 5000, 'published again by /push/startup');
    assert.equal((await app.post('/call/terminate', { callId })).status, 200);
    await app.assertNoLeaks([key]);
  });
});

test('no RTP for RTP_TIMEOUT_SEC: FAILED, FAILED_BY_RTP_ACTIVITY, everything released', { timeout: 60_000 }, async () => {
  const impair = { loss: 0, jitterMs: 0 };
  const relay = impairmentRelay(impair);
  await withApp({ RTP_TIMEOUT_SEC: '2' }, async (app) => {
    const { callId, key } = await startCall(app);
    await sleep(3000);
    assert.equal((await app.find(callId))?.status, 'ESTABLISHED', 'RTP flowing: no timeout');
    impair.loss = 1; // the far end goes quiet
    const cut = Date.now();
    const ended = await app.waitStatus(callId, ['FAILED', 'FINISH'], 10_000);
    console.log(`# FAILED ${((Date.now() - cut) / 1000).toFixed(1)} s after the RTP stopped: ${ended.info}`);
    assert.equal(ended.reason, 'FAILED_BY_RTP_ACTIVITY');
    assert.match(ended.info, /no RTP/);
    await app.assertNoLeaks([key]);
  }, { mediaRelay: relay.relay });
});

test('AAC_ENCODER=ffmpeg: one ffmpeg child per call publishes; killed mid-call, the call is FAILED with the reason and everything released', { timeout: 60_000 }, async () => {
  await withApp({ AAC_ENCODER: 'ffmpeg' }, async (app) => {
    const { callId, key } = await startCall(app);
    const children = ffmpegChildren();
    assert.equal(children.length, 1, 'one encoder child for the call');
    await sleep(2000);
    assert.ok(((await app.find(callId))?.media as { stream: { audioFrames: number } }).stream.audioFrames > 50, 'frames come from the child');
    process.kill(children[0]!, 'SIGKILL');
    const ended = await app.waitStatus(callId, ['FAILED', 'FINISH'], 10_000);
    assert.equal(ended.reason, 'FAILED_BY_ERROR');
    assert.match(ended.info, /audio encoder failed: ffmpeg AAC encoder exited/);
    await app.assertNoLeaks([key]);
  });
});

test('a flood of startups gets 429 with the reason; beyond MAX_CALLS, 503; nothing leaks', { timeout: 60_000 }, async () => {
  await withApp({ STARTUP_RATE_PER_SEC: '2', MAX_CALLS: '3' }, async (app) => {
    const ids = Array.from({ length: 10 }, () => uniqueId('flood'));
    const answers = await Promise.all(ids.map((callId) => app.post('/call/startup', {
      callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: app.env.BARESIP_PORT, hasAudio: 'true', toStream: callId,
    })));
    const codes = answers.map((a) => a.status);
    console.log(`# 10 startups at once, rate 2/s (burst 4), MAX_CALLS 3: ${codes.join(' ')}`);
    assert.equal(codes.filter((c) => c === 200).length, 3, 'MAX_CALLS');
    assert.equal(codes.filter((c) => c === 503).length, 1, 'the 4th token finds the table full');
    assert.equal(codes.filter((c) => c === 429).length, 6, 'the rest are over the rate');
    assert.match(answers.find((a) => a.status === 429)!.text, /STARTUP_RATE_PER_SEC=2.*retry in \d+ ms/);
    assert.match(answers.find((a) => a.status === 503)!.text, /at capacity \(3 calls\)/);
    const accepted = ids.filter((_, i) => codes[i] === 200);
    const keys = accepted.map((id) => app.app.calls.get(id)!.key);
    for (const callId of accepted) await app.waitStatus(callId, ['ESTABLISHED', 'FAILED']);
    for (const callId of accepted) assert.equal((await app.post('/call/terminate', { callId })).status, 200);
    await app.assertNoLeaks(keys);
  });
});

test('RTMP_ALLOWED_HOSTS: publishing anywhere else is refused with 400 naming rtmpUrl', { timeout: 30_000 }, async () => {
  await withApp({ RTMP_ALLOWED_HOSTS: 'a.rtmp.youtube.com' }, async (app) => {
    const r = await app.post('/call/startup', { callId: uniqueId('host'), callee: 'softphone', sipDomain: '127.0.0.1', sipPort: app.env.BARESIP_PORT, rtmpUrl: app.env.RTMP_URL, rtmpStream: 's' });
    assert.equal(r.status, 400, r.text);
    assert.equal((r.json as { field: string }).field, 'rtmpUrl');
    assert.match(r.text, /127\.0\.0\.1 is not allowed \(RTMP_ALLOWED_HOSTS\)/);
  });
});
