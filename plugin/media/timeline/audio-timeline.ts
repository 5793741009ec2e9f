/**
 * The call's audio clock: turns ordered RTP audio (mono PCM) into a continuous sample stream that
 * advances with wall time whether or not packets come, with silence where nothing landed.
 *
 * Positions are sample indices since call time zero (`startMs`). The first packet is anchored to play
 * `delayMs` after it arrived; each later packet lands at the previous one's position plus the signed,
 * wrap-aware RTP timestamp difference, so gaps, loss and reordering fall where the sender put them.
 * read(now) hands out every sample up to `now`, so samples out == elapsed time × rate, exactly.
 *
 * Re-anchoring: a packet's "target" is where its arrival time alone would put it. When the timestamp
 * position strays more than `maxDriftMs` from the target (a timestamp jump, a new SSRC, the sender's
 * clock drifting against ours), the packet is re-anchored on its target instead. A re-anchor never
 * mixes or repeats audio: queued audio of the old time base beyond the new position is discarded (a
 * skip); a jump that looks like a splice (target within maxDriftMs/2 of the queued end) continues right
 * where the queued audio ends, so a timestamp jump costs no silence at all.
 * Behind the target is not enough to re-anchor while the packet still plays in time: packets a jitter
 * buffer held for a gap arrive late by design. A newer packet landing behind the play cursor is
 * re-anchored when it is also over maxDriftMs behind, or when it continues the previous packet (the
 * stream is underrunning, e.g. a slow sender clock). An older packet (a straggler) never moves the
 * anchor, unless it is further back than delay + maxDrift (a backward jump). Otherwise samples that
 * land behind the cursor are dropped (`lateSamplesDropped`): "late" means after its place was played.
 *
 * Storage: a ring of Int16 samples (plus one "written" byte per sample, for the silence count) covering
 * delay + maxDrift + 1 s ahead of the cursor; samples beyond it are dropped (`overflowSamples`).
 */
import { tsAdd, tsDiff } from '../ingest/seq.js';

export interface AudioTimelineOptions {
  /** Samples per second, which is also the RTP clock rate. */
  sampleRate: number;
  /** Playout delay (the jitter depth). */
  delayMs: number;
  /** Re-anchor threshold. Default 120. */
  maxDriftMs?: number;
}

export interface AudioTimelineStats {
  samplesOut: number;
  /** Output samples no packet wrote (silence fill). */
  silenceSamples: number;
  /** Samples of packets that landed behind the play cursor. */
  lateSamplesDropped: number;
  /** Samples that landed beyond the ring (only when read() stalls for over a second). */
  overflowSamples: number;
  reanchors: number;
  /** How far the last re-anchor moved the audio (ms; + = later): what the video must follow. */
  lastJumpMs: number;
  packets: number;
  /** Where the last packet landed relative to its arrival-based target, in ms (+ = later). */
  driftMs: number;
  /** Largest |driftMs| of a packet as placed (after any re-anchor). */
  maxAbsDriftMs: number;
}

const EXTRA_MS = 1000;

export class AudioTimeline {
  readonly stats: AudioTimelineStats = {
    samplesOut: 0, silenceSamples: 0, lateSamplesDropped: 0, overflowSamples: 0,
    reanchors: 0, lastJumpMs: 0, packets: 0, driftMs: 0, maxAbsDriftMs: 0,
  };

  private readonly rate: number;
  private readonly startMs: number;
  private readonly delayMs: number;
  private readonly maxDrift: number;
  /** How far (samples) before the newest packet a packet may be and still count as a late one. */
  private readonly stragglerWindow: number;
  private readonly ring: Int16Array;
  private readonly written: Uint8Array;
  private readonly size: number;

  /** Next sample position to hand out (== samplesOut). */
  private cursor = 0;
  /** One past the furthest sample written. */
  private writeEnd = 0;
  private anchored = false;
  /** Position and RTP timestamp of the last packet placed: the anchor moves along, so differences stay small. */
  private anchorPos = 0;
  private anchorTs = 0;
  /** RTP timestamp just after the last packet placed. */
  private nextTs = 0;

  constructor(opts: AudioTimelineOptions, startMs: number) {
    const maxDriftMs = opts.maxDriftMs ?? 120;
    if (!(opts.sampleRate > 0) || !(opts.delayMs >= 0) || !(maxDriftMs > 0)) {
      throw new RangeError(`AudioTimeline: sampleRate ${opts.sampleRate}, delayMs ${opts.delayMs}, maxDriftMs ${maxDriftMs}`);
    }
    this.rate = opts.sampleRate;
    this.startMs = startMs;
    this.delayMs = opts.delayMs;
    this.maxDrift = Math.round((maxDriftMs * this.rate) / 1000);
    this.stragglerWindow = Math.round(((opts.delayMs + maxDriftMs) * this.rate) / 1000);
    let size = 1024;
    while (size < ((opts.delayMs + maxDriftMs + EXTRA_MS) * this.rate) / 1000) size *= 2;
    this.size = size;
    this.ring = new Int16Array(size);
    this.written = new Uint8Array(size);
  }

  get samplesOut(): number {
    return this.cursor;
  }

  /** Samples queued ahead of the cursor (up to the furthest written). */
  get bufferedSamples(): number {
    return Math.max(0, this.writeEnd - this.cursor);
  }

  /** Place a packet; returns one past its last sample's position (behind samplesOut: it came too late). */
  push(rtpTimestamp: number, samples: Int16Array, arrivalMs: number): number {
    const n = samples.length;
    if (n === 0) return this.cursor;
    const s = this.stats;
    s.packets++;
    const target = Math.round(((arrivalMs - this.startMs + this.delayMs) * this.rate) / 1000);
    let pos = target;
    let advance = true;
    if (!this.anchored) {
      this.anchored = true;
    } else {
      const diff = tsDiff(rtpTimestamp, this.anchorTs);
      pos = this.anchorPos + diff;
      const drift = pos - target;
      if (drift > this.maxDrift) {
        pos = this.reanchor(pos, target);
      } else if (diff > 0) {
        // Moving forward but behind the cursor: a discontinuity, or an underrun of a continuous stream.
        if (pos < this.cursor && (drift < -this.maxDrift || rtpTimestamp === this.nextTs)) pos = this.reanchor(pos, target);
      } else if (-diff > this.stragglerWindow) {
        pos = this.reanchor(pos, target); // far before the newest: a backward jump, not a late packet
      } else {
        advance = false; // a straggler: placed (or dropped if late) without moving the anchor
      }
    }
    if (advance) {
      this.anchorPos = pos;
      this.anchorTs = rtpTimestamp;
      this.nextTs = tsAdd(rtpTimestamp, n);
    }
    const driftMs = ((pos - target) * 1000) / this.rate;
    s.driftMs = driftMs;
    if (Math.abs(driftMs) > s.maxAbsDriftMs) s.maxAbsDriftMs = Math.abs(driftMs);
    this.write(pos, samples);
    return pos + n;
  }

  /**
   * Every sample from the cursor up to `nowMs`: pushed audio where it landed, zeros elsewhere.
   * The array is new and the caller's (safe to hand to an asynchronous write).
   */
  read(nowMs: number): Int16Array {
    const n = this.due(nowMs);
    const out = new Int16Array(n);
    if (n > 0) this.copyOut(out, n);
    return out;
  }

  /** Like read(), into the caller's array: writes min(due, dst.length) samples and returns that count. */
  readInto(nowMs: number, dst: Int16Array): number {
    const n = Math.min(this.due(nowMs), dst.length);
    if (n > 0) this.copyOut(dst, n);
    return n;
  }

  toJSON(): AudioTimelineStats & { bufferedMs: number } {
    return { ...this.stats, bufferedMs: (this.bufferedSamples * 1000) / this.rate };
  }

  /** Samples owed at `nowMs`. */
  private due(nowMs: number): number {
    return Math.max(0, Math.floor(((nowMs - this.startMs) * this.rate) / 1000) - this.cursor);
  }

  /** `predicted`: where the RTP timestamp alone would have put the packet. */
  private reanchor(predicted: number, target: number): number {
    this.stats.reanchors++;
    let pos = target;
    // A jump whose target is near the end of the queued audio is a splice: continue seamlessly.
    if (this.writeEnd >= this.cursor && Math.abs(target - this.writeEnd) <= this.maxDrift / 2) pos = this.writeEnd;
    this.stats.lastJumpMs = ((pos - predicted) * 1000) / this.rate;
    // Discard queued audio of the old time base at or after the new position: skip, never mix.
    const from = Math.max(pos, this.cursor);
    if (this.writeEnd > from) {
      this.clear(from, this.writeEnd);
      this.writeEnd = from;
    }
    return pos;
  }

  private write(pos: number, samples: Int16Array): void {
    const s = this.stats;
    let from = 0;
    let to = samples.length;
    if (pos < this.cursor) {
      from = Math.min(to, this.cursor - pos);
      s.lateSamplesDropped += from;
    }
    const limit = this.cursor + this.size;
    if (pos + to > limit) {
      const over = Math.min(to - from, pos + to - limit);
      s.overflowSamples += over;
      to -= over;
    }
    if (from >= to) return;
    let p = pos + from;
    while (from < to) {
      const i = p % this.size;
      const len = Math.min(to - from, this.size - i);
      for (let k = 0; k < len; k++) this.ring[i + k] = samples[from + k]!; // no view object per packet
      this.written.fill(1, i, i + len);
      from += len;
      p += len;
    }
    if (p > this.writeEnd) this.writeEnd = p;
  }

  private copyOut(dst: Int16Array, n: number): void {
    const s = this.stats;
    const stop = this.cursor + Math.min(n, this.size);
    let p = this.cursor;
    let o = 0;
    let silence = 0;
    while (p < stop) {
      const i = p % this.size;
      const len = Math.min(stop - p, this.size - i);
      dst.set(this.ring.subarray(i, i + len), o);
      let hit = 0;
      for (let k = i; k < i + len; k++) hit += this.written[k]!;
      silence += len - hit;
      this.ring.fill(0, i, i + len);
      this.written.fill(0, i, i + len);
      p += len;
      o += len;
    }
    // Beyond the ring nothing can have been written (read() stalled for longer than the ring).
    if (n > o) {
      dst.fill(0, o, n);
      silence += n - o;
    }
    this.cursor += n;
    s.samplesOut = this.cursor;
    s.silenceSamples += silence;
  }

  private clear(from: number, to: number): void {
    for (let p = from; p < to; ) {
      const i = p % this.size;
      const len = Math.min(to - p, this.size - i);
      this.ring.fill(0, i, i + len);
      this.written.fill(0, i, i + len);
      p += len;
    }
  }
}
