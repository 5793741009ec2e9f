/** A private Redis (Debian's redis-server) on a free loopback port, without persistence: a restart loses its data. */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { freePort } from './free-port.js';

export interface TestRedis {
  port: number;
  url: string;
  /** Kill it and start it again on the same port, empty (as a Redis without persistence comes back). */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}


async function reachable(port: number): Promise<boolean> {
  return new Promise((r) => {
    const c = connect(port, '127.0.0.1', () => { c.destroy(); r(true); });
    c.on('error', () => r(false));
  });
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess;
  const run = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await reachable(port)); i++) await new Promise((r) => setTimeout(r, 50));
  };
  const kill = () => new Promise<void>((r) => {
    if (child.exitCode !== null) return r();
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
  await run();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async restart(downMs = 300) {
      await kill();
      await new Promise((r) => setTimeout(r, downMs));
      await run();
    },
    stop: kill,
  };
}
