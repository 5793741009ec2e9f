/** Milliseconds on a clock that never jumps (NTP steps don't move it), comparable with Date.now() at start. */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}
