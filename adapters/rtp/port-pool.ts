/**
 * UDP sockets for a media stream: an even RTP port and the odd RTCP port above it (RFC 3550 §11),
 * from the configured range. Bound on loopback, so only the local Asterisk can reach them.
 * Every pair is owned by whoever allocated it, and release() closes both sockets.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { RtpPortSource, RtpSocketPair } from '../../plugin/media/ports.js';

export class PortPoolExhaustedError extends Error {
  override readonly name = 'PortPoolExhaustedError';
}

export class RtpPortPool implements RtpPortSource {
  private readonly inUse = new Set<number>();
  private next: number;
  private readonly first: number;
  private readonly last: number;

  constructor(private readonly opts: { host: string; portMin: number; portMax: number }) {
    this.first = opts.portMin + (opts.portMin % 2);
    this.last = opts.portMax - 1;
    this.next = this.first;
    if (this.last < this.first) throw new Error('RTP port range holds no even/odd pair');
  }

  /** Pairs currently allocated. */
  get allocated(): number {
    return this.inUse.size;
  }

  get capacity(): number {
    return Math.floor((this.last - this.first) / 2) + 1;
  }

  /**
   * Bind the next free pair. Ports taken by other programs are skipped. Round-robin, so a port just released
   * is not reused at once (late packets of the old call must not land in a new one).
   */
  async allocate(): Promise<RtpSocketPair> {
    for (let tries = 0; tries < this.capacity; tries++) {
      const port = this.next;
      this.next = port + 2 > this.last ? this.first : port + 2;
      if (this.inUse.has(port)) continue;
      this.inUse.add(port);
      try {
        const rtp = await bind(this.opts.host, port);
        let rtcp: Socket;
        try {
          rtcp = await bind(this.opts.host, port + 1);
        } catch (err) {
          rtp.close();
          throw err;
        }
        let released = false;
        return {
          rtpPort: port,
          rtp,
          rtcp,
          release: async () => {
            if (released) return;
            released = true;
            await Promise.all([closeSocket(rtp), closeSocket(rtcp)]);
            this.inUse.delete(port);
          },
        };
      } catch {
        this.inUse.delete(port); // taken by someone else: try the next pair
      }
    }
    throw new PortPoolExhaustedError(`no free RTP port pair in ${this.opts.portMin}-${this.opts.portMax}`);
  }
}

function bind(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4', reuseAddr: false });
    s.once('error', reject);
    s.bind(port, host, () => {
      s.off('error', reject);
      // Absorb bursts (e.g. after a GC pause) instead of dropping them in the kernel.
      try {
        s.setRecvBufferSize(256 * 1024);
      } catch {
        /* capped by net.core.rmem_max: fine */
      }
      resolve(s);
    });
  });
}

function closeSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
