/**
 * A UDP impairment relay for the media leg: Asterisk sends to it, it forwards to the app after dropping
 * a share of the packets and delaying each by a random 0..jitterMs (which also reorders them).
 * Seeded, so a run can be repeated. Plugs into the app as CallServiceDeps.mediaRelay.
 *
 * `clock` re-times a call's packets as if its far end's clock ran `ppm` fast (+) or slow (−) against ours:
 * a packet that reached the relay t ms after the call's first one leaves t / (1 + ppm·10⁻⁶) ms after it,
 * plus `holdMs`. A fast clock sends ahead of real time, so the relay first holds a reserve of `holdMs`
 * (at least the call's length × ppm) that the faster pace then uses up. Audio and video of a call share
 * one clock, as on a phone. Calls are numbered in the order their audio relays are made (from 0).
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
export function impairmentRelay(o: {
  loss: number; jitterMs: number; seed?: number;
  /** `call`: the call's number when `clock` is given (see above). */
  transform?: (kind: 'audio' | 'video', packet: Buffer, index: number, call?: number) => Buffer;
  clock?: (call: number) => { ppm: number; holdMs: number };
}) {
  // One generator per stream: which packets are lost then depends only on each stream's own packet order.
  const randoms = { audio: prng((o.seed ?? 1) * 2), video: prng((o.seed ?? 1) * 2 + 1) };
  const stats: Record<'audio' | 'video', ImpairmentStats> = { audio: { forwarded: 0, dropped: 0 }, video: { forwarded: 0, dropped: 0 } };
  const appPorts: Partial<Record<'audio' | 'video', number>> = {};
  /** Per call: its clock, and when its first packet reached the relay. `late`: packets that left behind their time. */
  const calls: { ppm: number; holdMs: number; t0?: number; late: number }[] = [];
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
    if (o.clock && kind === 'audio') calls.push({ ...o.clock(calls.length), late: 0 });
    const callNo = o.clock ? calls.length - 1 : undefined;
    const call = callNo === undefined ? undefined : calls[callNo];
    inSock.on('message', (original) => {
      const m = o.transform ? o.transform(kind, original, index++, callNo) : original;
      if (random() < o.loss) {
        stats[kind].dropped++;
        return;
      }
      let delay = random() * o.jitterMs;
      if (call) {
        const now = performance.now();
        call.t0 ??= now;
        const due = call.t0 + (now - call.t0) / (1 + call.ppm / 1e6) + call.holdMs;
        if (due < now) call.late++;
        delay += Math.max(0, due - now);
      }
      const t = setTimeout(() => {
        timers.delete(t);
        stats[kind].forwarded++;
        outSock.send(m, appPort, '127.0.0.1');
      }, delay);
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
  return { relay, stats, appPorts, calls };
}
