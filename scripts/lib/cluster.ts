/**
 * The cluster sandbox (`scripts/cluster`) as the demo and the tests drive it: its settings, its
 * subcommands, a node's REST API, and callers dialling in through Kamailio.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CallView } from '../../plugin/calls/types.js';
import { postRest } from './rest.js';
import { REPO_ROOT } from './repo-root.js';
import { readSandboxEnv, SANDBOX_RUN } from './sandbox-env.js';

/** dist/scripts/lib → the repository. */

export interface ClusterNode {
  /** 1-based, as `scripts/cluster kill N` takes it. */
  n: number;
  /** Its NODE_ID. */
  name: string;
  rest: string;
  ari: string;
  /** Its CPU quota (cores). */
  quota: number;
  post(method: string, body: unknown): ReturnType<typeof postRest>;
}

export interface ClusterEnv {
  nodes: ClusterNode[];
  redisUrl: string;
  name: string;
  /** Kamailio: the fleet's one SIP address. */
  sipHost: string;
  sipPort: number;
}

/** The running cluster's settings; throws a clear error if it is not up. */
export function readClusterEnv(): ClusterEnv {
  let text: string;
  try {
    text = readFileSync(join(SANDBOX_RUN, 'cluster/cluster.env'), 'utf8');
  } catch {
    throw new Error('the cluster is not up: run scripts/cluster up');
  }
  const e: Record<string, string> = {};
  for (const m of text.matchAll(/^([A-Z0-9_]+)=(.*)$/gm)) e[m[1]!] = m[2]!;
  const nodes = Array.from({ length: Number(e.CLUSTER_NODES) }, (_, i): ClusterNode => {
    const rest = e[`NODE_${i + 1}_REST`]!;
    return {
      n: i + 1, name: `node-${i + 1}`, rest, ari: e[`NODE_${i + 1}_ARI`]!, quota: Number(e[`NODE_${i + 1}_QUOTA`]),
      post: (method, body) => postRest(rest, method, body),
    };
  });
  const [sipHost, sipPort] = e.KAMAILIO_SIP!.split(':');
  return { nodes, redisUrl: e.CLUSTER_REDIS_URL!, name: e.CLUSTER_NAME!, sipHost: sipHost!, sipPort: Number(sipPort) };
}

const run = promisify(execFile);

/** `scripts/cluster ARGS…`, with `env` added to this process's environment (app settings pass through). */
export async function clusterCmd(args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run('bash', [join(REPO_ROOT, 'scripts/cluster'), ...args], { env: { ...process.env, ...env }, timeout: 300_000 });
  return stdout;
}

export type ClusterCall = CallView & { nodeId: string };

/** /call/find_all as one node answers it (every call of the cluster, with its node). */
export async function findAll(node: ClusterNode): Promise<ClusterCall[]> {
  const j = (await node.post('/call/find_all', {})).json;
  return Array.isArray(j) ? j as ClusterCall[] : [];
}

/**
 * `count` sipp callers dialling `exten` through Kamailio, `ratePerSec` a second, each hanging up after
 * `holdMs`. Each call's stream is named by its X-Stream header: `sipp-<pid>-<n>`. `exit` is sipp's
 * exit code (0: every call was answered and ended cleanly).
 */
export function dialThroughKamailio(c: ClusterEnv, o: { exten: string; count: number; ratePerSec: number; holdMs: number; localPort: number; mediaPort: number }): { child: ChildProcess; exit: Promise<number | null> } {
  const media = join(readSandboxEnv().SANDBOX_CACHE!, 'media');
  const child = spawn('sipp', [
    '-sf', join(REPO_ROOT, 'test/sipp/uac-inbound-hangup.xml'), '-s', o.exten, '-d', String(o.holdMs), `${c.sipHost}:${c.sipPort}`,
    '-i', '127.0.0.1', '-p', String(o.localPort), '-mi', '127.0.0.1', '-mp', String(o.mediaPort),
    '-m', String(o.count), '-r', String(o.ratePerSec), '-l', String(o.count), '-nostdin',
    '-timeout', `${Math.ceil(o.holdMs / 1000) + 30}s`, '-timeout_error',
    '-trace_err', '-error_file', join(SANDBOX_RUN, 'logs', `sipp-kamailio-${o.localPort}.log`),
  ], { cwd: media, stdio: 'ignore' });
  const exit = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exit };
}
