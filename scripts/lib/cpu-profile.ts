/**
 * Summarise a V8 CPU profile (the `.cpuprofile` JSON that `node --cpu-prof` writes) into "where does the
 * app's CPU go": self time per pipeline stage (RTP in, buffering, encoder, video, FLV, RTMP, ARI, …) and the
 * functions with the most self time.
 *
 * Pure: no I/O except the small `readCpuProfile()` helper.
 *
 * Timing convention (the one Chrome DevTools uses): sample i is taken at
 *   t[i] = startTime + timeDeltas[0] + … + timeDeltas[i]
 * and stands for the interval until the next sample, so its duration is timeDeltas[i + 1]; the last sample
 * lasts until endTime. Negative deltas (V8 occasionally emits them) count as 0. All profile times are µs;
 * everything returned is ms.
 *
 * Stage attribution: a node's self time goes to the stage of the NEAREST node on its path to the root
 * (the node itself first, then its caller, …) whose frame classifies to a stage. So `Buffer.from` called
 * from flv.js counts as FLV, and a socket write called from the RTMP publisher counts as RTMP. Time with no
 * classified frame on its path goes to 'idle' for (idle)/(program), 'gc' for (garbage collector), else 'other'.
 */
import { readFileSync } from 'node:fs';
import type { StageShare } from './bench-report.js';

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
  scriptId?: string | number;
}

export interface CpuProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
  /** Older profiles link child → parent instead of parent → children. */
  parent?: number;
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface TopFunction {
  name: string;
  url: string;
  selfMs: number;
  /** % of the profile's total time. */
  pct: number;
  /** 0-based line, as in the profile. */
  line?: number;
  /** The stage its time went to; 'A/B' when it was called from several stages. */
  stage?: string;
}

export interface ProfileStats {
  /** Profiled wall time (first sample → endTime), ms. */
  totalMs: number;
  /** totalMs minus the 'idle' stage: time the main thread was doing something. */
  busyMs: number;
  /** Every stage that got time, most first; pct is % of totalMs, pctBusy % of busyMs (absent for 'idle'). */
  stages: StageShare[];
  /** The functions (merged by name + url + line) with the most self time, most first; (idle) and (root) left out. */
  topFunctions: TopFunction[];
}

/** Maps a frame to a stage, or null to let it inherit its caller's stage. */
export type StageClassifier = (url: string, functionName: string) => string | null;

/** Stage names defaultStage() can return, in pipeline order (handy for stable tables). */
export const STAGES = ['RTP', 'buffer', 'encoder', 'video', 'FLV', 'RTMP', 'ARI', 'SIP', 'REST', 'calls', 'logging'] as const;

/** Basenames (no extension) of project files under plugin/media/ and what they are. */
const MEDIA_FILES: Record<string, string> = {
  rtp: 'RTP',
  'rtp-gate': 'RTP',
  rtcp: 'RTP',
  seq: 'RTP',
  'jitter-buffer': 'buffer',
  'audio-timeline': 'buffer',
  g711: 'buffer',
  pcm: 'buffer',
  sync: 'buffer',
  ticker: 'buffer',
  sounds: 'buffer',
  adts: 'encoder',
  'video-ingest': 'video',
  'h264-depacketizer': 'video',
  'video-output': 'video',
  'caller-feed': 'video',
  flv: 'FLV',
  'live-stream': 'FLV', // the fan-out: neutral frames to every output
  frame: 'FLV',
  sink: 'RTMP',
  target: 'calls',
  push: 'RTMP',
};

/** Substring rules for dependencies, tried in order. */
const PACKAGE_RULES: [string, string][] = [
  ['node_modules/ws/', 'ARI'],
  ['node_modules/fastify', 'REST'],
  ['node_modules/@fastify/', 'REST'],
  ['node_modules/light-my-request', 'REST'],
  ['node_modules/find-my-way', 'REST'],
  ['node_modules/avvio', 'REST'],
  ['node_modules/pino', 'logging'],
  ['node_modules/sonic-boom', 'logging'],
  ['node_modules/thread-stream', 'logging'],
];

/** Directory rules for project files (matched on the path after the last `/plugin/` or `/adapters/`). */
const PROJECT_DIRS: [RegExp, string][] = [
  [/\/plugin\/media\/encode\/aac\//, 'encoder'],
  [/\/plugin\/media\/encode\/h264\//, 'video'],
  [/\/plugin\/rtmp\//, 'RTMP'],
  [/\/adapters\/rtmp\//, 'RTMP'],
  [/\/adapters\/hooks\//, 'calls'],
  [/\/plugin\/sip\//, 'SIP'],
  [/\/plugin\/rest\//, 'REST'],
  [/\/plugin\/calls\//, 'calls'],
  [/\/plugin\/hooks\//, 'calls'],
  [/\/plugin\/lib\/log\.[cm]?[jt]s$/, 'logging'],
  [/\/adapters\/rtp\//, 'RTP'],
  [/\/adapters\/ffmpeg\//, 'encoder'],
  [/\/adapters\/ari\//, 'ARI'],
  [/\/adapters\/asterisk\//, 'ARI'],
  [/\/adapters\/ami\//, 'ARI'],
  [/\/adapters\/sip\//, 'SIP'],
];

/**
 * The project's stage map. URLs look like file:///work/main/dist/plugin/media/ingest/rtp.js; Node's own frames
 * have node: URLs (node:dgram, node:internal/dgram, …). Only node:dgram (→ RTP) and node:child_process
 * (→ encoder) get a stage of their own; other internals (node:net, node:stream, …) return null and inherit
 * from whoever called them.
 */
export function defaultStage(url: string, functionName: string): string | null {
  void functionName;
  if (!url) return null;
  if (url.startsWith('node:')) {
    const mod = url.slice(5).replace(/^internal\//, '');
    if (mod === 'dgram' || mod.startsWith('dgram/')) return 'RTP';
    if (mod === 'child_process' || mod.startsWith('child_process/')) return 'encoder';
    return null;
  }
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const tail = url.slice(nm);
    for (const [needle, stage] of PACKAGE_RULES) if (tail.startsWith(needle)) return stage;
    return null;
  }
  const path = url.replace(/[?#].*$/, '');
  for (const [re, stage] of PROJECT_DIRS) if (re.test(path)) return stage;
  const media = /\/plugin\/media\/(?:[^/]+\/)*([^/]+?)\.[cm]?[jt]s$/.exec(path);
  if (media) return MEDIA_FILES[media[1]!] ?? null;
  return null;
}

/** Stage for a path with no classified frame at all. */
function fallbackStage(node: CpuProfileNode): string {
  const fn = node.callFrame.functionName;
  if (fn === '(idle)' || fn === '(program)') return 'idle';
  if (fn === '(garbage collector)') return 'gc';
  return 'other';
}

/** Self time per node id, ms (see the timing convention at the top). */
export function selfTimes(profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0 && deltas.length >= samples.length) {
    let t = profile.startTime;
    const stamps: number[] = [];
    for (let i = 0; i < samples.length; i++) {
      t += Math.max(0, deltas[i] ?? 0);
      stamps.push(t);
    }
    for (let i = 0; i < samples.length; i++) {
      const next = i + 1 < samples.length ? stamps[i + 1]! : Math.max(profile.endTime, stamps[i]!);
      const us = next - stamps[i]!;
      const id = samples[i]!;
      self.set(id, (self.get(id) ?? 0) + us / 1000);
    }
    return self;
  }
  // No sample list: spread the profile's duration over hitCounts.
  const hits = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
  if (hits > 0) {
    const perHit = (profile.endTime - profile.startTime) / 1000 / hits;
    for (const n of profile.nodes) if (n.hitCount) self.set(n.id, n.hitCount * perHit);
  }
  return self;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Summarise a profile: self time per stage and the top functions. */
export function summarizeProfile(profile: CpuProfile, classify: StageClassifier = defaultStage, topCount = 15): ProfileStats {
  const byId = new Map<number, CpuProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    for (const c of n.children ?? []) parent.set(c, n.id);
    if (n.parent !== undefined && !parent.has(n.id)) parent.set(n.id, n.parent);
  }

  // Stage per node, memoised; nodes are walked iteratively (deep stacks are common).
  const own = new Map<number, string | null>();
  const stageOf = new Map<number, string>();
  const ownStage = (n: CpuProfileNode): string | null => {
    let s = own.get(n.id);
    if (s === undefined) {
      s = classify(n.callFrame.url ?? '', n.callFrame.functionName ?? '');
      own.set(n.id, s);
    }
    return s;
  };
  const resolve = (id: number): string => {
    const known = stageOf.get(id);
    if (known !== undefined) return known;
    const path: number[] = [];
    let found: string | undefined;
    const seen = new Set<number>();
    for (let cur: number | undefined = id; cur !== undefined && !seen.has(cur); cur = parent.get(cur)) {
      seen.add(cur);
      const memo = stageOf.get(cur);
      if (memo !== undefined && memo !== 'idle' && memo !== 'gc' && memo !== 'other') {
        found = memo;
        break;
      }
      const node = byId.get(cur);
      if (!node) break;
      const s = ownStage(node);
      if (s) {
        found = s;
        stageOf.set(cur, s);
        break;
      }
      path.push(cur);
    }
    if (found !== undefined) {
      for (const p of path) stageOf.set(p, found);
      return found;
    }
    // Nothing classified on the path: the fallback depends on the node itself, so don't memoise ancestors.
    const node = byId.get(id);
    const fb = node ? fallbackStage(node) : 'other';
    stageOf.set(id, fb);
    return fb;
  };

  const self = selfTimes(profile);
  let totalMs = 0;
  const stageMs = new Map<string, number>();
  const fnMs = new Map<string, TopFunction & { ms: number }>();
  for (const [id, ms] of self) {
    if (ms <= 0) continue;
    totalMs += ms;
    const stage = resolve(id);
    stageMs.set(stage, (stageMs.get(stage) ?? 0) + ms);
    const node = byId.get(id);
    if (!node) continue;
    const fn = node.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)' || fn === '(root)') continue;
    const key = `${fn}\u0000${node.callFrame.url}\u0000${node.callFrame.lineNumber}`;
    const entry = fnMs.get(key);
    if (!entry) fnMs.set(key, { name: fn, url: node.callFrame.url ?? '', line: node.callFrame.lineNumber, stage, selfMs: 0, pct: 0, ms });
    else {
      entry.ms += ms;
      // The same function called from several stages: list them all ('RTP/FLV').
      if (!entry.stage!.split('/').includes(stage)) entry.stage += `/${stage}`;
    }
  }

  const idleMs = stageMs.get('idle') ?? 0;
  const busyMs = totalMs - idleMs;
  const pct = (ms: number, of: number) => (of > 0 ? round((100 * ms) / of, 1) : 0);
  const stages: StageShare[] = [...stageMs]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([stage, ms]) => {
      const share: StageShare = { stage, selfMs: round(ms, 1), pct: pct(ms, totalMs) };
      if (stage !== 'idle') share.pctBusy = pct(ms, busyMs);
      return share;
    });
  const topFunctions: TopFunction[] = [...fnMs.values()]
    .sort((a, b) => b.ms - a.ms || a.name.localeCompare(b.name))
    .slice(0, topCount)
    .map(({ ms, ...f }) => ({ ...f, selfMs: round(ms, 1), pct: pct(ms, totalMs) }));
  return { totalMs: round(totalMs, 1), busyMs: round(busyMs, 1), stages, topFunctions };
}

/** Read and minimally check a .cpuprofile file. */
export function readCpuProfile(file: string): CpuProfile {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Partial<CpuProfile>;
  if (!p || !Array.isArray(p.nodes) || typeof p.startTime !== 'number' || typeof p.endTime !== 'number') {
    throw new Error(`${file}: not a V8 CPU profile (no nodes/startTime/endTime)`);
  }
  return p as CpuProfile;
}
