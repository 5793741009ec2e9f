/**
 * The real app (`node dist/plugin/main.js`) as a child process against the sandbox: for tests that kill it
 * (SIGKILL) or need its own process (many calls, a restart). Every child is tracked, so a test file's
 * after() can kill what is left whatever happened.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { postRest } from '../../scripts/lib/rest.js';
import { appEnvForSandbox } from '../../scripts/lib/sandbox-env.js';
import { waitFor } from './app.js';
import { freePort } from './free-port.js';
import { REPO_ROOT, SANDBOX_RUN, sandboxEnv } from './sandbox.js';

export interface ChildApp {
  child: ChildProcess;
  rest: string;
  /** Its log lines so far (pino NDJSON, parsed). */
  lines: Record<string, unknown>[];
  post(method: string, body: unknown): ReturnType<typeof postRest>;
  /** SIGTERM, and the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, resolved once it is gone. */
  kill(): Promise<void>;
}

/** Every child started, for killChildApps(). */
const children = new Set<ChildProcess>();

/** SIGKILL every child app still running (a test file's after()). */
export function killChildApps(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/**
 * Starts the app with the sandbox's settings plus `extraEnv`, resolved once it says it started (REST
 * listening). Its output goes to `<SANDBOX_RUN>/logs/<logName>.log`.
 */
export async function startChildApp(logName: string, extraEnv: Record<string, string> = {}, startTimeoutMs = 15_000): Promise<ChildApp> {
  const port = await freePort();
  // CHILD_APP_NODE_ARGS: extra node flags for a look inside (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
  const nodeArgs = (process.env.CHILD_APP_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, ['--enable-source-maps', ...nodeArgs, join(REPO_ROOT, 'dist/plugin/main.js')], {
    env: { ...process.env, ...appEnvForSandbox(sandboxEnv()), REST_PORT: String(port), LOG_LEVEL: 'info', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const logFile = createWriteStream(`${SANDBOX_RUN}/logs/${logName}.log`, { flags: 'a' });
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    logFile.write(d);
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      try {
        lines.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => logFile.write(d));
  child.once('exit', () => logFile.end());
  const started = await Promise.race([
    waitFor(async () => lines.some((l) => l.msg === 'sip-as-rtmp started'), startTimeoutMs, 'the app to start').then(() => true),
    exit.then(() => false),
  ]);
  assert.ok(started, `the app exited at start: ${JSON.stringify(lines.slice(-3))}`);
  const rest = `http://127.0.0.1:${port}/rest-api`;
  return {
    child, rest, lines,
    post: (method, body) => postRest(rest, method, body),
    stop: async () => {
      child.kill('SIGTERM');
      return exit;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exit;
    },
  };
}
