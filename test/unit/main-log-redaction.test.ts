/**
 * The real process's log (`node dist/plugin/main.js`, as `npm start` runs it), not createApp's: started with
 * secrets in every setting that takes one and Asterisk unreachable (a closed port), its stdout and stderr
 * for a few seconds carry none of them, and do carry the configuration, redacted. It logs the configuration
 * before connecting to anything, so no sandbox is needed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../helpers/free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const MAIN = fileURLToPath(new URL('../../plugin/main.js', import.meta.url));

const SECRETS = {
  hookPassword: 's3cretpass',
  hookToken: 'abc123secret',
  appHookToken: 'app-hook-tok-9931',
  ariPassword: 'ari-pw-77a1c0de',
  amiPassword: 'ami-pw-5ab3e119',
  apiToken: 'api-token-0c9e4b7d2a61f5e8',
};

test('the real process log: HOOK_URL credentials and token, ARI/AMI passwords and API_TOKEN never appear; the redacted config does', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sar-main-log-'));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    ARI_URL: `http://127.0.0.1:${await freePort()}`,
    ARI_PASSWORD: SECRETS.ariPassword,
    AMI_URL: `tcp://127.0.0.1:${await freePort()}`,
    AMI_PASSWORD: SECRETS.amiPassword,
    API_TOKEN: SECRETS.apiToken,
    HOOK_URL: `http://user:${SECRETS.hookPassword}@127.0.0.1:9/hook?token=${SECRETS.hookToken}`,
    HOOK_APPS: `otherApp=http://127.0.0.1:9/apps/other?key=${SECRETS.appHookToken}`,
    REST_PORT: '0',
    SIP_UAS_PORT: String(await freePort()),
    RTP_PORT_MIN: '35800',
    RTP_PORT_MAX: '35899',
    RECORDINGS_DIR: join(dir, 'recordings'),
    SOUNDS_DIR: join(dir, 'sounds'),
    VIDEO_FILL: 'black',
    LOG_LEVEL: 'debug',
  };
  const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    // A few seconds: the configuration, the start, and its first failed connections to ARI (and their retries).
    await Promise.race([exited, new Promise((r) => setTimeout(r, 4000))]);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const lines = out.split('\n').filter((l) => l.trim());
  console.log(`# ${lines.length} log lines: ${lines.map((l) => (JSON.parse(l) as { msg?: string }).msg ?? l).join(' | ').slice(0, 600)}`);
  for (const [what, secret] of Object.entries(SECRETS)) assert.ok(!out.includes(secret), `${what} appears in the log`);
  const configLine = lines.map((l) => JSON.parse(l) as { msg: string; config?: Record<string, Record<string, unknown>> }).find((l) => l.msg === 'configuration');
  assert.ok(configLine?.config, 'the configuration was logged');
  const { hooks, ari, ami, rest } = configLine.config;
  assert.equal(hooks?.url, 'http://***@127.0.0.1:9/hook?***');
  assert.deepEqual(hooks?.apps, { otherApp: 'http://127.0.0.1:9/apps/other?***' });
  assert.equal(ari?.password, '[redacted]');
  assert.equal(ami?.password, '[redacted]');
  assert.equal(rest?.apiToken, '[redacted]');
});
