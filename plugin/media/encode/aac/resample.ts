/**
 * Upsampling from the call's rate (8/16 kHz) to the AAC rate (44.1/48 kHz), made for an encoder that
 * zeroes every MDCT coefficient above the input's Nyquist frequency. That zeroing removes all images
 * that land between the input's and the output's Nyquist frequency, so the resampler itself only has
 * to keep images from landing *below* the input's Nyquist frequency:
 *
 *  - integer ratio (48000/16000 = 3, 48000/8000 = 6): zero-stuffing with gain × ratio. All its images
 *    lie above the input's Nyquist frequency, so it costs nothing;
 *  - other ratios (16000 → 44100 = 441/160): polyphase interpolation with a short Kaiser-windowed
 *    sinc kernel (8 input taps), flat (±0.001 dB) to 0.45·inputRate and ≥ 80 dB down from
 *    1.5·inputRate, which is where images begin to fold back below the input's Nyquist frequency;
 *  - equal rates: copied through.
 *
 * Timing: output sample n is the input at time n·inputRate/outputRate (no shift); the polyphase
 * kernel is symmetric, so it needs TAPS/2 input samples of lookahead, which end() supplies as zeros.
 * After end(), exactly ceil(inputSamples·outputRate/inputRate) samples come out in total.
 */

import { kaiserSincTable } from '../../kaiser-sinc.js';

const TAPS = 8; // polyphase kernel length, in input samples
const HALF = TAPS / 2;
const CUTOFF = 0.9; // kernel cutoff, in units of the input rate
const BETA = 8; // Kaiser window shape

export type ResampleMode = 'pass' | 'stuff' | 'polyphase';

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

export class Resampler {
  readonly mode: ResampleMode;
  /** Upsampling factor L/M in lowest terms (L = M = 1 when passing through). */
  readonly up: number;
  readonly down: number;
  /** Polyphase table: for phase p, coef[p*TAPS + j] weighs input sample (i − HALF + 1 + j). */
  private readonly coef: Float64Array;
  private buf = new Float64Array(4096);
  private len = 0; // samples in buf
  private pos = 0; // buf index of the current input sample (time origin of the next output)
  private phase = 0; // stuff: 0..up-1 output slot; polyphase: numerator of the fraction, 0..up-1
  private totalIn = 0;
  private produced = 0;
  private limit = Infinity; // total outputs once end() was called

  constructor(
    readonly inputRate: number,
    readonly outputRate: number,
  ) {
    if (!(Number.isInteger(inputRate) && inputRate > 0 && Number.isInteger(outputRate) && outputRate > 0)) {
      throw new RangeError(`Resampler: bad rates ${inputRate} → ${outputRate}`);
    }
    if (inputRate > outputRate) throw new RangeError(`Resampler: downsampling ${inputRate} → ${outputRate} is not supported`);
    const g = gcd(outputRate, inputRate);
    this.up = outputRate / g;
    this.down = inputRate / g;
    this.mode = this.up === this.down ? 'pass' : this.down === 1 ? 'stuff' : 'polyphase';
    this.coef = this.mode === 'polyphase' ? makeKernel(this.up) : new Float64Array(0);
    this.reset();
  }

  reset(): void {
    // Polyphase starts with HALF − 1 zeros of history, standing for the input before time 0.
    this.len = this.mode === 'polyphase' ? HALF - 1 : 0;
    this.buf.fill(0, 0, this.len);
    this.pos = this.len;
    this.phase = 0;
    this.totalIn = 0;
    this.produced = 0;
    this.limit = Infinity;
  }

  /** Queue input samples `pcm[start, end)`. */
  write(pcm: Int16Array | Float64Array, start = 0, end = pcm.length): void {
    if (this.limit !== Infinity) throw new Error('Resampler: write after end()');
    this.append(pcm, start, end);
    this.totalIn += end - start;
  }

  /** No more input: let the outputs up to the last input sample's time come out. */
  end(): void {
    if (this.limit !== Infinity) return;
    this.limit = Math.ceil((this.totalIn * this.up) / this.down);
    if (this.mode === 'polyphase') this.append(new Float64Array(HALF), 0, HALF);
  }

  /** Write up to `max` output samples to `out[off…]`; returns how many were available. */
  read(out: Float64Array, off: number, max: number): number {
    const room = this.limit - this.produced;
    if (max > room) max = room;
    let n = 0;
    const buf = this.buf;
    if (this.mode === 'pass') {
      const pos = this.pos;
      n = Math.min(max, this.len - pos);
      for (let i = 0; i < n; i++) out[off + i] = buf[pos + i]!;
      this.pos = pos + n;
    } else if (this.mode === 'stuff') {
      // Zeros, with every up-th sample taken from the input (times up, to keep the level).
      const up = this.up;
      let pos = this.pos;
      let phase = this.phase;
      n = Math.min(max, (this.len - pos) * up - phase);
      if (n < 0) n = 0;
      out.fill(0, off, off + n);
      for (let k = (up - phase) % up; k < n; k += up) out[off + k] = buf[pos + (k + phase) / up]! * up;
      phase += n;
      pos += Math.floor(phase / up);
      phase %= up;
      this.pos = pos;
      this.phase = phase;
    } else {
      const up = this.up;
      const down = this.down;
      const coef = this.coef;
      let pos = this.pos;
      let phase = this.phase;
      const last = this.len - HALF - 1; // the kernel reaches up to buf[pos + HALF]
      while (n < max && pos <= last) {
        const c = phase * TAPS;
        const b = pos - HALF + 1;
        out[off + n++] =
          buf[b]! * coef[c]! +
          buf[b + 1]! * coef[c + 1]! +
          buf[b + 2]! * coef[c + 2]! +
          buf[b + 3]! * coef[c + 3]! +
          buf[b + 4]! * coef[c + 4]! +
          buf[b + 5]! * coef[c + 5]! +
          buf[b + 6]! * coef[c + 6]! +
          buf[b + 7]! * coef[c + 7]!;
        phase += down;
        if (phase >= up) {
          phase -= up;
          pos++;
        }
      }
      this.pos = pos;
      this.phase = phase;
    }
    this.produced += n;
    return n;
  }

  private append(src: Int16Array | Float64Array, start: number, end: number): void {
    // Drop what no future output needs, keeping the kernel's history.
    const keep = this.mode === 'polyphase' ? HALF - 1 : 0;
    const drop = this.pos - keep;
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.len);
      this.len -= drop;
      this.pos -= drop;
    }
    const need = this.len + (end - start);
    if (need > this.buf.length) {
      const grown = new Float64Array(Math.max(need, this.buf.length * 2));
      grown.set(this.buf.subarray(0, this.len));
      this.buf = grown;
    }
    const buf = this.buf;
    let at = this.len;
    for (let i = start; i < end; i++) buf[at++] = src[i]!;
    this.len = at;
  }
}

/**
 * Kernel h(t) = 2fc·sinc(2fc·t)·kaiser(t) over |t| < TAPS/2 input samples, sampled at the `up`
 * phases t = p/up − j, scaled to unit DC gain (averaged over phases: the per-phase sums ripple a
 * little because the kernel passes part of the first image, which the encoder removes anyway).
 */
function makeKernel(up: number): Float64Array {
  const coef = kaiserSincTable({ taps: TAPS, rows: up, phases: up, c: 2 * CUTOFF, beta: BETA });
  // The gain over all phases: up (each input sample feeds `up` outputs).
  const norm = up / coef.reduce((a, b) => a + b, 0);
  for (let i = 0; i < coef.length; i++) coef[i] = coef[i]! * norm;
  return coef;
}
