/**
 * Added latency of the audio path, per packet: from an RTP packet's arrival (its release by the jitter
 * buffer, which is its arrival unless a packet before it was missing) to the moment the AAC frame that
 * carries its first sample is handed to the outputs (written to their sockets, synchronously).
 * That is the playout delay (jitter depth) + the wait for the AAC frame to fill (0-21.3 ms at 48 kHz) +
 * the tick's lateness. The packet's later samples follow as they fall due: the last one a packet
 * duration (ptime) later.
 *
 * AAC frame k (0-based, as the encoder emits them) is the MDCT of output samples [(k-1)·1024, (k+1)·1024):
 * it is the first frame whose window holds samples [k·1024, (k+1)·1024), and it can only be made once
 * they are all in. So a packet starting at output sample s is "out" with frame floor(s/1024).
 * Placement works in the leg's sample positions (AudioTimeline); they are scaled to the output rate.
 */

/** Durations in 1 ms buckets up to `limitMs` (1 s for latencies; the last bucket takes everything above). */
export class MsHistogram {
  private readonly buckets: Uint32Array;
  count = 0;
  max = 0;

  constructor(private readonly limitMs = 1000) {
    this.buckets = new Uint32Array(limitMs + 1);
  }

  add(ms: number): void {
    const b = Math.min(this.limitMs, Math.max(0, Math.round(ms)));
    this.buckets[b]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** Add another histogram's counts (sparse form, as toJSON gives). */
  merge(sparse: readonly (readonly [number, number])[], max: number): void {
    for (const [ms, n] of sparse) {
      this.buckets[Math.min(this.limitMs, Math.max(0, ms))]! += n;
      this.count += n;
    }
    if (max > this.max) this.max = max;
  }

  /** The q-quantile (0..1), in ms; undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return i;
    }
    return this.limitMs;
  }

  /** [ms, count] for the non-empty buckets: a few dozen pairs for a call. */
  sparse(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.buckets.length; i++) if (this.buckets[i]) out.push([i, this.buckets[i]!]);
    return out;
  }

  toJSON(): { p50?: number; p99?: number; max: number; count: number; histogram: [number, number][] } {
    const p50 = this.quantile(0.5);
    const p99 = this.quantile(0.99);
    return { ...(p50 !== undefined ? { p50 } : {}), ...(p99 !== undefined ? { p99 } : {}), max: Math.round(this.max), count: this.count, histogram: this.sparse() };
  }
}

const PENDING = 512; // packets awaiting their frame: ~10 s at 50 packets/s, far beyond any frame's wait

export class AudioLatency {
  readonly histogram = new MsHistogram();
  /** Ring of (start position at the output rate, arrival ms). */
  private readonly starts = new Float64Array(PENDING);
  private readonly arrivals = new Float64Array(PENDING);
  private head = 0;
  private size = 0;
  private readonly scale: number;

  constructor(legRate: number, outputRate: number, private readonly frameSamples = 1024) {
    this.scale = outputRate / legRate;
  }

  /** A packet was placed; `startPos`: its first sample's position, in leg samples since time zero. */
  placed(startPos: number, arrivalMs: number): void {
    if (this.size === PENDING) {
      // Frames stopped coming (the encoder is stuck): keep the newest.
      this.head = (this.head + 1) % PENDING;
      this.size--;
    }
    const i = (this.head + this.size) % PENDING;
    this.starts[i] = startPos * this.scale;
    this.arrivals[i] = arrivalMs;
    this.size++;
  }

  /** Frame `index` was written to the outputs at `nowMs`. */
  frameOut(index: number, nowMs: number): void {
    const covered = (index + 1) * this.frameSamples;
    while (this.size > 0 && this.starts[this.head]! < covered) {
      this.histogram.add(nowMs - this.arrivals[this.head]!);
      this.head = (this.head + 1) % PENDING;
      this.size--;
    }
  }
}
