/**
 * What each extra output kind costs per call: N streams of real encoded media (640x360 H.264 at a phone's
 * bitrate + 64 kbit/s AAC, played in real time, as a call's encoded stream is) each get one output of a
 * kind, for D seconds:
 *   none       the streams alone (the baseline the others are measured against);
 *   rtmp       one RTMP push each, to the sandbox's nginx (in-process muxing and socket);
 *   srt        one SRT push each, to an ffmpeg SRT listener per stream (an ffmpeg child per output);
 *   recording  one recording each (FLV written in-process, an MP4 made at the end: the remux is counted).
 * CPU is the kernel's count for this process and its children (the SRT children), per output-minute;
 * memory is RSS (ours plus children) per output, at the end of the run against the baseline.
 *
 *   node dist/scripts/bench-outputs.js [streams=10] [seconds=60]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileRecordingStore } from '../adapters/recording/store.js';
import { RtmpPublisher } from '../adapters/rtmp/publisher.js';
import { RtmpSink } from '../adapters/rtmp/rtmp-sink.js';
import { SrtSink } from '../adapters/srt/srt-sink.js';
import { descendants, procStat, rssMb } from '../plugin/lib/proc.js';
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

const clip = encodedClip(10, { width: 640, height: 360, gopFrames: 50 });
const ours = () => [process.pid, ...descendants(process.pid)];
const rssOf = (pids: number[]) => pids.reduce((s, p) => s + rssMb(p), 0);
/** This process's CPU plus that of its children that have exited (cutime, cstime): SRT ffmpegs, remuxes. */
const cpuWithReapedChildren = () => {
  const f = procStat(process.pid)!.fields;
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
};

async function run(kind: Kind): Promise<{ cpuPerOutputMin: number; rssMb: number; extraProcesses: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-outputs-'));
  const listeners: ChildProcess[] = [];
  const pushes: Push[] = [];
  const recordings: Recording[] = [];
  const store = new FileRecordingStore({ dir });
  const streams = Array.from({ length: N }, () => new LiveStream());
  const env = kind === 'rtmp' ? readSandboxEnv() : undefined;
  for (const [i, stream] of streams.entries()) {
    if (kind === 'srt') {
      listeners.push(spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-i', `srt://127.0.0.1:${BASE_PORT + i}?mode=listener`, '-c', 'copy', '-f', 'null', '-'], { stdio: 'ignore', detached: true }));
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
  const started = pushes.map((p) => p.start());
  // The listeners are not ours to count: only this process and what it spawned for outputs.
  const mine = () => ours().filter((p) => !listeners.some((l) => l.pid === p));
  const cpu0 = cpuWithReapedChildren();
  const t0 = performance.now();
  await Promise.all([...streams.map((s) => playClip(s, clip, SECONDS * 1000)), ...started]);
  const rss = rssOf(mine());
  const children = mine().length - 1;
  await Promise.all(recordings.map((r, i) => r.stop(`bench-${i}`, store)));
  await Promise.all(pushes.map((p) => p.close()));
  await new Promise((r) => setTimeout(r, 200)); // the children's exits reaped
  const cpu = cpuWithReapedChildren() - cpu0;
  const wallMin = (performance.now() - t0) / 60_000;
  for (const l of listeners) l.kill('SIGKILL'); // after the count: reaped now, they are not ours to count
  await new Promise((r) => setTimeout(r, 500)); // ...and before the next kind's count starts
  rmSync(dir, { recursive: true, force: true });
  return { cpuPerOutputMin: cpu / N / wallMin, rssMb: rss, extraProcesses: children };
}

const results: Record<string, { cpuPerOutputMin: number; rssMb: number; extraProcesses: number }> = {};
for (const kind of ['none', 'rtmp', 'srt', 'recording'] as const) {
  results[kind] = await run(kind);
  const r = results[kind]!;
  const base = results.none!;
  const extraCpu = kind === 'none' ? r.cpuPerOutputMin : r.cpuPerOutputMin - base.cpuPerOutputMin;
  const extraMb = kind === 'none' ? 0 : (r.rssMb - base.rssMb) / N;
  console.log(`${kind.padEnd(10)} ${N} × ${SECONDS} s: CPU ${r.cpuPerOutputMin.toFixed(3)} s per stream-minute (${kind === 'none' ? 'the baseline: feeding the streams' : `+${extraCpu.toFixed(3)} s per output-minute`}), RSS ${r.rssMb.toFixed(1)} MB${kind === 'none' ? '' : ` (+${extraMb.toFixed(1)} MB per output)`}, ${r.extraProcesses} child processes`);
}
process.exit(0);
