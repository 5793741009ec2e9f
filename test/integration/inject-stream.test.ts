/**
 * /call/inject_stream against the real sandbox: another stream played toward the SIP party, checked at
 * the far end (baresip's sndfile module records what it hears), while the call's own published stream
 * (recorded by nginx) stays the caller's: baresip sends a 1 kHz tone, the injected stream is 660 Hz.
 * Then a file from a web server (http://), another call's stream by its name (the sipp video far end's
 * beeps), and the errors.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { decodePcm, dominantFrequency, isPublished } from '../helpers/audio-analysis.js';
import { loudestHeardByBaresip } from '../helpers/baresip-dump.js';
import { uniqueId } from '../helpers/sandbox.js';

let t: TestApp;
const children = new Set<ChildProcess>();
before(async () => {
  t = await startTestApp({});
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await t?.stop();
});

async function callBaresip(): Promise<{ callId: string; stream: string; key: string }> {
  const callId = uniqueId('inj');
  const stream = uniqueId('injs');
  const r = await t.post('/call/startup', { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, hasAudio: 'true', hasVideo: 'false', rtmpUrl: t.env.RTMP_RECORD_URL, rtmpStream: stream });
  assert.equal(r.status, 200, r.text);
  assert.equal((await t.waitStatus(callId, ['ESTABLISHED', 'FAILED'])).status, 'ESTABLISHED');
  return { callId, stream, key: t.app.calls.get(callId)!.key };
}

/** Ends a call; `leaks`: check nothing is left (only when no other call is up: the check counts every port). */
async function hangUp(c: { callId: string; stream: string; key: string }, leaks = true): Promise<string> {
  assert.equal((await t.post('/call/terminate', { callId: c.callId })).status, 200);
  if (leaks) await t.assertNoLeaks([c.key]);
  await waitFor(async () => !(await isPublished(t.env.RTMP_STAT_URL!, `rtmp_${c.stream}`)), 5000, 'unpublished on nginx');
  return join(t.env.RECORDINGS_DIR!, `rtmp_${c.stream}.flv`);
}

test('an RTMP stream injected: the far end hears it; the published stream stays the caller\'s; terminate, and errors naming the field', { timeout: 60_000 }, async () => {
  // The stream to inject: a 660 Hz tone published to nginx.
  const src = uniqueId('tone660');
  const pub = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=44100', '-c:a', 'aac', '-f', 'flv', `${t.env.RTMP_URL}/${src}`], { stdio: 'ignore' });
  children.add(pub);
  await waitFor(() => isPublished(t.env.RTMP_STAT_URL!, src), 10_000, 'the tone published');

  const c = await callBaresip();
  const bad = async (path: string, body: unknown) => {
    const r = await t.post(path, body);
    return [r.status, (r.json as { field?: string } | undefined)?.field];
  };
  assert.deepEqual(await bad('/call/inject_stream/startup', { callId: c.callId }), [400, 'streamName']);
  assert.deepEqual(await bad('/call/inject_stream/startup', { callId: c.callId, streamName: 'file:///etc/passwd' }), [400, 'streamName']);
  assert.deepEqual(await bad('/call/inject_stream/startup', { callId: c.callId, streamName: 'no-such-stream' }), [404, 'streamName']);
  assert.deepEqual(await bad('/call/inject_stream/startup', { callId: c.callId, streamName: c.stream }), [400, 'streamName']);
  assert.deepEqual(await bad('/call/inject_stream/startup', { callId: 'nope', streamName: `${t.env.RTMP_URL}/${src}` }), [404, 'callId']);
  assert.deepEqual(await bad('/call/inject_stream/terminate', { callId: c.callId }), [404, 'callId']);

  await new Promise((r) => setTimeout(r, 2000));
  const r = await t.post('/call/inject_stream/startup', { callId: c.callId, streamName: `${t.env.RTMP_URL}/${src}` });
  assert.equal(r.status, 200, r.text);
  await new Promise((res) => setTimeout(res, 4000));
  const during = (await t.find(c.callId))!;
  console.log(`# the call's events: ${JSON.stringify(during.events.slice(-3))}`);
  const toCaller = (during.media as { toCaller?: { injected?: { underruns: number; droppedMs: number } } }).toCaller;
  console.log(`# while injecting: ${JSON.stringify(toCaller)}`);
  assert.ok(toCaller?.injected, 'the Call object shows the injection');
  assert.ok(toCaller.injected.underruns <= 1, 'no stutter once playing');
  assert.equal((await t.post('/call/inject_stream/terminate', { callId: c.callId })).status, 200);
  assert.equal((await t.post('/call/inject_stream/terminate', { callId: c.callId })).status, 404);
  await new Promise((res) => setTimeout(res, 500));
  const recording = await hangUp(c);
  pub.kill('SIGINT');

  const heard = await loudestHeardByBaresip();
  console.log(`# baresip heard ${heard.seconds.toFixed(1)} s; its loudest second: ${heard.freq.toFixed(0)} Hz (${(heard.share * 100).toFixed(1)} %), rms ${heard.rms.toFixed(3)}`);
  assert.ok(Math.abs(heard.freq - 660) < 10 && heard.share > 0.9 && heard.rms > 0.05, JSON.stringify(heard));

  // What the call published: baresip's own 1 kHz in every second, never the injected 660 Hz.
  const pcm = await decodePcm(recording, 8000);
  const seconds = Math.floor(pcm.length / 8000);
  const freqs: number[] = [];
  for (let s = 1; s < seconds - 1; s++) freqs.push(Math.round(dominantFrequency(pcm, 8000, { start: s * 8000, seconds: 1 }).freq));
  console.log(`# the published stream, second by second: ${freqs.join(' ')} Hz`);
  // Whose audio it is (1 kHz, never 660 Hz), at its pitch from the first second: Asterisk hands a call's first
  // ~100 ms over at once, and that backlog used to play 1-2 % sharp for 3-4 s while the timeline drained it (issue 16);
  // within 1.5 %: an early packet's offset is still steered off (~1 % at worst).
  assert.ok(freqs.length >= 4 && freqs.every((f) => Math.abs(f - 1000) < 15), freqs.join(' '));
});

test('a file on a web server (http://) injected: played at its own pace to its end, the far end hears it', { timeout: 60_000 }, async () => {
  // A 3 s 660 Hz tone in FLV, served by a plain HTTP server, as a backend's media server would.
  const dir = mkdtempSync(join(tmpdir(), 'inject-http-'));
  const file = join(dir, 'tone660.flv');
  execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=44100:duration=3', '-c:a', 'aac', '-f', 'flv', file]);
  const body = readFileSync(file);
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'video/x-flv', 'content-length': body.length }).end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const c = await callBaresip();
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/media/tone660.flv?token=s3cret`;
    const started = performance.now();
    const r = await t.post('/call/inject_stream/startup', { callId: c.callId, streamName: url });
    assert.equal(r.status, 200, r.text);
    await waitFor(async () => (await t.find(c.callId))?.events?.some((e: { type?: string }) => e.type === 'INJECT_END') ?? false, 15_000, 'INJECT_END');
    const tookMs = performance.now() - started;
    const view = (await t.find(c.callId))!;
    const events = view.events.filter((e) => e.type.startsWith('INJECT'));
    console.log(`# ${requests.join(', ')}; the file ended after ${tookMs.toFixed(0)} ms; events ${JSON.stringify(events)}`);
    assert.ok(tookMs >= 2500, `played at its own pace (3 s), not at once: ${tookMs.toFixed(0)} ms`);
    assert.ok(!JSON.stringify(view).includes('s3cret'), 'the URL\'s query is not shown');
    assert.equal(view.status, 'ESTABLISHED', 'the call goes on');
    await hangUp(c);
    const heard = await loudestHeardByBaresip();
    console.log(`# baresip heard ${heard.seconds.toFixed(1)} s; its loudest second: ${heard.freq.toFixed(0)} Hz (${(heard.share * 100).toFixed(1)} %), rms ${heard.rms.toFixed(3)}`);
    assert.ok(Math.abs(heard.freq - 660) < 10 && heard.share > 0.9 && heard.rms > 0.05, JSON.stringify(heard));
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('another call\'s stream by its name: the far end hears that call\'s beeps; the injected call ending ends the injection', { timeout: 60_000 }, async () => {
  const source = { callId: uniqueId('src'), stream: uniqueId('srcs') };
  const r = await t.post('/call/startup', { callId: source.callId, callee: 'video', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_VIDEO_PORT, hasVideo: 'true', rtmpUrl: t.env.RTMP_RECORD_URL, rtmpStream: source.stream, toStream: source.stream });
  assert.equal(r.status, 200, r.text);
  assert.equal((await t.waitStatus(source.callId, ['ESTABLISHED', 'FAILED'])).status, 'ESTABLISHED');
  const sourceKey = t.app.calls.get(source.callId)!.key;
  const c = await callBaresip();
  const inj = await t.post('/call/inject_stream/startup', { callId: c.callId, streamName: source.stream });
  assert.equal(inj.status, 200, inj.text);
  await new Promise((res) => setTimeout(res, 4000));
  // The source ends first: the injection stops with it, the call goes on.
  await hangUp({ ...source, key: sourceKey }, false);
  await waitFor(async () => (await t.find(c.callId))?.events?.some((e: { type?: string }) => e.type === 'INJECT_END') ?? false, 5000, 'INJECT_END');
  assert.equal((await t.find(c.callId))!.status, 'ESTABLISHED');
  assert.equal((await t.post('/call/inject_stream/terminate', { callId: c.callId })).status, 404, 'nothing injected any more');
  await hangUp(c);
  await t.assertNoLeaks([sourceKey]);
  const heard = await loudestHeardByBaresip();
  console.log(`# baresip heard the other call: loudest second ${heard.freq.toFixed(0)} Hz (${(heard.share * 100).toFixed(1)} %), rms ${heard.rms.toFixed(3)}`);
  assert.ok(Math.abs(heard.freq - 1000) < 15 && heard.rms > 0.02, JSON.stringify(heard));
});

test('on a video call, the injected stream\'s picture goes to the SIP party too (Baseline H.264 at the caller\'s size)', { timeout: 60_000 }, async () => {
  const src = uniqueId('av');
  const pub = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=44100', '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=25',
    '-c:a', 'aac', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '50', '-f', 'flv', `${t.env.RTMP_URL}/${src}`], { stdio: 'ignore' });
  children.add(pub);
  await waitFor(() => isPublished(t.env.RTMP_STAT_URL!, src), 10_000, 'the stream published');
  await new Promise((res) => setTimeout(res, 1000)); // its encoder under way
  const callId = uniqueId('injv');
  const r = await t.post('/call/startup', { callId, callee: 'videophone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_VIDEO_PORT, hasAudio: 'true', hasVideo: 'true', toStream: callId });
  assert.equal(r.status, 200, r.text);
  assert.equal((await t.waitStatus(callId, ['ESTABLISHED', 'FAILED'])).status, 'ESTABLISHED');
  const key = t.app.calls.get(callId)!.key;
  assert.equal((await t.post('/call/inject_stream', { callId, streamName: `${t.env.RTMP_URL}/${src}` })).status, 200, 'WCS 5.0\'s name');
  await new Promise((res) => setTimeout(res, 4000));
  const view = (await t.find(callId))!;
  const toCaller = (view.media as { toCaller?: { videoPackets: number; audioPackets: number } }).toCaller;
  console.log(`# toward the videophone while injecting: ${JSON.stringify(toCaller)}; events ${JSON.stringify(view.events.filter((e) => e.type.startsWith('INJECT')))}`);
  assert.ok(toCaller && toCaller.videoPackets > 50, 'video packets sent toward the SIP party');
  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  await t.assertNoLeaks([key]);
  pub.kill('SIGINT');
});
