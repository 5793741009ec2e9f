/**
 * The README's first command, `npm run demo`, as far as it goes once the sandbox is up and the code built:
 * `node dist/scripts/demo.js`. It publishes the sandbox call to the recording app as a user's own server
 * would be given (DEMO_RTMP_URL, DEMO_STREAM as the stream key, no prefix), ends by itself (DEMO_SECONDS)
 * and exits 0. What nginx received, judged from its first byte, passes YouTube's and Facebook's ingest rules
 * (check-stream); the key never shows whole in what the demo prints or logs.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { REPO_ROOT, SANDBOX_RUN, sandboxEnv } from '../helpers/sandbox.js';

const run = promisify(execFile);
const SECONDS = 12;

test(`npm run demo: a ${SECONDS} s call published to your own server, key kept secret, a stream the platforms accept`, { timeout: 120_000 }, async () => {
  const env = sandboxEnv();
  const key = `demo-key-${randomBytes(6).toString('hex')}`;
  const logFile = join(SANDBOX_RUN, 'logs/demo-app.log');
  const logFrom = existsSync(logFile) ? statSync(logFile).size : 0;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/scripts/demo.js')], {
    env: { ...process.env, DEMO_SECONDS: String(SECONDS), DEMO_RTMP_URL: env.RTMP_RECORD_URL, DEMO_STREAM: key, RTMP_STREAM_PREFIX: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  console.log(out.replace(/^/gm, '# '));
  assert.equal(code, 0, 'the demo exits 0');
  assert.match(out, /call ESTABLISHED \(SIP 200\)/);
  assert.match(out, /stream PUBLISHING/);
  assert.match(out, /watch it: {2}your server's player/);
  assert.match(out, /stopped: call ended, stream unpublished, everything released/);
  const log = readFileSync(logFile).subarray(logFrom).toString();
  assert.ok(log.length > 0, 'the app logged to demo-app.log');
  assert.ok(!out.includes(key) && !log.includes(key), 'the stream key never shows whole');

  // nginx's recording of the stream, from its first byte.
  const recording = join(env.RECORDINGS_DIR!, `${key}.flv`);
  const check = await run('node', [join(REPO_ROOT, 'dist/scripts/check-stream.js'), recording, '--json'])
    .catch((e: { stdout: string; stderr: string }) => assert.fail(`check-stream failed: ${e.stdout} ${e.stderr}`));
  const verdict = JSON.parse(check.stdout) as { ok: boolean };
  assert.equal(verdict.ok, true, check.stdout);
  const probe = JSON.parse((await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name:format=duration', '-of', 'json', recording])).stdout) as {
    streams: { codec_type: string; codec_name: string }[];
    format: { duration: string };
  };
  assert.deepEqual(probe.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort(), ['audio:aac', 'video:h264']);
  const duration = Number(probe.format.duration);
  assert.ok(duration >= SECONDS - 4 && duration <= SECONDS + 1, `recorded ${duration} s of a ${SECONDS} s demo`);
});
