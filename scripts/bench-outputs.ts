/**
 * What each extra output kind costs per call: N streams of real encoded media (640x360 H.264 at a phone's
 * bitrate + 64 kbit/s AAC, played in real time, as a call's encoded stream is) each get one output of a
 * kind, for D seconds:
 *   none       the streams alone (the baseline the others are measured against);
 *   rtmp       one RTMP push each, to the sandbox's nginx (in-process muxing and socket);
 *   srt        one SRT push each, to an ffmpeg SRT listener per stream (an ffmpeg child per output);
 *   recording  one recording each (FLV written in-process, an MP4 made at the end: the remux is counted).
 * CPU is the kernel's count for this process and its children (the SRT children, the remuxes): while the
 * streams play (per output-minute, the output's start included) and at the end (the SRT flush, the MP4 made);
 * memory is PSS (ours plus children: shared library pages split among them) per output at the end of the
 * run, against the baseline.
 *
 *   node dist/scripts/bench-outputs.js [streams=10] [seconds=60] [kinds=rtmp,srt,recording]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileRecordingStore } from '../adapters/recording/store.js';
import { RtmpPublisher } from '../adapters/rtmp/publisher.js';
import { RtmpSink } from '../adapters/rtmp/rtmp-sink.js';
import { SrtSink } from '../adapters/srt/srt-sink.js';
import { cpuSeconds, descendants, procStat, pssMb } from '../plugin/lib/proc.js';
import { LiveStream } from '../plugin/media/output/live-stream.js';
import { Push } from '../plugin/media/output/push.js';
import { Recording } from '../plugin/media/output/recording.js';
import { parseOutputTarget, type RtmpOutputTarget, type SrtOutputTarget } from '../plugin/media/output/target.js';
import { encodedClip, playClip } from '../test/helpers/encoded-clip.js';
import { readSandboxEnv } from './lib/sandbox-env.js';

type Kind = 'none' | 'rtmp' | 'srt' | 'recording';
const N = Number(process.argv[2] ?? 10);
const SECONDS = Number(process.argv[3] ?? 60);
const BASE_PORT = 9900;

const clip = encodedClip(10, { width: 640, height: 360, gopFrames: 50, videoKbps: 600 });
/** PSS, not RSS: N ffmpeg children share their libraries' pages; PSS splits those among them. */
const pssOf = (pids: number[]) => pids.reduce((s, p) => s + pssMb(p), 0);
/** This process's CPU plus that of its children that have exited (cutime, cstime): SRT ffmpegs, remuxes. */
const cpuWithReapedChildren = () => {
  const f = procStat(process.pid)!.fields;
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
};

/** Own CPU, children that exited (cutime, cstime), and children alive now (their CPU so far). */
function cpuNow(exclude: (pid: number) => boolean): number {
  const alive = descendants(process.pid).filter((p) => !exclude(p)).reduce((s, p) => s + cpuSeconds(p), 0);
  return cpuWithReapedChildren() + alive;
}

interface Result { steadyCpuPerOutputMin: number; endCpuPerOutput: number; rssMb: number; children: number }

async function run(kind: Kind): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-outputs-'));
  const listeners: ChildProcess[] = [];
  const pushes: Push[] = [];
  const recordings: Recording[] = [];
  const store = new FileRecordingStore({ dir });
  const streams = Array.from({ length: N }, () => new LiveStream());
  const env = kind === 'rtmp' ? readSandboxEnv() : undefined;
  for (const [i, stream] of streams.entries()) {
    if (kind === 'srt') {
      listeners.push(spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-i', `srt://127.0.0.1:${BASE_PORT + i}?mode=listener`, '-c', 'copy', '-f', 'null', '-'], { stdio: 'ignore' }));
    }
    if (kind === 'rtmp' || kind === 'srt') {
      const url = kind === 'rtmp' ? `${env!.RTMP_URL}/bench-outputs-${i}` : `srt://127.0.0.1:${BASE_PORT + i}`;
      const target = parseOutputTarget(url);
      const sink = () => (target.kind === 'srt' ? new SrtSink({ target: (target as SrtOutputTarget).srt }) : new RtmpSink(new RtmpPublisher({ target: (target as RtmpOutputTarget).rtmp })));
      pushes.push(new Push(stream, sink));
    }
    if (kind === 'recording') {
      const rec = new Recording(await store.open(`bench-${i}`));
      stream.addSink(rec);
      recordings.push(rec);
    }
  }
  await new Promise((r) => setTimeout(r, 300)); // listeners bound
  // The receivers are not ours to count: only this process and what it spawned for outputs.
  const isListener = (pid: number) => listeners.some((l) => l.pid === pid);
  const cpu0 = cpuNow(isListener);
  const t0 = performance.now();
  const started = pushes.map((p) => p.start());
  await Promise.all([...streams.map((s) => playClip(s, clip, SECONDS * 1000)), ...started]);
  const wallMin = (performance.now() - t0) / 60_000;
  const cpu1 = cpuNow(isListener);
  const mine = [process.pid, ...descendants(process.pid).filter((p) => !isListener(p))];
  const rss = pssOf(mine);
  // The end: SRT children flush and exit; recordings become MP4s (an ffmpeg remux each).
  await Promise.all(recordings.map((r, i) => r.stop(`bench-${i}`, store)));
  await Promise.all(pushes.map((p) => p.close()));
  await new Promise((r) => setTimeout(r, 200)); // the children's exits reaped
  const cpu2 = cpuNow(isListener);
  for (const l of listeners) l.kill('SIGKILL'); // after the count
  await new Promise((r) => setTimeout(r, 500)); // reaped before the next kind's count starts
  rmSync(dir, { recursive: true, force: true });
  return { steadyCpuPerOutputMin: (cpu1 - cpu0) / N / wallMin, endCpuPerOutput: (cpu2 - cpu1) / N, rssMb: rss, children: mine.length - 1 };
}

const results: Partial<Record<Kind, Result>> = {};
const kinds = (process.argv[4]?.split(',') ?? ['none', 'rtmp', 'srt', 'recording']) as Kind[];
if (!kinds.includes('none')) kinds.unshift('none');
console.log(`${N} streams × ${SECONDS} s, 640x360 H.264 ~${Math.round((clip.frames.reduce((s, f) => s + f.payload.length, 0) * 8) / clip.durationMs)} kbit/s + AAC`);
for (const kind of kinds) {
  const r = (results[kind] = await run(kind));
  const base = results.none!;
  if (kind === 'none') {
    console.log(`none       the streams alone: ${r.steadyCpuPerOutputMin.toFixed(3)} CPU-s per stream-minute, PSS ${r.rssMb.toFixed(1)} MB`);
    continue;
  }
  console.log(`${kind.padEnd(10)} +${(r.steadyCpuPerOutputMin - base.steadyCpuPerOutputMin).toFixed(3)} CPU-s per output-minute (start included), ` +
    `+${r.endCpuPerOutput.toFixed(3)} CPU-s at its end, +${((r.rssMb - base.rssMb) / N).toFixed(1)} MB PSS per output, ${r.children / N} processes per output`);
}
process.exit(0);
