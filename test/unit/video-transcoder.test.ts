/**
 * The ffmpeg video transcoder against the host's real ffmpeg: a phone-like input (keyframes 10 s apart,
 * starting at call time 12345 ms) must come out at the requested size, a keyframe every 2 s, with the input
 * timestamps 1:1; a size change mid-stream, a stuck or missing child, close() mid-stream. The real-time run
 * prints the added latency and the child's CPU.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { cpuSeconds } from '../../plugin/lib/proc.js';
import { FfmpegVideoTranscoder, type FfmpegVideoTranscoderOptions } from '../../adapters/ffmpeg/video-transcoder.js';
import { AvcConfigTracker, NalType, nalType, splitAnnexB, toAvcc } from '../../plugin/media/encode/h264/index.js';
import { avcFrame, avcSequenceHeader, FlvFileWriter, FlvTagType } from '../../plugin/media/output/flv.js';
import type { TranscodedVideoFrame } from '../../plugin/media/ports.js';

const run = promisify(execFile);
const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
const needFfmpeg = { skip: hasFfmpeg ? false : 'ffmpeg not installed' };

const T0 = 12345;
const FRAME_MS = 40;
/** Tests that write a whole stream at once: no backlog bound in the way. */
const BULK = 64 * 1024 * 1024;

interface InputStream {
  avcConfig: Buffer;
  width: number;
  height: number;
  frames: { avcc: Buffer; keyframe: boolean }[];
}

/** A phone-like H.264 stream: baseline, no B-frames, one keyframe per 250 frames (10 s), AUDs between frames. */
async function encodeInput(source: string, size: string, seconds: number, stripParameterSets = false): Promise<InputStream> {
  const { stdout } = await run('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', `${source}=s=${size}:r=25`, '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'baseline', '-g', '250', '-bf', '0', '-pix_fmt', 'yuv420p',
    '-x264-params', 'aud=1', '-f', 'h264', 'pipe:1',
  ], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  // Access units at the AUDs, as GeneratedVideo (timeline/video-output.ts) cuts them.
  const tracker = new AvcConfigTracker();
  const frames: InputStream['frames'] = [];
  let au: Buffer[] = [];
  const flush = () => {
    if (!au.some((n) => nalType(n) === NalType.Idr || nalType(n) === NalType.Slice)) return;
    tracker.update({ nalus: au });
    // Stripped: the new parameter sets then reach the decoder only through the FLV sequence header.
    const nalus = stripParameterSets ? au.filter((n) => nalType(n) !== NalType.Sps && nalType(n) !== NalType.Pps) : au;
    frames.push({ avcc: toAvcc(nalus), keyframe: au.some((n) => nalType(n) === NalType.Idr) });
    au = [];
  };
  for (const nal of splitAnnexB(stdout as unknown as Buffer)) {
    if (nalType(nal) === NalType.Aud) flush();
    else au.push(Buffer.from(nal));
  }
  flush();
  assert.ok(tracker.current && tracker.width && tracker.height && frames[0]?.keyframe);
  return { avcConfig: tracker.current, width: tracker.width, height: tracker.height, frames };
}

let cif: InputStream; // 352x288, 12 s, keyframes at 0 and 10 s
let vga: InputStream; // 640x480, 2 s, SPS/PPS only out of band
let nhd: InputStream; // 640x360, 4 s

before(async () => {
  if (!hasFfmpeg) return;
  [cif, vga, nhd] = await Promise.all([
    encodeInput('testsrc', '352x288', 12),
    encodeInput('testsrc2', '640x480', 2, true),
    encodeInput('testsrc2', '640x360', 4),
  ]);
});

const open: FfmpegVideoTranscoder[] = [];
after(async () => {
  await Promise.all(open.map((t) => t.close()));
});

interface Run {
  tx: FfmpegVideoTranscoder;
  configs: { avcConfig: Buffer; width: number; height: number }[];
  frames: TranscodedVideoFrame[];
  errors: Error[];
}

function start(o: Partial<FfmpegVideoTranscoderOptions> & { width: number; height: number }): Run {
  const tx = new FfmpegVideoTranscoder({ keyframeIntervalMs: 2000, ...o });
  open.push(tx);
  const r: Run = { tx, configs: [], frames: [], errors: [] };
  tx.on('config', (c) => r.configs.push(c));
  tx.on('frame', (f) => {
    if (r.configs.length === 0) r.errors.push(new Error('a frame before the config'));
    r.frames.push(f);
  });
  tx.on('error', (e) => r.errors.push(e));
  return r;
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function assertIncreasing(frames: TranscodedVideoFrame[]): void {
  for (let i = 1; i < frames.length; i++) assert.ok(frames[i]!.ts > frames[i - 1]!.ts, `ts ${frames[i]!.ts} after ${frames[i - 1]!.ts}`);
}

function keyframeGaps(frames: TranscodedVideoFrame[]): number[] {
  const keys = frames.filter((f) => f.keyframe).map((f) => f.ts);
  return keys.slice(1).map((t, i) => t - keys[i]!);
}

/** The output decoded again by ffmpeg, as 8-bit luma planes. */
function decodeLuma(r: Run, width: number, height: number): Buffer[] {
  const w = new FlvFileWriter();
  const parts = [w.header(false, true), w.tag(FlvTagType.Video, r.frames[0]!.ts, avcSequenceHeader(r.configs[0]!.avcConfig))];
  for (const f of r.frames) parts.push(w.tag(FlvTagType.Video, f.ts, avcFrame(f.avcc, f.keyframe)));
  const out = spawnSync('ffmpeg', ['-v', 'error', '-f', 'flv', '-i', 'pipe:0', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], {
    input: Buffer.concat(parts), maxBuffer: 1 << 28,
  });
  assert.equal(out.status, 0, out.stderr.toString());
  assert.equal(out.stderr.toString(), '', 'decoder complaints');
  const planes: Buffer[] = [];
  for (let o = 0; o + width * height <= out.stdout.length; o += width * height) planes.push(out.stdout.subarray(o, o + width * height));
  return planes;
}

/** Mean luma of columns [x0, x1) of a plane. */
function columnsMean(plane: Buffer, width: number, x0: number, x1: number): number {
  let sum = 0;
  let n = 0;
  for (let o = 0; o < plane.length; o += width) {
    for (let x = x0; x < x1; x++, n++) sum += plane[o + x]!;
  }
  return sum / n;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0); // a zombie still answers: only a reaped child is gone
    return true;
  } catch {
    return false;
  }
}

test('352x288 → 640x360: pillarboxed, a keyframe every 2 s, the input timestamps 1:1 from 12345 ms', needFfmpeg, async () => {
  const r = start({ width: 640, height: 360 , maxBacklog: BULK });
  r.tx.inputConfig(cif.avcConfig);
  const sent = cif.frames.map((f, i) => {
    r.tx.write(T0 + i * FRAME_MS, f.avcc, f.keyframe);
    return T0 + i * FRAME_MS;
  });
  await until('every frame', () => r.frames.length === sent.length || r.errors.length > 0);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.configs.map((c) => [c.width, c.height]), [[640, 360]]);
  assert.deepEqual(r.frames.map((f) => f.ts), sent, 'every input ts once, in order');
  assert.equal(r.frames[0]!.keyframe, true);
  const gaps = keyframeGaps(r.frames);
  assert.equal(gaps.length, 5, `keyframes at ${r.frames.filter((f) => f.keyframe).map((f) => f.ts)}`);
  for (const g of gaps) assert.ok(Math.abs(g - 2000) <= FRAME_MS, `keyframe gap ${g} ms`);
  assert.deepEqual(r.tx.stats, { framesIn: 300, framesOut: 300, dropped: 0 });

  // 352x288 fills the height: 440x360 in the middle, 100 px of black on each side.
  const planes = decodeLuma(r, 640, 360);
  assert.equal(planes.length, 300);
  const p = planes[150]!;
  assert.ok(columnsMean(p, 640, 0, 96) < 20 && columnsMean(p, 640, 544, 640) < 20, 'black side bars');
  assert.ok(columnsMean(p, 640, 110, 530) > 40, 'the picture between them');
});

test('firstKeyframeAfterMs: a primed GOP comes out first, then the forced keyframe at the first new frame, then every 2 s', needFfmpeg, async () => {
  // As VideoOutput switches mid-GOP: the GOP so far (frames 0..57) is written to prime the decoder; the first
  // frame the stream has not carried is 58 (ts 12345 + 58·40), so the grid starts just after frame 57's ts.
  const first = T0 + 57 * FRAME_MS + 1;
  const r = start({ width: 352, height: 288, maxBacklog: BULK, firstKeyframeAfterMs: first - T0 });
  r.tx.inputConfig(cif.avcConfig);
  const sent = cif.frames.slice(0, 200).map((f, i) => {
    r.tx.write(T0 + i * FRAME_MS, f.avcc, f.keyframe);
    return T0 + i * FRAME_MS;
  });
  await until('every frame', () => r.frames.length === sent.length || r.errors.length > 0);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.frames.map((f) => f.ts), sent, 'absolute timestamps, 1:1');
  const keys = r.frames.filter((f) => f.keyframe).map((f) => f.ts);
  assert.equal(keys[0], T0, 'the encoder starts with an IDR');
  assert.equal(keys[1], T0 + 58 * FRAME_MS, 'the forced one at the first new frame');
  for (const g of keyframeGaps(r.frames).slice(1)) assert.ok(Math.abs(g - 2000) <= FRAME_MS, `keyframe gap ${g} ms`);
  assert.equal(keys.filter((k) => k > T0 && k < first).length, 0, 'no other keyframe inside the primed GOP');
});

test('same size: fractional timestamps are rounded, a duplicate moves 1 ms on, frames before config or keyframe are dropped', needFfmpeg, async () => {
  const r = start({ width: 352, height: 288 , maxBacklog: BULK });
  r.tx.write(T0 - 100, cif.frames[0]!.avcc, true); // before inputConfig
  r.tx.inputConfig(cif.avcConfig);
  r.tx.write(T0 - 50, cif.frames[5]!.avcc, false); // before a keyframe
  const frames = cif.frames.slice(0, 90);
  const ts = frames.map((_, i) => T0 + (i * 1000) / 30 + 0.2); // 30 fps timing: 12345.2, 12378.5...
  ts[20] = ts[19]!; // a duplicate
  frames.forEach((f, i) => r.tx.write(ts[i]!, f.avcc, f.keyframe));
  await until('every frame', () => r.frames.length === frames.length || r.errors.length > 0);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.configs.map((c) => [c.width, c.height]), [[352, 288]]);
  const expected = ts.map(Math.round);
  expected[20] = expected[19]! + 1;
  assert.deepEqual(r.frames.map((f) => f.ts), expected);
  assert.deepEqual(r.tx.stats, { framesIn: 92, framesOut: 90, dropped: 2 });
  assert.equal(r.frames[0]!.keyframe, true);
  const keys = r.frames.filter((f) => f.keyframe).map((f) => f.ts);
  assert.deepEqual(keys, keyframesAt(expected, 2000));
  assert.equal(keys.length, 2);
});

/** The first ts at or after each multiple of `interval` from the first: where the grid puts keyframes. */
function keyframesAt(ts: number[], interval: number): number[] {
  const out: number[] = [];
  let next = ts[0]!;
  for (const t of ts) {
    if (t >= next - 0.5) {
      out.push(t);
      next = ts[0]! + (Math.floor((t - ts[0]!) / interval + 1e-6) + 1) * interval;
    }
  }
  return out;
}

test('the caller changes size mid-stream: a new sequence header, same output size, timestamps go on', needFfmpeg, async () => {
  const r = start({ width: 640, height: 360 , maxBacklog: BULK });
  r.tx.inputConfig(cif.avcConfig);
  const sent: number[] = [];
  let ts = T0;
  for (const f of cif.frames.slice(0, 100)) {
    r.tx.write(ts, f.avcc, f.keyframe);
    sent.push(ts);
    ts += FRAME_MS;
  }
  r.tx.inputConfig(vga.avcConfig); // 640x480, its SPS and PPS only here (stripped from its frames)
  for (const f of vga.frames) {
    r.tx.write(ts, f.avcc, f.keyframe);
    sent.push(ts);
    ts += FRAME_MS;
  }
  await until('every frame', () => r.frames.length === sent.length || r.errors.length > 0);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.configs.map((c) => [c.width, c.height]), [[640, 360]], 'one output config');
  assert.deepEqual(r.frames.map((f) => f.ts), sent);
  for (const g of keyframeGaps(r.frames)) assert.ok(g <= 2000 + FRAME_MS, `keyframe gap ${g} ms`);

  // Decoded with the new parameter sets: 640x480 fills the height as 480x360, 80 px bars (not 100).
  const planes = decodeLuma(r, 640, 360);
  assert.equal(planes.length, sent.length);
  assert.ok(columnsMean(planes[50]!, 640, 84, 96) < 20, 'before: 100 px bars');
  assert.ok(columnsMean(planes[130]!, 640, 84, 96) > 40, 'after: picture from x = 80');
  assert.ok(columnsMean(planes[130]!, 640, 0, 76) < 20, 'after: 80 px bars');
});

test('maxFps caps the output rate, keeping the input timestamps', needFfmpeg, async () => {
  const r = start({ width: 352, height: 288, maxFps: 25 , maxBacklog: BULK });
  r.tx.inputConfig(cif.avcConfig);
  const sent = cif.frames.slice(0, 100).map((f, i) => {
    r.tx.write(T0 + i * 20, f.avcc, f.keyframe); // 50 fps
    return T0 + i * 20;
  });
  await until('the last frame', () => r.frames.at(-1)?.ts === sent.at(-1) || r.errors.length > 0);
  assert.deepEqual(r.errors, []);
  assert.ok(Math.abs(r.frames.length - 50) <= 1, `${r.frames.length} frames out`);
  for (const f of r.frames) assert.ok(sent.includes(f.ts));
  assertIncreasing(r.frames);
  assert.equal(r.frames[0]!.keyframe, true);
});

test('real time at 25 fps: added latency and the child CPU, 352x288 and 640x360', needFfmpeg, async () => {
  const runs = [
    { name: '352x288', input: cif, r: start({ width: 352, height: 288 }) },
    { name: '640x360', input: nhd, r: start({ width: 640, height: 360 }) },
  ];
  const sentAt = runs.map(() => new Map<number, number>());
  const latencies = runs.map(() => [] as number[]);
  runs.forEach((x, k) => x.r.tx.on('frame', (f) => latencies[k]!.push(performance.now() - sentAt[k]!.get(f.ts)!)));
  const send = (i: number) =>
    runs.forEach((x, k) => {
      const f = x.input.frames[i]!;
      sentAt[k]!.set(T0 + i * FRAME_MS, performance.now());
      x.r.tx.write(T0 + i * FRAME_MS, f.avcc, f.keyframe);
    });
  // The first keyframe goes through on its own: its latency includes ffmpeg's start (process, probing,
  // encoder set-up), what a call pays once if it creates the transcoder when video starts.
  for (const x of runs) x.r.tx.inputConfig(x.input.avcConfig);
  send(0);
  await until('the first frames', () => runs.every((x) => x.r.frames.length === 1));
  const count = 88; // 3.5 s
  const cpu0 = runs.map((x) => cpuSeconds(x.r.tx.pid!));
  const t0 = performance.now();
  for (let i = 1; i < count; i++) {
    const wait = t0 + i * FRAME_MS - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    send(i);
  }
  await until('the last frames', () => runs.every((x) => x.r.frames.length === count));
  const wall = (performance.now() - t0) / 1000;
  runs.forEach((x, k) => {
    const cpu = cpuSeconds(x.r.tx.pid!) - cpu0[k]!;
    const steady = latencies[k]!.slice(1).sort((a, b) => a - b);
    const q = (p: number) => steady[Math.min(steady.length - 1, Math.floor(p * steady.length))]!;
    console.log(
      `# ${x.name} at 25 fps: first frame ${latencies[k]![0]!.toFixed(0)} ms (ffmpeg's start), ` +
        `then latency p50 ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, max ${q(1).toFixed(1)} ms; ` +
        `CPU ${((cpu / wall) * 60).toFixed(1)} s per minute`,
    );
    assert.deepEqual(x.r.errors, []);
    assert.ok(q(0.5) < 40, `median latency ${q(0.5)} ms`);
    assert.ok(q(0.9) < 120, `p90 latency ${q(0.9)} ms`);
  });
});

test('close() mid-stream kills the child, waits for it, and says nothing more', needFfmpeg, async () => {
  const r = start({ width: 640, height: 360 });
  r.tx.inputConfig(cif.avcConfig);
  cif.frames.slice(0, 50).forEach((f, i) => r.tx.write(T0 + i * FRAME_MS, f.avcc, f.keyframe));
  await until('some output', () => r.frames.length > 0);
  const pid = r.tx.pid!;
  assert.ok(alive(pid));
  await r.tx.close();
  assert.equal(alive(pid), false, 'the child is gone (reaped, not a zombie)');
  r.tx.write(T0 + 50 * FRAME_MS, cif.frames[50]!.avcc, false); // ignored, no EPIPE
  r.tx.inputConfig(vga.avcConfig);
  await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(r.errors, []);
  await r.tx.close(); // twice is fine
});

test('a missing ffmpeg binary: error, and close() still resolves', async () => {
  const r = start({ width: 352, height: 288, ffmpegPath: '/nonexistent' });
  r.tx.inputConfig(Buffer.from([1, 66, 0, 30, 0xff, 0xe0, 0]));
  r.tx.write(T0, Buffer.from([0, 0, 0, 1, 0x65]), true);
  await until('the error', () => r.errors.length > 0, 5000);
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!.message, /could not start.*ENOENT/);
  assert.equal(r.tx.pid, undefined);
  await r.tx.close();
  assert.equal(r.errors.length, 1);
});

test('the child dies: error (SIGKILL); exits with a complaint: error with its stderr tail', needFfmpeg, async () => {
  const r = start({ width: 352, height: 288 });
  r.tx.inputConfig(cif.avcConfig);
  r.tx.write(T0, cif.frames[0]!.avcc, true);
  await until('a frame', () => r.frames.length === 1);
  process.kill(r.tx.pid!, 'SIGKILL');
  await until('the error', () => r.errors.length > 0, 5000);
  assert.match(r.errors[0]!.message, /exited \(SIGKILL\)/);
  r.tx.write(T0 + FRAME_MS, cif.frames[1]!.avcc, false); // no EPIPE, no second error
  await r.tx.close();
  assert.equal(r.errors.length, 1);

  // A "binary" that refuses our arguments on stderr (/bin/sh: illegal option -h).
  const bad = start({ width: 352, height: 288, ffmpegPath: '/bin/sh' });
  bad.tx.inputConfig(cif.avcConfig);
  bad.tx.write(T0, cif.frames[0]!.avcc, true);
  await until('the error', () => bad.errors.length > 0, 5000);
  assert.match(bad.errors[0]!.message, /exited \(code [1-9]\d*\): .*-h/);
  assert.ok(bad.errors[0]!.message.length < 600);
  await bad.tx.close();
});

test('a stalled child: frames dropped and counted, then a keyframe first; stalled for long: error', needFfmpeg, async () => {
  const r = start({ width: 352, height: 288, maxBacklog: 100_000, stuckMs: 800 });
  const key = cif.frames[0]!;
  r.tx.inputConfig(cif.avcConfig);
  let ts = T0;
  r.tx.write(ts, key.avcc, true);
  await until('the first frame', () => r.frames.length === 1);
  process.kill(r.tx.pid!, 'SIGSTOP');
  // Keyframes until the pipe and then the backlog are full: the rest are dropped, not buffered.
  for (let i = 0; i < 200; i++) r.tx.write((ts += FRAME_MS), key.avcc, true);
  const dropped = r.tx.stats.dropped;
  assert.ok(dropped > 0, `dropped ${dropped} of 200 ${key.avcc.length}-byte frames`);
  process.kill(r.tx.pid!, 'SIGCONT');
  await until('the backlog', () => r.frames.length === 201 - dropped);
  // After the gap, P-frames are useless to the decoder: dropped until the next keyframe.
  for (const f of cif.frames.slice(1, 6)) r.tx.write((ts += FRAME_MS), f.avcc, false);
  assert.equal(r.tx.stats.dropped, dropped + 5);
  for (const f of cif.frames.slice(0, 6)) r.tx.write((ts += FRAME_MS), f.avcc, f.keyframe);
  await until('the frames after the keyframe', () => r.frames.at(-1)?.ts === ts);
  assert.equal(r.tx.stats.framesOut, 201 - dropped + 6);
  assertIncreasing(r.frames);
  assert.equal(r.errors.length, 0);

  // Stalled for good: dropping goes on for stuckMs, then 'error' (and the child is killed). Keyframes until
  // the first drop, then only P-frames: the stall must be noticed while waiting for a keyframe too.
  process.kill(r.tx.pid!, 'SIGSTOP');
  const pid = r.tx.pid!;
  const droppedBefore = r.tx.stats.dropped;
  const stallStart = Date.now();
  let p = 1;
  while (r.errors.length === 0 && Date.now() - stallStart < 5000) {
    if (r.tx.stats.dropped === droppedBefore) r.tx.write((ts += FRAME_MS), key.avcc, true);
    else r.tx.write((ts += FRAME_MS), cif.frames[p++ % 200 || 1]!.avcc, false);
    await new Promise((res) => setTimeout(res, 5));
  }
  assert.ok(p > 10, 'P-frames after the first drop');
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!.message, /stuck/);
  await r.tx.close();
  assert.equal(alive(pid), false);
  assert.equal(r.errors.length, 1);
});
