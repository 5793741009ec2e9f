/**
 * Reorders RTP packets of one stream and releases them in sequence order.
 *
 * Latency policy: the next expected packet is released at once, so an orderly stream gains no delay.
 * Only a gap holds packets back, and for at most `depthMs` after the first packet behind the gap
 * arrived; then the gap is declared lost. Downstream (the timeline) plays by RTP timestamp, so a
 * released packet's lateness is absorbed by its playout delay, not here.
 *
 * Storage is a fixed ring indexed by extended sequence number: no allocation per packet, no Map churn.
 *
 * Sequence discontinuities follow RFC 3550 §A.1: a packet more than MAX_JUMP ahead, more than
 * MAX_MISORDER behind, or from another SSRC is held as a candidate; if the next such packet continues it
 * (same SSRC, within PROBATION_WINDOW), the buffer resynchronises on them. A single stray packet (a very
 * late one, a leftover of an old source) is thus dropped (`strays`) instead of derailing the stream.
 * On a resync the old stream's buffered packets are released first, without waiting for their gaps.
 */
import type { RtpPacket } from './rtp.js';
import { seqDiff } from './seq.js';

export interface JitterBufferOptions {
  /** Longest wait for a missing packet, measured from the arrival of the first packet behind it. */
  depthMs: number;
  /**
   * Most packets held at once (capped at MAX_JUMP + 1); beyond it new packets are dropped (`overflow`),
   * except the next expected one. Default 500.
   */
  maxPackets?: number;
}

export interface JitterBufferStats {
  /** Packets pushed. */
  received: number;
  /** Packets handed out by pop()/drain(). */
  released: number;
  /** Copies of a packet held or already released. */
  duplicates: number;
  /** Packets arriving after their place was passed (released past, or declared lost). */
  late: number;
  /** Sequence numbers skipped over as missing. */
  lost: number;
  /** Packets accepted although a higher sequence number had arrived before them. */
  reordered: number;
  /** Restarts on a new sequence space or SSRC. */
  resyncs: number;
  /** Far-off packets that no follower confirmed (see RFC 3550 §A.1 probation). */
  strays: number;
  /** Packets dropped because `maxPackets` were held. */
  overflow: number;
  /** Packets held now. */
  depth: number;
  /** Most packets ever held at once. */
  maxDepth: number;
}

/** Forward jump (in sequence numbers) beyond which a packet starts a new sequence space. */
export const MAX_JUMP = 1000;
/** Backward distance within which a packet is a late or duplicate one rather than a restart (RFC 3550 §A.1). */
export const MAX_MISORDER = 100;
/** A candidate restart is confirmed by a packet of its SSRC within this many sequence numbers of it... */
export const PROBATION_WINDOW = 100;
/** ...arriving within this many ms of it. */
export const PROBATION_MS = 1000;

// Holds MAX_JUMP + 1 consecutive sequence numbers, so a slot is never shared by two held packets.
const RING = 1024;
const NONE: RtpPacket[] = Object.freeze([]) as unknown as RtpPacket[];

export class JitterBuffer {
  readonly stats: JitterBufferStats = {
    received: 0, released: 0, duplicates: 0, late: 0, lost: 0, reordered: 0,
    resyncs: 0, strays: 0, overflow: 0, depth: 0, maxDepth: 0,
  };

  private readonly depthMs: number;
  private readonly maxPackets: number;
  private readonly slots: (RtpPacket | undefined)[] = new Array<RtpPacket | undefined>(RING).fill(undefined);
  private readonly arrivals = new Float64Array(RING);
  /** Extended sequence number last released from each slot: tells a duplicate from a late packet. */
  private readonly releasedExt = new Float64Array(RING).fill(NaN);

  private started = false;
  private ssrc = 0;
  /** Extended sequence number (cycles * 65536 + seq, starting in cycle 1 so it never goes negative). */
  private nextExt = 0;
  private highestExt = 0;
  private candidate: RtpPacket | undefined;
  private candidateArrival = 0;
  /** The previous stream's packets, handed out by the next pop() after a resync. */
  private flushed: RtpPacket[] | undefined;

  constructor(opts: JitterBufferOptions) {
    if (!(opts.depthMs >= 0)) throw new RangeError(`JitterBuffer: depthMs ${opts.depthMs}`);
    this.depthMs = opts.depthMs;
    this.maxPackets = Math.max(1, Math.min(opts.maxPackets ?? 500, MAX_JUMP + 1));
  }

  push(packet: RtpPacket, arrivalMs: number): void {
    this.stats.received++;
    this.accept(packet, arrivalMs);
  }

  /**
   * Packets ready at `nowMs`, in sequence order. The returned array is the caller's; when nothing is
   * ready it is a shared frozen empty array.
   * `overdue(head)`: true when waiting longer for a gap would make `head`, the first packet behind it,
   * come too late for its consumer (a playout deadline): the gap is then given up before `depthMs`.
   */
  pop(nowMs: number, overdue?: (head: RtpPacket) => boolean): RtpPacket[] {
    let out = this.flushed;
    this.flushed = undefined;
    while (this.stats.depth > 0) {
      let i = this.nextExt % RING;
      if (this.slots[i] === undefined) {
        const head = this.headExt();
        i = head % RING;
        if (nowMs - this.arrivals[i]! < this.depthMs && !overdue?.(this.slots[i]!)) break;
        this.stats.lost += head - this.nextExt;
        this.nextExt = head;
      }
      (out ??= []).push(this.take(i));
    }
    return out ?? NONE;
  }

  /** Everything held, in order, without waiting for gaps (which count as lost). For the end of a call. */
  drain(): RtpPacket[] {
    const out = this.flushed ?? [];
    this.flushed = undefined;
    this.flushInto(out);
    return out.length > 0 ? out : NONE;
  }

  /**
   * When pop() will next have something: the arrival of the next expected packet (due now), or when
   * the wait for a gap ends; undefined when nothing is held. For scheduling a timer.
   */
  nextReleaseMs(): number | undefined {
    if (this.flushed) return -Infinity;
    if (this.stats.depth === 0) return undefined;
    const i = this.nextExt % RING;
    if (this.slots[i] !== undefined) return this.arrivals[i]!;
    return this.arrivals[this.headExt() % RING]! + this.depthMs;
  }

  /** Forget the stream (held packets are discarded); counters are kept, as metrics are cumulative. */
  reset(): void {
    this.slots.fill(undefined);
    this.releasedExt.fill(NaN);
    this.started = false;
    this.candidate = undefined;
    this.flushed = undefined;
    this.stats.depth = 0;
  }

  toJSON(): JitterBufferStats & { depthMs: number } {
    return { ...this.stats, depthMs: this.depthMs };
  }

  private accept(packet: RtpPacket, arrivalMs: number): void {
    if (!this.started) {
      this.start(packet, arrivalMs);
      return;
    }
    const s = this.stats;
    const d = seqDiff(packet.sequenceNumber, this.nextExt % 65536);
    if (packet.ssrc !== this.ssrc || d > MAX_JUMP || d < -MAX_MISORDER) {
      this.probation(packet, arrivalMs);
      return;
    }
    if (this.candidate !== undefined && arrivalMs - this.candidateArrival > PROBATION_MS) {
      this.candidate = undefined;
      s.strays++;
    }
    const ext = this.nextExt + d;
    const i = ext % RING;
    if (d < 0) {
      if (this.releasedExt[i] === ext) s.duplicates++;
      else s.late++;
      return;
    }
    if (this.slots[i] !== undefined) {
      s.duplicates++;
      return;
    }
    // Full: drop, except the packet everything waits for (so the bound is maxPackets + 1).
    if (s.depth >= this.maxPackets && d !== 0) {
      s.overflow++;
      return;
    }
    if (ext < this.highestExt) s.reordered++;
    else this.highestExt = ext;
    this.hold(i, packet, arrivalMs);
  }

  /** A far-off packet: hold it as a candidate restart until a follower confirms it. */
  private probation(packet: RtpPacket, arrivalMs: number): void {
    const c = this.candidate;
    if (c !== undefined && c.ssrc === packet.ssrc && arrivalMs - this.candidateArrival <= PROBATION_MS) {
      const d = seqDiff(packet.sequenceNumber, c.sequenceNumber);
      if (d === 0) {
        this.stats.duplicates++;
        return;
      }
      if (d >= -PROBATION_WINDOW && d <= PROBATION_WINDOW) {
        const candidateArrival = this.candidateArrival;
        this.candidate = undefined;
        this.stats.resyncs++;
        const out = this.flushed ?? [];
        this.flushInto(out);
        if (out.length > 0) this.flushed = out;
        this.releasedExt.fill(NaN);
        // Start from the lower of the two so neither is late in the new space.
        if (d < 0) {
          this.start(packet, arrivalMs);
          this.accept(c, candidateArrival);
        } else {
          this.start(c, candidateArrival);
          this.accept(packet, arrivalMs);
        }
        return;
      }
    }
    if (c !== undefined) this.stats.strays++;
    this.candidate = packet;
    this.candidateArrival = arrivalMs;
  }

  private start(packet: RtpPacket, arrivalMs: number): void {
    this.started = true;
    this.ssrc = packet.ssrc;
    this.nextExt = 65536 + packet.sequenceNumber;
    this.highestExt = this.nextExt;
    this.hold(this.nextExt % RING, packet, arrivalMs);
  }

  private hold(i: number, packet: RtpPacket, arrivalMs: number): void {
    this.slots[i] = packet;
    this.arrivals[i] = arrivalMs;
    const s = this.stats;
    if (++s.depth > s.maxDepth) s.maxDepth = s.depth;
  }

  /** Release slot `i`, which holds packet `nextExt`. */
  private take(i: number): RtpPacket {
    const p = this.slots[i]!;
    this.slots[i] = undefined;
    this.releasedExt[i] = this.nextExt;
    this.nextExt++;
    this.stats.depth--;
    this.stats.released++;
    return p;
  }

  /** First held packet; only called while something is held (so the scan ends within MAX_JUMP). */
  private headExt(): number {
    let ext = this.nextExt;
    while (this.slots[ext % RING] === undefined) ext++;
    return ext;
  }

  private flushInto(out: RtpPacket[]): void {
    while (this.stats.depth > 0) {
      const head = this.headExt();
      this.stats.lost += head - this.nextExt;
      this.nextExt = head;
      out.push(this.take(head % RING));
    }
  }
}
