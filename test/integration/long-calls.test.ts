/**
 * Long calls: N calls held for M minutes at once through the real sandbox, the app's memory and CPU
 * sampled along the way, and every stream recorded at nginx and judged from its first byte.
 *   - audio calls: sipp (speech-like audio, looped for ever);
 *   - video calls: a softphone (baresip, H.264 from its own encoder) playing the beep/flash media. For
 *     runs past the sandbox softphone's 10-minute file, the test starts its own baresip with the audio
 *     looped to the run's length.
 * Reported: RSS and CPU per call at 10 minutes (or half-way) and at the end, the largest audio timestamp
 * gap of every recording, and the A/V offset over the last minute of the video calls.
 * Asserted: no re-anchor, no gap over 50 ms in any recording, |A/V| ≤ 80 ms at the end, and (on runs of
 * 20 minutes or more) memory flat from the mid-point sample to the end.
 *
 * CI runs 3 calls for 1 minute; `npm run long-calls` runs 20 calls (2 of them video) for 120 minutes
 * (LONG_CALLS, LONG_VIDEO_CALLS, LONG_MINUTES).
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { analyzeAvSync } from '../helpers/av-sync.js';
import { audioInfo, maxTimestampGapMs } from '../helpers/audio-analysis.js';
import { relayRecordedCall, startTestApp, type TestApp } from '../helpers/app.js';
import { SANDBOX_RUN, uniqueId } from '../helpers/sandbox.js';
import type { AudioTimelineStats } from '../../plugin/media/timeline/audio-timeline.js';

const CALLS = Number(process.env.LONG_CALLS ?? 3);
const VIDEO_CALLS = Number(process.env.LONG_VIDEO_CALLS ?? 1);
const MINUTES = Number(process.env.LONG_MINUTES ?? 1);
/** Samples of memory and CPU: every minute, and the one the report compares with the end. */
const MID_MINUTE = Math.min(10, MINUTES / 2);
/** The private softphone's SIP port and RTP ports (clear of the sandbox's). */
const LONG_PHONE_PORT = 5199;

let t: TestApp;
let phone: ChildProcess | undefined;
before(async () => {
  t = await startTestApp({ LOG_LEVEL: 'info' });
});
after(async () => {
  phone?.kill();
  await t?.stop();
});

/** A baresip like the sandbox's video softphone, its audio looped to `minutes` (baresip hangs up at the file's end). */
async function longPhone(minutes: number): Promise<number> {
  // LONG_PRIVATE_PHONE=1 tries the private softphone on a short run.
  if (minutes < 9 && !process.env.LONG_PRIVATE_PHONE) return Number(t.env.BARESIP_VIDEO_PORT);
  const dir = join(SANDBOX_RUN, 'long-phone');
  mkdirSync(dir, { recursive: true });
  const base = readFileSync(join(SANDBOX_RUN, 'baresip-video', 'config'), 'utf8');
  const src = /audio_source\s+aufile,(\S+)/.exec(base)![1]!;
  const videoSrc = /video_source\s+avformat,(\S+)/.exec(base)![1]!;
  const wav = join(dir, 'audio.wav');
  const mkv = join(dir, 'video.mkv');
  // The 10-minute files, looped (whole 2 s beep periods, so the loop keeps the beat). The video too: the
  // flashes that the A/V check pairs with the beeps must last to the end (a 2-hour run once had none).
  const loops = String(Math.ceil(minutes / 10));
  execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-stream_loop', loops, '-i', src, '-c', 'copy', wav]);
  execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-stream_loop', loops, '-i', videoSrc, '-c', 'copy', mkv]);
  writeFileSync(join(dir, 'config'), base
    .replace(/sip_listen\s+\S+/, `sip_listen\t\t127.0.0.1:${LONG_PHONE_PORT}`)
    .replace(/rtp_ports\s+\S+/, 'rtp_ports\t\t17400-17499')
    .replace(/audio_source\s+\S+/, `audio_source\t\taufile,${wav}`)
    .replace(/video_source\s+\S+/, `video_source\t\tavformat,${mkv}`));
  writeFileSync(join(dir, 'accounts'), readFileSync(join(SANDBOX_RUN, 'baresip-video', 'accounts'), 'utf8').replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${LONG_PHONE_PORT}`));
  phone = spawn('baresip', ['-f', dir], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
  return LONG_PHONE_PORT;
}

interface Sample { minute: number; rss: number; heap: number; cpuS: number }
async function sample(minute: number, cpu0: NodeJS.CpuUsage): Promise<Sample> {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  const c = process.cpuUsage(cpu0);
  return { minute, rss: m.rss / 2 ** 20, heap: m.heapUsed / 2 ** 20, cpuS: (c.user + c.system) / 1e6 };
}

test(`${CALLS} calls (${VIDEO_CALLS} video) for ${MINUTES} min: steady memory and CPU, no gap, A/V held`, { timeout: (MINUTES * 60 + 300) * 1000 }, async () => {
  const videoPort = await longPhone(MINUTES);
  (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().rss / 2 ** 20;
  const cpu0 = process.cpuUsage();
  const bodies = Array.from({ length: CALLS }, (_, i) => i < VIDEO_CALLS
    ? { callId: uniqueId('lv'), callee: 'videophone', sipPort: videoPort, hasVideo: 'true', rtmpStream: uniqueId('long-v') }
    : { callId: uniqueId('la'), callee: 'answer', sipPort: t.env.SIPP_BENCH_PORT, hasVideo: 'false', rtmpStream: uniqueId('long-a') });
  const started = Date.now();
  const runs = bodies.map((b, i) => new Promise((r) => setTimeout(r, i * 300)).then(() => relayRecordedCall(t, { sipDomain: '127.0.0.1', ...b }, MINUTES * 60 - i * 0.3)));
  const samples: Sample[] = [];
  const sampler = setInterval(() => void sample((Date.now() - started) / 60_000, cpu0).then((s) => samples.push(s)), 60_000);
  try {
    const results = await Promise.all(runs);
    clearInterval(sampler);
    const end = samples.at(-1) ?? (await sample(MINUTES, cpu0));
    const mid = samples.find((s) => s.minute >= MID_MINUTE) ?? samples[0] ?? end;
    const per = (s: Sample) => `RSS ${((s.rss - before) / CALLS).toFixed(2)} MB/call (${s.rss.toFixed(0)} MB, heap ${s.heap.toFixed(0)} MB), ` +
      `CPU ${(s.cpuS / (CALLS * s.minute)).toFixed(3)} s per call-minute so far`;
    console.log(`# before the calls: RSS ${before.toFixed(0)} MB`);
    console.log(`# at ${mid.minute.toFixed(1)} min: ${per(mid)}`);
    console.log(`# at ${end.minute.toFixed(1)} min: ${per(end)}`);
    if (end.minute > mid.minute) {
      console.log(`# from ${mid.minute.toFixed(1)} to ${end.minute.toFixed(1)} min: CPU ${((end.cpuS - mid.cpuS) / (CALLS * (end.minute - mid.minute))).toFixed(3)} s per call-minute, RSS ${(end.rss - mid.rss).toFixed(1)} MB, heap ${(end.heap - mid.heap).toFixed(1)} MB`);
    }
    console.log(`# samples: ${JSON.stringify(samples.map((s) => [Number(s.minute.toFixed(1)), Math.round(s.rss), Math.round(s.heap), Number(s.cpuS.toFixed(1))]))}`);
    if (MINUTES >= 20) assert.ok(end.rss - mid.rss < 30, `RSS grew ${(end.rss - mid.rss).toFixed(1)} MB from ${mid.minute.toFixed(0)} min to the end`);

    // Every call is measured and reported before any verdict: one bad call must not hide the others' numbers.
    let worstGap = 0;
    const failures: string[] = [];
    const check = (ok: boolean, what: string) => {
      if (!ok) failures.push(what);
    };
    for (const [i, r] of results.entries()) {
      const tl = (r.view.media as { timeline: AudioTimelineStats }).timeline;
      check(tl.reanchors === 0, `call ${i} re-anchored ${tl.reanchors} time(s), the last: ${JSON.stringify(tl.lastReanchor)}`);
      const info = await audioInfo(r.recording);
      const gap = maxTimestampGapMs(info.pts, (1024 / 48000) * 1000);
      worstGap = Math.max(worstGap, gap);
      check(gap <= 50, `call ${i}: audio timestamp gap ${gap.toFixed(1)} ms`);
      if (i < VIDEO_CALLS) {
        // The last minute only: decoding hours of video for it would take as long again.
        const tail = join(SANDBOX_RUN, `${r.view.callId}-tail.flv`);
        execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-sseof', '-60', '-i', r.recording, '-c', 'copy', tail]);
        const rep = await analyzeAvSync(tail);
        console.log(`# video call ${i}: A/V offsets over the last minute (ms) ${rep.offsetsMs.map((o) => o.toFixed(0)).join(' ')}; video ${JSON.stringify(r.view.video)}`);
        check(rep.pairs.length >= 20 && rep.offsetsMs.every((o) => Math.abs(o) <= 80), `call ${i}: A/V at the end (${rep.pairs.length} pairs)`);
      }
      console.log(`# call ${i}: gap ${gap.toFixed(1)} ms, timeline ${JSON.stringify(tl)}`);
      await t.assertNoLeaks([r.key]);
    }
    console.log(`# largest audio timestamp gap over all recordings: ${worstGap.toFixed(1)} ms`);
    assert.deepEqual(failures, [], failures.join('\n'));
  } finally {
    clearInterval(sampler);
  }
});
