/**
 * One output clock for every call in the process. Each timer wake-up costs far more than the work done
 * in it (measured here: a bare 20 ms Node timer alone costs 0.37 CPU-s per minute), so calls share one
 * timer instead of holding one each. The timer runs only while some call is subscribed.
 *
 * The ticks fall on a fixed grid (origin + k × period, never drifting), a little after each grid point.
 * With the period set to one AAC frame and each call's start snapped to the grid (alignUp), every tick
 * finds each call's next frame just complete: encoded audio leaves at once instead of waiting up to a
 * whole extra period for the next tick.
 */
import { monotonicNow } from '../../lib/clock.js';
import { MsHistogram } from './latency.js';

/**
 * How long after a grid point the tick runs: the samples up to the grid point must all be due by then
 * (including a resampler's look-ahead: 0.5 ms at most). Node's timers count whole milliseconds on a loop
 * clock that may lag, so a timer can fire up to 1 ms early by performance.now(): with 1 ms here, some
 * ticks came before their frame was complete and the frame waited a whole period (measured: latency
 * p99 103 ms instead of 85 at a 60 ms jitter depth).
 */
const LATE_MS = 2;

export class MediaTicker {
  private readonly subscribers = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private readonly origin: number;
  private next = 0;
  private ticking = false;
  /** How late each tick ran after its grid point (ms), and how long its work took: for /metrics. */
  readonly late = new MsHistogram();
  readonly work = new MsHistogram();

  constructor(readonly periodMs: number, private readonly now: () => number = monotonicNow) {
    this.origin = now();
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** The first grid point at or after `t` (a call's time zero, so its frames end on ticks). */
  alignUp(t: number): number {
    return this.origin + Math.ceil((t - this.origin) / this.periodMs - 1e-9) * this.periodMs;
  }

  /** Call `fn` every period until the returned function is called. */
  subscribe(fn: () => void): () => void {
    this.subscribers.add(fn);
    if (!this.timer && !this.ticking) {
      this.next = this.alignUp(this.now());
      this.schedule();
    }
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0 && this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
    };
  }

  private schedule(): void {
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.next + LATE_MS - this.now()));
  }

  private tick(): void {
    // After a stall (a long GC, a suspended process) skip the missed grid points: one catch-up tick
    // reads everything that became due, so nothing is lost by not replaying them one by one.
    this.timer = undefined;
    this.ticking = true;
    const now = this.now();
    this.late.add(now - this.next - LATE_MS);
    this.next = Math.max(this.next + this.periodMs, this.alignUp(now - LATE_MS + 0.001));
    for (const fn of this.subscribers) {
      try {
        fn();
      } catch {
        // One call's failure must not stop the clock for the others; the call reports its own errors.
      }
    }
    this.work.add(this.now() - now);
    this.ticking = false;
    if (this.subscribers.size > 0) this.schedule();
  }
}
