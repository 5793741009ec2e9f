/**
 * RTP L16 (RFC 3551 §4.5.11): signed 16-bit samples in network (big-endian) order. Int16Array is host
 * order, so bytes are assembled by value, which is correct on any host.
 */

/** Decode an L16 payload (a trailing odd byte is ignored); writes into `dst` when it has room. */
export function l16ToPcm(payload: Uint8Array, dst?: Int16Array): Int16Array {
  const n = payload.length >> 1;
  const out = dst === undefined || dst.length < n ? new Int16Array(n) : dst.length === n ? dst : dst.subarray(0, n);
  for (let i = 0, j = 0; i < n; i++, j += 2) out[i] = (payload[j]! << 8) | payload[j + 1]!;
  return out;
}

/** Encode PCM as an L16 payload. */
export function pcmToL16(src: Int16Array, dst?: Buffer): Buffer {
  const n = src.length * 2;
  const out = dst === undefined || dst.length < n ? Buffer.allocUnsafe(n) : dst.length === n ? dst : dst.subarray(0, n);
  for (let i = 0, j = 0; i < src.length; i++, j += 2) {
    const s = src[i]!;
    out[j] = (s >> 8) & 0xff;
    out[j + 1] = s & 0xff;
  }
  return out;
}
