/**
 * The call's audio clock: turns ordered RTP audio (mono PCM) into a continuous sample stream that
 * advances with wall time whether or not packets come, with silence where nothing landed.
 *
 * Positions are sample indices of the sender's audio since call time zero (`startMs`). The first packet is
 * anchored to play `delayMs` after it arrived; each later packet lands at the previous one's position plus
 * the signed, wrap-aware RTP timestamp difference, so gaps, loss and reordering fall where the sender put
 * them. read(now) hands out every sample up to `now`, so samples out == elapsed time × rate, exactly.
 *
 * Clock drift: the sender's sample clock runs fast or slow against ours by tens to hundreds of ppm (at
 * 100 ppm, 0.36 s an hour). The timeline does not skip or pad for it: the samples a packet brings are
 * positions in the *sender's* time, and read() consumes them at a ratio that holds the playout delay at
 * its target, through a resampler (drift-resampler.ts). The ratio is the sender's clock rate as estimated
 * from timestamps against arrivals (clock-rate.ts) plus a small correction proportional to the delay
 * error: where the least-delayed packet of the last second landed against its target (arrivals are only
 * ever late, so the least-delayed one shows the true offset). Until a correction is needed (the same
 * clock, as between processes on one machine) the ratio is exactly 1 and the output is the input, sample
 * for sample.
 *
 * Re-anchoring: a packet's "target" is where its arrival time alone would put it (arrival + delay, on the
 * consuming clock). When the timestamp position strays more than `maxDriftMs` from the target (a
 * timestamp jump, a new SSRC), the packet is re-anchored on its target instead. A re-anchor never
 * mixes or repeats audio: queued audio of the old time base beyond the new position is discarded (a
 * skip); a jump that looks like a splice (target within maxDriftMs/2 of the queued end) continues right
 * where the queued audio ends, so a timestamp jump costs no silence at all.
 * Behind the target is not enough to re-anchor while the packet still plays in time: packets a jitter
 * buffer held for a gap arrive late by design. A newer packet landing behind the play cursor is
 * re-anchored when newer packets have kept landing behind it for UNDERRUN_MS of arrivals (the delay
 * stepped up: an underrun), or for BURST_MS when over maxDriftMs behind (the sender paused, or a jump). A
 * burst after a stall (the event loop, the far end, the network) is neither, however long the stall: its
 * late samples are dropped and the rest plays in place. Re-anchoring on its first packet would anchor the
 * stall's lateness: the burst's newer packets would then be that far ahead (a second jump), or the
 * surplus played out sharp for seconds (2 % at most: a third of a semitone). An older packet (a straggler)
 * never moves the anchor, unless it is further back than delay + maxDrift (a backward jump). Samples that
 * land behind the cursor are dropped (`lateSamplesDropped`): "late" means after its place was played.
 *
 * The call's start: its first packet is often the last of a backlog (Asterisk hands over up to 100 ms of
 * audio queued before the media leg was up, within a few ms), so anchoring on it would start the call
 * that much late, and steering would play that surplus out sharp for its first seconds (measured: 1020 Hz
 * for a 1 kHz tone over 3-4 s). Until the first audio sample is played, a packet that lands later than its
 * target moves the start instead: the cursor skips ahead by the surplus, through silence and the
 * backlog's oldest audio, which nobody has heard yet (`startSkippedMs`). A jump in those first packets
 * re-anchors as any other, but unheard: it counts as a start re-base (`startRebases`), not a re-anchor.
 *
 * Storage: a ring of Int16 samples (plus one "written" byte per sample, for the silence count) covering
 * delay + maxDrift + 1 s ahead of the cursor; samples beyond it are dropped (`overflowSamples`).
 */
import { tsDiff } from '../ingest/seq.js';
import { ClockRateEstimator } from './clock-rate.js';
import { DriftResampler } from './drift-resampler.js';
import { SkewTracker } from './sync.js';

export interface AudioTimelineOptions {
  /** Samples per second, which is also the RTP clock rate. */
  sampleRate: number;
  /** Playout delay (the jitter depth). */
  delayMs: number;
  /** Re-anchor threshold. Default 120. */
  maxDriftMs?: number;
  /** false: no drift correction (read() consumes at exactly the output rate, as before the resampler). */
  driftCorrection?: boolean;
}

export interface AudioTimelineStats {
  samplesOut: number;
  /** Sender samples no packet wrote (silence fill). */
  silenceSamples: number;
  /** Samples of packets that landed behind the play cursor. */
  lateSamplesDropped: number;
  /** The longest run of them with no audio between (one stall's hole in the output), in samples. */
  maxLateRunSamples: number;
  /** Samples that landed beyond the ring (only when read() stalls for over a second). */
  overflowSamples: number;
  /** Re-anchors once audio has been heard: each one an audible skip or gap. */
  reanchors: number;
  /**
   * Re-anchors before any audio was played (a timestamp jump in the sender's first packets: seen once on a
   * bridged softphone's leg, 5.4 s at its second packet): the stream re-bases on its arrival, unheard.
   */
  startRebases: number;
  /** How far the last re-anchor or start move moved the audio (ms; + = later): what the video must follow. */
  lastJumpMs: number;
  /**
   * Why the last re-anchor (not a start re-base) happened, for whoever reads a call's stats after a glitch:
   * `ahead` (a packet past maxDrift after its target: a forward jump, or a fast sender not absorbed), `behind`
   * (a continuing packet behind the cursor: an underrun, or a slow sender), `backward` (a timestamp far
   * before the newest).
   * With the packet count and its drift when it happened.
   */
  lastReanchor: { cause: 'ahead' | 'behind' | 'backward'; packet: number; driftMs: number; afterGapMs: number } | null;
  packets: number;
  /** Where the last packet landed relative to its arrival-based target, in ms (+ = later). */
  driftMs: number;
  /** Largest |driftMs| of a packet as placed (after any re-anchor). */
  maxAbsDriftMs: number;
  /** The sender's clock against ours as estimated, ppm (+: fast); null before an estimate. */
  senderClockPpm: number | null;
  /** How fast the audio is consumed against ours, ppm: the estimate plus the delay correction. */
  ratioPpm: number;
  /** The playout delay's error now (the least-delayed packet of the last second), ms. */
  delayErrorMs: number;
  /** How much of the call's start was skipped, unheard, because its first packet came late (ms). */
  startSkippedMs: number;
  /** Largest |delayErrorMs| once settled (after the first 2 s of packets and of each re-anchor), ms. */
  maxAbsDelayErrorMs: number;
}

const EXTRA_MS = 1000;
/** The delay error's window: the least-delayed packet of the last second is the true offset. */
const ERROR_WINDOW_MS = 1000;
/**
 * ppm of ratio per ms of delay error: a 3.3 s time constant. The call's first packet may come late (the
 * app is busy setting the call up: 7-12 ms measured), and until the clock estimate comes (8 s) a 5000 ppm
 * sender drifts 5 ms a second: this takes both back before they add up to 20 ms. 1 ms of arrival noise
 * moves the pitch by 300 ppm, half a cent: inaudible.
 */
const GAIN_PPM_PER_MS = 300;
/** Steering starts this long after the first packet (or a re-anchor): its least-delayed packet is then known well enough. */
const STEER_AFTER_MS = 500;
/** The ratio never strays further than this from 1 (2 %: ±20 000 ppm, far beyond any phone clock). */
const MAX_CORRECTION = 0.02;
/**
 * A delay error within ±this (ms) is left alone: harmless, and mostly where the first packet's own
 * arrival noise anchored the stream. Steering only beyond it also keeps arrival noise off the pitch.
 */
const DEADZONE_MS = 2;
/** Below this total correction (ppm) the ratio stays exactly 1 until a correction is first needed. */
const DEADBAND_PPM = 20;
/** The error counts towards maxAbsDelayErrorMs after this long of packets (the first anchor settles). */
const SETTLE_MS = 2000;
/** Newer packets landing behind the cursor for this long (ms of arrivals) is an underrun: re-anchor. */
const UNDERRUN_MS = 60;
/**
 * Packets far behind the cursor arriving within this long of the first are one burst: a stall handing over
 * its backlog (read from the socket within a millisecond or two), not a sender that resumed (paced at 10-60 ms).
 */
const BURST_MS = 10;

export class AudioTimeline {
  private lateRun = 0;
  private lateRunEnd = -1;
  readonly stats: AudioTimelineStats = {
    samplesOut: 0, silenceSamples: 0, lateSamplesDropped: 0, maxLateRunSamples: 0, overflowSamples: 0,
    reanchors: 0, startRebases: 0, lastJumpMs: 0, lastReanchor: null, packets: 0, driftMs: 0, maxAbsDriftMs: 0,
    senderClockPpm: null, ratioPpm: 0, delayErrorMs: 0, maxAbsDelayErrorMs: 0, startSkippedMs: 0,
  };

  private readonly rate: number;
  private readonly startMs: number;
  private readonly delayMs: number;
  private readonly maxDrift: number;
  /** DEADZONE_MS in samples. */
  private readonly deadzone: number;
  /** How far (samples) before the newest packet a packet may be and still count as a late one. */
  private readonly stragglerWindow: number;
  private readonly ring: Int16Array;
  private readonly written: Uint8Array;
  private readonly size: number;

  /** Next sender sample to hand to the resampler. */
  private cursor = 0;
  /** Output samples handed out (== samplesOut): the output clock. */
  private outCount = 0;
  /** One past the furthest sample written. */
  private writeEnd = 0;
  private anchored = false;
  /** The previous packet's arrival (ms): a re-anchor after a long silence of the sender is no mystery. */
  private lastArrivalMs = 0;
  /** Position and RTP timestamp of the last packet placed: the anchor moves along, so differences stay small. */
  private anchorPos = 0;
  private anchorTs = 0;
  /** Arrival of the first of the newer packets landing behind the cursor in a row (undefined: none). */
  private behindSince: number | undefined;
  /** The arrival gap before that first one (for lastReanchor: a pause shows as a long gap). */
  private behindGapMs = 0;
  /** True once a packet's sample has been played: the start can no longer move unheard. */
  private heard = false;
  /** Re-anchors and start moves: each time the audio's placement jumped (the video follows). */
  private jumpCount = 0;

  private readonly correct: boolean;
  private readonly resampler = new DriftResampler();
  private readonly clock: ClockRateEstimator;
  private readonly error = new SkewTracker(ERROR_WINDOW_MS);
  /** Sender samples consumed per output sample. */
  private ratio = 1;
  private correcting = false;
  private settleFrom: number | undefined;
  private pull = new Int16Array(2048);

  constructor(opts: AudioTimelineOptions, startMs: number) {
    const maxDriftMs = opts.maxDriftMs ?? 120;
    if (!(opts.sampleRate > 0) || !(opts.delayMs >= 0) || !(maxDriftMs > 0)) {
      throw new RangeError(`AudioTimeline: sampleRate ${opts.sampleRate}, delayMs ${opts.delayMs}, maxDriftMs ${maxDriftMs}`);
    }
    this.rate = opts.sampleRate;
    this.startMs = startMs;
    this.delayMs = opts.delayMs;
    this.maxDrift = Math.round((maxDriftMs * this.rate) / 1000);
    this.deadzone = Math.round((DEADZONE_MS * this.rate) / 1000);
    this.stragglerWindow = Math.round(((opts.delayMs + maxDriftMs) * this.rate) / 1000);
    this.correct = opts.driftCorrection !== false;
    this.clock = new ClockRateEstimator(this.rate);
    let size = 1024;
    while (size < ((opts.delayMs + maxDriftMs + EXTRA_MS) * this.rate) / 1000) size *= 2;
    this.size = size;
    this.ring = new Int16Array(size);
    this.written = new Uint8Array(size);
  }

  get samplesOut(): number {
    return this.outCount;
  }

  /** Samples queued ahead of the cursor (up to the furthest written). */
  get bufferedSamples(): number {
    return Math.max(0, this.writeEnd - this.cursor);
  }

  /** The sender's clock rate over ours (1 until estimated): video timestamps follow it too. */
  get senderClockRatio(): number {
    return this.clock.ratio ?? 1;
  }

  /** Where the audio sits against its arrival-based place now (ms, + = later): the video follows it. */
  placementOffsetMs(nowMs: number): number {
    return this.error.max(nowMs) ?? 0;
  }

  /** The output sample at which sender sample `pos` plays (for latency: positions → output frames). */
  outputPositionOf(pos: number): number {
    return this.outCount + (pos - (this.cursor - this.resampler.lookahead)) / this.ratio;
  }

  /** How many times the audio's placement jumped (re-anchors, start moves): when it changes, see lastJumpMs. */
  get jumps(): number {
    return this.jumpCount;
  }

  /**
   * How long (ms) until a packet with RTP timestamp `rtpTimestamp`, placed now, would start too late to
   * play: its place against the output due at `nowMs`. Infinity before the first packet (it anchors).
   * A jitter buffer waits for a missing packet no longer than this allows the ones behind it.
   */
  slackMs(rtpTimestamp: number, nowMs: number): number {
    if (!this.anchored) return Infinity;
    const pos = this.anchorPos + tsDiff(rtpTimestamp, this.anchorTs);
    const dueOut = ((nowMs - this.startMs) * this.rate) / 1000;
    return ((this.outputPositionOf(pos) - dueOut) * 1000) / this.rate;
  }

  /** Place a packet; returns one past its last sample's position (behind samplesOut: it came too late). */
  push(rtpTimestamp: number, samples: Int16Array, arrivalMs: number): number {
    const n = samples.length;
    if (n === 0) return this.cursor;
    const s = this.stats;
    s.packets++;
    // Where the output will be playing `delayMs` after the arrival: the sender sample at the centre of the
    // next output (behind the cursor by the resampler's look-ahead), moving `ratio` per output sample.
    const outAtRead = this.startMs + (this.outCount * 1000) / this.rate;
    const playing = this.cursor - this.resampler.lookahead;
    let target = Math.round(playing + ((arrivalMs + this.delayMs - outAtRead) * this.rate * this.ratio) / 1000);
    let pos = target;
    let advance = true;
    let reanchored = false;
    if (!this.anchored) {
      this.anchored = true;
      this.settleFrom = arrivalMs;
    } else {
      const diff = tsDiff(rtpTimestamp, this.anchorTs);
      pos = this.anchorPos + diff;
      const drift = pos - target;
      const before = this.jumpCount;
      const gapMs = arrivalMs - this.lastArrivalMs;
      if (drift > this.maxDrift) {
        pos = this.reanchor(pos, target, 'ahead', drift, gapMs);
      } else if (diff > 0) {
        // Moving forward but behind the cursor: a discontinuity, an underrun, or a burst after a stall.
        if (pos >= this.cursor) this.behindSince = undefined;
        else {
          if (this.behindSince === undefined) {
            this.behindSince = arrivalMs;
            this.behindGapMs = gapMs;
          }
          // Far behind (the sender paused, its timestamps did not move on) re-anchors on the next packet that
          // comes paced, not in the same burst: a stall (our event loop, the far end, the network) hands over
          // what it held all at once, and the burst's newer packets are in place again.
          const behindFor = arrivalMs - this.behindSince;
          if (behindFor >= (drift < -this.maxDrift ? BURST_MS : UNDERRUN_MS)) pos = this.reanchor(pos, target, 'behind', drift, this.behindGapMs);
        }
      } else if (-diff > this.stragglerWindow) {
        pos = this.reanchor(pos, target, 'backward', drift, gapMs); // far before the newest: a backward jump, not a late packet
      } else {
        advance = false; // a straggler: placed (or dropped if late) without moving the anchor
      }
      reanchored = this.jumpCount !== before;
      // Before anything was heard, a packet closer to on time than the first shows the start was late.
      if (advance && !reanchored && !this.heard && pos - target > this.deadzone) target += this.moveStart(pos - target);
    }
    if (advance) {
      this.anchorPos = pos;
      this.anchorTs = rtpTimestamp;
      if (reanchored) {
        // A new time base: the old clock points and errors say nothing about it.
        this.clock.reset();
        this.error.reset();
        this.settleFrom = arrivalMs;
      }
      if (this.correct) this.clock.add(rtpTimestamp, arrivalMs);
    }
    this.lastArrivalMs = arrivalMs;
    const driftMs = ((pos - target) * 1000) / this.rate;
    s.driftMs = driftMs;
    if (Math.abs(driftMs) > s.maxAbsDriftMs) s.maxAbsDriftMs = Math.abs(driftMs);
    // A packet wholly behind the cursor was not placed: its lateness (a stall's, a pause's) says nothing
    // of where the audio plays, and would steer the next second for nothing.
    if (pos + n > this.cursor) this.error.add(driftMs, arrivalMs);
    this.write(pos, samples);
    return pos + n;
  }

  /**
   * Every sample from the cursor up to `nowMs`: pushed audio where it landed, zeros elsewhere.
   * The array is new and the caller's (safe to hand to an asynchronous write).
   */
  read(nowMs: number): Int16Array {
    const out = new Int16Array(this.due(nowMs));
    this.produce(nowMs, out, out.length);
    return out;
  }

  /** Like read(), into the caller's array: writes min(due, dst.length) samples and returns that count. */
  readInto(nowMs: number, dst: Int16Array): number {
    const n = Math.min(this.due(nowMs), dst.length);
    this.produce(nowMs, dst, n);
    return n;
  }

  toJSON(): AudioTimelineStats & { bufferedMs: number } {
    return { ...this.stats, bufferedMs: (this.bufferedSamples * 1000) / this.rate };
  }

  /** Output samples owed at `nowMs`. */
  private due(nowMs: number): number {
    return Math.max(0, Math.floor(((nowMs - this.startMs) * this.rate) / 1000) - this.outCount);
  }

  private produce(nowMs: number, dst: Int16Array, n: number): void {
    if (n <= 0) return;
    if (this.correct) this.steer(nowMs);
    const need = this.resampler.inputNeeded(n, this.ratio);
    if (this.pull.length < need) this.pull = new Int16Array(Math.max(need, this.pull.length * 2));
    const input = this.pull.subarray(0, need);
    this.copyOut(input, need);
    this.resampler.process(input, dst, n, this.ratio);
    this.outCount += n;
    this.stats.samplesOut = this.outCount;
  }

  /** The consuming ratio: the sender's clock rate, corrected toward the target delay. */
  private steer(nowMs: number): void {
    const s = this.stats;
    const error = this.error.max(nowMs);
    const est = this.clock.ratio;
    s.senderClockPpm = this.clock.ppm ?? null;
    // Only the least-delayed of many packets shows the true offset (not the first, maybe delayed, one).
    if (error === undefined || this.settleFrom === undefined || nowMs - this.settleFrom < STEER_AFTER_MS) return;
    s.delayErrorMs = Math.round(error * 10) / 10;
    if (nowMs - this.settleFrom >= SETTLE_MS && Math.abs(error) > s.maxAbsDelayErrorMs) {
      s.maxAbsDelayErrorMs = Math.abs(s.delayErrorMs);
    }
    const steering = Math.sign(error) * Math.max(0, Math.abs(error) - DEADZONE_MS);
    const correction = (est ?? 1) - 1 + steering * GAIN_PPM_PER_MS * 1e-6;
    if (!this.correcting && Math.abs(correction) * 1e6 < DEADBAND_PPM) return;
    this.correcting = true;
    this.ratio = 1 + Math.max(-MAX_CORRECTION, Math.min(MAX_CORRECTION, correction));
    s.ratioPpm = Math.round((this.ratio - 1) * 1e7) / 10;
  }

  /**
   * The call's start moves `n` samples earlier, before any of it was heard: the cursor skips ahead through
   * leading silence and the oldest queued audio; what was measured against the old start moves with it.
   * Returns how far targets move (as the cursor does).
   */
  private moveStart(n: number): number {
    const ms = (n * 1000) / this.rate;
    this.clear(this.cursor, this.cursor + n);
    this.cursor += n;
    this.error.shift(-ms);
    this.stats.startSkippedMs = Math.round((this.stats.startSkippedMs + ms) * 10) / 10;
    this.stats.lastJumpMs = -ms;
    this.jumpCount++;
    return n;
  }

  /** `predicted`: where the RTP timestamp alone would have put the packet. */
  private reanchor(predicted: number, target: number, cause: 'ahead' | 'behind' | 'backward', drift: number, afterGapMs: number): number {
    this.jumpCount++;
    this.behindSince = undefined;
    if (!this.heard) this.stats.startRebases++;
    else {
      this.stats.reanchors++;
      this.stats.lastReanchor = { cause, packet: this.stats.packets, driftMs: Math.round((drift * 1000) / this.rate), afterGapMs: Math.round(afterGapMs) };
    }
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
      // A run goes on while each dropped part starts where the last one ended (whole packets after a stall).
      this.lateRun = pos === this.lateRunEnd ? this.lateRun + from : from;
      this.lateRunEnd = pos + from;
      if (this.lateRun > s.maxLateRunSamples) s.maxLateRunSamples = this.lateRun;
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
      if (hit > 0) this.heard = true;
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
