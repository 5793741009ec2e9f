/**
 * G.711 μ-law and A-law (ITU-T G.711) to and from 16-bit linear PCM.
 *
 * Decoding is a 256-entry table lookup per byte (tables built once at load from the segment formulas).
 * Encoding finds the segment with Math.clz32 instead of a 64 KB table: it runs only for generated media.
 */

/** μ-law: value = sign · (((mantissa << 3) + 0x84) << segment) - 0x84, bits inverted on the wire. */
const ULAW_TO_PCM = new Int16Array(256);
/** A-law: even bits inverted on the wire (XOR 0x55); segment 0 is linear. */
const ALAW_TO_PCM = new Int16Array(256);

for (let byte = 0; byte < 256; byte++) {
  const u = ~byte & 0xff;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84;
  ULAW_TO_PCM[byte] = u & 0x80 ? -magnitude : magnitude;

  const a = byte ^ 0x55;
  const segment = (a >> 4) & 0x07;
  const mantissa = a & 0x0f;
  const value = segment === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (segment - 1);
  ALAW_TO_PCM[byte] = a & 0x80 ? value : -value;
}

/** Largest magnitude μ-law encodes before the bias would overflow 15 bits. */
const ULAW_CLIP = 32635;
const ULAW_BIAS = 0x84;

/** Output view of `n` samples: `dst` when given and large enough, otherwise a new array. */
function target(dst: Int16Array | undefined, n: number): Int16Array {
  if (dst === undefined || dst.length < n) return new Int16Array(n);
  return dst.length === n ? dst : dst.subarray(0, n);
}

/** Decode μ-law bytes; writes into `dst` when it has room (returns a view of the first src.length). */
export function ulawToPcm(src: Uint8Array, dst?: Int16Array): Int16Array {
  const out = target(dst, src.length);
  for (let i = 0; i < src.length; i++) out[i] = ULAW_TO_PCM[src[i]!]!;
  return out;
}

/** Decode A-law bytes; writes into `dst` when it has room (returns a view of the first src.length). */
export function alawToPcm(src: Uint8Array, dst?: Int16Array): Int16Array {
  const out = target(dst, src.length);
  for (let i = 0; i < src.length; i++) out[i] = ALAW_TO_PCM[src[i]!]!;
  return out;
}

/** One sample to μ-law. */
export function linearToUlaw(sample: number): number {
  let s = sample;
  let sign = 0;
  if (s < 0) {
    sign = 0x80;
    s = -s;
  }
  if (s > ULAW_CLIP) s = ULAW_CLIP;
  s += ULAW_BIAS; // now in [0x84, 0x7fff]: the top bit sits at 7 + segment
  const segment = 24 - Math.clz32(s);
  const mantissa = (s >> (segment + 3)) & 0x0f;
  return ~(sign | (segment << 4) | mantissa) & 0xff;
}

/** One sample to A-law. */
export function linearToAlaw(sample: number): number {
  let s = sample;
  let mask = 0xd5; // positive: sign bit set, then the even-bit inversion
  if (s < 0) {
    mask = 0x55;
    s = ~s; // -s - 1 keeps -32768 in range and matches the decoder's half-step offset
  }
  if (s > 0x7fff) s = 0x7fff;
  if (s < 0x100) return (s >> 4) ^ mask;
  const segment = 24 - Math.clz32(s); // top bit at 7 + segment, segment 1..7
  return (((segment << 4) | ((s >> (segment + 3)) & 0x0f)) ^ mask) & 0xff;
}

export function pcmToUlaw(src: Int16Array, dst?: Buffer): Buffer {
  const out = dst !== undefined && dst.length >= src.length ? dst : Buffer.allocUnsafe(src.length);
  for (let i = 0; i < src.length; i++) out[i] = linearToUlaw(src[i]!);
  return out.length === src.length ? out : out.subarray(0, src.length);
}

export function pcmToAlaw(src: Int16Array, dst?: Buffer): Buffer {
  const out = dst !== undefined && dst.length >= src.length ? dst : Buffer.allocUnsafe(src.length);
  for (let i = 0; i < src.length; i++) out[i] = linearToAlaw(src[i]!);
  return out.length === src.length ? out : out.subarray(0, src.length);
}
