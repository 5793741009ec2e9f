/**
 * What is in the sandbox's Asterisk now: channels, bridges and PJSIP endpoints. Tests and the benchmark
 * tell what a call, a run or a killed app left behind from these. PJSIP endpoints come from the CLI: ARI's
 * endpoint list shows only those from pjsip.conf, not the ones the app creates per call (sorcery, dynamic).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { AriClient } from '../../adapters/ari/client.js';
import { readSandboxEnv } from './sandbox-env.js';

const run = promisify(execFile);

/** Run a command in the sandbox's Asterisk CLI (asterisk -rx). */
export async function asteriskCli(command: string): Promise<string> {
  const chroot = join(readSandboxEnv().SANDBOX_CACHE!, 'asterisk-sid');
  const { stdout } = await run('chroot', [chroot, '/usr/sbin/asterisk', '-rx', command], { timeout: 10_000 });
  return stdout;
}

/** Endpoint names in `pjsip show endpoints` (each " Endpoint:  <name>[/<cid>]  <state> ..."; not the header). */
export function parsePjsipEndpoints(cli: string): string[] {
  return [...cli.matchAll(/^\s*Endpoint:\s+([^\s<][^\s/]*)/gm)].map((m) => m[1]!);
}

export interface AsteriskObjects {
  channels: string[];
  bridges: string[];
  endpoints: string[];
}

/** Channel and bridge ids, PJSIP endpoint names. */
export async function asteriskObjects(ari: AriClient): Promise<AsteriskObjects> {
  const [channels, bridges, cli] = await Promise.all([ari.channels.list(), ari.bridges.list(), asteriskCli('pjsip show endpoints')]);
  return { channels: channels.map((c) => c.id), bridges: bridges.map((b) => b.id), endpoints: parsePjsipEndpoints(cli) };
}

/** How many of each kind `keep` lets through. */
export function countObjects(o: AsteriskObjects, keep: (id: string) => boolean): { channels: number; bridges: number; endpoints: number } {
  return { channels: o.channels.filter(keep).length, bridges: o.bridges.filter(keep).length, endpoints: o.endpoints.filter(keep).length };
}

/** What `now` has that `before` had not, kind by kind. */
export function objectsSince(before: AsteriskObjects, now: AsteriskObjects): AsteriskObjects {
  const fresh = (kind: keyof AsteriskObjects) => {
    const was = new Set(before[kind]);
    return now[kind].filter((id) => !was.has(id));
  };
  return { channels: fresh('channels'), bridges: fresh('bridges'), endpoints: fresh('endpoints') };
}
