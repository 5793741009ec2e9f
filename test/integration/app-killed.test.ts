/**
 * The app killed (SIGKILL) with calls up leaves everything in Asterisk: the outbound call's channels,
 * bridge and per-call PJSIP objects (registration, endpoint, aor, auth), and an inbound caller still held
 * by our Stasis app with its media leg and bridge. The next start releases all of it before it serves
 * REST. Both runs are the real app (`node dist/plugin/main.js`) as a child process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AriError } from '../../adapters/ari/errors.js';
import type { Channel } from '../../adapters/ari/types.js';
import type { CallView } from '../../plugin/calls/types.js';
import { CALL_KEY_PREFIX } from '../../plugin/calls/call-service.js';
import { waitFor } from '../helpers/app.js';
import { killChildApps, startChildApp, type ChildApp } from '../helpers/child-app.js';
import { REPO_ROOT, SANDBOX_RUN, sandboxAri, sandboxEnv, uniqueId } from '../helpers/sandbox.js';

const env = sandboxEnv();
const ari = sandboxAri();
const PJSIP_TYPES = ['registration', 'endpoint', 'aor', 'auth'] as const;
/** The sipp callers this file started, stopped in after() whatever happened. */
const children = new Set<ChildProcess>();
/** The killed run's calls may still be in Asterisk (the test failed before the second run released them). */
let leftBehind = false;

after(async () => {
  killChildApps();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  // A failure before the second run leaves the first run's calls in Asterisk: one more start releases them.
  if (leftBehind) {
    const app = await startApp().catch(() => undefined);
    if (app) await app.stop();
  }
});

/** The app as a child, with this file's port range and log. */
const startApp = (extraEnv: Record<string, string> = {}): Promise<ChildApp> =>
  startChildApp('app-killed-child', { RTP_PORT_MIN: '22400', RTP_PORT_MAX: '22599', RECORDINGS_DIR: `${SANDBOX_RUN}/app-recordings`, ...extraEnv });

async function established(app: ChildApp, filter: Record<string, string>): Promise<CallView> {
  let call: CallView | undefined;
  await waitFor(async () => {
    const r = await app.post('/call/find', filter);
    call = r.status === 200 ? (r.json as CallView[]).find((c) => c.status === 'ESTABLISHED') : undefined;
    return call !== undefined;
  }, 20_000, `an ESTABLISHED call for ${JSON.stringify(filter)}`);
  return call!;
}

/** A sipp caller dialling `exten` into the sandbox Asterisk; it ends (exit 0) when it gets a BYE. */
function dialIn(exten: string): { child: ChildProcess; exit: Promise<number | null> } {
  const child = spawn('sipp', [
    '-sf', join(REPO_ROOT, 'test/sipp/uac-inbound.xml'), '-s', exten, `127.0.0.1:${env.ASTERISK_SIP_PORT ?? '5060'}`,
    '-i', '127.0.0.1', '-p', '5099', '-mi', '127.0.0.1', '-mp', '16800', '-m', '1', '-nostdin', '-timeout', '60s', '-timeout_error', '-deadcall_wait', '200',
  ], { cwd: join(env.SANDBOX_CACHE!, 'media'), stdio: 'ignore' });
  children.add(child);
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exit };
}

const is404 = (e: unknown) => e instanceof AriError && e.status === 404;

/** What Asterisk holds of these ids now. */
async function held(ids: { channels: string[]; bridges: string[]; accounts: string[] }) {
  const channels = new Set((await ari.channels.list()).map((c) => c.id));
  const bridges = new Set((await ari.bridges.list()).map((b) => b.id));
  const accounts: string[] = [];
  for (const id of ids.accounts) {
    for (const type of PJSIP_TYPES) {
      const there = await ari.pjsip.get(type, id).then(() => true, (e: unknown) => {
        if (is404(e)) return false;
        throw e;
      });
      if (there) accounts.push(`${type} ${id}`);
    }
  }
  return {
    channels: ids.channels.filter((id) => channels.has(id)),
    bridges: ids.bridges.filter((id) => bridges.has(id)),
    accounts,
  };
}

test('after kill -9, the next start releases the calls\' channels, bridges and PJSIP objects in Asterisk', { timeout: 120_000 }, async () => {
  const before = new Set((await ari.channels.list()).map((c) => c.id));
  const first = await startApp();

  // Outbound, with a SIP login and a registration: all four per-call PJSIP objects.
  const callId = uniqueId('killed');
  const r = await first.post('/call/startup', {
    callId, callee: 'far', sipDomain: `127.0.0.1:${env.SIPP_REGISTRAR_PORT}`, sipLogin: env.FAR_AUTH_USER, sipPassword: env.FAR_AUTH_PASSWORD,
    sipRegisterRequired: 'true', hasAudio: 'true', hasVideo: 'false', rtmpUrl: env.RTMP_URL, rtmpStream: uniqueId('s'),
  });
  assert.equal(r.status, 200, r.text);
  leftBehind = true;
  await established(first, { callId });

  // Inbound: a caller the dialplan hands to the app (Stasis(sip-as-rtmp, rtmp://…/recorded, inbound-7100)).
  const uac = dialIn('7100');
  await established(first, { callee: '7100' });

  // The ids, as Asterisk shows them: the outbound key from its `<key>-call` channel, the caller's
  // channel (Asterisk's own id) from the bridge it shares with its media leg.
  const channels = (await ari.channels.list()).filter((c) => !before.has(c.id));
  const outKey = channels.find((c) => c.id.endsWith('-call'))?.id.replace(/-call$/, '') ?? '';
  assert.ok(outKey.startsWith(CALL_KEY_PREFIX), `the outbound call's channel: ${channels.map((c) => c.id).join(', ')}`);
  const caller = channels.find((c) => c.dialplan.exten === '7100');
  assert.ok(caller, `the inbound caller's channel: ${channels.map((c) => c.id).join(', ')}`);
  // ESTABLISHED comes at the answer; the media leg is dialled and bridged just after it.
  let inBridge: Awaited<ReturnType<typeof ari.bridges.list>>[number] | undefined;
  await waitFor(async () => {
    const bridges = await ari.bridges.list();
    inBridge = bridges.find((b) => b.channels.includes(caller.id) && b.channels.length === 2);
    return inBridge !== undefined && bridges.some((b) => b.id === `${outKey}-bridge` && b.channels.length === 2);
  }, 20_000, 'both calls\' bridges, each with its call and its media leg');
  assert.ok(inBridge, 'the inbound call\'s bridge');
  const inKey = inBridge.id.replace(/-bridge$/, '');
  const ids = {
    channels: [`${outKey}-call`, `${outKey}-leg`, caller.id, `${inKey}-leg`],
    bridges: [`${outKey}-bridge`, `${inKey}-bridge`],
    accounts: [outKey],
  };
  const all = { channels: ids.channels, bridges: ids.bridges, accounts: PJSIP_TYPES.map((t) => `${t} ${outKey}`) };
  assert.deepEqual(await held(ids), all, 'everything is in Asterisk while the calls are up');

  first.child.kill('SIGKILL');
  await new Promise((res) => first.child.once('exit', res));
  // Asterisk keeps all of it on its own: the dead app's channels stay in Stasis, Up.
  await new Promise((res) => setTimeout(res, 1500));
  assert.deepEqual(await held(ids), all, 'Asterisk still holds everything after the kill');
  const left = (await ari.channels.list()).find((c) => c.id === caller.id) as Channel;
  console.log(`# an inbound caller left in Stasis by the killed app: ${JSON.stringify({ state: left.state, dialplan: left.dialplan })}`);

  const t0 = Date.now();
  const second = await startApp();
  const startMs = Date.now() - t0;
  const released = second.lines.findIndex((l) => typeof l.msg === 'string' && l.msg.startsWith('released what was left in the PBX'));
  const started = second.lines.findIndex((l) => l.msg === 'sip-as-rtmp started');
  assert.ok(released >= 0 && released < started, 'the release is logged, before the app says it started');
  const counts = second.lines[released] as { channels: number; bridges: number; accounts: number };
  assert.ok(counts.channels >= 4 && counts.bridges >= 2 && counts.accounts >= 1, JSON.stringify(counts));
  // Hangups complete in Asterisk just after its answer: a moment's grace.
  await waitFor(async () => {
    const h = await held(ids);
    return h.channels.length + h.bridges.length + h.accounts.length === 0;
  }, 3000, 'nothing left').catch(async (err: Error) => {
    throw new Error(`${err.message}; now: ${JSON.stringify(await held(ids))}`);
  });
  leftBehind = false;
  console.log(`# second start took ${startMs} ms and released ${JSON.stringify({ channels: counts.channels, bridges: counts.bridges, accounts: counts.accounts })}`);
  assert.equal(await uac.exit, 0, 'the inbound caller got a BYE and ended cleanly');
  // The restarted app serves again, with no call of the killed run.
  assert.equal((await second.post('/call/find', { callId })).status, 404);
  assert.equal(await second.stop(), 0, 'the second run stops cleanly');
});

/** Seconds of media in a file, from its packets (an FLV left by a killed writer has no duration in its header). */
function mediaSeconds(file: string): number {
  // The audio track's packets: a data stream's (script tags) have no time.
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'a', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const pts = out.split('\n').map(Number).filter((x) => Number.isFinite(x) && x >= 0);
  return Math.max(...pts) - Math.min(...pts);
}

test('kill -9 20 s into a recorded call: the file left plays 18 s or more, and the next start makes it an MP4', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'killed-rec-'));
  try {
    const first = await startApp({ RECORDINGS_DIR: dir });
    const callId = uniqueId('killrec');
    const r = await first.post('/call/startup', {
      callId, callee: 'video', sipDomain: '127.0.0.1', sipPort: env.SIPP_VIDEO_PORT, hasVideo: 'true', rtmpUrl: env.RTMP_URL, rtmpStream: uniqueId('kr'), record: 'true',
    });
    assert.equal(r.status, 200, r.text);
    leftBehind = true;
    await established(first, { callId });
    await new Promise((res) => setTimeout(res, 20_000));
    first.child.kill('SIGKILL');
    await new Promise((res) => first.child.once('exit', res));
    const left = readdirSync(dir).filter((f) => f.endsWith('.recording.flv'));
    assert.equal(left.length, 1, `what the killed run left: ${readdirSync(dir).join(', ')}`);
    const leftSeconds = mediaSeconds(join(dir, left[0]!));
    console.log(`# the killed run left ${left[0]}: ${leftSeconds.toFixed(2)} s that play`);
    assert.ok(leftSeconds >= 18, `${leftSeconds} s`);

    const second = await startApp({ RECORDINGS_DIR: dir });
    leftBehind = false;
    await waitFor(async () => readdirSync(dir).some((f) => f.endsWith('.mp4')), 15_000, 'the MP4 made from the FLV left');
    const mp4 = readdirSync(dir).find((f) => f.endsWith('.mp4'))!;
    const mp4Seconds = mediaSeconds(join(dir, mp4));
    console.log(`# the next start made ${mp4}: ${mp4Seconds.toFixed(2)} s`);
    assert.ok(mp4Seconds >= 18, `${mp4Seconds} s`);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.flv')), [], 'the FLV is gone once the MP4 is made');
    // Logged once the conversion's promise settles, which may be just after the file is there.
    await waitFor(async () => second.lines.some((l) => l.msg === 'recording left by an earlier run made an MP4'), 5000, 'the conversion logged');
    assert.equal(await second.stop(), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
