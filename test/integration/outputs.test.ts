/**
 * One call, every kind of output at once, through the real sandbox: the sipp video far end (beep + flash
 * every second) relayed to nginx over RTMP (recorded there), to nginx's RTMPS front, to two SRT receivers
 * (ffmpeg with libsrt, a passphrase; one killed mid-call, one for the whole call, with a stream id), to
 * nginx through a proxy that is cut for 5 s (an RTMP receiver gone), and recorded by us. Each output is judged from its first byte; the
 * recording is also played by Chromium from its download link.
 * Then a recordings directory that cannot be written: the recording fails, the call does not.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import type { CallView, RecordingView } from '../../plugin/calls/types.js';
import type { PushView } from '../../plugin/calls/pushes.js';
import { analyzeAvSync, type AvSyncReport } from '../helpers/av-sync.js';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { isPublished } from '../helpers/audio-analysis.js';
import { uniqueId } from '../helpers/sandbox.js';
import { tcpProxy } from '../helpers/tcp-proxy.js';

const PASS = 'sandbox-srt-secret';
const SRT_PORT = 9861;
/** The SRT output whose receiver is killed mid-call (the other, on SRT_PORT + 1, stays). */
const FIRST_SRT = new RegExp(`^srt://127\\.0\\.0\\.1:${SRT_PORT}\\b`);
let t: TestApp;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'outputs-'));
});
/** Set when every test passed: otherwise the receivers' files stay for a look (the path is printed). */
let keep = true;
after(async () => {
  await t?.stop().catch(() => {}); // stopped by the test already, unless it failed midway
  if (keep) console.log(`# the outputs' files are kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
});

const receiverLogs = new Map<ChildProcess, string>();
/** ffmpeg listening for SRT (as a CDN's ingest), writing what arrives (TS, copied) from its first byte. */
async function srtReceiver(out: string, port = SRT_PORT): Promise<ChildProcess> {
  const p = spawn('ffmpeg', ['-nostdin', '-nostats', '-loglevel', 'info', '-y', '-i', `srt://127.0.0.1:${port}?mode=listener&passphrase=${PASS}`, '-map', '0', '-c', 'copy', '-flush_packets', '1', '-f', 'mpegts', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  receiverLogs.set(p, '');
  p.stderr!.on('data', (d: Buffer) => receiverLogs.set(p, (receiverLogs.get(p)! + d.toString()).slice(-3000)));
  await new Promise((r) => setTimeout(r, 300));
  return p;
}

async function stopReceiver(p: ChildProcess, signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill(signal);
  await once(p, 'exit');
}

const pushes = async (stream: string) => (await t.post('/push/find', { streamName: stream })).json as PushView[];
const statusOf = async (stream: string, url: RegExp) => (await pushes(stream)).find((p) => url.test(p.rtmpUrl))?.status;
const mean = (xs: number[]) => xs.reduce((a, b) => a + Math.abs(b), 0) / Math.max(1, xs.length);

function summary(name: string, r: AvSyncReport): string {
  return `${name}: ${r.pairs.length} beep/flash pairs, mean |A/V| ${mean(r.offsetsMs).toFixed(1)} ms, keyframe intervals max ${Math.max(...r.keyframeIntervals).toFixed(2)} s, decode errors ${r.decodeErrors}`;
}

test('one call to RTMP, RTMPS and SRT, recorded, for 60 s: each output whole; a receiver killed leaves the others publishing; the MP4 as long as the call', { timeout: 150_000 }, async () => {
  t = await startTestApp({ RECORDINGS_DIR: join(dir, 'recordings') });
  try {
    await oneCallEveryOutput(t);
    keep = false;
  } finally {
    await t.stop();
  }
});

async function oneCallEveryOutput(t: TestApp): Promise<void> {
  const callId = uniqueId('out');
  const stream = uniqueId('outs');
  const srtFile = join(dir, 'srt-1.ts');
  let receiver = await srtReceiver(srtFile);
  const firstReceiver = receiver;
  // A second SRT output, with a stream id, whose receiver stays for the whole call.
  const wholeFile = join(dir, 'srt-whole.ts');
  const wholeReceiver = await srtReceiver(wholeFile, SRT_PORT + 1);
  const r = await t.post('/call/startup', {
    callId, callee: 'video', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_VIDEO_PORT, hasVideo: 'true',
    rtmpUrl: t.env.RTMP_RECORD_URL, rtmpStream: stream, record: 'true',
  });
  assert.equal(r.status, 200, r.text);
  const est = await t.waitStatus(callId, ['ESTABLISHED', 'FAILED']);
  assert.equal(est.status, 'ESTABLISHED', est.info);
  const key = t.app.calls.get(callId)!.key;
  // The call's stream name is rtmp_<stream> on the wire; /push names it by rtmpStream.
  const rtmps = await t.post('/push/startup', { streamName: stream, rtmpUrl: `${t.env.RTMPS_URL}/${stream}-tls`, rtmpTransponderFullUrl: 'true' });
  assert.equal(rtmps.status, 200, rtmps.text);
  const srt = await t.post('/push/startup', { streamName: stream, rtmpUrl: `srt://127.0.0.1:${SRT_PORT}?passphrase=${PASS}&latency=300`, rtmpTransponderFullUrl: 'true' });
  assert.equal(srt.status, 200, srt.text);
  assert.doesNotMatch(srt.text, new RegExp(PASS), 'the passphrase never comes back');
  const srtWhole = await t.post('/push/startup', { streamName: stream, rtmpUrl: `srt://127.0.0.1:${SRT_PORT + 1}?streamid=#!::r=live/whole,m=publish&passphrase=${PASS}`, rtmpTransponderFullUrl: 'true' });
  assert.equal(srtWhole.status, 200, srtWhole.text);
  await waitFor(async () => (await statusOf(stream, FIRST_SRT)) === 'PUBLISHING', 10_000, 'SRT publishing');
  await waitFor(async () => (await pushes(stream)).filter((p) => /^srt:/.test(p.rtmpUrl) && p.status === 'PUBLISHING').length === 2, 10_000, 'both SRT outputs publishing');
  await waitFor(async () => (await statusOf(stream, /^rtmps:/)) === 'PUBLISHING', 10_000, 'RTMPS publishing');

  // 12 s in, the SRT receiver dies: the SRT output reconnects; RTMP, RTMPS and the recording go on.
  await new Promise((res) => setTimeout(res, 12_000));
  await stopReceiver(receiver, 'SIGKILL');
  await waitFor(async () => (await statusOf(stream, FIRST_SRT)) === 'RECONNECTING', 15_000, 'SRT reconnecting');
  const during = (await t.find(callId))!;
  assert.equal(during.status, 'ESTABLISHED');
  assert.equal(during.rtmpStreamStatus, 'PUBLISHING');
  assert.equal(await statusOf(stream, /^rtmps:/), 'PUBLISHING');
  assert.equal(during.recordings[0]?.status, 'RECORDING');
  const srtFile2 = join(dir, 'srt-2.ts');
  receiver = await srtReceiver(srtFile2);
  await waitFor(async () => (await statusOf(stream, FIRST_SRT)) === 'PUBLISHING', 15_000, 'SRT back');

  // An RTMP receiver goes away too: a fourth output, to nginx through a proxy that drops its connection and
  // refuses new ones for 5 s. That output reconnects; the call's RTMP, RTMPS, SRT and the recording go on
  // (each is checked whole below).
  const proxy = await tcpProxy(Number(/:(\d+)\//.exec(t.env.RTMP_URL!)![1]));
  try {
    const PROXIED = new RegExp(`^rtmp://127\\.0\\.0\\.1:${proxy.port}/`);
    const viaProxy = await t.post('/push/startup', { streamName: stream, rtmpUrl: `rtmp://127.0.0.1:${proxy.port}/live/${stream}-proxied`, rtmpTransponderFullUrl: 'true' });
    assert.equal(viaProxy.status, 200, viaProxy.text);
    await waitFor(async () => (await statusOf(stream, PROXIED)) === 'PUBLISHING', 10_000, 'the proxied RTMP output publishing');
    proxy.cut(true);
    await waitFor(async () => (await statusOf(stream, PROXIED)) === 'RECONNECTING', 10_000, 'the proxied RTMP output reconnecting');
    const meanwhile = (await t.find(callId))!;
    assert.deepEqual([meanwhile.status, meanwhile.rtmpStreamStatus, await statusOf(stream, /^rtmps:/), await statusOf(stream, FIRST_SRT), meanwhile.recordings[0]?.status],
      ['ESTABLISHED', 'PUBLISHING', 'PUBLISHING', 'PUBLISHING', 'RECORDING'], 'the other outputs while an RTMP receiver is gone');
    await new Promise((res) => setTimeout(res, 5000));
    proxy.cut(false);
    await waitFor(async () => (await statusOf(stream, PROXIED)) === 'PUBLISHING', 15_000, 'the proxied RTMP output back');
    const mediaSessionId = (viaProxy.json as PushView).mediaSessionId;
    assert.equal((await t.post('/push/terminate', { mediaSessionId })).status, 200);
  } finally {
    await proxy.close();
  }

  await new Promise((res) => setTimeout(res, 60_000 - (Date.now() - Date.parse(est.establishedAt!))));
  const metrics = await (await fetch(t.app.restUrl.replace(/\/rest-api$/, '') + '/metrics')).text();
  assert.match(metrics, /sip_as_rtmp_outputs_active\{kind="srt"\} 2/);
  assert.match(metrics, /sip_as_rtmp_recordings\{state="RECORDING"\} [1-9]/);
  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  const ended = (await t.waitStatus(callId, ['FINISH'])) as CallView;
  const callSeconds = (Date.parse(ended.endedAt!) - Date.parse(ended.establishedAt!)) / 1000;
  await new Promise((res) => setTimeout(res, 1000)); // the SRT receiver's latency buffer
  await stopReceiver(receiver);
  await stopReceiver(wholeReceiver);
  await waitFor(async () => !(await isPublished(t.env.RTMP_STAT_URL!, `rtmp_${stream}`)), 5000, 'unpublished on nginx (its recording complete)');

  // The recording: DONE, an MP4 as long as the call, in sync as the live stream is.
  let rec: RecordingView | undefined;
  await waitFor(async () => {
    const list = (await t.post('/recorder/find_all', { callId })).json as RecordingView[];
    rec = list[0];
    return rec?.status === 'DONE' || rec?.status === 'FAILED';
  }, 15_000, 'recording DONE');
  assert.equal(rec!.status, 'DONE', rec!.reason ?? '');
  assert.match(rec!.fileName, /\.mp4$/);
  assert.equal(statSync(rec!.path).size, rec!.bytes);
  const download = await fetch(`${t.app.restUrl.replace(/\/rest-api$/, '')}${rec!.downloadUrl}`, { headers: { range: 'bytes=0-99' } });
  assert.equal(download.status, 206);
  assert.equal((await download.arrayBuffer()).byteLength, 100);

  // Chromium opens the download link and plays it: picture and sound, the whole length.
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
  try {
    const page = await browser.newPage();
    await page.goto(`${t.app.restUrl.replace(/\/rest-api$/, '')}${rec!.downloadUrl}`);
    const v = (await page.evaluate(`(async () => {
      const video = document.querySelector('video');
      video.muted = true;
      await video.play();
      await new Promise((r) => setTimeout(r, 2000));
      return { t: video.currentTime, w: video.videoWidth, h: video.videoHeight, d: video.duration, audioBytes: video.webkitAudioDecodedByteCount, err: video.error && video.error.message };
    })()`)) as { t: number; w: number; h: number; d: number; audioBytes: number; err: string | null };
    console.log(`# Chromium on the download link: ${JSON.stringify(v)}`);
    assert.equal(v.err, null);
    assert.ok(v.t > 1 && v.w > 0 && v.audioBytes > 0, 'it plays, with picture and sound');
    assert.ok(Math.abs(v.d - callSeconds) < 0.5, `Chromium's duration ${v.d} s, the call's ${callSeconds} s`);
  } finally {
    await browser.close();
  }

  const live = await analyzeAvSync(join(t.env.RECORDINGS_DIR!, `rtmp_${stream}.flv`));
  const recorded = await analyzeAvSync(rec!.path);
  // The first SRT receiver was killed (SIGKILL): its file is cut wherever it was; only its size is checked.
  // -flush_packets 1: the receiver's file holds what it got (ffmpeg's own buffers died with it otherwise).
  const before = statSync(srtFile).size;
  console.log(`# SRT before the kill: ${before} bytes received`);
  assert.ok(before > 50_000, `the first SRT receiver got ${before} bytes; it said: ${receiverLogs.get(firstReceiver)}`);
  const srt2 = await analyzeAvSync(srtFile2);
  const whole = await analyzeAvSync(wholeFile);
  const recSeconds = recorded.frames.at(-1)!.pts - recorded.frames[0]!.pts;
  console.log(`# call ${callSeconds.toFixed(2)} s; recording ${recSeconds.toFixed(2)} s of video, ${rec!.bytes} bytes (${rec!.fileName})`);
  for (const [name, rep] of [['RTMP (nginx)', live], ['recording', recorded], ['SRT after the receiver came back', srt2], ['SRT, the whole call', whole]] as const) console.log(`# ${summary(name, rep)}`);
  assert.ok(Math.abs(recSeconds - callSeconds) < 0.5, `recording ${recSeconds} s against the call's ${callSeconds} s`);
  const liveMaxGop = Math.max(...live.keyframeIntervals);
  assert.ok(whole.audioSeconds > callSeconds - 2, `the whole-call SRT receiver got ${whole.audioSeconds} s of audio`);
  for (const [name, rep] of [['recording', recorded], ['SRT after', srt2], ['SRT whole', whole]] as const) {
    assert.equal(rep.decodeErrors, 0, `${name}: ${rep.decodeErrorLines.join('\n')}`);
    assert.ok(rep.pairs.length >= 3, `${name}: ${rep.pairs.length} beep/flash pairs`);
    // The same encoded stream: A/V as on the live output, keyframes as often (the second SRT connection
    // starts later, so its longest interval may be shorter than one at the call's start).
    assert.ok(Math.abs(mean(rep.offsetsMs) - mean(live.offsetsMs)) < 15, `${name}: A/V ${mean(rep.offsetsMs)} ms against the live stream's ${mean(live.offsetsMs)} ms`);
    const maxGop = Math.max(...rep.keyframeIntervals);
    assert.ok(rep === srt2 ? maxGop <= liveMaxGop + 0.1 : Math.abs(maxGop - liveMaxGop) < 0.1, `${name}: longest keyframe interval ${maxGop} s, RTMP's ${liveMaxGop} s`);
  }
  await t.assertNoLeaks([key]);
}

test('a recordings directory that cannot be written: the recording FAILED with the reason; the call and its output go on', { timeout: 60_000 }, async (ctx) => {
  if (process.getuid?.() !== 0) return ctx.skip('needs root (a read-only tmpfs)');
  const ro = join(dir, 'ro');
  mkdirSync(ro, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro]);
  let app: TestApp | undefined;
  try {
    app = await startTestApp({ RECORDINGS_DIR: ro });
    const ro2 = app;
    const callId = uniqueId('ro');
    const r = await ro2.post('/call/startup', { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: ro2.env.BARESIP_PORT, rtmpUrl: ro2.env.RTMP_URL, rtmpStream: uniqueId('ro'), record: 'true' });
    assert.equal(r.status, 200, r.text);
    assert.equal((await ro2.waitStatus(callId, ['ESTABLISHED', 'FAILED'])).status, 'ESTABLISHED');
    await waitFor(async () => (await ro2.find(callId))?.recordings[0]?.status === 'FAILED', 10_000, 'recording FAILED');
    await new Promise((res) => setTimeout(res, 2000));
    const v = (await ro2.find(callId))!;
    assert.match(v.recordings[0]!.reason ?? '', /read-only file system \(EROFS\)/);
    assert.equal(v.status, 'ESTABLISHED');
    assert.equal(v.rtmpStreamStatus, 'PUBLISHING');
    const again = await ro2.post('/recorder/startup', { mediaSessionId: callId });
    assert.equal(again.status, 200);
    assert.equal((again.json as RecordingView).status, 'FAILED');
    assert.equal((await ro2.post('/call/terminate', { callId })).status, 200);
    await ro2.waitStatus(callId, ['FINISH']);
    await ro2.assertNoLeaks([ro2.app.calls.get(callId)!.key]);
  } finally {
    await app?.stop();
    execFileSync('umount', ['-l', ro]);
  }
});
