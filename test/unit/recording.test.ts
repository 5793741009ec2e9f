/**
 * Recordings on a real file system with real encoded frames: the MP4 ffprobe reads (moov up front), the
 * FLV a killed run leaves (it plays, and the next start makes it an MP4), an output's recording across its
 * reconnects, and a disk that is full or read-only (tmpfs mounts: the tests run as root, as the sandbox).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { chromium } from 'playwright-core';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { FileRecordingStore } from '../../adapters/recording/store.js';
import { createLogger } from '../../plugin/lib/log.js';
import { buildRestServer } from '../../plugin/rest/server.js';
import { compactUtc, renderFileName, templateProblem } from '../../plugin/lib/file-template.js';
import { parseRange } from '../../plugin/lib/http-range.js';
import type { ConfigChange, MediaFrame } from '../../plugin/media/frame.js';
import { LiveStream } from '../../plugin/media/output/live-stream.js';
import { Push } from '../../plugin/media/output/push.js';
import { Recording } from '../../plugin/media/output/recording.js';
import type { OutputError, OutputSink } from '../../plugin/media/output/sink.js';
import { encodedClip, playClip, type EncodedClip } from '../helpers/encoded-clip.js';

const run = promisify(execFile);
let dir: string;
let clip: EncodedClip;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rec-'));
  clip = encodedClip(2);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Duration from the packets (an FLV being written has no duration in its header), streams, decode errors. */
async function probe(file: string): Promise<{ duration: number; streams: string[]; errors: string }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name:packet=pts_time,duration_time', '-of', 'json', file], { maxBuffer: 64 << 20 });
  const j = JSON.parse(stdout) as { streams: { codec_type: string; codec_name: string }[]; packets: { pts_time: string; duration_time?: string }[] };
  const ends = j.packets.map((p) => Number(p.pts_time) + Number(p.duration_time ?? 0));
  const starts = j.packets.map((p) => Number(p.pts_time));
  const decode = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
  return { duration: Math.max(...ends) - Math.min(...starts), streams: j.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort(), errors: decode.stderr.trim() };
}

test('file names: WCS template fields, nothing that leaves the directory', () => {
  assert.equal(renderFileName('{streamName}-{startTime}-{endTime}', { streamName: 'show', startTime: '1700000000000' }), 'show-1700000000000-live');
  assert.equal(renderFileName('../../etc/{streamName}', { streamName: 'a b/c' }), '__.._etc_a_b_c');
  assert.equal(renderFileName('.hidden', {}), '_hidden');
  assert.equal(compactUtc(new Date('2026-12-04T15:01:02.345Z')), '20261204-150102');
  assert.match(templateProblem('{nope}') ?? '', /unknown field \{nope\}/);
  assert.equal(templateProblem('{callId}-{date}'), undefined);
  assert.deepEqual(parseRange('bytes=0-99', 1000), { start: 0, end: 99, partial: true });
  assert.deepEqual(parseRange('bytes=-100', 1000), { start: 900, end: 999, partial: true });
  assert.deepEqual(parseRange('bytes=900-', 1000), { start: 900, end: 999, partial: true });
  assert.deepEqual(parseRange('bytes=2000-', 1000), { unsatisfiable: true });
  assert.deepEqual(parseRange(undefined, 1000), { start: 0, end: 999, partial: false });
});

test('a recording: FLV while recording, then an MP4 with moov up front that ffprobe plays whole', async () => {
  const store = new FileRecordingStore({ dir: join(dir, 'a') });
  const stream = new LiveStream();
  const rec = new Recording(await store.open('call-1'));
  const states: string[] = [];
  rec.on('state', (s) => states.push(s.state));
  stream.addSink(rec);
  assert.match(rec.path, /call-1\.recording\.flv$/);
  await playClip(stream, clip, 6000, 20);
  await new Promise((r) => setTimeout(r, 400)); // written every 250 ms
  const live = await probe(rec.path);
  assert.ok(live.duration > 5.9, `the FLV plays while it is written (${live.duration} s)`);
  await rec.stop('call-1-done', store);
  assert.deepEqual(states, ['FINALIZING', 'DONE']);
  assert.match(rec.path, /call-1-done\.mp4$/);
  assert.ok(!existsSync(join(dir, 'a', 'call-1.recording.flv')), 'the FLV is gone once the MP4 is made');
  const p = await probe(rec.path);
  assert.deepEqual(p.streams, ['audio:aac', 'video:h264']);
  assert.equal(p.errors, '');
  assert.ok(Math.abs(p.duration - 6) < 0.1, `duration ${p.duration} s for 6 s recorded`);
  const bytes = readFileSync(rec.path);
  assert.ok(bytes.indexOf('moov') < bytes.indexOf('mdat'), 'moov before mdat (faststart): a browser plays it at once');
  assert.equal(rec.stats.bytes, bytes.length);
  assert.ok(Math.abs(rec.stats.durationMs - 6000) < 60, `durationMs ${rec.stats.durationMs}`);
});

test('a killed run leaves an FLV that plays to its last second; the next start makes it an MP4', async () => {
  const d = join(dir, 'killed');
  const store = new FileRecordingStore({ dir: d });
  const stream = new LiveStream();
  const file = await store.open('crash');
  stream.addSink(new Recording(file));
  await playClip(stream, clip, 4000, 20);
  // No stop(), no close: what a kill -9 leaves (what was handed to the kernel: all but the last 250 ms at most).
  await new Promise((r) => setTimeout(r, 400));
  const left = join(d, 'crash.recording.flv');
  const leftProbe = await probe(left);
  assert.ok(leftProbe.duration > 3.9, `the FLV as left plays to its end (${leftProbe.duration} s)`);
  assert.deepEqual(await store.recover(), [], 'a file written just now may be another process\'s: left alone');
  utimesSync(left, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
  const done = await store.recover();
  assert.equal(done.length, 1);
  assert.match(done[0]!.mp4 ?? '', /crash\.mp4$/);
  assert.ok((await probe(done[0]!.mp4!)).duration > 3.9);
  assert.deepEqual(readdirSync(d), ['crash.mp4']);
});

test('Chromium plays the MP4: picture, sound, duration (Debian\'s Chromium, H.264 + AAC)', async () => {
  const store = new FileRecordingStore({ dir: join(dir, 'chromium') });
  const stream = new LiveStream();
  const rec = new Recording(await store.open('web'));
  stream.addSink(rec);
  await playClip(stream, clip, 4000, 20);
  await rec.stop('web', store);
  const server = createServer((req, res) => {
    if (req.url === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><video id="v" src="/web.mp4" muted></video>');
    res.writeHead(200, { 'content-type': 'video/mp4' });
    createReadStream(rec.path).pipe(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    // A string: this file is compiled without the DOM's types.
    const v = (await page.evaluate(`(async () => {
      const video = document.getElementById('v');
      await video.play();
      await new Promise((r) => setTimeout(r, 1500));
      return { t: video.currentTime, w: video.videoWidth, h: video.videoHeight, d: video.duration, audioBytes: video.webkitAudioDecodedByteCount ?? -1, err: video.error?.message ?? null };
    })()`)) as { t: number; w: number; h: number; d: number; audioBytes: number; err: string | null };
    console.log(`# Chromium: ${JSON.stringify(v)}`);
    assert.equal(v.err, null);
    assert.deepEqual([v.w, v.h], [320, 240]);
    assert.ok(v.t > 1, `it plays (currentTime ${v.t})`);
    assert.ok(Math.abs(v.d - 4) < 0.1, `duration ${v.d}`);
    assert.ok(v.audioBytes > 0, 'the AAC track is decoded');
  } finally {
    await browser.close();
    server.close();
  }
});

/** A sink that publishes, drops after `dropAfter` frames, and refuses reconnects `refusals` times. */
class FlakySink extends EventEmitter implements OutputSink {
  frames = 0;
  constructor(private readonly dropAfter: number) {
    super();
  }
  async start() {}
  async close() {}
  config(_c: ConfigChange) {}
  frame(_f: MediaFrame) {
    if (++this.frames === this.dropAfter) setImmediate(() => this.emit('close', { error: Object.assign(new Error('reset'), { description: 'reset' }) as OutputError }));
  }
}

test('an output\'s recording: its mute applied, and its timeline whole across the output\'s reconnects', async () => {
  const store = new FileRecordingStore({ dir: join(dir, 'push') });
  const stream = new LiveStream();
  let connects = 0;
  const push = new Push(stream, () => new FlakySink(++connects === 1 ? 60 : Infinity), { reconnect: { initialMs: 300, maxMs: 300, factor: 1, minFraction: 1 } });
  const states: string[] = [];
  push.on('state', (s) => states.push(s.state));
  await push.start();
  const rec = new Recording(await store.open('out'));
  push.addTap(rec);
  push.mute(clip.frames.find((f) => f.track === 'audio')!.payload);
  await playClip(stream, clip, 4000, 2);
  await rec.stop('out', store);
  await push.close();
  assert.deepEqual(states.slice(0, 3), ['PUBLISHING', 'RECONNECTING', 'PUBLISHING'], 'the output dropped and came back meanwhile');
  const p = await probe(rec.path);
  assert.ok(Math.abs(p.duration - 4) < 0.1, `the recording has the whole 4 s (${p.duration}), reconnect or not`);
  assert.equal(p.errors, '');
});

function mountTmpfs(path: string, opts: string): () => void {
  mkdirSync(path, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', path]);
  return () => execFileSync('umount', ['-l', path]);
}

test('a full disk: the recording FAILED with "disk full (ENOSPC)", the stream\'s other sinks unaffected', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (a tmpfs mount)');
  const d = join(dir, 'full');
  const unmount = mountTmpfs(d, 'size=64k');
  try {
    const store = new FileRecordingStore({ dir: d });
    const stream = new LiveStream();
    let seen = 0;
    stream.addSink({ config() {}, frame: () => void seen++ });
    const rec = new Recording(await store.open('full'));
    stream.addSink(rec);
    await playClip(stream, clip, 6000, 20);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rec.state, 'FAILED');
    assert.match(rec.failureReason ?? '', /disk full \(ENOSPC\)/);
    assert.equal(seen, stream.stats.audioFrames + stream.stats.videoFrames, 'every frame reached the other sink');
    await rec.stop('full', store); // no effect once FAILED
    assert.equal(rec.state, 'FAILED');
  } finally {
    unmount();
  }
});

test('a read-only directory: opening refuses with "read-only file system (EROFS)"', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (a tmpfs mount)');
  const d = join(dir, 'ro');
  const unmount = mountTmpfs(d, 'ro,size=64k');
  try {
    const store = new FileRecordingStore({ dir: d });
    await assert.rejects(store.open('x'), (e: Error & { code?: string }) => e.code === 'EROFS');
    const failed = Recording.failed('cannot write in RECORDINGS_DIR: read-only file system (EROFS)');
    assert.equal(failed.state, 'FAILED');
  } finally {
    unmount();
  }
});

test('GET {prefix}/recordings/<name>: the file, a range of it (206), 416 beyond it, 404 for anything not a recording', async () => {
  const store = new FileRecordingStore({ dir: join(dir, 'rest') });
  const stream = new LiveStream();
  const rec = new Recording(await store.open('dl'));
  stream.addSink(rec);
  await playClip(stream, clip, 2000, 20);
  await rec.stop('dl', store);
  const size = readFileSync(rec.path).length;
  const calls = { openRecording: (name: string, range?: string) => store.read(name, range) };
  const app = buildRestServer({ prefix: '/rest-api', log: createLogger({ level: 'silent' }), calls: calls as never });
  try {
    const whole = await app.inject({ method: 'GET', url: '/rest-api/recordings/dl.mp4' });
    assert.equal(whole.statusCode, 200);
    assert.equal(whole.headers['content-type'], 'video/mp4');
    assert.equal(whole.headers['accept-ranges'], 'bytes');
    assert.equal(whole.rawPayload.length, size);
    const part = await app.inject({ method: 'GET', url: '/rest-api/recordings/dl.mp4', headers: { range: 'bytes=100-199' } });
    assert.equal(part.statusCode, 206);
    assert.equal(part.headers['content-range'], `bytes 100-199/${size}`);
    assert.deepEqual(part.rawPayload, readFileSync(rec.path).subarray(100, 200));
    const beyond = await app.inject({ method: 'GET', url: '/rest-api/recordings/dl.mp4', headers: { range: `bytes=${size + 10}-` } });
    assert.equal(beyond.statusCode, 416);
    for (const bad of ['nope.mp4', '..%2Fdl.mp4', '.hidden.mp4', 'dl.txt']) {
      assert.equal((await app.inject({ method: 'GET', url: `/rest-api/recordings/${bad}` })).statusCode, 404, bad);
    }
  } finally {
    await app.close();
  }
});
