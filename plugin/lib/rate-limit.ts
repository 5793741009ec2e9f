/**
 * A token bucket: `ratePerSec` sustained, bursts up to `burst`. Pure (the clock is passed in), so the
 * REST facade can refuse floods of call setups (429) before they reach Asterisk.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(private readonly ratePerSec: number, private readonly burst: number, now: number) {
    if (!(ratePerSec > 0) || !(burst >= 1)) throw new RangeError(`TokenBucket: rate ${ratePerSec}/s, burst ${burst}`);
    this.tokens = burst;
    this.last = now;
  }

  /** Take one token if there is one; otherwise how long until there is (ms). */
  take(now: number): { ok: true } | { ok: false; retryInMs: number } {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSec) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryInMs: Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSec) };
  }
}
