/**
 * One relayed call, measured (npm run measure:call; the sandbox must be up):
 *  - CPU seconds per call-minute of the plugin process, of its ffmpeg AAC child, and of Asterisk,
 *    from /proc (not wall time);
 *  - memory (plugin RSS growth, ffmpeg child RSS);
 *  - time from answer (200 OK seen by the app) to the first audio bytes a player gets from nginx-rtmp.
 * MEASURE_SECONDS (default 60) sets the call's length; MEASURE_VIDEO=1 calls the sandbox's video far end
 * (H.264 passthrough) instead of the audio-only one. Prints one JSON object.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createApp } from '../plugin/app.js';
import { loadConfig } from '../plugin/config.js';
import { createLogger } from '../plugin/lib/log.js';
import type { CallView } from '../plugin/calls/types.js';
import { postRest } from './lib/rest.js';
import { appEnvForSandbox, readSandboxEnv, SANDBOX_RUN } from './lib/sandbox-env.js';

const HZ = 100; // USER_HZ on Linux
const seconds = Number(process.env.MEASURE_SECONDS ?? 60);
const env = readSandboxEnv();
const config = loadConfig({ ...process.env, ...appEnvForSandbox(env), REST_PORT: '0', LOG_LEVEL: 'warn' });
const app = createApp(config, { log: createLogger({ level: 'warn' }) });

/** utime+stime (s) and RSS (MB) of a process. */
function procStat(pid: number): { cpu: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const rssPages = Number(f[21]);
  return { cpu: (Number(f[11]) + Number(f[12])) / HZ, rssMb: (rssPages * 4096) / 1e6 };
}

const asteriskPid = Number(readFileSync(`${SANDBOX_RUN}/pids/asterisk.pid`, 'utf8'));
const rest = (method: string, body: unknown) => postRest(app.restUrl, method, body);

await app.start();
const rssBefore = process.memoryUsage().rss / 1e6;
const stream = `measure-${Date.now().toString(36)}`;
const callId = `m-${Date.now().toString(36)}`;
// The player: ffmpeg pulling from nginx-rtmp, told not to buffer or probe long.
const player = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-fflags', 'nobuffer', '-probesize', '32', '-analyzeduration', '0',
  '-rw_timeout', '30000000', '-i', `${env.RTMP_URL}/${config.calls.streamPrefix}${stream}`, '-map', '0:a', '-c', 'copy', '-flush_packets', '1', '-f', 'adts', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
let firstAudioAt: number | undefined;
player.stdout.once('data', () => (firstAudioAt = Date.now()));
player.stdout.resume();

const video = process.env.MEASURE_VIDEO === '1';
const r = await rest('/call/startup', {
  callId, callee: video ? 'video' : 'answer', sipDomain: '127.0.0.1', sipPort: video ? env.SIPP_VIDEO_PORT : env.SIPP_ANSWER_PORT,
  hasVideo: video, rtmpUrl: env.RTMP_URL, rtmpStream: stream,
});
if (r.status !== 200) throw new Error(`startup: ${r.status} ${JSON.stringify(r.json)}`);
let view: CallView | undefined;
while (!view?.establishedAt || !view.media) {
  view = ((await rest('/call/find', { callId })).json as CallView[])[0];
  if (view && ['FAILED', 'BUSY', 'FINISH'].includes(view.status)) throw new Error(`call ${view.status}: ${view.info}`);
  await new Promise((res) => setTimeout(res, 5));
}
const answeredAt = Date.parse(view.establishedAt!);
const encoderPid = view.media.encoderPid as number;
const cpu0 = { plugin: process.cpuUsage(), ffmpeg: procStat(encoderPid).cpu, asterisk: procStat(asteriskPid).cpu };
await new Promise((res) => setTimeout(res, seconds * 1000));
const cpuPlugin = process.cpuUsage(cpu0.plugin);
const ff = procStat(encoderPid);
const ast = procStat(asteriskPid);
const rssAfter = process.memoryUsage().rss / 1e6;
view = ((await rest('/call/find', { callId })).json as CallView[])[0]!;
await rest('/call/terminate', { callId });
player.kill('SIGKILL');
await app.stop();

const perMin = (cpuS: number) => Number(((cpuS / seconds) * 60).toFixed(3));
console.log(JSON.stringify({
  seconds,
  video,
  cpuSecondsPerCallMinute: {
    plugin: perMin((cpuPlugin.user + cpuPlugin.system) / 1e6),
    ffmpegAacChild: perMin(ff.cpu - cpu0.ffmpeg),
    asterisk: perMin(ast.cpu - cpu0.asterisk),
  },
  memoryMb: { pluginRssGrowth: Number((rssAfter - rssBefore).toFixed(1)), ffmpegChildRss: Number(ff.rssMb.toFixed(1)) },
  answerToFirstAudioAtPlayerMs: firstAudioAt ? firstAudioAt - answeredAt : null,
  codec: view.media?.codec,
  settings: { jitterDepthMs: config.media.jitterDepthMs, tickMs: config.media.tickMs, aac: `${config.media.aacSampleRate} Hz x${config.media.aacChannels} ${config.media.aacBitrate} b/s` },
  rtp: (view.media?.rtp as Record<string, unknown>) ?? null,
  ...(video ? { videoStats: view.media?.video ?? null } : {}),
}, null, 2));
process.exit(0);
