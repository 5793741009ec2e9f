/**
 * RTCP (RFC 3550 §6): parse compound packets (SR, RR, SDES, BYE; others by type), and build the two
 * packets we send: a minimal receiver report and a Picture Loss Indication (RFC 4585 §6.3.1) to ask a
 * phone for a keyframe.
 *
 * Asterisk's SRs tie each stream's RTP clock to one NTP clock, which is what lip-sync needs. RTCP is
 * rare (about one packet per 5 s per stream), so clarity wins over allocation here.
 */

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
export const RTCP_APP = 204;
export const RTCP_RTPFB = 205;
export const RTCP_PSFB = 206;

/** Seconds between the NTP era (1900) and the Unix epoch (1970). */
export const NTP_UNIX_OFFSET_S = 2_208_988_800;

export interface ReportBlock {
  ssrc: number;
  /** Fraction of packets lost since the last report, in 1/256 units (0-255). */
  fractionLost: number;
  /** Cumulative packets lost; signed 24-bit (duplicates can make it negative). */
  cumulativeLost: number;
  /** Extended highest sequence number received (cycles << 16 | seq). */
  highestSeq: number;
  /** Interarrival jitter, in RTP timestamp units. */
  jitter: number;
  /** Middle 32 bits of the NTP timestamp of the last SR received (0 = none). */
  lastSr: number;
  /** Delay since that SR, in 1/65536 s. */
  delaySinceLastSr: number;
}

export interface SenderReport {
  type: 'sr';
  ssrc: number;
  ntpSeconds: number;
  ntpFraction: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
  reports: ReportBlock[];
}

export interface ReceiverReport {
  type: 'rr';
  ssrc: number;
  reports: ReportBlock[];
}

export interface SdesItem {
  /** 1 CNAME, 2 NAME, 3 EMAIL, 4 PHONE, 5 LOC, 6 TOOL, 7 NOTE, 8 PRIV. */
  type: number;
  value: string;
}

export interface SdesChunk {
  ssrc: number;
  items: SdesItem[];
}

export interface Sdes {
  type: 'sdes';
  chunks: SdesChunk[];
}

export interface Bye {
  type: 'bye';
  ssrcs: number[];
  reason?: string;
}

export interface OtherRtcp {
  type: 'other';
  packetType: number;
  /** The 5-bit count field (FMT for feedback packets). */
  count: number;
}

export type RtcpPacket = SenderReport | ReceiverReport | Sdes | Bye | OtherRtcp;

const REPORT_BLOCK_LENGTH = 24;

/**
 * Parse a (compound) RTCP datagram. Never throws: on the first malformed packet it stops and returns
 * what came before plus an `error` saying what was wrong.
 */
export function parseRtcp(buf: Buffer): { packets: RtcpPacket[]; error?: string } {
  const packets: RtcpPacket[] = [];
  if (buf.length < 4) return { packets, error: `too short (${buf.length} bytes)` };
  let offset = 0;
  while (offset < buf.length) {
    if (buf.length - offset < 4) return { packets, error: `truncated header at ${offset}` };
    const b0 = buf[offset]!;
    if (b0 >> 6 !== 2) return { packets, error: `bad version ${b0 >> 6} at ${offset}` };
    const count = b0 & 0x1f;
    const packetType = buf[offset + 1]!;
    const length = (buf.readUInt16BE(offset + 2) + 1) * 4;
    const next = offset + length;
    if (next > buf.length) return { packets, error: `packet type ${packetType} at ${offset} claims ${length} bytes, ${buf.length - offset} left` };
    let end = next;
    if (b0 & 0x20) {
      const pad = buf[next - 1]!;
      if (pad === 0 || pad > length - 4) return { packets, error: `bad padding ${pad} at ${offset}` };
      end = next - pad;
    }
    const body = buf.subarray(offset + 4, end);
    const parsed = parseOne(packetType, count, body);
    if (typeof parsed === 'string') return { packets, error: `packet type ${packetType} at ${offset}: ${parsed}` };
    packets.push(parsed);
    offset = next;
  }
  return { packets };
}

/** One packet's body (after the 4-byte common header); a string is an error. */
function parseOne(packetType: number, count: number, body: Buffer): RtcpPacket | string {
  switch (packetType) {
    case RTCP_SR: {
      if (body.length < 24 + count * REPORT_BLOCK_LENGTH) return `SR with ${count} blocks needs ${24 + count * REPORT_BLOCK_LENGTH} bytes, has ${body.length}`;
      return {
        type: 'sr',
        ssrc: body.readUInt32BE(0),
        ntpSeconds: body.readUInt32BE(4),
        ntpFraction: body.readUInt32BE(8),
        rtpTimestamp: body.readUInt32BE(12),
        packetCount: body.readUInt32BE(16),
        octetCount: body.readUInt32BE(20),
        reports: readReportBlocks(body, 24, count),
      };
    }
    case RTCP_RR: {
      if (body.length < 4 + count * REPORT_BLOCK_LENGTH) return `RR with ${count} blocks needs ${4 + count * REPORT_BLOCK_LENGTH} bytes, has ${body.length}`;
      return { type: 'rr', ssrc: body.readUInt32BE(0), reports: readReportBlocks(body, 4, count) };
    }
    case RTCP_SDES:
      return parseSdes(body, count);
    case RTCP_BYE: {
      if (body.length < 4 * count) return `BYE with ${count} sources needs ${4 * count} bytes, has ${body.length}`;
      const ssrcs: number[] = [];
      for (let i = 0; i < count; i++) ssrcs.push(body.readUInt32BE(4 * i));
      const bye: Bye = { type: 'bye', ssrcs };
      const at = 4 * count;
      if (at < body.length) {
        const n = body[at]!;
        if (at + 1 + n > body.length) return `BYE reason of ${n} bytes overruns the packet`;
        bye.reason = body.toString('utf8', at + 1, at + 1 + n);
      }
      return bye;
    }
    default:
      return { type: 'other', packetType, count };
  }
}

function readReportBlocks(body: Buffer, at: number, count: number): ReportBlock[] {
  const reports: ReportBlock[] = [];
  for (let i = 0; i < count; i++, at += REPORT_BLOCK_LENGTH) {
    reports.push({
      ssrc: body.readUInt32BE(at),
      fractionLost: body[at + 4]!,
      cumulativeLost: body.readIntBE(at + 5, 3),
      highestSeq: body.readUInt32BE(at + 8),
      jitter: body.readUInt32BE(at + 12),
      lastSr: body.readUInt32BE(at + 16),
      delaySinceLastSr: body.readUInt32BE(at + 20),
    });
  }
  return reports;
}

/** SDES chunks: SSRC, then items (type, length, text) up to a null item, padded to 32 bits (§6.5). */
function parseSdes(body: Buffer, count: number): Sdes | string {
  const chunks: SdesChunk[] = [];
  let at = 0;
  for (let c = 0; c < count; c++) {
    if (at + 4 > body.length) return `SDES chunk ${c} truncated`;
    const chunk: SdesChunk = { ssrc: body.readUInt32BE(at), items: [] };
    at += 4;
    for (;;) {
      if (at >= body.length) return `SDES chunk ${c} has no end item`;
      const type = body[at]!;
      if (type === 0) {
        at = (at + 4) & ~3; // the null item plus padding to the next 32-bit boundary
        break;
      }
      if (at + 2 > body.length) return `SDES item truncated`;
      const n = body[at + 1]!;
      if (at + 2 + n > body.length) return `SDES item of ${n} bytes overruns the packet`;
      chunk.items.push({ type, value: body.toString('utf8', at + 2, at + 2 + n) });
      at += 2 + n;
    }
    chunks.push(chunk);
  }
  return { type: 'sdes', chunks };
}

/** NTP timestamp (seconds since 1900, 2^-32 s fraction) in milliseconds since 1900. */
export function ntpToMs(seconds: number, fraction: number): number {
  return seconds * 1000 + (fraction * 1000) / 0x1_0000_0000;
}

/** The "middle 32 bits" of an NTP timestamp, as echoed in a report block's LSR field. */
export function ntpMiddle32(seconds: number, fraction: number): number {
  return (((seconds & 0xffff) << 16) | (fraction >>> 16)) >>> 0;
}

/** RFC 4585 §6.3.1 Picture Loss Indication: PSFB (206), FMT 1, no FCI. 12 bytes. */
export function buildPli(senderSsrc: number, mediaSsrc: number): Buffer {
  const out = Buffer.alloc(12);
  out[0] = 0x80 | 1;
  out[1] = RTCP_PSFB;
  out.writeUInt16BE(2, 2);
  out.writeUInt32BE(senderSsrc >>> 0, 4);
  out.writeUInt32BE(mediaSsrc >>> 0, 8);
  return out;
}

/**
 * A keyframe request as a compound packet: RR + SDES CNAME + PLI. A bare PLI is not enough: Asterisk drops
 * any RTCP whose first packet is not an SR or RR ("Failed first packet validity check", measured), as
 * RFC 3550 §6.1 and RFC 4585 §3.1 allow. Asterisk turns the PLI into a video update, which it sends on to an
 * H.264 far end as RTCP FIR.
 */
export function buildKeyframeRequest(senderSsrc: number, mediaSsrc: number, cname: string): Buffer {
  return Buffer.concat([buildReceiverReport(senderSsrc, [], cname), buildPli(senderSsrc, mediaSsrc)]);
}

/**
 * A receiver report with up to 31 report blocks. With `cname`, an SDES CNAME chunk follows, making the
 * compound packet RFC 3550 §6.1 asks for (every compound starts with SR/RR and carries a CNAME).
 */
export function buildReceiverReport(ssrc: number, reports: readonly ReportBlock[] = [], cname?: string): Buffer {
  if (reports.length > 31) throw new RangeError(`RTCP: ${reports.length} report blocks (max 31)`);
  const rrLen = 8 + REPORT_BLOCK_LENGTH * reports.length;
  const name = cname === undefined ? undefined : Buffer.from(cname, 'utf8');
  if (name && name.length > 255) throw new RangeError('RTCP: CNAME longer than 255 bytes');
  // SDES: header 4 + SSRC 4 + item 2+n + null item, padded to 32 bits.
  const sdesLen = name ? (4 + 4 + 2 + name.length + 1 + 3) & ~3 : 0;
  const out = Buffer.alloc(rrLen + sdesLen);
  out[0] = 0x80 | reports.length;
  out[1] = RTCP_RR;
  out.writeUInt16BE(rrLen / 4 - 1, 2);
  out.writeUInt32BE(ssrc >>> 0, 4);
  let at = 8;
  for (const r of reports) {
    out.writeUInt32BE(r.ssrc >>> 0, at);
    out[at + 4] = Math.max(0, Math.min(255, r.fractionLost));
    out.writeIntBE(Math.max(-0x800000, Math.min(0x7fffff, r.cumulativeLost)), at + 5, 3);
    out.writeUInt32BE(r.highestSeq >>> 0, at + 8);
    out.writeUInt32BE(r.jitter >>> 0, at + 12);
    out.writeUInt32BE(r.lastSr >>> 0, at + 16);
    out.writeUInt32BE(r.delaySinceLastSr >>> 0, at + 20);
    at += REPORT_BLOCK_LENGTH;
  }
  if (name) {
    out[at] = 0x80 | 1;
    out[at + 1] = RTCP_SDES;
    out.writeUInt16BE(sdesLen / 4 - 1, at + 2);
    out.writeUInt32BE(ssrc >>> 0, at + 4);
    out[at + 8] = 1; // CNAME
    out[at + 9] = name.length;
    name.copy(out, at + 10);
    // The rest (null item and padding) is already zero.
  }
  return out;
}
