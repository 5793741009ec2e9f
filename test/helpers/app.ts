/**
 * The real app, started in the test process against the running sandbox, plus the checks every
 * scenario ends with: REST helpers, status waiting, and the leak check (ports, children, ARI objects).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createApp, type App } from '../../plugin/app.js';
import { loadConfig } from '../../plugin/config.js';
import { createLogger } from '../../plugin/lib/log.js';
import { AriError } from '../../adapters/ari/errors.js';
import type { CallView } from '../../plugin/calls/types.js';
import type { CallServiceDeps } from '../../plugin/calls/call-service.js';
import { pids, procStat } from '../../plugin/lib/proc.js';
import { postRest } from '../../scripts/lib/rest.js';
import { appEnvForSandbox } from '../../scripts/lib/sandbox-env.js';
import { sandboxAri, sandboxEnv, SANDBOX_RUN } from './sandbox.js';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { isPublished } from './audio-analysis.js';

export interface TestApp {
  app: App;
  env: Record<string, string>;
  /** The temporary SOUNDS_DIR, when sounds were asked for. */
  soundsDir?: string;
  post(method: string, body?: unknown): Promise<{ status: number; text: string; json: unknown }>;
  find(callId: string): Promise<CallView | undefined>;
  waitStatus(callId: string, statuses: string[], timeoutMs?: number): Promise<CallView>;
  assertNoLeaks(keys: string[]): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestApp(
  overrides: Record<string, string> = {},
  opts: {
    mediaRelay?: CallServiceDeps['mediaRelay'];
    /** Every stream's timestamps start here (ms): RTMP's extended timestamps without a 4.7 h call. */
    streamTimeOriginMs?: number;
    /** Sound files to make (name → ffmpeg lavfi source) in a temporary SOUNDS_DIR, removed by stop(). */
    sounds?: Record<string, string>;
  } = {},
): Promise<TestApp> {
  const env = sandboxEnv();
  const soundsDir = opts.sounds ? mkdtempSync(join(tmpdir(), 'sounds-')) : undefined;
  for (const [name, source] of Object.entries(opts.sounds ?? {})) {
    execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', source, join(soundsDir!, name)]);
  }
  if (soundsDir) overrides = { SOUNDS_DIR: soundsDir, ...overrides };
  const config = loadConfig({
    ...appEnvForSandbox(env),
    REST_PORT: '0', RTP_PORT_MIN: '21000', RTP_PORT_MAX: '21999', ENDED_CALL_TTL_SEC: '60', LOG_LEVEL: 'debug',
    RECORDINGS_DIR: `${SANDBOX_RUN}/app-recordings`,
    ...overrides,
    // TEST_APP_OVERRIDES (JSON): run a test file beside another app on the sandbox (its own ARI_APP,
    // SIP_UAS_PORT and RTP ports; an app reaps what carries its own ARI_APP's tag when it starts).
    ...(process.env.TEST_APP_OVERRIDES ? (JSON.parse(process.env.TEST_APP_OVERRIDES) as Record<string, string>) : {}),
  });
  // Logs go to a file per run (kept as a test artifact), not into the test output.
  const log = createLogger({ level: 'debug', destination: createWriteStream(`${SANDBOX_RUN}/logs/app-test.log`, { flags: 'a' }) });
  const app = createApp(config, {
    log, ...(opts.mediaRelay ? { mediaRelay: opts.mediaRelay } : {}), ...(opts.streamTimeOriginMs ? { streamTimeOriginMs: opts.streamTimeOriginMs } : {}),
  });
  await app.start();
  const ari = sandboxAri();

  // A string body is sent as is (malformed-JSON tests); anything else as JSON.
  const post: TestApp['post'] = async (method, body) =>
    typeof body === 'string'
      ? postRaw(`${app.restUrl}${method}`, body)
      : postRest(app.restUrl, method, body ?? {});

  const find = async (callId: string) => {
    const r = await post('/call/find', { callId });
    return r.status === 200 ? (r.json as CallView[])[0] : undefined;
  };

  const waitStatus: TestApp['waitStatus'] = async (callId, statuses, timeoutMs = 15_000) => {
    const t0 = Date.now();
    let last: CallView | undefined;
    while (Date.now() - t0 < timeoutMs) {
      last = await find(callId);
      if (last && statuses.includes(last.status)) return last;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`call ${callId} did not reach ${statuses.join('/')} in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
  };

  const assertNoLeaks: TestApp['assertNoLeaks'] = async (keys) => {
    // Releases run right after the final status: give them a moment.
    const t0 = Date.now();
    for (;;) {
      try {
        assert.equal(app.ports.allocated, 0, 'RTP port pairs still allocated');
        assert.equal(app.uas.activeLegs, 0, 'media legs still expected by the UAS');
        assert.deepEqual(ffmpegChildren(), [], 'ffmpeg children still running');
        const channels = (await ari.channels.list()).filter((c) => keys.some((k) => c.id.startsWith(k)));
        assert.deepEqual(channels.map((c) => c.id), [], 'ARI channels left');
        const bridges = (await ari.bridges.list()).filter((b) => keys.some((k) => b.id.startsWith(k)));
        assert.deepEqual(bridges.map((b) => b.id), [], 'ARI bridges left');
        for (const k of keys) {
          for (const type of ['endpoint', 'aor', 'auth', 'registration'] as const) {
            await assert.rejects(ari.pjsip.get(type, k), (e: unknown) => e instanceof AriError && e.status === 404, `dynamic ${type} ${k} left`);
          }
        }
        assert.deepEqual(udpPortsInRange(config.rtp.portMin, config.rtp.portMax), [], 'UDP ports still bound');
        return;
      } catch (err) {
        if (Date.now() - t0 > 3000) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const stop = async () => {
    await app.stop();
    if (soundsDir) rmSync(soundsDir, { recursive: true, force: true });
  };
  return { app, env, soundsDir, post, find, waitStatus, assertNoLeaks, stop };
}

/**
 * PIDs of the app's per-call ffmpeg children: AAC encoders (ADTS output), video transcoders and SRT
 * outputs (FLV from stdin). Recorders a test started, and one-off slate encodes, are not counted.
 */
export function ffmpegChildren(): number[] {
  return pids().filter((pid) => {
    const st = procStat(pid);
    if (st?.comm !== 'ffmpeg' || st.ppid !== process.pid || st.state === 'Z') return false;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      // AAC encoders, video transcoders, SRT outputs (FLV in, MPEG-TS out to srt://).
      return cmd.includes('adts') || (cmd.includes('pipe:0') && (cmd.includes('libx264') || cmd.includes('mpegts')));
    } catch {
      return false; // gone
    }
  });
}

/** Local UDP ports in a range that some socket has bound (from /proc/net/udp). */
export function udpPortsInRange(lo: number, hi: number): number[] {
  const ports: number[] = [];
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    if (!local) continue;
    const port = parseInt(local.split(':')[1] ?? '', 16);
    if (port >= lo && port <= hi) ports.push(port);
  }
  return ports;
}

/** Poll `pred` every 50 ms until it holds; fail naming `what` after `timeoutMs`. */
export async function waitFor(pred: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Relay one call to the sandbox's recording RTMP app for `seconds`, then terminate it and wait until the
 * stream is unpublished everywhere. Returns the Call object as it was just before the end, the call's
 * internal key (for the leak check) and the path of what nginx received.
 */
export async function relayRecordedCall(t: TestApp, body: Record<string, unknown>, seconds: number): Promise<{ view: CallView; key: string; recording: string }> {
  const callId = body.callId as string;
  const stream = body.rtmpStream as string;
  const r = await t.post('/call/startup', { hasAudio: 'true', rtmpUrl: t.env.RTMP_RECORD_URL, ...body });
  assert.equal(r.status, 200, r.text);
  const est = await t.waitStatus(callId, ['ESTABLISHED', 'FAILED', 'BUSY']);
  assert.equal(est.status, 'ESTABLISHED', est.info);
  const key = t.app.calls.get(callId)!.key;
  await new Promise((res) => setTimeout(res, seconds * 1000));
  const view = (await t.find(callId))!;
  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  await waitFor(async () => (await t.find(callId))?.rtmpStreamStatus === 'UNPUBLISHED', 5000, 'UNPUBLISHED');
  await waitFor(async () => !(await isPublished(t.env.RTMP_STAT_URL!, `rtmp_${stream}`)), 3000, 'unpublished on nginx');
  return { view, key, recording: join(t.env.RECORDINGS_DIR!, `rtmp_${stream}.flv`) };
}

async function postRaw(url: string, body: string): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  return { status: res.status, text, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : undefined };
}
