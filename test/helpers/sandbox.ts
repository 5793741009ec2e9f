/**
 * Test access to the running sandbox (scripts/sandbox up): its settings from sandbox.env, an ARI client
 * for it, and small waiting helpers for event-driven tests.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AriClient } from '../../adapters/ari/client.js';
import type { AriEventSocket } from '../../adapters/ari/events.js';
import type { AriEvent } from '../../adapters/ari/types.js';
import { REPO_ROOT } from '../../scripts/lib/repo-root.js';
import { readSandboxEnv } from '../../scripts/lib/sandbox-env.js';

export { REPO_ROOT } from '../../scripts/lib/repo-root.js';
export { asteriskCli } from '../../scripts/lib/asterisk-objects.js';
export { SANDBOX_RUN, readSandboxEnv as sandboxEnv, type SandboxEnv } from '../../scripts/lib/sandbox-env.js';

export function sandboxAri(app = 'sip-as-rtmp-test'): AriClient {
  const env = readSandboxEnv();
  return new AriClient({ url: env.ARI_URL!, user: env.ARI_USER!, password: env.ARI_PASSWORD!, app });
}

const run = promisify(execFile);

/** Run scripts/sandbox with a subcommand. */
export async function sandboxCmd(sub: 'up' | 'down' | 'status' | 'env'): Promise<{ stdout: string; stderr: string }> {
  return run('bash', [join(REPO_ROOT, 'scripts/sandbox'), sub], { env: process.env, timeout: 300_000 });
}

/**
 * Records every event of a socket from the moment it is created, so a test can wait for one that may
 * already have arrived (ARI can deliver StasisStart before the originate answer returns).
 */
export class EventLog {
  readonly events: AriEvent[] = [];
  private waiters: { pred: (e: AriEvent) => boolean; resolve: (e: AriEvent) => void }[] = [];
  private readonly onEvent = (e: AriEvent) => {
    this.events.push(e);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(e)) return true;
      w.resolve(e);
      return false;
    });
  };

  constructor(private readonly socket: AriEventSocket) {
    socket.on('event', this.onEvent);
  }

  stop(): void {
    this.socket.off('event', this.onEvent);
  }

  /** The first event (past or future) matching type and predicate. */
  wait<T extends AriEvent['type']>(
    type: T,
    pred: (e: Extract<AriEvent, { type: T }>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Extract<AriEvent, { type: T }>> {
    const match = (e: AriEvent): boolean => e.type === type && pred(e as Extract<AriEvent, { type: T }>);
    const past = this.events.find(match);
    if (past) return Promise.resolve(past as Extract<AriEvent, { type: T }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        const seen = this.events.map((e) => e.type).join(', ');
        reject(new Error(`no ${type} within ${timeoutMs} ms; saw: ${seen || 'nothing'}`));
      }, timeoutMs);
      const done = (e: AriEvent) => {
        clearTimeout(timer);
        resolve(e as Extract<AriEvent, { type: T }>);
      };
      this.waiters.push({ pred: match, resolve: done });
    });
  }

  forChannel(id: string): AriEvent[] {
    return this.events.filter((e) => 'channel' in e && e.channel?.id === id);
  }
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
}

/**
 * An ARI client with its event socket open and every event recorded, for one describe() block:
 * call open() in before() and close() in after().
 */
export function ariSession(app?: string) {
  const ari = sandboxAri(app);
  const socket = ari.eventSocket();
  const log = new EventLog(socket);
  return {
    ari,
    log,
    open: () => socket.connect(),
    close: () => {
      log.stop();
      socket.close();
    },
  };
}
