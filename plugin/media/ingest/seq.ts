/**
 * Wrap-aware arithmetic for RTP's 16-bit sequence numbers and 32-bit timestamps (RFC 3550 §A.1).
 * Every stage that compares sequence numbers or timestamps goes through here, so the wrap is handled once.
 */

/** Signed distance `a - b` between two 16-bit sequence numbers, in [-32768, 32767]. */
export function seqDiff(a: number, b: number): number {
  // Shift the 16-bit difference into the top of an int32 and back: sign extension does the wrap.
  return ((a - b) << 16) >> 16;
}

/** `seq + n` modulo 2^16. */
export function seqAdd(seq: number, n: number): number {
  return (seq + n) & 0xffff;
}

/** Signed distance `a - b` between two 32-bit RTP timestamps, in [-2^31, 2^31). */
export function tsDiff(a: number, b: number): number {
  // `| 0` is ToInt32: the difference modulo 2^32, read as signed.
  return (a - b) | 0;
}

/** `ts + n` modulo 2^32, as an unsigned number. */
export function tsAdd(ts: number, n: number): number {
  return (ts + n) >>> 0;
}
