/**
 * npm run bench: cost per call and capacity, against the real sandbox, side by side with the naive
 * pipeline (one ffmpeg per call reading the RTP and publishing RTMP itself; scripts/lib/naive-relay.ts).
 *
 * For each N (--n 1,10,25,50,100) and pipeline (--pipelines plugin,naive): N calls to sipp far ends
 * (speech-like audio; --video-share of them also send H.264), each relayed to the local nginx-rtmp. Once
 * every call is up and its stream is seen at the server, a window of --seconds is measured:
 *  - CPU per component from /proc (the app or the naive controller; encoders = their child processes;
 *    Asterisk; nginx; the sipp far ends and this process, which watches every stream, shown apart);
 *  - memory per call (app RSS growth; encoder PSS; Asterisk RSS growth);
 *  - added latency inside the app (RTP arrival → FLV tag written; the app's own per-call histograms, the
 *    window's part of them);
 *  - answer → first media at the server, and whether every stream stayed real time, judged from the
 *    server's side by one light RTMP player per stream (scripts/lib/rtmp-watch.ts).
 * --video-n N adds all-video runs at that N (the video vs audio cost). --profile profiles the app at the
 * highest N whose calls all stayed real time (a separate run: profiling slows it) and sums it by stage.
 *
 * --fill slate,none runs the app once per VIDEO_FILL (what an audio-only call's stream shows as video: the
 * slate, black, or none = no video track) at each N: the fill's cost. Default: the app's own (VIDEO_FILL, else
 * slate). The video runs and the profile use the first one.
 * --bridge native,core runs the app once per MEDIA_BRIDGE at each N (Asterisk's native_rtp relay against every
 * frame through its core): Asterisk's cost per call. Default: MEDIA_BRIDGE, else native. The naive pipeline's
 * controller bridges as the first one. --naive-n 10,50 runs the naive pipeline at those Ns only (default: --n),
 * so it can stop where it breaks.
 * --transcode 352x288,640x360 adds transcode runs: --transcode-n (5) video calls to the sipp-stubborn far end
 * (352x288 H.264, an IDR every 10 s, deaf to keyframe requests), the app with VIDEO_TRANSCODE=auto and every
 * stream at that size (GENERATED_VIDEO_SIZE, VIDEO_SIZE_WAIT_MS=0): one ffmpeg transcoder per call, its CPU
 * summed like the encoders' (the app's descendants); plus one run of the same calls with
 * VIDEO_TRANSCODE=never (passthrough) at the first size (unless --transcode-passthrough false). Their window
 * waits for every call's stream to show the caller's video on that path and lasts at most 40 s (the far
 * end's video lasts 60 s from the answer).
 *
 * The machine may be shared: before each run the bench waits (up to 2 min) for the machine to be at most
 * --quiet-pct (30) % busy, and runs again once a run during which processes it does not count took over
 * --other-limit (20) % of the machine. 100 turns either off (the CI smoke run).
 *
 * Writes <out>/<base>.json, .md, .svg and .png (--out docs, --base bench).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AriClient } from '../adapters/ari/client.js';
import { loadConfig } from '../plugin/config.js';
import { MsHistogram } from '../plugin/media/timeline/latency.js';
import type { CallView } from '../plugin/calls/types.js';
import {
  writeReport, type AsteriskLeftovers, type BenchReport, type BridgeKind, type BenchRun, type FillKind, type MachineInfo, type ProfileSummary, type Quantiles, type StreamsInfo, type TranscodeInfo,
} from './lib/bench-report.js';
import { asteriskObjects, countObjects, objectsSince, type AsteriskObjects } from './lib/asterisk-objects.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import type { NaiveReply, NaiveRequest } from './lib/naive-relay.js';
import { cpuSeconds, descendants, machineJiffies, procStat, pssMb, rssMb } from '../plugin/lib/proc.js';
import { postRest } from './lib/rest.js';
import { RtmpWatcher } from './lib/rtmp-watch.js';
import { REPO_ROOT } from './lib/repo-root.js';
import { appEnvForSandbox, readSandboxEnv, SANDBOX_RUN } from './lib/sandbox-env.js';

// ---------------------------------------------------------------------------------------------------------
// Settings: flags, else BENCH_* environment, else defaults.

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1] !== undefined && !process.argv[i + 1]!.startsWith('--')) return process.argv[i + 1]!;
  if (i >= 0) return 'true';
  return process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? def;
}
const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
const S = {
  ns: list(arg('n', '1,10,25,50,100')).map(Number),
  pipelines: list(arg('pipelines', 'plugin,naive')) as ('plugin' | 'naive')[],
  seconds: Number(arg('seconds', '60')),
  videoShare: Number(arg('video-share', '0')),
  videoN: Number(arg('video-n', '10')),
  profile: arg('profile', 'false') === 'true',
  out: resolve(arg('out', 'docs')),
  base: arg('base', 'bench'),
  /** Calls placed per second (both pipelines alike). */
  rate: Number(arg('rate', '10')),
  settleSec: Number(arg('settle', '3')),
  /** VIDEO_FILL per plugin run (each N runs once per fill). */
  fills: list(arg('fill', process.env.VIDEO_FILL ?? 'slate')) as FillKind[],
  /** MEDIA_BRIDGE per plugin run (each N runs once per bridge and fill). */
  bridges: list(arg('bridge', process.env.MEDIA_BRIDGE ?? 'native')) as BridgeKind[],
  /** The Ns the naive pipeline runs at (default: --n). */
  naiveNs: [] as number[],
  /** Stream sizes of the transcode runs (none: no transcode runs). */
  transcodeSizes: list(arg('transcode', '')),
  transcodeN: Number(arg('transcode-n', '5')),
  /** With --transcode: also the passthrough run (VIDEO_TRANSCODE=never) to compare with. */
  transcodePassthrough: arg('transcode-passthrough', 'true') !== 'false',
  /** Wait before a run until the machine is at most this busy (%); 100: no waiting. */
  quietPct: Number(arg('quiet-pct', '30')),
  /** Run again once if processes not counted took more than this share of the machine (%); 100: never. */
  otherLimitPct: Number(arg('other-limit', '20')),
};
S.naiveNs = list(arg('naive-n', S.ns.join(','))).map(Number);
for (const n of [...S.ns, ...S.naiveNs]) if (!Number.isInteger(n) || n < 1) throw new Error(`--n / --naive-n: "${n}" is not a call count`);
if (!S.bridges.length || !S.bridges.every((b) => b === 'native' || b === 'core')) throw new Error('--bridge: native and/or core');
if (!S.pipelines.every((p) => p === 'plugin' || p === 'naive')) throw new Error('--pipelines: plugin and/or naive');
if (!S.fills.length || !S.fills.every((f) => f === 'slate' || f === 'black' || f === 'none')) throw new Error('--fill: slate, black and/or none');
for (const size of S.transcodeSizes) if (!/^\d+x\d+$/.test(size)) throw new Error(`--transcode: "${size}" is not a size like 640x360`);
if (!Number.isInteger(S.transcodeN) || S.transcodeN < 1) throw new Error('--transcode-n: a call count');
/** The stubborn far end's video (scripts/make-test-media.ts). */
const STUBBORN_SIZE = '352x288';
/** Its pcap lasts 60 s from the answer: the transcode runs' window is at most this long. */
const TRANSCODE_MAX_SECONDS = 40;

const env = readSandboxEnv();
const appEnv = appEnvForSandbox(env);
/** The app's call cap in this environment (MAX_CALLS, else the app's default). */
const appMaxCalls = loadConfig({ ...process.env, ...appEnv }).calls.maxCalls;
const REST_PORT = 18181;
const prefix = process.env.RTMP_STREAM_PREFIX ?? 'rtmp_';
const log = (...a: unknown[]) => console.error('[bench]', ...a);
/** The app or naive controller of the current run: never left behind, whatever way this process ends. */
const children = new Set<ChildProcess>();
function track<C extends ChildProcess>(child: C): C {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

// ---------------------------------------------------------------------------------------------------------
// The machine and the processes we account for

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!.trim();
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? '').split('\n')[0]!.trim() || 'unknown';
  }
}

const ari = new AriClient({ url: env.ARI_URL!, user: env.ARI_USER!, password: env.ARI_PASSWORD!, app: 'bench' });

/** What a run left in Asterisk: polled until nothing new is there, for up to 10 s after its pipeline stopped. */
async function leftovers(before: AsteriskObjects, stoppedAt: number): Promise<AsteriskLeftovers> {
  for (;;) {
    const left = objectsSince(before, await asteriskObjects(ari));
    const names = [...left.channels.map((id) => `channel ${id}`), ...left.bridges.map((id) => `bridge ${id}`), ...left.endpoints.map((id) => `endpoint ${id}`)];
    const afterMs = Math.round(performance.now() - stoppedAt);
    if (!names.length || afterMs >= 10_000) {
      if (names.length) log(`left in Asterisk 10 s after the run: ${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''}`);
      return { ...countObjects(left, () => true), afterMs };
    }
    await sleep(200);
  }
}

async function machineInfo(): Promise<MachineInfo> {
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const asterisk = await ari.asterisk.info()
    .then((i) => `Asterisk ${i.system?.version ?? '?'}`, () => 'unknown');
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    os: /^PRETTY_NAME="?([^"\n]*)/m.exec(osRelease)?.[1] ?? 'Linux',
    node: process.version,
    ffmpeg: firstLine('ffmpeg', ['-version']).replace(/ Copyright.*/, ''),
    asterisk,
    nginx: firstLine('sh', ['-c', 'nginx -v 2>&1']), // nginx prints its version on stderr
  };
}

const pidOf = (name: string): number | undefined => {
  try {
    return Number(readFileSync(join(SANDBOX_RUN, 'pids', `${name}.pid`), 'utf8'));
  } catch {
    return undefined;
  }
};

/** Processes per component; encoders are found again at each snapshot (they come with the calls). */
interface Parties { main: number; asterisk: number; nginx: number[]; load: number[] }

function parties(main: number): Parties {
  const nginxMaster = pidOf('nginx')!;
  const load = ['sipp-bench', 'sipp-bench-video', 'sipp-stubborn'].map(pidOf).filter((p): p is number => !!p);
  return { main, asterisk: pidOf('asterisk')!, nginx: [nginxMaster, ...descendants(nginxMaster)], load };
}

interface Snapshot { at: number; main: number; reaped: number; encoders: Map<number, number>; asterisk: number; nginx: number; load: number; observer: number; machine: { busy: number; total: number } }

/** CPU seconds of a process's reaped children (cutime + cstime): children that ran and ended. */
function reapedChildCpu(pid: number): number {
  const f = procStat(pid)?.fields;
  return f ? (Number(f[13]) + Number(f[14])) / 100 : 0;
}

function snapshot(p: Parties): Snapshot {
  const sum = (pids: number[]) => pids.reduce((a, pid) => a + cpuSeconds(pid), 0);
  const u = process.cpuUsage();
  return {
    at: performance.now(),
    main: cpuSeconds(p.main),
    reaped: reapedChildCpu(p.main),
    encoders: new Map(descendants(p.main).map((pid) => [pid, cpuSeconds(pid)])),
    asterisk: cpuSeconds(p.asterisk),
    nginx: sum(p.nginx),
    load: sum(p.load),
    observer: (u.user + u.system) / 1e6,
    machine: machineJiffies(),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The two pipelines behind one small interface

interface Placed { id: string; stream: string; answeredAt?: number; failed?: string }

/** Who the calls go to: the speech-like audio far end, the one that adds H.264, or the stubborn one (H.264, 10 s GOP). */
type FarEndKind = 'bench' | 'video' | 'stubborn';

interface Pipeline {
  pid: number;
  place(id: string, stream: string, far: FarEndKind): Promise<Placed>;
  /** The app's view of its calls (plugin only). */
  views?(): Promise<CallView[]>;
  /** The app's per-call latency histograms so far, summed: count per 1 ms bucket (plugin only). */
  latency?(): Promise<Map<number, number>>;
  /** Calls that ended before the end of the window (plugin only: the app says so). */
  ended?(): Promise<string[]>;
  stop(): Promise<void>;
}

/**
 * The bench far ends send the same speech-like audio; the video one adds H.264 (640x360, an IDR every 1 s, a
 * 60 s pcap). The stubborn one sends the beep/flash audio and 352x288 H.264 with an IDR every 10 s (60 s).
 */
const farEnd = (kind: FarEndKind) => {
  if (kind === 'stubborn') return { callee: 'stubborn', port: Number(env.SIPP_STUBBORN_PORT), video: true };
  const video = kind === 'video';
  return { callee: kind, port: Number(video ? env.SIPP_BENCH_VIDEO_PORT : env.SIPP_BENCH_PORT), video };
};

async function startPlugin(extraEnv: Record<string, string>, profileDir?: string): Promise<Pipeline> {
  const child = track(spawn(process.execPath, [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), join(REPO_ROOT, 'dist/plugin/main.js')], {
    env: { ...process.env, ...appEnv, REST_PORT: String(REST_PORT), LOG_LEVEL: 'warn', STARTUP_RATE_PER_SEC: '1000', RTMP_STREAM_PREFIX: prefix, ...extraEnv },
    stdio: ['ignore', 'inherit', 'inherit'],
  }));
  const rest = `http://127.0.0.1:${REST_PORT}/rest-api`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the app exited (${child.exitCode}) at start`);
    // Any answer will do (find_all is a 404 while there are no calls).
    if (await postRest(rest, '/call/find_all', {}).then(() => true, () => false)) break;
    if (i > 100) throw new Error('the app did not start within 20 s');
    await sleep(200);
  }
  const views = async (): Promise<CallView[]> => {
    const j = (await postRest(rest, '/call/find_all', {})).json;
    return Array.isArray(j) ? (j as CallView[]) : []; // a 404 when there are none
  };
  return {
    pid: child.pid!,
    views,
    async place(id, stream, far) {
      const f = farEnd(far);
      // A name of its own, as real calls have: the slate shows it, so each call's slate is encoded once (an
      // ffmpeg run while it rings), not one slate shared by every call to the same callee.
      const r = await postRest(rest, '/call/startup', { callId: id, callee: f.callee, visibleName: `Caller ${id}`, sipDomain: '127.0.0.1', sipPort: f.port, hasVideo: f.video, rtmpUrl: env.RTMP_URL, rtmpStream: stream });
      if (r.status !== 200) return { id, stream: prefix + stream, failed: `startup ${r.status}: ${r.text}` };
      for (let i = 0; i < 300; i++) {
        const v = ((await postRest(rest, '/call/find', { callId: id })).json as CallView[] | undefined)?.[0];
        if (v?.establishedAt) return { id, stream: prefix + stream, answeredAt: Date.parse(v.establishedAt) };
        if (v && ['FAILED', 'BUSY', 'FINISH'].includes(v.status)) return { id, stream: prefix + stream, failed: `${v.status}: ${v.info}` };
        await sleep(100);
      }
      return { id, stream: prefix + stream, failed: 'not answered in 30 s' };
    },
    async latency() {
      const bins = new Map<number, number>();
      for (const v of await views()) {
        const l = (v.media as { latencyMs?: { histogram: [number, number][] } } | undefined)?.latencyMs;
        for (const [ms, count] of l?.histogram ?? []) bins.set(ms, (bins.get(ms) ?? 0) + count);
      }
      return bins;
    },
    async ended() {
      return (await views()).filter((v) => v.status !== 'ESTABLISHED').map((v) => `${v.callId}: ${v.status} ${v.info ?? ''}`);
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM'); // ends every call cleanly, then exits (and writes its CPU profile)
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

async function startNaive(bridge: BridgeKind): Promise<Pipeline> {
  const child = track(fork(join(REPO_ROOT, 'dist/scripts/lib/naive-relay.js'), [], {
    env: { ...process.env, ...appEnv, LOG_LEVEL: 'warn', MEDIA_BRIDGE: bridge },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  }));
  const pending = new Map<string, (r: NaiveReply) => void>();
  let hungUp: (() => void) | undefined;
  child.on('message', (m: NaiveReply | { type: 'ready' }) => {
    if (m.type === 'answered' || m.type === 'failed') pending.get(m.id)?.(m);
    else if (m.type === 'hungUp') hungUp?.();
  });
  await new Promise<void>((res, rej) => {
    child.once('message', () => res());
    child.once('exit', (code) => rej(new Error(`naive controller exited (${code})`)));
  });
  const ask = (m: NaiveRequest) => child.send(m);
  return {
    pid: child.pid!,
    place(id, stream, far) {
      const f = farEnd(far);
      return new Promise((res) => {
        pending.set(id, (r) => res(r.type === 'answered' ? { id, stream, answeredAt: r.answeredAt } : { id, stream, failed: r.type === 'failed' ? r.why : '?' }));
        ask({ type: 'call', id, target: `sip:${f.callee}@127.0.0.1:${f.port}`, video: f.video, rtmpUrl: env.RTMP_URL!, stream });
      });
    },
    async stop() {
      await new Promise<void>((res) => {
        hungUp = res;
        ask({ type: 'hangupAll' });
        setTimeout(res, 30_000);
      });
      const exited = new Promise((r) => child.once('exit', r));
      child.disconnect();
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// One run: N calls through one pipeline

/** The latencies added between two readings of the summed histograms (max: the highest bucket, 1 ms steps). */
function latencyBetween(a: Map<number, number> | undefined, b: Map<number, number> | undefined): Quantiles | undefined {
  if (!b) return undefined;
  const h = new MsHistogram();
  let max = 0;
  for (const [ms, count] of b) {
    const added = count - (a?.get(ms) ?? 0); // a call that ended before the window's end is gone from b
    if (added <= 0) continue;
    h.merge([[ms, added]], 0);
    max = Math.max(max, ms);
  }
  return h.count > 0 ? { p50: h.quantile(0.5)!, p99: h.quantile(0.99)!, max, count: h.count } : undefined;
}

function quantiles(values: number[]): Quantiles | undefined {
  if (values.length === 0) return undefined;
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!;
  return { p50: Math.round(at(0.5)), p99: Math.round(at(0.99)), max: Math.round(v[v.length - 1]!), count: v.length };
}

/** Whole-machine busy %, over `ms`. */
async function machineBusyPct(ms: number): Promise<number> {
  const a = machineJiffies();
  await sleep(ms);
  const b = machineJiffies();
  return ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100;
}

/**
 * The machine may be shared: before a run, wait (up to 2 min) until it is about as quiet as the idle
 * sandbox (its far ends poll: about 10 % of a 2-core machine).
 */
async function waitQuiet(): Promise<void> {
  const limit = S.quietPct;
  if (limit >= 100) return;
  for (let i = 0; ; i++) {
    const busy = await machineBusyPct(2000);
    if (busy <= limit) return;
    if (i === 0) log(`the machine is ${busy.toFixed(0)} % busy before the run (something else runs): waiting for ≤ ${limit} %`);
    if (i >= 60) return log(`still ${busy.toFixed(0)} % busy after 2 min: running anyway`);
  }
}


/**
 * A run on a quiet machine; run once more if something else took the machine during it (unless the run
 * itself saturated it: then the kernel's share grows and "other" means nothing). The less disturbed one counts.
 */
async function measured(spec: RunSpec): Promise<BenchRun> {
  await waitQuiet();
  const r = await run(spec);
  if (S.otherLimitPct >= 100 || (r.otherCpuPct ?? 0) <= S.otherLimitPct || r.machineCpuPct >= 95) return r;
  log(`${r.otherCpuPct} % of the machine went to other processes during the run: running it again`);
  await waitQuiet();
  const again = await run(spec);
  return (again.otherCpuPct ?? 0) < (r.otherCpuPct ?? 0) ? again : r;
}

/** One run: N calls through one pipeline, the app set up as asked. */
interface RunSpec {
  kind: 'plugin' | 'naive';
  n: number;
  videoCalls: number;
  seconds: number;
  /** plugin: VIDEO_FILL. */
  fill?: FillKind;
  /** MEDIA_BRIDGE (the naive controller's too). */
  bridge?: BridgeKind;
  /** plugin: every call to the stubborn far end, the app with this VIDEO_TRANSCODE and stream size. */
  transcode?: TranscodeInfo;
  profileDir?: string;
}

/** The app's settings for a run, on top of the sandbox's. */
function pluginEnv(spec: RunSpec): Record<string, string> {
  const e: Record<string, string> = {};
  if (spec.fill) e.VIDEO_FILL = spec.fill;
  if (spec.bridge) e.MEDIA_BRIDGE = spec.bridge;
  // The app's cap would answer the calls past it 503: the run measures all N.
  if (spec.n > appMaxCalls) e.MAX_CALLS = String(spec.n);
  if (spec.transcode) {
    e.VIDEO_TRANSCODE = spec.transcode.mode;
    // Every stream at this size from its start (no waiting for the caller's first SPS).
    e.GENERATED_VIDEO_SIZE = spec.transcode.streamSize;
    e.VIDEO_SIZE_WAIT_MS = '0';
  }
  return e;
}

/** What /call/find_all says of a call's media (the parts the bench reads). */
interface MediaView {
  stream?: { audioBytes?: number; videoBytes?: number };
  encoderPid?: number;
  video?: { transcodeFailed?: boolean; transcoder?: { pid?: number } };
}
const mediaOf = (v: CallView): MediaView => (v.media ?? {}) as MediaView;

/** Per call: payload bytes the app wrote so far (audio, video). */
function payloadBytes(views: CallView[]): Map<string, { audio: number; video: number }> {
  return new Map(views.map((v) => {
    const st = mediaOf(v).stream;
    return [v.callId, { audio: st?.audioBytes ?? 0, video: st?.videoBytes ?? 0 }];
  }));
}

async function run(spec: RunSpec): Promise<BenchRun> {
  const { kind, n, videoCalls, seconds, fill, transcode, profileDir } = spec;
  const what = transcode ? `stubborn ${transcode.callerSize}, VIDEO_TRANSCODE=${transcode.mode}, stream ${transcode.streamSize}` : `${videoCalls} with video${fill ? `, fill ${fill}` : ''}`;
  log(`${kind}: ${n} calls (${what}), ${seconds} s`);
  const tag = `${kind[0]}${n}v${videoCalls}${fill ? fill[0] : ''}${spec.bridge === 'core' ? 'c' : ''}${transcode ? `t${transcode.mode[0]}${transcode.streamSize.split('x')[1]}` : ''}-${Date.now().toString(36)}`;
  const before = await asteriskObjects(ari);
  const pipe = kind === 'plugin' ? await startPlugin(pluginEnv(spec), profileDir) : await startNaive(spec.bridge ?? S.bridges[0]!);
  const p = parties(pipe.pid);
  await sleep(1000);
  const idle = { main: rssMb(pipe.pid), asterisk: rssMb(p.asterisk), reaped: reapedChildCpu(pipe.pid) };

  // Place the calls at a steady rate; each stream's player starts before its call is answered.
  const watchers = new Map<string, RtmpWatcher>();
  const placing: Promise<Placed>[] = [];
  for (let i = 0; i < n; i++) {
    const id = `${tag}-${i}`;
    const stream = `bench-${tag}-${i}`;
    const w = new RtmpWatcher(env.RTMP_URL!, (kind === 'plugin' ? prefix : '') + stream, { now: Date.now });
    w.start();
    watchers.set(id, w);
    placing.push(pipe.place(id, stream, transcode ? 'stubborn' : i < videoCalls ? 'video' : 'bench'));
    await sleep(1000 / S.rate);
  }
  const placed = await Promise.all(placing);
  const allAnsweredAt = performance.now();
  // Every answered call's stream seen at the server (or 15 s), then a few seconds to settle.
  for (let i = 0; i < 150 && placed.some((c) => c.answeredAt && watchers.get(c.id)!.stats().firstMediaAt === undefined); i++) await sleep(100);
  if (transcode && pipe.views) {
    // Every stream showing the caller's video on the path under test (or 25 s): the stubborn caller's first
    // usable keyframe may be its second (10 s), and auto mode switches to the transcoder after ~2.3 s.
    const mode = transcode.mode === 'never' ? 'passthrough' : 'transcode';
    const up = new Set(placed.filter((c) => c.answeredAt).map((c) => c.id));
    let ready = 0;
    const since = performance.now();
    for (let i = 0; i < 250; i++) {
      ready = (await pipe.views()).filter((v) => up.has(v.callId) && v.video?.source === 'caller' && v.video.mode === mode).length;
      if (ready >= up.size) break;
      await sleep(100);
    }
    if (ready < up.size) log(`only ${ready}/${up.size} streams show the caller's video (${mode}) before the window`);
    else log(`every stream shows the caller's video (${mode}) after ${((performance.now() - since) / 1000).toFixed(1)} s more`);
  }
  let oneOffChildrenSec: number | undefined;
  if (pipe.views) {
    // The window measures the calls' steady state: first the app's one-off children (each call's slate, an
    // ffmpeg run while it rings; one after another) finish: none seen for 1.5 s (up to 90 s). How long
    // after the last answer the last one was seen is reported.
    let last = allAnsweredAt;
    let quietSince: number | undefined;
    for (const end = performance.now() + 90_000; performance.now() < end;) {
      const kept = new Set<number>();
      for (const v of await pipe.views()) {
        const m = mediaOf(v);
        if (m.video?.transcoder?.pid) kept.add(m.video.transcoder.pid);
        if (m.encoderPid) kept.add(m.encoderPid);
      }
      const now = performance.now();
      if (descendants(pipe.pid).every((pid) => kept.has(pid))) {
        quietSince ??= now;
        if (now - quietSince >= 1500) break;
      } else {
        quietSince = undefined;
        last = now;
      }
      await sleep(100);
    }
    oneOffChildrenSec = Math.round((last - allAnsweredAt) / 100) / 10;
    if (oneOffChildrenSec > 0) log(`the app's one-off children ran until ${oneOffChildrenSec} s after the last answer`);
  }
  await sleep(S.settleSec * 1000);

  // Real time is judged over the measured window; how far a stream's start ran ahead of the clock (a
  // pipeline that probes, then bursts) is kept apart.
  let startupDrift = 0;
  for (const w of watchers.values()) {
    startupDrift = Math.max(startupDrift, w.stats().maxDriftMs);
    w.measureFrom();
  }
  const bytesA = pipe.views ? payloadBytes(await pipe.views()) : undefined;
  const latencyA = await pipe.latency?.();
  const receivedA = new Map([...watchers].map(([id, w]) => [id, w.stats()]));
  const a = snapshot(p);
  await sleep(seconds * 1000);
  const b = snapshot(p);
  const viewsB = (await pipe.views?.())?.filter((v) => watchers.has(v.callId));
  const receivedB = new Map([...watchers].map(([id, w]) => [id, w.stats()]));
  const reaped = reapedChildCpu(pipe.pid);
  const ended = (await pipe.ended?.()) ?? [];
  const latency = latencyBetween(latencyA, await pipe.latency?.());
  const encoderPids = [...b.encoders.keys()];
  const mem = {
    main: rssMb(pipe.pid),
    encoders: encoderPids.reduce((s, pid) => s + pssMb(pid), 0),
    asterisk: rssMb(p.asterisk),
  };
  const established = placed.filter((c) => c.answeredAt !== undefined);
  const failures: string[] = placed.filter((c) => c.failed).map((c) => `${c.id}: ${c.failed}`);
  failures.push(...ended);
  let realtime = 0;
  let maxDrift = 0;
  let maxStall = 0;
  const firstMedia: number[] = [];
  for (const c of established) {
    const w = watchers.get(c.id)!;
    const s = w.stats();
    if (s.firstMediaAt !== undefined) firstMedia.push(s.firstMediaAt - c.answeredAt!);
    maxDrift = Math.max(maxDrift, s.maxDriftMs);
    maxStall = Math.max(maxStall, s.maxStallMs);
    const rt = w.realtime();
    if (rt.ok && !ended.some((e) => e.startsWith(`${c.id}:`))) realtime++;
    else if (!rt.ok) failures.push(`${c.id}: ${rt.why}`);
  }
  const stoppedAt = performance.now();
  await pipe.stop();
  for (const w of watchers.values()) w.close();
  const leftInAsterisk = await leftovers(before, stoppedAt);

  const windowSec = (b.at - a.at) / 1000;
  const callMin = (n * windowSec) / 60;
  const per = (x: number) => Math.round((x / callMin) * 1000) / 1000;
  const encCpu = [...b.encoders].reduce((s, [pid, cpu]) => s + cpu - (a.encoders.get(pid) ?? 0), 0);
  // The machine's busy time not spent in any process counted here: the idle far ends, the kernel's network
  // work, and anything else running on the machine (a shared machine: another build or test run).
  const ours = b.main - a.main + encCpu + b.reaped - a.reaped + b.asterisk - a.asterisk + b.nginx - a.nginx + b.load - a.load + b.observer - a.observer;
  const machineTotal = (b.machine.total - a.machine.total) / 100;
  const otherCpuPct = Math.round(((((b.machine.busy - a.machine.busy) / 100 - ours) / machineTotal) * 100) * 10) / 10;
  // Per stream, averaged over the established calls: payload the app wrote, bytes the server's player got.
  const perStream = (xs: number[]) => (xs.length ? Math.round(xs.reduce((s, x) => s + x, 0) / xs.length / windowSec) : undefined);
  const up = established.map((c) => c.id);
  let streams: StreamsInfo | undefined;
  if (viewsB && bytesA) {
    const bytesB = payloadBytes(viewsB);
    const sizes = new Map<string, number>();
    for (const v of viewsB) if (v.video?.size) sizes.set(v.video.size, (sizes.get(v.video.size) ?? 0) + 1);
    const audio = perStream(up.map((id) => (bytesB.get(id)?.audio ?? 0) - (bytesA.get(id)?.audio ?? 0)));
    const video = perStream(up.map((id) => (bytesB.get(id)?.video ?? 0) - (bytesA.get(id)?.video ?? 0)));
    const received = perStream(up.map((id) => receivedB.get(id)!.bytes - receivedA.get(id)!.bytes));
    const wire = perStream(up.map((id) => receivedB.get(id)!.socketBytes - receivedA.get(id)!.socketBytes));
    streams = {
      withVideo: viewsB.filter((v) => v.video).length,
      transcoded: viewsB.filter((v) => v.video?.mode === 'transcode' && !mediaOf(v).video?.transcodeFailed).length,
      sizes: [...sizes].map(([size, count]) => `${size} ×${count}`).join(', '),
      ...(audio !== undefined ? { audioBytesPerSec: audio } : {}),
      ...(video !== undefined ? { videoBytesPerSec: video } : {}),
      ...(received !== undefined ? { receivedBytesPerSec: received } : {}),
      ...(wire !== undefined ? { wireBytesPerSec: wire } : {}),
    };
  }
  const r: BenchRun = {
    pipeline: kind, n, videoCalls, seconds: Math.round(windowSec * 10) / 10,
    ...(kind === 'plugin' && fill ? { fill } : {}),
    ...(spec.bridge ? { bridge: spec.bridge } : {}),
    ...(transcode ? { transcode } : {}),
    cpuPerCallMinute: {
      plugin: per(b.main - a.main),
      encoders: per(encCpu),
      asterisk: per(b.asterisk - a.asterisk),
      nginx: per(b.nginx - a.nginx),
      loadGenerators: per(b.load - a.load),
      observer: per(b.observer - a.observer),
    },
    memPerCallMb: {
      plugin: Math.round(((mem.main - idle.main) / n) * 100) / 100,
      encoders: Math.round((mem.encoders / n) * 100) / 100,
      asterisk: Math.round(((mem.asterisk - idle.asterisk) / n) * 100) / 100,
    },
    ...(latency ? { latencyMs: latency } : {}),
    ...(quantiles(firstMedia) ? { firstMediaMs: quantiles(firstMedia)! } : {}),
    calls: { placed: n, established: established.length, realtime, failed: n - realtime, failures: failures.slice(0, 20) },
    outputs: { maxDriftMs: Math.round(maxDrift), maxStallMs: Math.round(maxStall), startupDriftMs: Math.round(startupDrift) },
    machineCpuPct: Math.round(((b.machine.busy - a.machine.busy) / (b.machine.total - a.machine.total)) * 1000) / 10,
    otherCpuPct,
    ...(streams ? { streams } : {}),
    ...(kind === 'plugin' ? { oneOffChildCpuPerCall: Math.round(((reaped - idle.reaped) / n) * 1000) / 1000 } : {}),
    ...(oneOffChildrenSec !== undefined ? { oneOffChildrenSec } : {}),
    leftInAsterisk,
  };
  log(JSON.stringify(r));
  // Let the far ends and Asterisk finish the hang-ups before the next run.
  await sleep(3000);
  return r;
}

// ---------------------------------------------------------------------------------------------------------

const report: BenchReport = {
  createdAt: new Date().toISOString(),
  machine: await machineInfo(),
  settings: {
    seconds: S.seconds, calls: S.ns.join(','), videoShare: S.videoShare, videoN: S.videoN, callsPerSecond: S.rate,
    farEnd: 'sipp, PCMU, speech-like audio (looped); video calls add H.264 from a pcap (sipp play_pcap_video: 640x360, an IDR every 1 s)',
    legCodecs: process.env.MEDIA_LEG_CODECS ?? 'slin16,ulaw,alaw',
    aac: `${process.env.AAC_SAMPLE_RATE ?? 48000} Hz, ${process.env.AAC_CHANNELS ?? 1} ch, ${process.env.AAC_BITRATE ?? 64000} b/s`,
    encoder: `${process.env.AAC_ENCODER ?? 'native'}${Number(process.env.AAC_ENCODER_THREADS ?? 0) > 0 ? `, ${process.env.AAC_ENCODER_THREADS} encoder thread(s)` : ''}`,
    jitterDepthMs: Number(process.env.JITTER_DEPTH_MS ?? 60),
    fills: S.fills.join(','),
    bridges: S.bridges.join(','),
    fillVideo: `${process.env.GENERATED_VIDEO_SIZE ?? '640x360'}, ${process.env.FILL_FPS ?? 25} fps, a keyframe every 2 s${process.env.SLATE_IMAGE ? `, slate image ${process.env.SLATE_IMAGE}` : ', slate: text only'}`,
    ...(S.transcodeSizes.length
      ? {
        transcode: `${S.transcodeN} calls to sipp-stubborn (${STUBBORN_SIZE} H.264, an IDR every 10 s, deaf to keyframe requests); stream sizes ${S.transcodeSizes.join(', ')}; ` +
          `${S.transcodePassthrough ? `passthrough (VIDEO_TRANSCODE=never) at ${S.transcodeSizes[0]}; ` : ''}window ≤ ${TRANSCODE_MAX_SECONDS} s`,
      }
      : {}),
  },
  runs: [],
  notes: [
    'CPU is utime+stime from /proc over the measured window, divided by calls × minutes.',
    'plugin "children" are the app\'s descendants, found again at each snapshot: the video transcoders (one ffmpeg per transcoded call), or the AAC encoders with AAC_ENCODER=ffmpeg.',
    'naive: "plugin" is its controller (ARI + SIP signalling only); encoders are the per-call ffmpeg processes.',
    'plugin: the window starts once the app\'s one-off children (each call\'s slate encode) are done; latency is the window\'s part of the app\'s per-call histograms.',
    'Load generators (sipp) and the observer (this process, one RTMP player per stream) run on the same cores and are shown apart.',
    `Before each run the bench waits for a quiet machine (≤ ${S.quietPct} % busy); a run during which processes it does not count took over ${S.otherLimitPct} % of the machine is run once more (the less disturbed one counts). "not ours" in machine CPU is that share: the idle far ends and the kernel's network work make about 5-10 %.`,
    'A run at 100 % machine CPU is saturated: its CPU per call-minute is what the starved processes got, not what they needed, and its streams fell behind (see real-time calls).',
  ],
};

for (const n of [...new Set([...S.ns, ...S.naiveNs])].sort((a, b) => a - b)) {
  for (const kind of S.pipelines) {
    const videoCalls = Math.round(n * S.videoShare);
    if (kind === 'naive') {
      if (S.naiveNs.includes(n)) report.runs.push(await measured({ kind, n, videoCalls, seconds: S.seconds, bridge: S.bridges[0]! }));
    } else if (S.ns.includes(n)) {
      for (const bridge of S.bridges) for (const fill of S.fills) report.runs.push(await measured({ kind, n, videoCalls, seconds: S.seconds, fill, bridge }));
    }
  }
}
if (S.videoN > 0) {
  // Video calls cost: the same N, every call with H.264 (the far end's pcap lasts 60 s: a shorter window).
  for (const kind of S.pipelines) {
    report.runs.push(await measured({ kind, n: S.videoN, videoCalls: S.videoN, seconds: Math.min(S.seconds, 45), bridge: S.bridges[0]!, ...(kind === 'plugin' ? { fill: S.fills[0]! } : {}) }));
  }
}
if (S.transcodeSizes.length) {
  // Transcode cost: the stubborn far end's calls re-encoded at each size, and the same calls passed through.
  const seconds = Math.min(S.seconds, TRANSCODE_MAX_SECONDS);
  const at = (mode: TranscodeInfo['mode'], streamSize: string): RunSpec => ({
    kind: 'plugin', n: S.transcodeN, videoCalls: S.transcodeN, seconds, fill: S.fills[0]!,
    transcode: { mode, farEnd: 'sipp-stubborn', callerSize: STUBBORN_SIZE, streamSize },
  });
  if (S.transcodePassthrough) report.runs.push(await measured(at('never', S.transcodeSizes[0]!)));
  for (const size of S.transcodeSizes) report.runs.push(await measured(at('auto', size)));
}
if (S.profile && S.pipelines.includes('plugin')) {
  const fill = S.fills[0]!;
  const held = report.runs.filter((r) => r.pipeline === 'plugin' && !r.transcode && r.fill === fill && r.videoCalls === 0 && r.calls.realtime === r.n).map((r) => r.n);
  const n = Math.max(0, ...held);
  if (n > 0) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-prof-'));
    await waitQuiet();
    await run({ kind: 'plugin', n, videoCalls: 0, seconds: Math.min(S.seconds, 30), fill, profileDir: dir });
    const file = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f))[0];
    if (file) {
      const s = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')));
      const profile: ProfileSummary = { n, pipeline: 'plugin', fill, ...s };
      report.profile = profile;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
const files = await writeReport(report, S.out, S.base);
log('wrote', Object.values(files).filter(Boolean).join(', '));
await ari.close();
