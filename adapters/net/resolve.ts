/** Does a host name resolve? (An output's host is checked before a push starts: WCS answers "bad or unresolvable rtmpUrl".) */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Resolves when `host` is an IP address or resolves within `timeoutMs`; rejects with the resolver's reason. */
export async function resolveHost(host: string, timeoutMs = 3000): Promise<void> {
  if (isIP(host)) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([lookup(host), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('DNS timeout')), timeoutMs)))]);
  } finally {
    clearTimeout(timer);
  }
}
