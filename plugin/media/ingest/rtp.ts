/**
 * RTP fixed header, CSRC list, header extension and padding (RFC 3550 §5.1, §5.3.1; RFC 8285 profiles).
 *
 * Parsed once at the socket edge into typed fields; the payload stays a view of the datagram (no copy),
 * so a packet costs one small object. Malformed input is rejected with a reason, never thrown: the
 * socket is open to anything on the network.
 */

export interface RtpPacket {
  version: number;
  padding: boolean;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** Contributing sources; a shared frozen empty array when CC = 0 (do not mutate). */
  csrcs: number[];
  /** `profile` is 0xBEDE for RFC 8285 one-byte elements, 0x100x for two-byte elements; `data` is a view. */
  extension?: { profile: number; data: Buffer };
  /** View of the input: after header, CSRCs and extension, padding removed. */
  payload: Buffer;
}

export type RtpRejectReason =
  | 'too-short'
  | 'bad-version'
  | 'bad-csrc-length'
  | 'bad-extension-length'
  | 'bad-padding'
  | 'rtcp';

export type RtpParse = { ok: true; packet: RtpPacket } | { ok: false; reason: RtpRejectReason };

export const RTP_HEADER_LENGTH = 12;
/** RFC 8285 §4.2 one-byte header extension profile. */
export const EXTENSION_PROFILE_ONE_BYTE = 0xbede;
/** RFC 8285 §4.3 two-byte header extension profile (low 4 bits are "appbits"). */
export const EXTENSION_PROFILE_TWO_BYTE = 0x1000;

const NO_CSRCS: number[] = Object.freeze([]) as unknown as number[];

// One frozen object per reason: a rejected datagram (a scan, a stray RTCP) allocates nothing.
const reject = Object.freeze({
  'too-short': Object.freeze({ ok: false, reason: 'too-short' }),
  'bad-version': Object.freeze({ ok: false, reason: 'bad-version' }),
  'bad-csrc-length': Object.freeze({ ok: false, reason: 'bad-csrc-length' }),
  'bad-extension-length': Object.freeze({ ok: false, reason: 'bad-extension-length' }),
  'bad-padding': Object.freeze({ ok: false, reason: 'bad-padding' }),
  rtcp: Object.freeze({ ok: false, reason: 'rtcp' }),
} satisfies Record<RtpRejectReason, RtpParse>);

/**
 * RFC 5761 §4 demultiplexing of RTP and RTCP on one port: RTCP packet types 192-223 read as an RTP
 * marker bit plus payload type 64-95, a range RTP payload types must not use.
 */
export function looksLikeRtcp(buf: Buffer): boolean {
  if (buf.length < 4) return false;
  const b0 = buf[0]!;
  const pt = buf[1]! & 0x7f;
  return b0 >> 6 === 2 && pt >= 64 && pt <= 95;
}

/** Parse one RTP datagram. Never throws. */
export function parseRtp(buf: Buffer): RtpParse {
  const len = buf.length;
  if (looksLikeRtcp(buf)) return reject.rtcp;
  if (len < RTP_HEADER_LENGTH) return reject['too-short'];
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  if (b0 >> 6 !== 2) return reject['bad-version'];

  const cc = b0 & 0x0f;
  let offset = RTP_HEADER_LENGTH + 4 * cc;
  if (offset > len) return reject['bad-csrc-length'];
  let csrcs = NO_CSRCS;
  if (cc > 0) {
    csrcs = new Array<number>(cc);
    for (let i = 0; i < cc; i++) csrcs[i] = buf.readUInt32BE(RTP_HEADER_LENGTH + 4 * i);
  }

  let extension: RtpPacket['extension'];
  if (b0 & 0x10) {
    if (offset + 4 > len) return reject['bad-extension-length'];
    const profile = buf.readUInt16BE(offset);
    const end = offset + 4 + 4 * buf.readUInt16BE(offset + 2);
    if (end > len) return reject['bad-extension-length'];
    extension = { profile, data: buf.subarray(offset + 4, end) };
    offset = end;
  }

  let end = len;
  const padding = (b0 & 0x20) !== 0;
  if (padding) {
    // The last octet counts the padding including itself, so 0 is invalid (RFC 3550 §5.1).
    const count = buf[len - 1]!;
    if (count === 0 || count > len - offset) return reject['bad-padding'];
    end = len - count;
  }

  const packet: RtpPacket = {
    version: 2,
    padding,
    marker: (b1 & 0x80) !== 0,
    payloadType: b1 & 0x7f,
    sequenceNumber: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    csrcs,
    payload: buf.subarray(offset, end),
  };
  if (extension) packet.extension = extension;
  return { ok: true, packet };
}

export type RtpPacketInit = Omit<RtpPacket, 'version' | 'padding'> & {
  /** Padding octets to append, including the count octet (1-255); 0 or absent = none. */
  padding?: number;
};

/** Write an RTP packet. Throws RangeError on values the wire format cannot carry. */
export function serializeRtp(p: RtpPacketInit): Buffer {
  const cc = p.csrcs.length;
  const pad = p.padding ?? 0;
  const ext = p.extension;
  if (cc > 15) throw new RangeError(`RTP: ${cc} CSRCs (max 15)`);
  if (!Number.isInteger(pad) || pad < 0 || pad > 255) throw new RangeError(`RTP: padding ${pad} (0-255)`);
  if (p.payloadType < 0 || p.payloadType > 127) throw new RangeError(`RTP: payload type ${p.payloadType}`);
  if (ext && (ext.data.length % 4 !== 0 || ext.data.length > 0xffff * 4)) {
    throw new RangeError(`RTP: extension length ${ext.data.length} is not a multiple of 4 up to 262140`);
  }

  const extLen = ext ? 4 + ext.data.length : 0;
  const headerLen = RTP_HEADER_LENGTH + 4 * cc + extLen;
  const out = Buffer.alloc(headerLen + p.payload.length + pad);
  out[0] = 0x80 | (pad > 0 ? 0x20 : 0) | (ext ? 0x10 : 0) | cc;
  out[1] = (p.marker ? 0x80 : 0) | p.payloadType;
  out.writeUInt16BE(p.sequenceNumber & 0xffff, 2);
  out.writeUInt32BE(p.timestamp >>> 0, 4);
  out.writeUInt32BE(p.ssrc >>> 0, 8);
  for (let i = 0; i < cc; i++) out.writeUInt32BE(p.csrcs[i]! >>> 0, RTP_HEADER_LENGTH + 4 * i);
  let offset = RTP_HEADER_LENGTH + 4 * cc;
  if (ext) {
    out.writeUInt16BE(ext.profile & 0xffff, offset);
    out.writeUInt16BE(ext.data.length / 4, offset + 2);
    ext.data.copy(out, offset + 4);
    offset += extLen;
  }
  p.payload.copy(out, offset);
  if (pad > 0) out[out.length - 1] = pad;
  return out;
}
