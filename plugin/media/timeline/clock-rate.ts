/**
 * The sender's sample clock against ours, from RTP timestamps against arrival times.
 *
 * Each packet gives a point (x = arrival, y = arrival − timestamp time), both in ms. A sender whose clock
 * runs (1 + ε) times ours makes y fall by ε per ms. Arrivals are only ever late (network, jitter buffer,
 * event loop), never early, so the true line lies under every point: the estimate is the lower convex
 * hull's edge under the points' mean x, the line that fits the points from below with the least total
 * distance (Moon, Skelly and Towsley, "Estimation and removal of clock skew from network delay
 * measurements", 1999). Unlike a least-squares fit of windowed minima, it is not pulled by jitter: the
 * error falls like 1/N, not 1/√N (measured in the unit test: < 1 ppm after 30 s with 0-30 ms jitter).
 *
 * Two overlapping hulls, the newer started `windowMs` after the older, so the estimate always spans
 * between one and two windows of recent history: a crystal warming up moves it within minutes, and the
 * hulls stay small. Asterisk's RTCP SRs are not used: they are off by up to a packet interval
 * (sync.ts), which the hull does not need.
 */
import { tsDiff } from '../ingest/seq.js';

/** A lower convex hull of points added in increasing x (Andrew's monotone chain, one side). */
class LowerHull {
  readonly xs: number[] = [];
  readonly ys: number[] = [];
  n = 0;
  sumX = 0;

  constructor(readonly startX: number) {}

  add(x: number, y: number): void {
    const xs = this.xs;
    const ys = this.ys;
    this.n++;
    this.sumX += x;
    let k = xs.length;
    if (k > 0 && x <= xs[k - 1]!) {
      // Same arrival ms (a burst): only the lower point can be on the hull.
      if (y >= ys[k - 1]!) return;
      xs.pop();
      ys.pop();
      k--;
    }
    // Drop points that the new one puts above the hull (a clockwise or straight turn).
    while (k >= 2 && (xs[k - 1]! - xs[k - 2]!) * (y - ys[k - 2]!) - (ys[k - 1]! - ys[k - 2]!) * (x - xs[k - 2]!) <= 0) {
      xs.pop();
      ys.pop();
      k--;
    }
    xs.push(x);
    ys.push(y);
  }

  get spanMs(): number {
    return this.xs.length > 0 ? this.xs[this.xs.length - 1]! - this.startX : 0;
  }

  /** Slope of the hull edge under the mean x, or undefined with fewer than two hull points. */
  slope(): number | undefined {
    const xs = this.xs;
    if (xs.length < 2) return undefined;
    const mean = this.sumX / this.n;
    let i = 1;
    while (i < xs.length - 1 && xs[i]! < mean) i++;
    return (this.ys[i]! - this.ys[i - 1]!) / (xs[i]! - xs[i - 1]!);
  }
}

export interface ClockRateOptions {
  /** Each hull covers this much before the next one takes over (ms). Default 60 s. */
  windowMs?: number;
  /**
   * No estimate before the points span this long (ms). Default 8 s: with 0-50 ms of arrival jitter and 5 %
   * loss, the worst of 200 streams was 4300 ppm off after 2 s, 1100 after 5 s, 460 after 8 s (0-20 ms:
   * 1700, 450, 180). Fed into the playout ratio, an early estimate that far off plays the call's first
   * seconds sharp or flat and pulls its video; until there is one, steering on the delay error alone holds
   * even a 5000 ppm sender within 20 ms.
   */
  minSpanMs?: number;
  /** Estimates beyond ±this are clamped: no phone clock is that far off (ppm). Default 20 000. */
  maxPpm?: number;
}

export class ClockRateEstimator {
  private older: LowerHull | undefined;
  private newer: LowerHull | undefined;
  private lastTs = 0;
  /** Timestamp samples since the first point, unwrapped. */
  private ext = 0;
  private readonly windowMs: number;
  private readonly minSpanMs: number;
  private readonly maxRatio: number;
  private cached: number | undefined;
  private dirty = false;

  constructor(private readonly clockRate: number, opts: ClockRateOptions = {}) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.minSpanMs = opts.minSpanMs ?? 8000;
    this.maxRatio = (opts.maxPpm ?? 20_000) / 1e6;
  }

  /** A packet with RTP timestamp `ts` arrived at `arrivalMs` (only packets that moved the stream on). */
  add(ts: number, arrivalMs: number): void {
    if (!this.older) {
      this.older = new LowerHull(arrivalMs);
      this.ext = 0;
    } else {
      this.ext += tsDiff(ts, this.lastTs);
    }
    this.lastTs = ts;
    const y = arrivalMs - (this.ext * 1000) / this.clockRate;
    this.older.add(arrivalMs, y);
    this.newer?.add(arrivalMs, y);
    if (!this.newer && this.older.spanMs >= this.windowMs) this.newer = new LowerHull(arrivalMs);
    else if (this.newer && this.newer.spanMs >= this.windowMs) {
      this.older = this.newer;
      this.newer = new LowerHull(arrivalMs);
    }
    this.dirty = true;
  }

  /** The stream jumped (new SSRC, timestamp jump): its old points say nothing about the new clock. */
  reset(): void {
    this.older = this.newer = undefined;
    this.cached = undefined;
    this.dirty = false;
  }

  /**
   * The sender's clock rate over ours (1.001: 1000 ppm fast), or undefined before enough was seen.
   * Worked out at most once per call after new points (the hulls are a few dozen points).
   */
  get ratio(): number | undefined {
    if (this.dirty) {
      this.dirty = false;
      const h = this.older;
      const slope = h && h.spanMs >= this.minSpanMs ? h.slope() : undefined;
      this.cached = slope === undefined ? undefined : 1 + Math.max(-this.maxRatio, Math.min(this.maxRatio, -slope));
    }
    return this.cached;
  }

  /** The estimate in ppm (+: the sender's clock runs fast), rounded to 0.1; undefined before one. */
  get ppm(): number | undefined {
    const r = this.ratio;
    return r === undefined ? undefined : Math.round((r - 1) * 1e7) / 10;
  }

  /** Points on the hulls (for the memory check: it stays small). */
  get hullPoints(): number {
    return (this.older?.xs.length ?? 0) + (this.newer?.xs.length ?? 0);
  }
}
