/** /call/inject_stream's decoder against the real ffmpeg: a file of tone + picture, and our own FLV on its stdin. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { injectFailureReason, injectorArgs, streamInjector } from '../../adapters/ffmpeg/stream-injector.js';
import { parseSps } from '../../plugin/media/encode/h264/sps.js';
import type { InjectedStream } from '../../plugin/media/ports.js';

let dir: string;
let file: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'inject-'));
  file = join(dir, 'tone.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=44100:duration=2', '-f', 'lavfi', '-i', 'testsrc=size=352x288:rate=25:duration=2',
    '-c:a', 'aac', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-shortest', file]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function collect(s: InjectedStream) {
  const audio: Int16Array[] = [];
  const video: { nalus: Buffer[]; keyframe: boolean }[] = [];
  const ended = new Promise<Error | undefined>((r) => s.on('end', (err) => r(err)));
  s.on('audio', (p) => audio.push(p));
  s.on('video', (nalus, keyframe) => video.push({ nalus, keyframe }));
  return { audio, video, ended };
}

/** The dominant frequency by zero crossings (a clean sine). */
function zeroCrossingHz(pcm: Int16Array, rate: number): number {
  let n = 0;
  for (let i = 1; i < pcm.length; i++) if ((pcm[i - 1]! < 0) !== (pcm[i]! < 0)) n++;
  return n / 2 / (pcm.length / rate);
}

test('a file: PCM at the leg rate, paced at real time; H.264 Baseline at the leg size, SPS+PPS with each keyframe', { timeout: 20_000 }, async () => {
  const t0 = Date.now();
  const s = streamInjector()({ input: { url: file, realtime: true }, sampleRate: 8000, video: { width: 320, height: 240, fps: 25 } });
  const c = collect(s);
  assert.equal(await c.ended, undefined, 'played out');
  const took = Date.now() - t0;
  const pcm = Int16Array.from(c.audio.flatMap((a) => Array.from(a)));
  console.log(`# 2 s file: ${pcm.length} samples in ${took} ms; ${c.video.length} frames, ${c.video.filter((f) => f.keyframe).length} keyframes`);
  assert.ok(took >= 1800, `paced at real time (${took} ms)`);
  assert.ok(Math.abs(pcm.length - 16000) < 400, `${pcm.length} samples`);
  assert.ok(Math.abs(zeroCrossingHz(pcm.subarray(800, 15000), 8000) - 660) < 5);
  assert.ok(c.video.length >= 48 && c.video.length <= 52, `${c.video.length} frames`);
  const first = c.video[0]!;
  assert.ok(first.keyframe);
  const types = (f: { nalus: Buffer[] }) => f.nalus.map((n) => n[0]! & 0x1f);
  assert.deepEqual(types(first).slice(0, 2), [7, 8], 'SPS and PPS lead the keyframe');
  const sps = parseSps(first.nalus[0]!);
  assert.deepEqual([sps.width, sps.height, sps.profileIdc], [320, 240, 66]);
  assert.ok(c.video.every((f) => !types(f).includes(9)), 'no access unit delimiters sent on');
  await s.close();
});

test('failures are told in words, never with the URL; close() kills a child waiting on a network input', { timeout: 20_000 }, async () => {
  assert.equal(injectFailureReason('rtmp://u:p@host/app/key: Connection refused', 'rtmp://u:p@host/app/key'), 'could not connect (connection refused)');
  assert.equal(injectFailureReason('Output file #0 does not contain any stream'), 'the stream has no audio');
  assert.doesNotMatch(injectFailureReason('weird failure at rtmp://u:p@h/a/secretkey'), /secretkey/);
  assert.ok(injectorArgs({ input: { url: 'http://x/y.flv', realtime: true }, sampleRate: 8000 }).join(' ').includes('-protocol_whitelist rtmp,rtmps,http,https,tcp,tls,crypto'));
  assert.ok(injectorArgs({ input: { url: '/sounds/a.wav', realtime: true }, sampleRate: 8000 }).join(' ').includes('-protocol_whitelist file -i file:/sounds/a.wav'));

  const refused = streamInjector()({ input: { url: 'rtmp://127.0.0.1:9/live/x', realtime: false }, sampleRate: 8000 });
  const err = await collect(refused).ended;
  assert.match(String(err?.message), /could not connect|Connection refused|connect/i);
  assert.doesNotMatch(String(err?.message), /127\.0\.0\.1:9/);
  // A listener that never answers: close() must not wait for ffmpeg's own timeout.
  const net = await import('node:net');
  const server = net.createServer(() => {}).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const port = (server.address() as { port: number }).port;
  const stuck = streamInjector()({ input: { url: `rtmp://127.0.0.1:${port}/live/x`, realtime: false }, sampleRate: 8000 });
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  await stuck.close();
  assert.ok(Date.now() - t0 < 1000);
  server.close();
});
