/**
 * A UDP impairment relay for the media leg: Asterisk sends to it, it forwards to the app after dropping
 * a share of the packets and delaying each by a random 0..jitterMs (which also reorders them).
 * Seeded, so a run can be repeated. Plugs into the app as CallServiceDeps.mediaRelay.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import type { MediaRelay } from '../../plugin/calls/media-setup.js';
import { prng } from './prng.js';

export interface ImpairmentStats {
  forwarded: number;
  dropped: number;
}

/**
 * `transform`: rewrite a packet before it goes on (index: the stream's packet count), e.g. to change its
 * SSRC or jump its sequence numbers and timestamps mid-call. `appPorts`: where each stream is relayed to.
 */
export function impairmentRelay(o: { loss: number; jitterMs: number; seed?: number; transform?: (kind: 'audio' | 'video', packet: Buffer, index: number) => Buffer }) {
  // One generator per stream: which packets are lost then depends only on each stream's own packet order.
  const randoms = { audio: prng((o.seed ?? 1) * 2), video: prng((o.seed ?? 1) * 2 + 1) };
  const stats: Record<'audio' | 'video', ImpairmentStats> = { audio: { forwarded: 0, dropped: 0 }, video: { forwarded: 0, dropped: 0 } };
  const appPorts: Partial<Record<'audio' | 'video', number>> = {};
  const relay = async (kind: 'audio' | 'video', appPort: number): Promise<MediaRelay> => {
    const bind = async (): Promise<Socket> => {
      const s = createSocket('udp4');
      s.bind(0, '127.0.0.1');
      await once(s, 'listening');
      return s;
    };
    const [inSock, outSock] = [await bind(), await bind()];
    appPorts[kind] = appPort;
    let index = 0;
    const timers = new Set<NodeJS.Timeout>();
    const random = randoms[kind];
    inSock.on('message', (original) => {
      const m = o.transform ? o.transform(kind, original, index++) : original;
      if (random() < o.loss) {
        stats[kind].dropped++;
        return;
      }
      const t = setTimeout(() => {
        timers.delete(t);
        stats[kind].forwarded++;
        outSock.send(m, appPort, '127.0.0.1');
      }, random() * o.jitterMs);
      timers.add(t);
    });
    return {
      port: inSock.address().port,
      sourcePort: outSock.address().port,
      close: async () => {
        for (const t of timers) clearTimeout(t);
        await Promise.all([new Promise<void>((r) => inSock.close(() => r())), new Promise<void>((r) => outSock.close(() => r()))]);
      },
    };
  };
  return { relay, stats, appPorts };
}
