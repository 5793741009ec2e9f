/**
 * Lip-sync math shared by the audio and video paths.
 *
 * Both tracks go on one call timeline from their arrival times and RTP timestamps. Arrival times are
 * noisy only one way: a packet can be late (network, jitter buffer holding it for a gap, event loop),
 * never early. So a track's true offset from its arrival-based place is the *largest* offset seen over a
 * short window: the least-delayed packet. `SkewTracker` keeps that windowed maximum.
 *
 * Asterisk's RTCP sender reports on the media leg were measured and are not used for the mapping: they
 * pair the RTP timestamp of the last packet sent with the time the report is sent, so they are off by up
 * to a packet interval (20 ms audio, a frame interval video, more when video pauses), while loopback
 * arrival times are within a millisecond. `SenderReportCheck` keeps measuring that error per call.
 */
import { NTP_UNIX_OFFSET_S, ntpToMs, parseRtcp } from '../ingest/rtcp.js';
import { tsDiff } from '../ingest/seq.js';

/** Windowed maximum of a signal, over the last `windowMs` (monotonic deque: O(1) amortised per sample). */
export class SkewTracker {
  private readonly times: number[] = [];
  private readonly values: number[] = [];
  private head = 0;
  private firstAt: number | undefined;

  constructor(private readonly windowMs: number) {}

  add(value: number, now: number): void {
    this.firstAt ??= now;
    // Drop older entries that can never be the maximum again.
    while (this.values.length > this.head && this.values[this.values.length - 1]! <= value) {
      this.values.pop();
      this.times.pop();
    }
    this.values.push(value);
    this.times.push(now);
    this.expire(now);
  }

  /** The largest value in the window, or undefined if it is empty. */
  max(now: number): number | undefined {
    this.expire(now);
    return this.head < this.values.length ? this.values[this.head] : undefined;
  }

  /** True once the tracker has seen a whole window of samples since the last reset. */
  settled(now: number): boolean {
    return this.firstAt !== undefined && now - this.firstAt >= this.windowMs;
  }

  /** Every value moved by `delta` (the signal's reference jumped); the window and settledness stay. */
  shift(delta: number): void {
    for (let i = this.head; i < this.values.length; i++) this.values[i]! += delta;
  }

  reset(): void {
    this.values.length = 0;
    this.times.length = 0;
    this.head = 0;
    this.firstAt = undefined;
  }

  private expire(now: number): void {
    while (this.head < this.times.length && now - this.times[this.head]! > this.windowMs) this.head++;
    if (this.head > 64 && this.head * 2 > this.times.length) {
      this.times.splice(0, this.head);
      this.values.splice(0, this.head);
      this.head = 0;
    }
  }
}

/**
 * Measures how well a sender's RTCP SRs match the RTP it sends: for each SR, the difference between the
 * SR's wall time and the arrival (wall) time of the packet carrying the SR's RTP timestamp, corrected by
 * the RTP clock when that exact packet was not seen. Positive: the SR claims a later time than arrival.
 */
export class SenderReportCheck {
  /** The newest packet seen (two numbers, not an object: this runs per packet). */
  private lastTs = 0;
  private lastWallMs: number | undefined;
  readonly stats = { rtcpPackets: 0, rtcpMalformed: 0, senderReports: 0, maxAbsErrorMs: 0, lastErrorMs: 0 };

  constructor(private readonly clockRate: number) {}

  /** An RTP packet with timestamp `ts` arrived at wall time `wallMs`. */
  rtp(ts: number, wallMs: number): void {
    if (this.lastWallMs === undefined || tsDiff(ts, this.lastTs) >= 0) {
      this.lastTs = ts;
      this.lastWallMs = wallMs;
    }
  }

  /** A datagram from the RTCP socket: its SRs are checked, the rest only counted. */
  rtcp(buf: Buffer): void {
    this.stats.rtcpPackets++;
    const { packets, error } = parseRtcp(buf);
    if (error) this.stats.rtcpMalformed++;
    for (const p of packets) {
      if (p.type === 'sr') this.senderReport(ntpToMs(p.ntpSeconds, p.ntpFraction) - NTP_UNIX_OFFSET_S * 1000, p.rtpTimestamp);
    }
  }

  /** A sender report: its NTP time as Unix ms, and its RTP timestamp. */
  senderReport(ntpUnixMs: number, rtpTs: number): void {
    this.stats.senderReports++;
    // Asterisk's native RTP bridge sends SRs with an RTP timestamp of 0 (asterisk-facts.md): no mapping.
    if (this.lastWallMs === undefined || rtpTs === 0) return;
    const predicted = this.lastWallMs + (tsDiff(rtpTs, this.lastTs) * 1000) / this.clockRate;
    const err = ntpUnixMs - predicted;
    this.stats.lastErrorMs = Math.round(err * 10) / 10;
    this.stats.maxAbsErrorMs = Math.max(this.stats.maxAbsErrorMs, Math.round(Math.abs(err) * 10) / 10);
  }
}
