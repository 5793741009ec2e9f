/**
 * The benchmark's report: its data types, a markdown write-up, an SVG plot (and a PNG of it via headless
 * Chromium), and writeReport() that puts them all in a directory.
 *
 * Everything here except writeReport()/renderPng() is pure.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memGiB: number;
  kernel: string;
  os: string;
  node: string;
  ffmpeg: string;
  asterisk: string;
  nginx: string;
}
export interface Quantiles {
  p50: number;
  p99: number;
  max: number;
  count: number;
}
export type BridgeKind = 'native' | 'core';
/** Reports before MEDIA_BRIDGE bridged through the core. */
const bridgeOf = (r: BenchRun): BridgeKind => r.bridge ?? 'core';

export interface BenchRun {
  pipeline: 'plugin' | 'naive';
  n: number; // concurrent calls asked for
  videoCalls: number; // how many of them send H.264 too
  seconds: number; // measured window (all calls up)
  /** CPU seconds per call-minute from /proc, per component. plugin = the app's Node process (absent for naive). encoders = its ffmpeg children (naive: the per-call ffmpegs). */
  cpuPerCallMinute: { plugin?: number; encoders: number; asterisk: number; nginx: number; loadGenerators: number; observer: number };
  /** Memory per call in MB: plugin = (RSS at N - RSS idle)/N; encoders = summed PSS of the encoder processes / N; asterisk = RSS growth / N. */
  memPerCallMb: { plugin?: number; encoders: number; asterisk: number };
  /** RTP arrival at the plugin → FLV tag written, over the window (plugin only; older reports: the whole calls). */
  latencyMs?: Quantiles;
  /** Answer → first media at the RTMP server, per call. */
  firstMediaMs?: Quantiles;
  calls: { placed: number; established: number; realtime: number; failed: number; failures: string[] };
  /**
   * Over the measured window. startupDriftMs: before it, how far a stream ran ahead of or behind the clock
   * (a pipeline that buffers at start, then bursts, delivers everything that much late).
   */
  outputs: { maxDriftMs: number; maxStallMs: number; startupDriftMs?: number };
  /** Whole-machine CPU use during the window, % of all cores (from /proc/stat). */
  machineCpuPct: number;
  /**
   * The part of machineCpuPct no process counted here used: the other (idle) sandbox far ends, the kernel's
   * network work, anything else on the machine. High: the run was disturbed.
   */
  otherCpuPct?: number;
  /** MEDIA_BRIDGE: how Asterisk bridged the calls (absent in older reports: core). */
  bridge?: BridgeKind;
  /** plugin: the app's VIDEO_FILL (what an audio-only call's stream shows as video; none = no video track). Absent in older reports. */
  fill?: FillKind;
  /** A transcode run: video calls to a far end whose video the app re-encodes (or, VIDEO_TRANSCODE=never, passes through). */
  transcode?: TranscodeInfo;
  /** plugin: the calls' streams at the window's end, as the app reports them. */
  streams?: StreamsInfo;
  /**
   * plugin: CPU seconds per call of the app's child processes that ran and ended between its start and the
   * window's end (reaped: their time is in the app's cutime), i.e. one-off work per call such as encoding
   * each call's slate. Not in cpuPerCallMinute.
   */
  oneOffChildCpuPerCall?: number;
  /**
   * plugin: how long after the last call was answered the app's one-off children (the slate encodes) were
   * still running, in s; the window starts after them (0: none left by then).
   */
  oneOffChildrenSec?: number;
  /**
   * What the run's calls left in Asterisk once its pipeline had stopped (SIGTERM: the app hangs up and
   * releases everything), polled for up to 10 s (channels and bridges over ARI, PJSIP endpoints from the
   * CLI): what was not there before the run, and how long it took to go. Absent in older reports.
   */
  leftInAsterisk?: AsteriskLeftovers;
}
export interface AsteriskLeftovers {
  channels: number;
  bridges: number;
  endpoints: number;
  /** From the pipeline's stop to the last poll (the first clear one, or the 10 s limit). */
  afterMs: number;
}
export type FillKind = 'slate' | 'black' | 'none';
export interface TranscodeInfo {
  /** VIDEO_TRANSCODE of the app. */
  mode: 'auto' | 'always' | 'never';
  /** The far end (sipp scenario) and the size of the H.264 it sends. */
  farEnd: string;
  callerSize: string;
  /** GENERATED_VIDEO_SIZE, with VIDEO_SIZE_WAIT_MS=0: every stream's size. */
  streamSize: string;
}
export interface StreamsInfo {
  /** Streams with a video track. */
  withVideo: number;
  /** Streams whose video went through a transcoder (a child process each). */
  transcoded: number;
  /** Stream video sizes and how many streams had each, e.g. "640x360 ×10". */
  sizes: string;
  /** Per stream, bytes per second over the window: codec payload the app wrote (raw AAC; H.264 access units). */
  audioBytesPerSec?: number;
  videoBytesPerSec?: number;
  /** Per stream, bytes per second of FLV tag bodies (codec payload + FLV tag headers) the player at the RTMP server received. */
  receivedBytesPerSec?: number;
  /** Per stream, every byte the player read from its socket (RTMP chunk headers too), per second. */
  wireBytesPerSec?: number;
}
export interface StageShare {
  stage: string;
  selfMs: number;
  /** % of the whole profile. */
  pct: number;
  /** % of the profile's busy (non-idle) time; absent for the 'idle' stage. */
  pctBusy?: number;
}
export interface ProfileSummary {
  n: number;
  pipeline: 'plugin';
  /** The app's VIDEO_FILL during the profiled run. */
  fill?: FillKind;
  totalMs: number;
  stages: StageShare[];
  topFunctions: { name: string; url: string; selfMs: number; pct: number; line?: number; stage?: string }[];
  /** totalMs minus idle time. */
  busyMs?: number;
}
export interface BenchReport {
  createdAt: string;
  machine: MachineInfo;
  settings: Record<string, string | number | boolean>;
  runs: BenchRun[];
  profile?: ProfileSummary;
  /** What the numbers say, written after a run (added to the JSON by hand, then the report written again). */
  findings?: string[];
  notes?: string[];
}

// ---------------------------------------------------------------------------------------------------------
// Derived numbers

/** CPU-s per call-minute of the relaying we own: the app's Node process + its encoders (naive: the per-call ffmpegs). */
export function pipelineCost(run: BenchRun): number {
  return (run.cpuPerCallMinute.plugin ?? 0) + run.cpuPerCallMinute.encoders;
}

/** CPU-s per call-minute of everything that serves the calls: relay + Asterisk + nginx (not the load generators or observer). */
export function totalCost(run: BenchRun): number {
  const c = run.cpuPerCallMinute;
  return (c.plugin ?? 0) + c.encoders + c.asterisk + c.nginx;
}

/** MB per call of the relay: the app's share + its encoders (naive: the per-call ffmpegs). */
export function relayMemPerCall(run: BenchRun): number {
  return (run.memPerCallMb.plugin ?? 0) + run.memPerCallMb.encoders;
}

/** True if every call asked for stayed real-time. */
export function allRealtime(run: BenchRun): boolean {
  return run.calls.realtime >= run.n;
}

/** Audio-only in the plots' sense: not every call sends video. */
export function isAudioRun(run: BenchRun): boolean {
  return run.videoCalls < run.n;
}

const PIPELINE_ORDER: Record<BenchRun['pipeline'], number> = { plugin: 0, naive: 1 };
const FILL_ORDER: Record<FillKind, number> = { slate: 0, black: 1, none: 2 };
const fillOrder = (r: BenchRun): number => (r.fill ? FILL_ORDER[r.fill] : -1);
const TRANSCODE_ORDER: Record<TranscodeInfo['mode'], number> = { never: 0, auto: 1, always: 2 };
/** Pixels of a "WxH" size (0 if unreadable). */
const pixels = (size: string): number => {
  const m = /^(\d+)x(\d+)$/.exec(size);
  return m ? Number(m[1]) * Number(m[2]) : 0;
};

/**
 * Runs sorted by N, then pipeline (plugin first), the transcode runs after the others, then number of video
 * calls, then fill (slate, black, none), then a transcode run's mode (passthrough first) and stream size.
 */
export function sortRuns(runs: readonly BenchRun[]): BenchRun[] {
  return [...runs].sort((a, b) =>
    a.n - b.n || PIPELINE_ORDER[a.pipeline] - PIPELINE_ORDER[b.pipeline] || Number(bridgeOf(a) === 'core') - Number(bridgeOf(b) === 'core') || Number(!!a.transcode) - Number(!!b.transcode) ||
    a.videoCalls - b.videoCalls || fillOrder(a) - fillOrder(b) ||
    (a.transcode && b.transcode ? TRANSCODE_ORDER[a.transcode.mode] - TRANSCODE_ORDER[b.transcode.mode] || pixels(a.transcode.streamSize) - pixels(b.transcode.streamSize) : 0));
}

/**
 * plugin relay cost ÷ naive relay cost, per N, number of video calls and the plugin's fill (both runs must
 * exist; the naive pipeline has no fill). Transcode runs are not compared.
 */
export function costRatios(runs: readonly BenchRun[]): { n: number; videoCalls: number; fill?: FillKind; plugin: BenchRun; naive: BenchRun; relay: number; total: number }[] {
  const out: { n: number; videoCalls: number; fill?: FillKind; plugin: BenchRun; naive: BenchRun; relay: number; total: number }[] = [];
  for (const p of sortRuns(runs)) {
    if (p.pipeline !== 'plugin' || p.transcode) continue;
    if (out.some((r) => r.n === p.n && r.videoCalls === p.videoCalls && r.fill === p.fill)) continue;
    const q = runs.find((r) => r.pipeline === 'naive' && !r.transcode && r.n === p.n && r.videoCalls === p.videoCalls && bridgeOf(r) === bridgeOf(p));
    if (!q) continue;
    out.push({ n: p.n, videoCalls: p.videoCalls, ...(p.fill ? { fill: p.fill } : {}), plugin: p, naive: q, relay: ratio(pipelineCost(p), pipelineCost(q)), total: ratio(totalCost(p), totalCost(q)) });
  }
  return out;
}

/**
 * Video-call cost ÷ audio-only cost at the same N, pipeline and fill (runs with videoCalls == n vs
 * videoCalls == 0). Transcode runs are not compared here.
 */
export function videoRatios(runs: readonly BenchRun[]): { n: number; pipeline: BenchRun['pipeline']; audio: BenchRun; video: BenchRun; relay: number; total: number }[] {
  const out: { n: number; pipeline: BenchRun['pipeline']; audio: BenchRun; video: BenchRun; relay: number; total: number }[] = [];
  for (const v of sortRuns(runs)) {
    if (v.videoCalls !== v.n || v.n === 0 || v.transcode) continue;
    if (out.some((r) => r.n === v.n && r.pipeline === v.pipeline)) continue;
    const a = runs.find((r) => r.pipeline === v.pipeline && !r.transcode && r.n === v.n && r.videoCalls === 0 && r.fill === v.fill);
    if (!a) continue;
    out.push({ n: v.n, pipeline: v.pipeline, audio: a, video: v, relay: ratio(pipelineCost(v), pipelineCost(a)), total: ratio(totalCost(v), totalCost(a)) });
  }
  return out;
}

/** What a fill costs: plugin audio-only runs with a fill (slate, black) against the same N without one (VIDEO_FILL=none). */
export interface FillRatio {
  n: number;
  fill: FillKind;
  withFill: BenchRun;
  without: BenchRun;
  /** The app's own CPU (its Node process), the relay (+ children) and the total (+ Asterisk, nginx): with ÷ without. */
  app: number;
  relay: number;
  total: number;
}

export function fillRatios(runs: readonly BenchRun[]): FillRatio[] {
  const out: FillRatio[] = [];
  const audioPlugin = (r: BenchRun) => r.pipeline === 'plugin' && !r.transcode && r.videoCalls === 0;
  for (const f of sortRuns(runs)) {
    if (!audioPlugin(f) || !f.fill || f.fill === 'none') continue;
    if (out.some((r) => r.n === f.n && r.fill === f.fill)) continue;
    const w = runs.find((r) => audioPlugin(r) && r.n === f.n && r.fill === 'none');
    if (!w) continue;
    out.push({
      n: f.n, fill: f.fill, withFill: f, without: w,
      app: ratio(f.cpuPerCallMinute.plugin ?? Number.NaN, w.cpuPerCallMinute.plugin ?? Number.NaN),
      relay: ratio(pipelineCost(f), pipelineCost(w)),
      total: ratio(totalCost(f), totalCost(w)),
    });
  }
  return out;
}

/** A transcode run against the passthrough run (VIDEO_TRANSCODE=never) of the same N and far end. */
export interface TranscodeRow {
  run: BenchRun;
  passthrough?: BenchRun;
  /** relay (app + its children) ÷ the passthrough's relay. */
  relay: number;
}

export function transcodeRows(runs: readonly BenchRun[]): TranscodeRow[] {
  const t = sortRuns(runs).filter((r) => r.pipeline === 'plugin' && r.transcode);
  return t.map((run) => {
    const same = t.filter((p) => p.transcode!.mode === 'never' && p.n === run.n && p.transcode!.farEnd === run.transcode!.farEnd);
    const passthrough = same.find((p) => p.transcode!.streamSize === run.transcode!.streamSize) ?? same[0];
    return { run, ...(passthrough ? { passthrough } : {}), relay: passthrough ? ratio(pipelineCost(run), pipelineCost(passthrough)) : Number.NaN };
  });
}

function ratio(a: number, b: number): number {
  return b > 0 ? a / b : Number.NaN;
}

// ---------------------------------------------------------------------------------------------------------
// Markdown

const DASH = '—';
const ok = (x: number | undefined): x is number => typeof x === 'number' && Number.isFinite(x);
/** CPU seconds: 2 decimals. */
export const fmtCpu = (x: number | undefined): string => (ok(x) ? x.toFixed(2) : DASH);
/** MB: 1 decimal. */
export const fmtMb = (x: number | undefined): string => (ok(x) ? x.toFixed(1) : DASH);
/** ms: integer. */
export const fmtMs = (x: number | undefined): string => (ok(x) ? String(Math.round(x)) : DASH);
const fmtPct = (x: number | undefined): string => (ok(x) ? x.toFixed(1) : DASH);
const fmtRatio = (x: number | undefined): string => (ok(x) ? x.toFixed(2) : DASH);
/** Escape a value for a markdown table cell. */
const cell = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

/** Two runs compared per N: each one's relay and total cost side by side, and their ratio (`ratio`, e.g. "video ÷ audio"). */
function ratioTable(
  [first, second]: [string, string],
  ratio: string,
  [keyHead, keyAlign]: [string, 'l' | 'r'],
  rows: { n: number; key: string; first: BenchRun; second: BenchRun; relay: number; total: number }[],
): string {
  return table(
    ['N', keyHead, `relay: ${first}`, `relay: ${second}`, `${ratio} (relay)`, `total: ${first}`, `total: ${second}`, `${ratio} (total)`],
    rows.map((r) => [
      String(r.n), r.key,
      fmtCpu(pipelineCost(r.first)), fmtCpu(pipelineCost(r.second)), `**${fmtRatio(r.relay)}**`,
      fmtCpu(totalCost(r.first)), fmtCpu(totalCost(r.second)), fmtRatio(r.total),
    ]),
    ['r', keyAlign, 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

/** The issue's target for a fill: at most +10 % of the app's CPU per call-minute. */
export const FILL_TARGET = 1.1;
const fmtBps = (x: number | undefined): string => (ok(x) ? String(Math.round(x)) : DASH);
const pair = (a: string, b: string): string => `${a} vs ${b}`;
const slim = (q: Quantiles | undefined): string => (q && q.count > 0 ? `${fmtMs(q.p50)}/${fmtMs(q.p99)}` : DASH);
const signed = (x: number): string => (x >= 0 ? `+${Math.round(x)}` : String(Math.round(x)));

/** After each run: what its calls left in Asterisk (a release that failed would show here). */
function leftoversLines(runs: BenchRun[]): string[] {
  const checked = runs.filter((r) => r.leftInAsterisk);
  if (!checked.length) return [];
  const total = (l: AsteriskLeftovers) => l.channels + l.bridges + l.endpoints;
  const dirty = checked.filter((r) => total(r.leftInAsterisk!) > 0);
  const slowest = Math.max(...checked.map((r) => r.leftInAsterisk!.afterMs));
  if (!dirty.length) {
    return [`**Left in Asterisk after each run** (channels, bridges, PJSIP endpoints, listed over ARI and, for PJSIP, the Asterisk CLI once the pipeline stopped): nothing, in every run; clear within ${(slowest / 1000).toFixed(1)} s at most.`, ''];
  }
  return [
    '**Left in Asterisk after the run** (10 s after the pipeline stopped) ⚠:',
    ...dirty.map((r) => `- ${r.n} ${r.pipeline}${r.bridge ? ` (${r.bridge} bridge)` : ''}: ${r.leftInAsterisk!.channels} channels, ${r.leftInAsterisk!.bridges} bridges, ${r.leftInAsterisk!.endpoints} endpoints`),
    '',
  ];
}

/** The fill's cost: audio-only plugin runs with a fill against the same N without a video track. */
function fillSection(runs: readonly BenchRun[]): string[] {
  const rows = fillRatios(runs);
  if (!rows.length) return [];
  const out: string[] = [];
  const fills = [...new Set(rows.map((r) => r.fill))];
  out.push(`## Fill video cost: ${fills.join(', ')} vs no video track (audio-only calls)`, '');
  out.push(
    table(
      ['N', 'fill', 'app CPU-s/call-min: fill vs none', 'fill ÷ none (app)', `≤ ${FILL_TARGET.toFixed(2)}`, 'relay ÷ (app + children)', 'total: fill vs none', 'fill ÷ none (total)', 'MB/call (app): fill vs none', 'latency p50/p99 ms: fill vs none', 'real-time: fill vs none', 'machine CPU %: fill vs none'],
      rows.map((r) => [
        String(r.n), r.fill,
        pair(fmtCpu(r.withFill.cpuPerCallMinute.plugin), fmtCpu(r.without.cpuPerCallMinute.plugin)),
        `**${fmtRatio(r.app)}**`,
        ok(r.app) ? (r.app <= FILL_TARGET ? 'yes' : '**no** ⚠') : DASH,
        fmtRatio(r.relay),
        pair(fmtCpu(totalCost(r.withFill)), fmtCpu(totalCost(r.without))),
        fmtRatio(r.total),
        pair(fmtMb(r.withFill.memPerCallMb.plugin), fmtMb(r.without.memPerCallMb.plugin)),
        pair(slim(r.withFill.latencyMs), slim(r.without.latencyMs)),
        pair(realtimeCell(r.withFill), realtimeCell(r.without)),
        pair(fmtPct(r.withFill.machineCpuPct), fmtPct(r.without.machineCpuPct)),
      ]),
      ['r', 'l', 'r', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  );
  const bytes = rows.filter((r) => r.withFill.streams || r.without.streams);
  if (bytes.length) {
    out.push(
      table(
        ['N', 'fill', 'streams with video: fill vs none', 'video payload B/s per stream', 'audio payload B/s per stream', 'FLV tags at the server B/s per stream: fill vs none', 'RTMP at the server B/s per stream: fill vs none', 'added by the fill (RTMP) B/s', 'one-off child CPU-s per call: fill vs none', 'one-off children done, s after the last answer: fill'],
        bytes.map((r) => {
          const a = r.withFill.streams;
          const b = r.without.streams;
          const added = ok(a?.wireBytesPerSec) && ok(b?.wireBytesPerSec) ? signed(a.wireBytesPerSec - b.wireBytesPerSec) : DASH;
          return [
            String(r.n), r.fill,
            pair(a ? `${a.withVideo}/${r.n}` : DASH, b ? `${b.withVideo}/${r.n}` : DASH),
            fmtBps(a?.videoBytesPerSec), fmtBps(a?.audioBytesPerSec),
            pair(fmtBps(a?.receivedBytesPerSec), fmtBps(b?.receivedBytesPerSec)),
            pair(fmtBps(a?.wireBytesPerSec), fmtBps(b?.wireBytesPerSec)),
            added,
            pair(fmtCpu(r.withFill.oneOffChildCpuPerCall), fmtCpu(r.without.oneOffChildCpuPerCall)),
            r.withFill.oneOffChildrenSec !== undefined ? r.withFill.oneOffChildrenSec.toFixed(1) : DASH,
          ];
        }),
        ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
  }
  out.push(
    'The same audio-only calls, the app started with VIDEO_FILL set to the fill, then to none (no video track); nothing else differs. ' +
      `**app**: the app's Node process alone; the target is at most +${Math.round((FILL_TARGET - 1) * 100)} % (fill ÷ none ≤ ${FILL_TARGET.toFixed(2)}). ` +
      '**payload**: what the app wrote per stream (raw AAC; H.264 access units); **FLV tags**: the payload + FLV tag headers a player at the RTMP server got; **RTMP**: every byte it read (chunk headers too): what the stream costs an upload. ' +
      '**one-off child CPU**: ffmpeg runs that started and ended before the window\'s end, per call (each call\'s slate shows its name: encoded once, while it rings); not in the per-minute figures. ' +
      'The window starts once they are done (the next column: how long after the last answer), so the per-minute figures, latency and real time are the calls\' steady state; the burst of encodes shows in the start-up lag of the results table.',
    '',
  );
  return out;
}

/** Transcode runs: app + transcoder children, against passthrough of the same calls. */
function transcodeSection(runs: readonly BenchRun[]): string[] {
  const rows = transcodeRows(runs);
  if (!rows.length) return [];
  const out: string[] = ['## Transcoded video calls', ''];
  out.push(
    table(
      ['N', 'far end: caller → stream', 'path', 'transcoded calls', 'app', 'transcoders', 'relay (app + transcoders)', 'relay, % of a core per call', '÷ passthrough', 'total', 'MB/call (app + transcoders)', 'real-time calls', 'max drift / stall ms', 'machine CPU %'],
      rows.map(({ run: r, relay }) => {
        const t = r.transcode!;
        return [
          String(r.n),
          cell(`${t.farEnd}: ${t.callerSize} → ${t.mode === 'never' ? t.callerSize : t.streamSize}`),
          t.mode === 'never' ? 'passthrough (never)' : `transcode (${t.mode})`,
          r.streams ? `${r.streams.transcoded}/${r.n}` : DASH,
          fmtCpu(r.cpuPerCallMinute.plugin),
          fmtCpu(r.cpuPerCallMinute.encoders),
          `**${fmtCpu(pipelineCost(r))}**`,
          fmtPct((pipelineCost(r) / 60) * 100),
          fmtRatio(relay),
          fmtCpu(totalCost(r)),
          memCell(r),
          realtimeCell(r),
          `${fmtMs(r.outputs.maxDriftMs)} / ${fmtMs(r.outputs.maxStallMs)}`,
          fmtPct(r.machineCpuPct),
        ];
      }),
      ['r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    'Video calls (audio + H.264) to a far end whose keyframes come 10 s apart and who ignores keyframe requests. ' +
      'VIDEO_TRANSCODE=auto re-encodes such a caller (libx264 ultrafast, a 2 s GOP, the stream\'s size) in one ffmpeg child per call; ' +
      'never passes its H.264 through as sent. The stream size is GENERATED_VIDEO_SIZE (VIDEO_SIZE_WAIT_MS=0), so a bigger stream means scaling up. ' +
      '**transcoders**: the CPU of the app\'s child processes, read from /proc like the encoders (per call-minute: one transcoder per call). ' +
      'The window starts once every call\'s stream shows the caller\'s video on the expected path.',
    '',
  );
  return out;
}

function table(head: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const sep = head.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** A URL from a profile, shortened to something readable (project-relative or from node_modules/). */
export function shortUrl(url: string): string {
  if (!url) return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 6);
  return url.replace(/^file:\/\//, '');
}

const STAGE_HELP: Record<string, string> = {
  RTP: 'receiving RTP/RTCP (UDP sockets, parsing, gating)',
  buffer: 'jitter buffer, G.711 decode, audio timeline, A/V sync, tickers',
  encoder: 'AAC encoding (in-process; or feeding an ffmpeg child with AAC_ENCODER=ffmpeg)',
  video: 'H.264 depacketising and video output',
  FLV: 'FLV muxing',
  RTMP: 'RTMP publishing (chunking, socket writes)',
  ARI: 'Asterisk control (ARI/AMI, WebSocket)',
  SIP: 'SIP signalling',
  REST: 'REST API (fastify)',
  calls: 'call control and hooks',
  logging: 'logging (pino)',
  gc: 'garbage collection',
  idle: 'nothing to do (idle) or native work outside JS (program)',
  other: 'everything else (Node internals, timers, …)',
};

const FILL_LABEL: Record<FillKind, string> = { slate: 'slate', black: 'black', none: 'none' };

/** What the run's streams carry as video: the fill (audio-only calls), the caller's H.264, or a transcode run's path. */
export function videoCell(run: BenchRun): string {
  const t = run.transcode;
  if (t) {
    const path = t.mode === 'never' ? 'passthrough' : `transcode → ${t.streamSize}`;
    const count = run.streams ? ` (${run.streams.transcoded}/${run.n} transcoded)` : '';
    return `${t.farEnd} ${t.callerSize}, ${path}${count}`;
  }
  const fill = run.fill ? FILL_LABEL[run.fill] : run.pipeline === 'naive' ? 'none' : DASH;
  if (run.videoCalls === 0) return fill;
  if (run.videoCalls >= run.n) return "caller's H.264";
  return `caller's H.264 + ${fill}`;
}

function machineCell(run: BenchRun): string {
  return run.otherCpuPct !== undefined ? `${fmtPct(run.machineCpuPct)} (${fmtPct(run.otherCpuPct)})` : fmtPct(run.machineCpuPct);
}

function realtimeCell(run: BenchRun): string {
  const s = `${run.calls.realtime}/${run.n}`;
  return allRealtime(run) ? s : `**${s}** ⚠`;
}

function relayCell(run: BenchRun): string {
  const c = run.cpuPerCallMinute;
  const total = fmtCpu(pipelineCost(run));
  return c.plugin !== undefined ? `${total} (${fmtCpu(c.plugin)} + ${fmtCpu(c.encoders)})` : total;
}

function memCell(run: BenchRun): string {
  const m = run.memPerCallMb;
  const total = fmtMb(relayMemPerCall(run));
  return m.plugin !== undefined ? `${total} (${fmtMb(m.plugin)} + ${fmtMb(m.encoders)})` : total;
}

function quantCell(q: Quantiles | undefined, hi: 'p99' | 'max'): string {
  return q && q.count > 0 ? `${fmtMs(q.p50)} / ${fmtMs(q[hi])}` : DASH;
}

function dateOf(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** The whole report as a self-contained markdown document. `plot` is a relative path to an image to embed. */
export function renderMarkdown(report: BenchReport, opts: { plot?: string } = {}): string {
  const out: string[] = [];
  const m = report.machine;
  const runs = sortRuns(report.runs);
  out.push('# SIP → RTMP relay benchmark', '');
  out.push(`Run on ${dateOf(report.createdAt)}.`, '');
  out.push(
    table(
      ['CPU', 'cores', 'RAM', 'OS', 'kernel', 'Node', 'ffmpeg', 'Asterisk', 'nginx'],
      [[m.cpuModel, String(m.cores), `${fmtMb(m.memGiB)} GiB`, m.os, m.kernel, m.node, m.ffmpeg, m.asterisk, m.nginx].map(cell)],
    ),
    '',
  );
  out.push(
    'Each run places N concurrent calls and relays every one of them to the RTMP server, either through the app ' +
      '(**plugin**: one Node process, one small AAC encoder per call) or through the baseline (**naive**: one ffmpeg per call ' +
      'doing everything). CPU is measured from /proc over the window where all calls are up and is given as ' +
      '**CPU-seconds per call-minute**: 0.60 means each call costs 1 % of one core (0.6 s of CPU per 60 s of call).',
    '',
  );

  const settings = Object.entries(report.settings);
  if (settings.length) {
    out.push('## Settings', '');
    out.push(table(['setting', 'value'], settings.map(([k, v]) => [cell(k), cell(String(v))])), '');
  }

  if (report.findings?.length) {
    out.push('## Findings', '');
    for (const f of report.findings) out.push(`- ${f}`);
    out.push('');
  }

  if (opts.plot) out.push(`![relay CPU and machine CPU vs concurrent calls](${opts.plot})`, '');

  out.push('## Results', '');
  if (!runs.length) out.push('No runs.', '');
  else {
    out.push(
      table(
        [
          'N',
          'pipeline',
          'video calls',
          'video track',
          'relay CPU-s/call-min (plugin + children)',
          'Asterisk',
          'nginx',
          'total',
          'load gen (not in total)',
          'MB/call (plugin + children)',
          'latency p50/p99 ms',
          'first media p50/max ms',
          'real-time calls',
          'max drift / stall ms (start-up lag)',
          'machine CPU % (not ours)',
        ],
        runs.map((r) => [
          String(r.n),
          r.bridge ? `${r.pipeline} (${r.bridge} bridge)` : r.pipeline,
          String(r.videoCalls),
          cell(videoCell(r)),
          relayCell(r),
          fmtCpu(r.cpuPerCallMinute.asterisk),
          fmtCpu(r.cpuPerCallMinute.nginx),
          fmtCpu(totalCost(r)),
          fmtCpu(r.cpuPerCallMinute.loadGenerators),
          memCell(r),
          quantCell(r.latencyMs, 'p99'),
          quantCell(r.firstMediaMs, 'max'),
          realtimeCell(r),
          `${fmtMs(r.outputs.maxDriftMs)} / ${fmtMs(r.outputs.maxStallMs)}${r.outputs.startupDriftMs !== undefined ? ` (${fmtMs(r.outputs.startupDriftMs)})` : ''}`,
          machineCell(r),
        ]),
        ['r', 'l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
    );
    out.push(
      '- **relay**: the CPU we own: for plugin the app process + its child processes (shown in brackets: the video transcoders, or the AAC encoders with AAC_ENCODER=ffmpeg), for naive the per-call ffmpegs.',
      '- **video track**: what the streams carry as video: the fill of audio-only calls (VIDEO_FILL: slate, black, none = no video track), the caller\'s H.264, or a transcode run\'s path (see below).',
      '- **total** = relay + Asterisk + nginx; the load generators (the fake phones) and the observer run on the same machine but are not counted.',
      '- **latency**: RTP packet arriving at the app → its FLV tag written, over the window (plugin only). **first media**: call answered → first media at the RTMP server.',
      '- **real-time calls**: calls whose RTMP output kept up with real time for the whole window (timestamps within 100 ms of the clock, no gap over 200 ms, as seen by a player at the server); ⚠ marks runs where some did not.',
      '- **max drift / stall**: the worst stream in the window; **start-up lag**: how far a stream\'s timestamps ran from the clock before the window (a pipeline that buffers at the start, then bursts, delivers everything that much late).',
      '- **machine CPU %**: the whole machine, as % of all cores (100 % = every core busy); **not ours**: the part no process above used (the idle far ends, the kernel\'s network work, anything else on the machine).',
      '',
    );
    out.push(...leftoversLines(runs));
  }

  out.push(...fillSection(runs));
  out.push(...transcodeSection(runs));

  const ratios = costRatios(runs);
  if (ratios.length) {
    const withFill = ratios.some((r) => r.fill);
    out.push(
      '## Plugin vs naive', '',
      ratioTable(['plugin', 'naive'], 'plugin ÷ naive', [withFill ? 'video calls / plugin fill' : 'video calls', withFill ? 'l' : 'r'],
        ratios.map((r) => ({ n: r.n, key: withFill ? `${r.videoCalls} / ${r.fill ?? DASH}` : String(r.videoCalls), first: r.plugin, second: r.naive, relay: r.relay, total: r.total }))),
      '', 'Below 1 the plugin needs less CPU per call than one ffmpeg per call; 0.25 means a quarter of it.' +
        (withFill ? ' The naive pipeline\'s audio-only streams have no video track; the plugin\'s fill is given per row.' : ''), '',
    );
  }

  const video = videoRatios(runs);
  if (video.length) {
    out.push(
      '## Video calls vs audio-only calls', '',
      ratioTable(['audio', 'video'], 'video ÷ audio', ['pipeline', 'l'], video.map((r) => ({ n: r.n, key: r.pipeline, first: r.audio, second: r.video, relay: r.relay, total: r.total }))),
      '', 'Every call sends H.264 video in the video runs, none in the audio-only runs; everything else is the same.', '',
    );
  }

  const failed = runs.filter((r) => r.calls.failed > 0 || r.calls.failures.length > 0 || r.calls.established < r.calls.placed);
  if (failed.length) {
    out.push('## Failures', '');
    for (const r of failed) {
      const reasons = [...new Set(r.calls.failures)];
      const shown = reasons.slice(0, 5).map((f) => f.replace(/\s+/g, ' ').slice(0, 200));
      const more = reasons.length > shown.length ? ` (+${reasons.length - shown.length} more)` : '';
      out.push(
        `- N=${r.n} ${r.pipeline}${r.videoCalls ? ` (${r.videoCalls} video)` : ''}: ${r.calls.placed} placed, ${r.calls.established} established, ${r.calls.failed} failed` +
          (shown.length ? `: ${shown.join('; ')}${more}` : ''),
      );
    }
    out.push('');
  }

  const p = report.profile;
  if (p) {
    const busy = p.busyMs ?? p.totalMs - (p.stages.find((s) => s.stage === 'idle')?.selfMs ?? 0);
    out.push(`## Where the app's CPU goes (profile, N = ${p.n}, ${p.pipeline}${p.fill ? `, fill ${p.fill}` : ''})`, '');
    out.push(
      `The app's main thread was profiled for ${(p.totalMs / 1000).toFixed(1)} s and was busy for ${(busy / 1000).toFixed(1)} s of it ` +
        `(${fmtPct(p.totalMs > 0 ? (100 * busy) / p.totalMs : undefined)} %). Time spent in library or Node code is counted ` +
        'to the stage of the project code that called it.',
      '',
    );
    out.push(
      table(
        ['stage', 'what', 'self ms', '% of busy', '% of profile'],
        p.stages.map((s) => [
          s.stage,
          STAGE_HELP[s.stage] ?? '',
          fmtMs(s.selfMs),
          s.stage === 'idle' ? DASH : fmtPct(s.pctBusy ?? (busy > 0 ? (100 * s.selfMs) / busy : undefined)),
          fmtPct(s.pct),
        ]),
        ['l', 'l', 'r', 'r', 'r'],
      ),
      '',
    );
    const top = p.topFunctions.slice(0, 10);
    if (top.length) {
      out.push('Top functions by self time:', '');
      out.push(
        table(
          ['#', 'function', 'file', 'stage', 'self ms', '% of profile'],
          top.map((f, i) => [
            String(i + 1),
            cell(`\`${f.name}\``),
            cell(shortUrl(f.url) + (f.line !== undefined && f.url ? `:${f.line + 1}` : '')),
            f.stage ?? DASH,
            fmtMs(f.selfMs),
            fmtPct(f.pct),
          ]),
          ['r', 'l', 'l', 'l', 'r', 'r'],
        ),
        '',
      );
    }
  }

  if (report.notes?.length) {
    out.push('## Notes', '');
    for (const n of report.notes) out.push(`- ${n}`);
    out.push('');
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// SVG plot

const W = 960;
const H = 540;
const COLORS: Record<BenchRun['pipeline'], string> = { plugin: '#1f6fb4', naive: '#e07b00' };
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (x: number): string => (Math.round(x * 10) / 10).toString();

/** Round tick step (1, 2, 2.5, 5 × 10^k) giving about `count` ticks from 0 to max. */
function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) max = 1;
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toFixed(10)));
  return ticks;
}

function tickLabel(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 10) return String(Math.round(v));
  return String(Number(v.toPrecision(3)));
}

interface Panel {
  x0: number;
  x1: number;
  y0: number; // top
  y1: number; // bottom
  title: string;
  yLabel: string;
  value: (r: BenchRun) => number;
  /** Horizontal reference line. */
  ref?: { value: number; label: string };
}

/** One line of the plot: a pipeline (and the plugin's fill), its runs by N. */
interface Series {
  pipeline: BenchRun['pipeline'];
  fill?: FillKind;
  label: string;
  color: string;
  dash?: string;
  runs: BenchRun[];
}

/** plugin with a slate (or no fill given) in the pipeline's colour; black and none in other shades, dashed. */
function seriesStyle(pipeline: BenchRun['pipeline'], fill: FillKind | undefined, fills: number): Pick<Series, 'label' | 'color' | 'dash'> {
  if (pipeline === 'naive') return { label: 'naive (one ffmpeg per call)', color: COLORS.naive };
  const base = 'plugin (this app)';
  if (!fill || fills <= 1) return { label: fill && fill !== 'slate' ? `${base}, fill ${fill}` : base, color: COLORS.plugin };
  if (fill === 'slate') return { label: 'plugin, slate', color: COLORS.plugin };
  return fill === 'none' ? { label: 'plugin, no video', color: '#6fa8dc', dash: '6 4' } : { label: 'plugin, black', color: '#0b3d6b', dash: '2 3' };
}

function renderPanel(p: Panel, series: Series[], ns: number[]): string {
  const parts: string[] = [];
  const all = series.flatMap((s) => s.runs);
  const vals = all.map(p.value).filter((v) => Number.isFinite(v));
  const dataMax = Math.max(0, ...vals, p.ref ? p.ref.value : 0);
  const ticks = niceTicks(dataMax * 1.08 || 1);
  const yMax = ticks[ticks.length - 1]!;
  const X = (n: number) => p.x0 + ((ns.indexOf(n) + 0.5) * (p.x1 - p.x0)) / Math.max(1, ns.length);
  const Y = (v: number) => p.y1 - (Math.max(0, v) / yMax) * (p.y1 - p.y0);

  parts.push(`<text x="${num((p.x0 + p.x1) / 2)}" y="${p.y0 - 14}" text-anchor="middle" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
  parts.push(`<rect x="${p.x0}" y="${p.y0}" width="${p.x1 - p.x0}" height="${p.y1 - p.y0}" fill="#fafafa" stroke="#bbb"/>`);
  for (const t of ticks) {
    const y = num(Y(t));
    if (t > 0) parts.push(`<line x1="${p.x0}" x2="${p.x1}" y1="${y}" y2="${y}" stroke="#e3e3e3"/>`);
    parts.push(`<text x="${p.x0 - 6}" y="${y}" dy="4" text-anchor="end" font-size="11" fill="#444">${tickLabel(t)}</text>`);
  }
  for (const n of ns) {
    const x = num(X(n));
    parts.push(`<line x1="${x}" x2="${x}" y1="${p.y1}" y2="${p.y1 + 4}" stroke="#888"/>`);
    parts.push(`<text x="${x}" y="${p.y1 + 17}" text-anchor="middle" font-size="11" fill="#444">${n}</text>`);
  }
  parts.push(`<text x="${num((p.x0 + p.x1) / 2)}" y="${p.y1 + 36}" text-anchor="middle" font-size="12">concurrent calls (N)</text>`);
  const ly = (p.y0 + p.y1) / 2;
  parts.push(`<text x="${p.x0 - 44}" y="${num(ly)}" text-anchor="middle" font-size="12" transform="rotate(-90 ${p.x0 - 44} ${num(ly)})">${esc(p.yLabel)}</text>`);
  if (p.ref) {
    const y = num(Y(p.ref.value));
    parts.push(`<line class="ref" x1="${p.x0}" x2="${p.x1}" y1="${y}" y2="${y}" stroke="#c00" stroke-width="1.5" stroke-dasharray="7 5"/>`);
    parts.push(`<text x="${p.x0 + 6}" y="${y}" dy="-5" font-size="11" fill="#c00">${esc(p.ref.label)}</text>`);
  }
  for (const s of series) {
    const pts = s.runs.filter((r) => Number.isFinite(p.value(r))).map((r) => ({ r, x: X(r.n), y: Y(p.value(r)) }));
    const color = s.color;
    parts.push(`<g class="series" data-pipeline="${s.pipeline}"${s.fill ? ` data-fill="${s.fill}"` : ''}>`);
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts.map((q) => `${num(q.x)},${num(q.y)}`).join(' ')}"/>`);
    for (const q of pts) {
      const title = `<title>${esc(`${s.label}, N=${q.r.n}: ${tickLabel(p.value(q.r))}${allRealtime(q.r) ? '' : ` (${q.r.calls.realtime}/${q.r.n} real-time)`}`)}</title>`;
      if (allRealtime(q.r)) parts.push(`<circle cx="${num(q.x)}" cy="${num(q.y)}" r="5" fill="${color}" stroke="#fff" stroke-width="1.5">${title}</circle>`);
      else parts.push(`<circle class="not-realtime" cx="${num(q.x)}" cy="${num(q.y)}" r="6.5" fill="#fff" stroke="#d00" stroke-width="2.5">${title}</circle>`);
    }
    parts.push('</g>');
  }
  return parts.join('\n');
}

/** The plot: relay CPU per call-minute (left) and whole-machine CPU % (right) vs N, audio-only runs. */
export function renderSvg(report: BenchReport): string {
  const audio = sortRuns(report.runs.filter((r) => isAudioRun(r) && !r.transcode));
  // One line per pipeline and fill; one point per N: the run with the fewest video calls.
  const fills = new Set(audio.filter((r) => r.pipeline === 'plugin').map((r) => r.fill)).size;
  const series: Series[] = [];
  for (const r of audio) {
    const fill = r.pipeline === 'plugin' ? r.fill : undefined;
    let s = series.find((x) => x.pipeline === r.pipeline && x.fill === fill);
    if (!s) series.push((s = { pipeline: r.pipeline, ...(fill ? { fill } : {}), ...seriesStyle(r.pipeline, fill, fills), runs: [] }));
    if (!s.runs.some((x) => x.n === r.n)) s.runs.push(r);
  }
  series.sort((a, b) => PIPELINE_ORDER[a.pipeline] - PIPELINE_ORDER[b.pipeline] || (a.fill ? FILL_ORDER[a.fill] : -1) - (b.fill ? FILL_ORDER[b.fill] : -1));
  const ns = [...new Set(audio.map((r) => r.n))].sort((a, b) => a - b);
  const m = report.machine;
  const parts: string[] = [];
  const title = `SIP → RTMP relay: plugin vs one ffmpeg per call — ${m.cpuModel}, ${m.cores} cores`;
  const titleSize = Math.max(10, Math.min(18, Math.floor((W - 40) / (0.64 * title.length))));
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}" fill="#222">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="${titleSize}" font-weight="bold">${esc(title)}</text>`,
    `<text x="${W / 2}" y="47" text-anchor="middle" font-size="12" fill="#555">${esc(`audio-only calls · ${dateOf(report.createdAt)}`)}</text>`,
  );
  const top = 92;
  const bottom = 440;
  if (!ns.length) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="16" fill="#888">no audio-only runs to plot</text>`);
  } else {
    parts.push(
      renderPanel({ x0: 90, x1: 450, y0: top, y1: bottom, title: 'relay CPU-s per call-minute vs concurrent calls', yLabel: 'CPU-s per call-minute (plugin + children)', value: pipelineCost }, series, ns),
      renderPanel(
        { x0: 570, x1: 930, y0: top, y1: bottom, title: 'whole-machine CPU % vs concurrent calls', yLabel: `% of all ${m.cores} cores`, value: (r) => r.machineCpuPct, ref: { value: 100, label: '100 % = all cores busy' } },
        series,
        ns,
      ),
    );
  }
  // Legend.
  const ly = 510;
  const items: string[] = [];
  // Centred: each item is a 30 px line, a gap and its label (about 7 px a character).
  const widthOf = (label: string) => 38 + Math.ceil(label.length * 6.8) + 24;
  const legendWidth = series.reduce((w, s) => w + widthOf(s.label), 0) + widthOf('not every call real-time');
  let x = Math.max(10, Math.round((W - legendWidth) / 2));
  for (const s of series) {
    items.push(
      `<line x1="${x}" x2="${x + 30}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
      `<circle cx="${x + 15}" cy="${ly}" r="5" fill="${s.color}" stroke="#fff" stroke-width="1.5"/>`,
      `<text x="${x + 38}" y="${ly}" dy="4" font-size="12">${esc(s.label)}</text>`,
    );
    x += widthOf(s.label);
  }
  items.push(
    `<circle cx="${x + 15}" cy="${ly}" r="6.5" fill="#fff" stroke="#d00" stroke-width="2.5"/>`,
    `<text x="${x + 28}" y="${ly}" dy="4" font-size="12">not every call real-time</text>`,
  );
  parts.push(`<g class="legend">${items.join('')}</g>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------------------
// Files

/** Headless Chromium to use: `explicit` if given (and present), else $CHROMIUM, /usr/bin/chromium or /usr/bin/chromium-browser. */
export function findChromium(explicit?: string): string | undefined {
  const candidates = explicit !== undefined ? [explicit] : [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((c): c is string => !!c && existsSync(c));
}

export interface PngOptions {
  /** Chromium binary to use instead of searching (tests). */
  chromium?: string;
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
}

/** Render an SVG file to a 960×540 PNG with headless Chromium. Never throws. */
export async function renderPng(svgPath: string, pngPath: string, opts: PngOptions = {}): Promise<{ ok: true } | { ok: false; reason: string }> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const png = resolve(pngPath);
  await rm(png, { force: true }).catch(() => undefined); // never leave a stale plot behind
  const chromium = findChromium(opts.chromium);
  if (!chromium) return { ok: false, reason: opts.chromium ? `Chromium not found at ${opts.chromium}` : 'Chromium not found (set CHROMIUM, or install /usr/bin/chromium)' };
  let profileDir: string | undefined;
  try {
    profileDir = await mkdtemp(join(tmpdir(), 'bench-chromium-'));
    const args = [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--hide-scrollbars',
      `--window-size=${W},${H}`,
      '--force-device-scale-factor=1',
      '--no-first-run',
      '--no-default-browser-check',
      `--user-data-dir=${profileDir}`,
      `--screenshot=${png}`,
      pathToFileURL(resolve(svgPath)).href,
    ];
    const result = await new Promise<{ code: number | null; signal: string | null; stderr: string; timedOut: boolean; error?: Error }>((done) => {
      let stderr = '';
      let timedOut = false;
      const child = spawn(chromium, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      const killGroup = (sig: NodeJS.Signals) => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          /* already gone */
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup('SIGKILL');
      }, timeoutMs);
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      child.on('error', (error) => {
        clearTimeout(timer);
        done({ code: null, signal: null, stderr, timedOut, error });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        killGroup('SIGTERM'); // helpers (crashpad, zygote) it may have left behind
        done({ code, signal, stderr, timedOut });
      });
    });
    const size = await stat(png).then((s) => s.size).catch(() => 0);
    if (size > 0) return { ok: true };
    const why = result.error
      ? result.error.message
      : result.timedOut
        ? `timed out after ${timeoutMs} ms`
        : `exit ${result.code ?? result.signal}, no screenshot (${result.stderr.trim().split('\n').slice(-2).join(' / ') || 'no output'})`;
    return { ok: false, reason: `Chromium (${chromium}) failed: ${why}` };
  } catch (e) {
    return { ok: false, reason: `Chromium (${chromium}) failed: ${(e as Error).message}` };
  } finally {
    if (profileDir) await rm(profileDir, { recursive: true, force: true, maxRetries: 3, retryDelay: 200 }).catch(() => undefined);
  }
}

/**
 * Write <base>.json, <base>.svg, <base>.png (if Chromium can render it) and <base>.md (which embeds the
 * PNG, or the SVG without it) into dir. If the PNG can't be made, a note says why in the JSON and markdown.
 */
export async function writeReport(report: BenchReport, dir: string, baseName = 'bench', opts: PngOptions = {}): Promise<{ json: string; md: string; svg: string; png?: string }> {
  const abs = resolve(dir);
  await mkdir(abs, { recursive: true });
  const paths = { json: join(abs, `${baseName}.json`), md: join(abs, `${baseName}.md`), svg: join(abs, `${baseName}.svg`), png: join(abs, `${baseName}.png`) };
  await writeFile(paths.svg, renderSvg(report));
  const rendered = await renderPng(paths.svg, paths.png, opts);
  let out = report;
  if (!rendered.ok) out = { ...report, notes: [...(report.notes ?? []), `No PNG plot (${rendered.reason}); see ${baseName}.svg.`] };
  await writeFile(paths.json, JSON.stringify(out, null, 2) + '\n');
  await writeFile(paths.md, renderMarkdown(out, { plot: basename(rendered.ok ? paths.png : paths.svg) }));
  return rendered.ok ? { json: paths.json, md: paths.md, svg: paths.svg, png: paths.png } : { json: paths.json, md: paths.md, svg: paths.svg };
}
