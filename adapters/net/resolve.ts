/**
 * Name resolution for outbound targets (plugin/calls/targets.ts checks what comes back): every address a
 * name has, since a connection may go to any of them, within a time limit.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { HostResolver } from '../../plugin/calls/ports.js';

export type LookupAll = (host: string) => Promise<{ address: string }[]>;

export class DnsResolver implements HostResolver {
  constructor(private readonly o: { timeoutMs?: number; lookup?: LookupAll } = {}) {}

  /** Rejects with the resolver's error (its code: ENOTFOUND, EAI_AGAIN, ...) or, after the time limit, code ETIMEOUT. */
  async resolveAll(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const timeoutMs = this.o.timeoutMs ?? 3000;
    const lookup = this.o.lookup ?? ((h: string) => dnsLookup(h, { all: true, verbatim: true }));
    let timer: NodeJS.Timeout | undefined;
    try {
      const list = await Promise.race([
        lookup(host),
        new Promise<never>((_, rej) => (timer = setTimeout(() => rej(Object.assign(new Error('DNS timeout'), { code: 'ETIMEOUT' })), timeoutMs))),
      ]);
      return list.map((a) => a.address);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // dns's own message names the host; the code is what the user can act on.
      throw Object.assign(new Error(e.code === 'ENOTFOUND' ? 'no such host' : e.code === 'ETIMEOUT' ? 'DNS timeout' : `DNS error ${e.code ?? e.message}`), { code: e.code ?? 'EDNS' });
    } finally {
      clearTimeout(timer);
    }
  }

  localAddresses(): string[] {
    return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
  }
}
