/**
 * The SRT output against real receivers on 127.0.0.1: ffmpeg listening with libsrt (as a CDN's ingest),
 * and a libsrt listener that refuses unknown stream ids (test/helpers/srt-listener.py). Real encoded
 * frames go through a LiveStream and a Push, as in a call; what arrives is judged from its first byte.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { SrtSink, srtFailureReason, srtSinkArgs } from '../../adapters/srt/srt-sink.js';
import { LiveStream } from '../../plugin/media/output/live-stream.js';
import { Push } from '../../plugin/media/output/push.js';
import { parseOutputTarget, type SrtOutputTarget } from '../../plugin/media/output/target.js';
import { encodedClip, playClip, type EncodedClip } from '../helpers/encoded-clip.js';

const run = promisify(execFile);
const PASS = 'correct-horse-battery';
let dir: string;
let clip: EncodedClip;
let nextPort = 9740;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'srt-'));
  clip = encodedClip(4);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function srtTarget(url: string): SrtOutputTarget {
  const t = parseOutputTarget(url);
  assert.equal(t.kind, 'srt');
  return t as SrtOutputTarget;
}

/** ffmpeg as an SRT listener, writing what it receives (TS, copied) to `out`. */
async function ffmpegListener(port: number, out: string, passphrase?: string): Promise<ChildProcess> {
  const url = `srt://127.0.0.1:${port}?mode=listener${passphrase ? `&passphrase=${passphrase}` : ''}`;
  const p = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', '-i', url, '-map', '0', '-c', 'copy', '-f', 'mpegts', out], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise((r) => setTimeout(r, 300)); // bound before we call
  return p;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGINT');
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await once(p, 'exit');
  clearTimeout(t);
}

async function probe(file: string): Promise<{ streams: { codec_name: string; codec_type: string }[]; videoFrames: number; firstVideoIsKey: boolean; keyframeGapsS: number[]; errors: string }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_streams', '-show_entries', 'packet=stream_index,pts_time,flags', '-of', 'json', file]);
  const j = JSON.parse(stdout) as { streams: { index: number; codec_name: string; codec_type: string }[]; packets: { stream_index: number; pts_time: string; flags: string }[] };
  const v = j.streams.find((s) => s.codec_type === 'video')!;
  const keys = j.packets.filter((p) => p.stream_index === v.index && p.flags.startsWith('K')).map((p) => Number(p.pts_time));
  const decode = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { maxBuffer: 1 << 20 });
  return {
    streams: j.streams,
    videoFrames: j.packets.filter((p) => p.stream_index === v.index).length,
    firstVideoIsKey: j.packets.find((p) => p.stream_index === v.index)?.flags.startsWith('K') ?? false,
    keyframeGapsS: keys.slice(1).map((k, i) => k - keys[i]!),
    errors: decode.stderr.trim(),
  };
}

test('SRT URLs: options checked by name, secrets never shown', () => {
  const t = srtTarget('srt://cdn.example.com:9000?streamid=%23!%3A%3Ar%3Dlive%2Fsecretkey,m%3Dpublish&passphrase=abcdefghij12&latency=200');
  assert.equal(t.srt.streamId, '#!::r=live/secretkey,m=publish');
  assert.equal(t.srt.latencyMs, 200);
  assert.equal(t.display, 'srt://cdn.example.com:9000?streamid=#!::***');
  assert.doesNotMatch(t.display, /secretkey|abcdefghij12/);
  const args = srtSinkArgs(t.srt);
  assert.equal(args[args.indexOf('-latency') + 1], '200000'); // libsrt wants µs
  assert.equal(args[args.indexOf('-srt_streamid') + 1], '#!::r=live/secretkey,m=publish'); // as is: ffmpeg does not %-decode
  assert.doesNotMatch(args.at(-1)!, /secretkey|abcdefghij12/); // the URL ffmpeg echoes on stderr holds no secret
  assert.equal(srtTarget('srt://10.0.0.1:9000').srt.streamId, undefined);
  assert.equal((parseOutputTarget('srt://10.0.0.1:9000', 'show1') as SrtOutputTarget).srt.streamId, 'show1');
  for (const [url, why] of [
    ['srt://host', /needs a port/],
    ['srt://host:9000?passphrase=short', /10 to 79/],
    ['srt://host:9000?mode=listener', /caller/],
    ['srt://host:9000?maxbw=1', /"maxbw" is not supported/],
    ['srt://host:9000/path', /no path/],
    ['srt://u:p@host:9000', /no user:password/],
    ['srt://host:9000?latency=5', /20 to 10000/],
    ['srt://host:9000?pbkeylen=32', /needs a passphrase/],
  ] as const) assert.throws(() => parseOutputTarget(url), why, url);
  assert.throws(() => parseOutputTarget('srt://h:1?streamid=a', 'b'), /has a streamid already/);
  assert.throws(() => parseOutputTarget('http://h/x'), /rtmp:\/\/, rtmps:\/\/ or srt:\/\//);
  // What ffmpeg writes on failure carries the URL (and so the passphrase): the reason never does.
  const reason = srtFailureReason(`[srt @ 0x1] Connection to srt://h:1?passphrase=${PASS} failed: Input/output error\n`, t.srt);
  assert.doesNotMatch(reason, new RegExp(PASS));
});

test('an SRT push: AAC + H.264 passed through to a listener with a passphrase, decodable with no error, keyframes as sent', async () => {
  const port = nextPort++;
  const out = join(dir, 'ok.ts');
  const listener = await ffmpegListener(port, out, PASS);
  const stream = new LiveStream();
  const target = srtTarget(`srt://127.0.0.1:${port}?passphrase=${PASS}&latency=400`);
  const sink = new SrtSink({ target: target.srt, connectTimeoutMs: 2000 });
  const push = new Push(stream, () => sink);
  const states: string[] = [];
  push.on('state', (s) => states.push(s.state));
  const started = push.start();
  const played = playClip(stream, clip, 6000);
  await started;
  await played;
  await push.close();
  await new Promise((r) => setTimeout(r, 1500)); // the last packets, through the receiver's latency buffer (400 ms)
  await stop(listener);
  assert.deepEqual(states, ['PUBLISHING', 'CLOSED']);
  const p = await probe(out);
  assert.deepEqual(p.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort(), ['audio:aac', 'video:h264']);
  assert.equal(p.errors, '', 'ffmpeg decodes it without errors');
  // Nothing lost to the connect: the first frame sent (a keyframe, fed to ffmpeg before it connected) is the
  // first received. Of 6 s at 25 fps, a loaded machine may lose a few to SRT's too-late drop at the receiver.
  assert.ok(p.firstVideoIsKey, 'the stream starts with the keyframe sent first');
  assert.ok(p.videoFrames >= 138, `video frames received: ${p.videoFrames} of 150`);
  for (const g of p.keyframeGapsS) assert.ok(Math.abs(g - 2) < 0.05, `keyframe interval ${g} s (sent every 2 s)`);
  assert.equal(push.stats.framesOut, stream.stats.audioFrames + stream.stats.videoFrames, 'every frame went to ffmpeg');
  console.log(`# ${statSync(out).size} bytes of TS, ${p.videoFrames} video frames, keyframe gaps ${p.keyframeGapsS.map((g) => g.toFixed(2)).join(', ')} s`);
});

test('a wrong passphrase: FAILED with libsrt\'s reason', async () => {
  const port = nextPort++;
  const listener = await ffmpegListener(port, join(dir, 'x.ts'), PASS);
  const stream = new LiveStream();
  const push = new Push(stream, () => new SrtSink({ target: srtTarget(`srt://127.0.0.1:${port}?passphrase=wrong-passphrase`).srt, connectTimeoutMs: 2000 }));
  const played = playClip(stream, clip, 1000, 4);
  await assert.rejects(push.start());
  await played;
  assert.equal(push.state, 'FAILED');
  assert.match(push.failureReason ?? '', /SRT connection rejected: Incorrect passphrase/);
  await stop(listener);
});

test('a refused streamid: FAILED, saying the receiver refused it; the right one publishes', async () => {
  const port = nextPort++;
  const out = join(dir, 'py.ts');
  const listener = spawn('/usr/bin/python3', [new URL('../../../test/helpers/srt-listener.py', import.meta.url).pathname, String(port), 'live/show&1', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  await once(listener.stdout!, 'data'); // "listening"
  try {
    const stream = new LiveStream();
    const bad = new Push(stream, () => new SrtSink({ target: srtTarget(`srt://127.0.0.1:${port}?streamid=live/other`).srt, connectTimeoutMs: 2000 }));
    const good = new Push(stream, () => new SrtSink({ target: srtTarget(`srt://127.0.0.1:${port}?streamid=live/show%261`).srt, connectTimeoutMs: 2000 }));
    const starts = [bad.start().catch(() => {}), good.start()];
    await playClip(stream, clip, 3000);
    await Promise.all(starts);
    assert.equal(bad.state, 'FAILED');
    assert.match(bad.failureReason ?? '', /rejected by the receiver.*streamid/);
    assert.equal(good.state, 'PUBLISHING');
    await good.close();
  } finally {
    listener.kill('SIGKILL');
  }
  assert.ok(readFileSync(out).length > 10_000, 'the allowed stream id got its stream');
});

test('no receiver: FAILED once the handshake times out', async () => {
  const stream = new LiveStream();
  const push = new Push(stream, () => new SrtSink({ target: srtTarget(`srt://127.0.0.1:${nextPort++}`).srt, connectTimeoutMs: 1000 }));
  const started = push.start();
  const played = playClip(stream, clip, 3000, 2);
  await assert.rejects(started);
  await played;
  assert.match(push.failureReason ?? '', /SRT: no answer to the handshake/);
});

test('connectAddress: ffmpeg is given the checked address, not the name; a refusal fails before any ffmpeg runs', async () => {
  const stream = new LiveStream();
  const asked: string[] = [];
  const port = nextPort++;
  // srt.invalid cannot resolve: "no answer to the handshake" shows ffmpeg went to 127.0.0.1 instead.
  const push = new Push(stream, () => new SrtSink({ target: srtTarget(`srt://srt.invalid:${port}`).srt, connectTimeoutMs: 1000, connectAddress: async (h, p) => (asked.push(`${h}:${p}`), '127.0.0.1') }));
  const started = push.start();
  const played = playClip(stream, clip, 3000, 2);
  await assert.rejects(started);
  await played;
  assert.deepEqual(asked, [`srt.invalid:${port}`]);
  assert.match(push.failureReason ?? '', /SRT: no answer to the handshake/);

  let sink: SrtSink | undefined;
  const refused = new Push(new LiveStream(), () => (sink = new SrtSink({
    target: srtTarget('srt://evil.invalid:9000?streamid=secret-id').srt,
    connectAddress: async () => {
      throw Object.assign(new Error("rtmpUrl's host evil.invalid resolves to a link-local address; refused"), { code: 'EFORBIDDEN' });
    },
  })), { reconnect: false });
  await assert.rejects(refused.start());
  assert.equal(refused.failureReason, "rtmpUrl's host evil.invalid resolves to a link-local address; refused");
  assert.equal(sink?.pid, undefined, 'no ffmpeg started');
});

test('the receiver goes away and comes back: RECONNECTING, then PUBLISHING again from a keyframe', async () => {
  const port = nextPort++;
  let listener = await ffmpegListener(port, join(dir, 'r1.ts'));
  const stream = new LiveStream();
  const push = new Push(stream, () => new SrtSink({ target: srtTarget(`srt://127.0.0.1:${port}`).srt, connectTimeoutMs: 1500 }), {
    reconnect: { initialMs: 200, maxMs: 500, factor: 2, minFraction: 1 },
  });
  const states: string[] = [];
  push.on('state', (s) => states.push(s.state));
  const started = push.start();
  const ac = new AbortController();
  const played = playClip(stream, clip, 40_000, 1, ac.signal);
  await started;
  await new Promise((r) => setTimeout(r, 2000));
  listener.kill('SIGKILL');
  const t0 = Date.now();
  while (push.state === 'PUBLISHING' && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 100));
  assert.equal(push.state, 'RECONNECTING', 'the drop is seen');
  console.log(`# the drop was seen after ${Date.now() - t0} ms: ${push.failureReason}`);
  const out2 = join(dir, 'r2.ts');
  listener = await ffmpegListener(port, out2);
  while ((push.state as string) !== 'PUBLISHING' && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
  assert.equal(push.state as string, 'PUBLISHING');
  // The receiving ffmpeg probes its input for up to 5 s before it writes anything.
  await new Promise((r) => setTimeout(r, 7000));
  await push.close();
  await new Promise((r) => setTimeout(r, 1500)); // the receiver's latency buffer
  await stop(listener);
  ac.abort();
  await played;
  const p = await probe(out2);
  assert.equal(p.errors, '', 'the second connection decodes without errors (it starts at a keyframe)');
  assert.ok(p.videoFrames > 25, `video after the reconnect: ${p.videoFrames} frames`);
  assert.deepEqual(states.slice(0, 3), ['PUBLISHING', 'RECONNECTING', 'PUBLISHING']);
});
