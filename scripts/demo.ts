/**
 * npm run demo — the main job on the sandbox (which `npm run demo` brings up first):
 * starts sip-as-rtmp, asks it over its own WCS REST API to call the sandbox softphone (baresip, which
 * answers and sends a 1 kHz tone) and relay the call to the sandbox RTMP server, prints the URL to watch
 * and a live progress view (status, timeline, stream, media counters; redrawn in place on a terminal,
 * a line per change otherwise) with the console's URL. Ctrl-C hangs up, unpublishes and exits cleanly.
 *
 *   DEMO_SECONDS=30 npm run demo     end by itself after 30 s (default: run until Ctrl-C)
 *   DEMO_RTMP=rtmps npm run demo     publish over RTMPS (the sandbox's TLS front)
 *   DEMO_RTMP_URL=rtmp://a.rtmp.youtube.com/live2 DEMO_STREAM=<key> RTMP_STREAM_PREFIX= npm run demo
 *                                    publish the sandbox call to a server of your own or a platform; the
 *                                    key is a secret: shown masked, never printed or logged whole
 */
import { createWriteStream } from 'node:fs';
import { createApp } from '../plugin/app.js';
import { loadConfig } from '../plugin/config.js';
import { createLogger } from '../plugin/lib/log.js';
import { maskSecret, redactUrl } from '../plugin/lib/redact.js';
import type { CallView } from '../plugin/calls/types.js';
import { CallStatsSampler, type CallStats } from '../plugin/console/call-stats.js';
import { consoleView } from '../plugin/console/live-feed.js';
import { renderProgress, TerminalBlock } from './lib/progress-view.js';
import { postRest } from './lib/rest.js';
import { appEnvForSandbox, readSandboxEnv, SANDBOX_RUN } from './lib/sandbox-env.js';

const env = readSandboxEnv();
const config = loadConfig({ ...process.env, ...appEnvForSandbox(env) });
const logFile = `${SANDBOX_RUN}/logs/demo-app.log`;
const app = createApp(config, { log: createLogger({ level: 'debug', destination: createWriteStream(logFile, { flags: 'a' }) }) });
const t0 = Date.now();
const tty = process.stdout.isTTY === true;
const block = new TerminalBlock(process.stdout);
const say = (s: string) => {
  block.release(); // a log line goes below the live view, which is redrawn under it
  console.log(`[${((Date.now() - t0) / 1000).toFixed(2).padStart(6)} s] ${s}`);
};

const rest = (method: string, body: unknown) => postRest(app.restUrl, method, body);

await app.start();
say(`sip-as-rtmp is up: REST ${app.restUrl} (log: ${logFile})`);

// Your own server or a platform (DEMO_RTMP_URL, DEMO_STREAM: its stream key), else the sandbox's.
const own = process.env.DEMO_RTMP_URL;
const stream = own ? process.env.DEMO_STREAM ?? '' : `demo-${Date.now().toString(36)}`;
const callId = `demo-call-${Date.now().toString(36)}`;
const rtmpUrl = own ?? (process.env.DEMO_RTMP === 'rtmps' ? env.RTMPS_URL! : env.RTMP_URL!);
const startup = {
  callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: env.BARESIP_PORT,
  hasAudio: 'true', hasVideo: 'false', rtmpUrl, rtmpStream: stream, visibleName: 'sip-as-rtmp demo',
};
say(`POST /call/startup ${JSON.stringify(own ? { ...startup, rtmpUrl: redactUrl(rtmpUrl), rtmpStream: maskSecret(stream) } : startup)}`);
const r = await rest('/call/startup', startup);
if (r.status !== 200) {
  say(`startup refused: ${r.status} ${r.text}`);
  await app.stop();
  process.exit(1);
}
const watch = own ? `your server's player (published to ${redactUrl(rtmpUrl)}/${maskSecret(config.calls.streamPrefix + stream)})` : `ffplay ${env.RTMP_URL}/${config.calls.streamPrefix}${stream}`;
const origin = new URL(app.restUrl).origin;
const consoleUrl = `${origin}/console/?${new URLSearchParams({ callee: 'softphone', sipDomain: '127.0.0.1', sipPort: env.BARESIP_PORT!, rtmpUrl: own ? redactUrl(rtmpUrl) : rtmpUrl })}`;

// The view follows the call in-process: status changes as they happen, stats once a second.
let lastStatus = '';
let stopping = false;
// Its own sampler: the console feed's bitrate windows stay its own.
const sampler = new CallStatsSampler();
let stats: CallStats | undefined;
const sample = () => {
  const call = app.calls.get(callId);
  if (call && !call.final) stats = sampler.sampleCall(call, Date.now());
};
const render = () => {
  const call = app.calls.get(callId);
  const view = call ? consoleView(call, config.rest.prefix) : undefined;
  if (tty) {
    block.draw(renderProgress({ elapsedS: (Date.now() - t0) / 1000, call: view, stats, watch, consoleUrl }, true));
  } else if (view) {
    // A log file or a pipe: one line per change, no redraws.
    const line = `call ${view.status} (SIP ${view.sipStatus ?? '-'}): ${view.info}; stream ${view.rtmpStreamStatus}`;
    if (line !== lastStatus) {
      say(line);
      if (view.rtmpStreamStatus === 'PUBLISHING' && !lastStatus.includes('PUBLISHING')) say(`watch it:  ${watch}    console: ${consoleUrl}`);
      lastStatus = line;
    }
  }
  if (view && ['FINISH', 'FAILED', 'BUSY'].includes(view.status)) void stop(view.status === 'FINISH' ? 0 : 1);
};
app.calls.changes.on('changed', (c) => {
  if (c.req.callId === callId) render();
});
const redraw = setInterval(() => {
  sample();
  render();
}, 1000);
render();

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const f = await rest('/call/find', { callId });
  if (f.status === 200 && !['FINISH', 'FAILED', 'BUSY'].includes((f.json as CallView[])[0]!.status)) {
    say('POST /call/terminate');
    await rest('/call/terminate', { callId });
  }
  render();
  clearInterval(redraw);
  await app.stop();
  say('stopped: call ended, stream unpublished, everything released');
  process.exit(code);
}

process.on('SIGINT', () => {
  say('Ctrl-C');
  void stop(0);
});
const seconds = Number(process.env.DEMO_SECONDS ?? 0);
if (seconds > 0) setTimeout(() => void stop(0), seconds * 1000);
