/**
 * H.264 NAL units (ITU-T H.264 §7.3.1, Annex B) and the two ways of framing them in a byte stream:
 * Annex B start codes (what ffmpeg's raw `-f h264` writes) and AVCC length prefixes (what FLV and MP4
 * carry, ISO/IEC 14496-15 §5.3.4.2). A NAL unit here is always the bare unit: header byte first,
 * emulation prevention bytes still inside (decoders need them; only parsers strip them, see unescapeRbsp).
 */

/** nal_unit_type values (H.264 Table 7-1) and the RTP payload structure types (RFC 6184 §5.2). */
export const NalType = {
  Slice: 1,
  SliceA: 2,
  SliceB: 3,
  SliceC: 4,
  Idr: 5,
  Sei: 6,
  Sps: 7,
  Pps: 8,
  Aud: 9,
  EndOfSequence: 10,
  EndOfStream: 11,
  Filler: 12,
  /** RFC 6184 aggregation and fragmentation units (never inside a byte stream). */
  StapA: 24,
  StapB: 25,
  Mtap16: 26,
  Mtap24: 27,
  FuA: 28,
  FuB: 29,
} as const;

/** nal_unit_type of a NAL unit (low 5 bits of its header byte); -1 for an empty buffer. */
export function nalType(nal: Buffer): number {
  const b = nal[0];
  return b === undefined ? -1 : b & 0x1f;
}

/** Coded slice of a picture (types 1-5): the units that make an access unit a picture. */
export function isVcl(type: number): boolean {
  return type >= 1 && type <= 5;
}

/**
 * Split an Annex B byte stream at its start codes (00 00 01, or 00 00 00 01). The units are views of
 * `buf`, without start codes. Leading bytes before the first start code are skipped; trailing zero bytes
 * (trailing_zero_8bits, or the first byte of a 4-byte start code) are not part of a unit, since a NAL unit
 * never ends in 0x00 (§7.4.1). Empty units are skipped.
 */
export function splitAnnexB(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const len = buf.length;
  let start = -1;
  let i = 0;
  while (i + 2 < len) {
    // Scan for 00 00 01; a byte > 1 at i+2 lets us skip three ahead.
    const b2 = buf[i + 2]!;
    if (b2 > 1) {
      i += 3;
      continue;
    }
    if (b2 === 1 && buf[i] === 0 && buf[i + 1] === 0) {
      if (start >= 0) pushTrimmed(out, buf, start, i);
      start = i + 3;
      i += 3;
      continue;
    }
    i++;
  }
  if (start >= 0) pushTrimmed(out, buf, start, len);
  return out;
}

function pushTrimmed(out: Buffer[], buf: Buffer, start: number, end: number): void {
  while (end > start && buf[end - 1] === 0) end--;
  if (end > start) out.push(buf.subarray(start, end));
}

/** NAL units as an Annex B stream with 4-byte start codes (one allocation). */
export function joinAnnexB(nalus: readonly Buffer[]): Buffer {
  return frame(nalus, true);
}

/** NAL units with 4-byte big-endian length prefixes (AVCC, lengthSizeMinusOne = 3), as FLV video tags carry them. */
export function toAvcc(nalus: readonly Buffer[]): Buffer {
  return frame(nalus, false);
}

function frame(nalus: readonly Buffer[], startCodes: boolean): Buffer {
  let size = 0;
  for (const n of nalus) size += 4 + n.length;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (const n of nalus) {
    out.writeUInt32BE(startCodes ? 1 : n.length, o);
    n.copy(out, o + 4);
    o += 4 + n.length;
  }
  return out;
}

/** Length-prefixed NAL units (views of `buf`). Throws RangeError on a prefix that overruns the buffer. */
export function splitAvcc(buf: Buffer, lengthSize: 1 | 2 | 3 | 4 = 4): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  while (o < buf.length) {
    if (o + lengthSize > buf.length) throw new RangeError(`AVCC: truncated length at ${o}`);
    const n = buf.readUIntBE(o, lengthSize);
    o += lengthSize;
    if (o + n > buf.length) throw new RangeError(`AVCC: NAL of ${n} bytes at ${o} overruns ${buf.length}`);
    out.push(buf.subarray(o, o + n));
    o += n;
  }
  return out;
}

/**
 * The RBSP of a NAL unit payload: emulation_prevention_three_byte removed (every 03 in 00 00 03, §7.4.1).
 * Returns a view of the input when there is none (the common case), else one copy.
 */
export function unescapeRbsp(data: Buffer): Buffer {
  const first = findEscape(data, 0);
  if (first < 0) return data;
  const out = Buffer.allocUnsafe(data.length);
  let w = 0;
  let from = 0;
  for (let e = first; e >= 0; e = findEscape(data, e + 1)) {
    w += data.copy(out, w, from, e);
    from = e + 1; // skip the 03
  }
  w += data.copy(out, w, from);
  return out.subarray(0, w);
}

/** Index of the 03 of the next 00 00 03 at or after `from` (the 00 00 before it may precede `from`). */
function findEscape(data: Buffer, from: number): number {
  for (let i = Math.max(from, 2); i < data.length; i++) {
    if (data[i] === 3 && data[i - 1] === 0 && data[i - 2] === 0) return i;
  }
  return -1;
}

/**
 * Insert emulation prevention bytes so the RBSP never shows 00 00 0x (x ≤ 3) (§7.4.1). The inverse of
 * unescapeRbsp; for building NAL units (tests, synthetic parameter sets).
 */
export function escapeRbsp(rbsp: Buffer): Buffer {
  const out: number[] = [];
  let zeros = 0;
  for (const b of rbsp) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Buffer.from(out);
}
