/**
 * The door every received RTP datagram goes through: from the expected address and port, parseable,
 * with a negotiated payload type. Everything else is dropped and counted by reason, never thrown:
 * garbage, strays and other streams must not reach (or disturb) a call's pipeline.
 */
import type { RemoteInfo } from 'node:dgram';
import { parseRtp, type RtpPacket } from './rtp.js';

export interface RtpGateOptions {
  payloadTypes: readonly number[];
  /** Where Asterisk sends from (its SDP's address and port; RTP is symmetric). */
  expectedSource?: { address: string; port: number };
}

export class RtpGate {
  readonly counters = { accepted: 0, bytes: 0, rejected: 0, rejectedSource: 0, wrongPayloadType: 0 };
  readonly rejectReasons: Record<string, number> = {};

  constructor(private readonly opts: RtpGateOptions) {}

  /** The packet if it may pass, else undefined (counted). */
  accept(buf: Buffer, from: RemoteInfo): RtpPacket | undefined {
    const src = this.opts.expectedSource;
    if (src && (from.address !== src.address || from.port !== src.port)) {
      this.counters.rejectedSource++;
      return undefined;
    }
    const r = parseRtp(buf);
    if (!r.ok) {
      this.counters.rejected++;
      this.rejectReasons[r.reason] = (this.rejectReasons[r.reason] ?? 0) + 1;
      return undefined;
    }
    if (!this.opts.payloadTypes.includes(r.packet.payloadType)) {
      this.counters.wrongPayloadType++;
      return undefined;
    }
    this.counters.accepted++;
    this.counters.bytes += buf.length;
    return r.packet;
  }

  toJSON(): Record<string, unknown> {
    return { ...this.counters, rejectReasons: this.rejectReasons };
  }
}
