/**
 * The Kaiser-windowed sinc kernel both resamplers tabulate (encode/aac/resample.ts: 8/16 kHz up to the AAC
 * rate; timeline/drift-resampler.ts: a sender's clock drift). Row p is for an output p/phases of a sample
 * after input sample i; its `taps` entries weigh input samples i − taps/2 + 1 … i + taps/2.
 * `c` scales the sinc: c·sinc(c·t) cuts off at c × the input's Nyquist frequency. Raw values: each
 * caller normalises the gain its own way.
 */
export function kaiserSincTable(o: { taps: number; rows: number; phases: number; c: number; beta: number }): Float64Array {
  const half = o.taps / 2;
  const out = new Float64Array(o.rows * o.taps);
  const i0b = besselI0(o.beta);
  for (let p = 0; p < o.rows; p++) {
    for (let j = 0; j < o.taps; j++) {
      const t = p / o.phases - (j - half + 1); // from input sample i − half + 1 + j to the output
      const x = o.c * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const r = t / half;
      const win = r * r < 1 ? besselI0(o.beta * Math.sqrt(1 - r * r)) / i0b : 0;
      out[p * o.taps + j] = o.c * sinc * win;
    }
  }
  return out;
}

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}
