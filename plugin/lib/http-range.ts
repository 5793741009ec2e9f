/**
 * One HTTP byte range (RFC 9110 §14), as browsers ask for a video they seek in: "bytes=a-b", "bytes=a-",
 * "bytes=-n". Several ranges are answered whole (allowed: a server may ignore Range).
 */
export type ByteRange = { start: number; end: number; partial: boolean } | { unsatisfiable: true };

export function parseRange(header: string | undefined, size: number): ByteRange {
  const whole = { start: 0, end: size - 1, partial: false };
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return whole;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return { unsatisfiable: true };
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) return { unsatisfiable: true };
  return { start, end, partial: true };
}
