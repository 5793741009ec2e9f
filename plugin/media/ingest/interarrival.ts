/**
 * Interarrival jitter as RFC 3550 §6.4.1 defines it (and as receiver reports carry it): a running mean
 * of |D|, the change in transit time between consecutive packets, with gain 1/16. Shown to operators in
 * ms, so it compares with what phones and Wireshark report for the same stream.
 */
import { tsDiff } from './seq.js';

/** A timestamp step this large (s) is a new stream or a source restart, not jitter: start over. */
const RESET_S = 10;

export class InterarrivalJitter {
  private last: { ts: number; arrivalMs: number } | undefined;
  /** In RTP timestamp units, as RFC 3550 keeps it. */
  private j = 0;

  constructor(private readonly clockRate: number) {}

  add(rtpTimestamp: number, arrivalMs: number): void {
    const last = this.last;
    this.last = { ts: rtpTimestamp, arrivalMs };
    if (!last) return;
    const sent = tsDiff(rtpTimestamp, last.ts);
    if (Math.abs(sent) > RESET_S * this.clockRate) return;
    const d = ((arrivalMs - last.arrivalMs) * this.clockRate) / 1000 - sent;
    this.j += (Math.abs(d) - this.j) / 16;
  }

  get ms(): number {
    return (this.j * 1000) / this.clockRate;
  }
}
