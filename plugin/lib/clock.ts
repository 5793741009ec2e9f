/** Milliseconds on a clock that never jumps (NTP steps don't move it), comparable with Date.now() at start. */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A time on that clock as ISO 8601, or null when unknown. */
export function isoOrNull(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
