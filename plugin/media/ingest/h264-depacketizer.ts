/**
 * H.264 RTP payload (RFC 6184) → access units (one picture's NAL units), for packetization-mode 0 and 1:
 * single NAL unit packets (types 1-23), STAP-A (24) and FU-A (28). Mode 2's STAP-B, MTAP16/24 and FU-B
 * (25, 26, 27, 29) are counted as unsupported and dropped: the SDP answer never offers mode 2.
 *
 * Input must be in sequence order, as the jitter buffer releases it. Reordering is not done here: a packet
 * behind the last one is dropped (`outOfOrder`) and the hole it left has already broken its access unit.
 *
 * An access unit ends at the RTP marker bit, or when the timestamp changes (some senders omit the marker).
 * A marker on a packet without any slice (some senders mark their SPS/PPS packet) does not end it.
 *
 * Loss: an access unit with a hole (a sequence gap, a lost FU-A fragment, a malformed packet) cannot be
 * decoded, and neither can the pictures predicted from it. So it is dropped, and every access unit after
 * it, until a complete IDR access unit arrives with SPS and PPS known (in it, in an earlier access unit, or
 * from the SDP). `waitingForKeyframe` tells the caller to ask the far end for one (RTCP PLI/FIR). The same
 * wait applies at the start: the first access unit handed out is an IDR.
 *
 * Which access unit a gap hit is a guess: lost packets may be the tail of the open unit or the head of the
 * next. The open one is always dropped; the next one counts as whole only if its first packet visibly
 * starts an access unit (an AUD, SEI, SPS or PPS, or a slice with first_mb_in_slice = 0).
 *
 * NAL units are views of the packet payloads, except FU-A units, reassembled with one copy each.
 * Emulation prevention bytes are left in: decoders need them.
 */
import { seqDiff } from './seq.js';
import { isVcl, NalType } from '../encode/h264/nal.js';

export interface AccessUnit {
  /** RTP timestamp (90 kHz) of the access unit. */
  timestamp: number;
  /** NAL units without start codes or length prefixes (each a Buffer). */
  nalus: Buffer[];
  /** Contains an IDR slice (type 5). */
  keyframe: boolean;
  /** SPS/PPS seen in-band in this AU (also kept inside nalus); the last of each when there are several. */
  sps?: Buffer;
  pps?: Buffer;
}

export interface H264Packet {
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  payload: Buffer;
}

export interface H264DepacketizerOptions {
  /** Largest access unit kept (bounds memory against a sender that never ends one). Default 2 MB. */
  maxAccessUnitBytes?: number;
  /** Parameter sets from the SDP (parseSpropParameterSets): an IDR without in-band SPS/PPS may then start the stream. */
  parameterSets?: { sps?: Buffer | undefined; pps?: readonly Buffer[] | undefined };
}

export interface H264DepacketizerStats {
  /** Packets pushed. */
  packets: number;
  /** Access units handed out. */
  accessUnits: number;
  /** ...of which keyframes. */
  keyframes: number;
  /** Access units dropped: broken by loss or bad packets, or waiting for a keyframe. */
  droppedAccessUnits: number;
  /** FU-A fragments out of place: a middle or end without a start, a start before the previous end, an unfinished unit. */
  fuErrors: number;
  /** Packets by payload structure. */
  stapA: number;
  fuA: number;
  single: number;
  /** Packets of a type we do not handle (mode 2, or the undefined types 0, 30, 31). */
  unsupported: number;
  /** Packets that break their structure: empty, forbidden bit set, bad STAP-A sizes, FU-A without payload. */
  malformed: number;
  /** Sequence gaps (from the sequence numbers or `lostBefore`). */
  gaps: number;
  /** Packets behind the previous one (duplicates, or reordered input: not this stage's job). */
  outOfOrder: number;
  /** Access units over maxAccessUnitBytes. */
  oversized: number;
  /** Complete IDR access units dropped while waiting because no SPS/PPS was known. */
  idrWithoutParameterSets: number;
  /** Times decoding broke after it had started, and the wait for a keyframe began again. */
  keyframeWaits: number;
}

const NONE: AccessUnit[] = Object.freeze([]) as unknown as AccessUnit[];
const DEFAULT_MAX_AU_BYTES = 2 * 1024 * 1024;
/** How far behind a packet may be and still be taken for a late or duplicate one (RFC 3550 §A.1's MAX_MISORDER). */
const MAX_LATE = 100;

export class H264Depacketizer {
  readonly stats: H264DepacketizerStats = {
    packets: 0, accessUnits: 0, keyframes: 0, droppedAccessUnits: 0, fuErrors: 0, stapA: 0, fuA: 0, single: 0,
    unsupported: 0, malformed: 0, gaps: 0, outOfOrder: 0, oversized: 0, idrWithoutParameterSets: 0, keyframeWaits: 0,
  };

  private readonly maxBytes: number;
  private waiting = true;
  private haveSps: boolean;
  private havePps: boolean;
  /** Next expected sequence number; -1 before the first packet. */
  private nextSeq = -1;

  // The open access unit.
  private open = false;
  private ts = 0;
  private nalus: Buffer[] = [];
  private bytes = 0;
  private broken = false;
  private hasVcl = false;
  private idr = false;
  private sps: Buffer | undefined;
  private pps: Buffer | undefined;
  /** NAL units of a closed access unit without slices (e.g. SPS/PPS sent on their own timestamp), for the next one. */
  private carry: Buffer[] | undefined;

  // The FU-A being reassembled: its NAL header byte (-1 = none), fragments (views) and size with the header.
  private fuHeader = -1;
  private readonly fuParts: Buffer[] = [];
  private fuBytes = 0;

  constructor(opts: H264DepacketizerOptions = {}) {
    const max = opts.maxAccessUnitBytes ?? DEFAULT_MAX_AU_BYTES;
    if (!(max > 0)) throw new RangeError(`H264Depacketizer: maxAccessUnitBytes ${max}`);
    this.maxBytes = max;
    this.haveSps = opts.parameterSets?.sps !== undefined;
    this.havePps = (opts.parameterSets?.pps?.length ?? 0) > 0;
  }

  /** True while dropping (after loss, or at the start) until the next IDR: ask the far end for a keyframe. */
  get waitingForKeyframe(): boolean {
    return this.waiting;
  }

  /**
   * One packet, in sequence order; `lostBefore` = packets the jitter buffer declared lost just before it
   * (gaps are also found from the sequence numbers). Returns the access units this packet completed:
   * usually none or one; two when a timestamp change closes one and the packet's marker another.
   * Never throws on packet content.
   */
  push(p: H264Packet, lostBefore = 0): AccessUnit[] {
    const s = this.stats;
    s.packets++;
    const first = this.nextSeq < 0;
    let gap = lostBefore > 0;
    if (!first) {
      const d = seqDiff(p.sequenceNumber, this.nextSeq);
      // Far behind is a new sequence space (the jitter buffer resynced on a restarted sender): a gap.
      if (d < 0 && d >= -MAX_LATE) {
        s.outOfOrder++;
        return NONE;
      }
      if (d !== 0) gap = true;
    }
    this.nextSeq = (p.sequenceNumber + 1) & 0xffff;

    let out: AccessUnit[] | undefined;
    if (this.open && p.timestamp !== this.ts) out = this.close(out, gap);
    if (gap) {
      s.gaps++;
      if (this.open) this.breakAu();
      this.startWaiting();
    }
    if (!this.open) {
      this.openAu(p.timestamp);
      if ((gap || first) && !startsAccessUnit(p.payload)) this.breakAu();
    }
    this.depayload(p.payload);
    if (p.marker && (this.hasVcl || this.broken)) out = this.close(out, false);
    return out ?? NONE;
  }

  /** Close the open access unit (end of the call, or a sender that omits the marker and has gone quiet). */
  flush(): AccessUnit[] {
    return this.open ? this.close(undefined, false) ?? NONE : NONE;
  }

  toJSON(): H264DepacketizerStats & { waitingForKeyframe: boolean; maxAccessUnitBytes: number } {
    return { ...this.stats, waitingForKeyframe: this.waiting, maxAccessUnitBytes: this.maxBytes };
  }

  private startWaiting(): void {
    if (this.waiting) return;
    this.waiting = true;
    this.stats.keyframeWaits++;
  }

  private openAu(ts: number): void {
    this.open = true;
    this.ts = ts;
    this.nalus = [];
    this.bytes = 0;
    this.broken = false;
    this.hasVcl = false;
    this.idr = false;
    this.sps = undefined;
    this.pps = undefined;
    const carry = this.carry;
    this.carry = undefined;
    if (carry) for (const n of carry) this.addNal(n);
  }

  /** `tailLost`: a gap follows this unit, so its end may be missing. */
  private close(out: AccessUnit[] | undefined, tailLost: boolean): AccessUnit[] | undefined {
    const s = this.stats;
    this.open = false;
    if (this.fuHeader >= 0) {
      // A fragmented unit never ended. After a gap that is the gap's doing, not a stray fragment.
      if (!tailLost) s.fuErrors++;
      this.breakAu();
      this.endFu();
    }
    if (tailLost) this.broken = true;
    if (this.broken) {
      s.droppedAccessUnits++;
      this.startWaiting();
      return out;
    }
    if (!this.hasVcl) {
      // Parameter sets or SEI on their own timestamp: they belong with the next picture.
      if (this.nalus.length > 0) this.carry = this.nalus;
      return out;
    }
    if (this.waiting) {
      if (!this.idr) {
        s.droppedAccessUnits++;
        return out;
      }
      if (!(this.haveSps || this.sps) || !(this.havePps || this.pps)) {
        s.droppedAccessUnits++;
        s.idrWithoutParameterSets++;
        return out;
      }
      this.waiting = false;
    }
    if (this.sps) this.haveSps = true;
    if (this.pps) this.havePps = true;
    const au: AccessUnit = { timestamp: this.ts, nalus: this.nalus, keyframe: this.idr };
    if (this.sps) au.sps = this.sps;
    if (this.pps) au.pps = this.pps;
    s.accessUnits++;
    if (this.idr) s.keyframes++;
    (out ??= []).push(au);
    return out;
  }

  /** The open unit cannot be decoded: stop collecting it (its memory goes at once). */
  private breakAu(): void {
    if (this.broken) return;
    this.broken = true;
    this.nalus = [];
    this.fuParts.length = 0;
  }

  private addNal(nal: Buffer): void {
    if (this.broken) return;
    if (this.bytes + nal.length > this.maxBytes) {
      this.stats.oversized++;
      this.breakAu();
      return;
    }
    this.nalus.push(nal);
    this.bytes += nal.length;
    const t = nal[0]! & 0x1f;
    if (isVcl(t)) {
      this.hasVcl = true;
      if (t === NalType.Idr) this.idr = true;
    } else if (t === NalType.Sps) {
      this.sps = nal;
    } else if (t === NalType.Pps) {
      this.pps = nal;
    }
  }

  private depayload(payload: Buffer): void {
    const s = this.stats;
    const b0 = payload[0];
    // forbidden_zero_bit set = the sender says the unit is damaged (RFC 6184 §5.3).
    if (b0 === undefined || b0 & 0x80) {
      this.malformed();
      return;
    }
    const type = b0 & 0x1f;
    if (type >= 1 && type <= 23) {
      s.single++;
      this.strayFu();
      this.addNal(payload);
    } else if (type === NalType.StapA) {
      s.stapA++;
      this.strayFu();
      this.stapA(payload);
    } else if (type === NalType.FuA) {
      s.fuA++;
      this.fuA(payload);
    } else {
      s.unsupported++;
      this.breakAu();
    }
  }

  private malformed(): void {
    this.stats.malformed++;
    this.breakAu();
  }

  /** A non-FU packet while a fragmented unit is open: its end was never sent. */
  private strayFu(): void {
    if (this.fuHeader < 0) return;
    this.stats.fuErrors++;
    this.endFu();
    this.breakAu();
  }

  private endFu(): void {
    this.fuHeader = -1;
    this.fuParts.length = 0;
    this.fuBytes = 0;
  }

  /** STAP-A (RFC 6184 §5.7.1): header byte, then { size(16), NAL unit }+. Validated whole before use. */
  private stapA(payload: Buffer): void {
    const len = payload.length;
    let o = 1;
    let count = 0;
    while (o < len) {
      if (o + 2 > len) break;
      const n = payload.readUInt16BE(o);
      const b = payload[o + 2];
      // A unit inside must be non-empty, fit, and be a plain NAL unit (no nested aggregation or fragment).
      if (n === 0 || o + 2 + n > len || b === undefined || b & 0x80 || (b & 0x1f) === 0 || (b & 0x1f) >= 24) break;
      o += 2 + n;
      count++;
    }
    if (o !== len || count === 0) {
      this.malformed();
      return;
    }
    for (o = 1; o < len; ) {
      const n = payload.readUInt16BE(o);
      this.addNal(payload.subarray(o + 2, o + 2 + n));
      o += 2 + n;
    }
  }

  /** FU-A (RFC 6184 §5.8): FU indicator (F, NRI, 28), FU header (S, E, R, type), fragment. */
  private fuA(payload: Buffer): void {
    const s = this.stats;
    if (payload.length < 3) {
      this.malformed();
      this.endFu();
      return;
    }
    const fh = payload[1]!;
    const type = fh & 0x1f;
    if (type === 0 || type >= 24) {
      this.malformed();
      this.endFu();
      return;
    }
    const header = (payload[0]! & 0xe0) | type;
    if (fh & 0x80) {
      if (this.fuHeader >= 0) {
        s.fuErrors++; // the previous unit's end is missing
        this.breakAu();
      }
      this.fuHeader = header;
      this.fuParts.length = 0;
      this.fuBytes = 1;
    } else if (this.fuHeader !== header) {
      // Middle or end without its start (lost, or before we joined), or of another unit.
      s.fuErrors++;
      this.breakAu();
      this.endFu();
      return;
    }
    const fragment = payload.subarray(2);
    if (!this.broken) {
      if (this.bytes + this.fuBytes + fragment.length > this.maxBytes) {
        s.oversized++;
        this.breakAu();
      } else {
        this.fuParts.push(fragment);
      }
    }
    this.fuBytes += fragment.length;
    if (fh & 0x40) {
      if (!this.broken) this.addNal(this.assembleFu());
      this.endFu();
    }
  }

  private assembleFu(): Buffer {
    const nal = Buffer.allocUnsafe(this.fuBytes);
    nal[0] = this.fuHeader;
    let o = 1;
    for (const part of this.fuParts) o += part.copy(nal, o);
    return nal;
  }
}

/**
 * Does this payload visibly begin an access unit (H.264 §7.4.1.2.3)? An AUD, SEI, SPS, PPS (or types 14-18)
 * can only come before a picture's first slice, and a slice with first_mb_in_slice = 0 (ue(v) "1", the top
 * bit after the NAL header) is a picture's first. For STAP-A the first inner unit counts; for FU-A the start
 * fragment.
 */
export function startsAccessUnit(payload: Buffer): boolean {
  const b0 = payload[0];
  if (b0 === undefined) return false;
  let type = b0 & 0x1f;
  let next: number | undefined;
  if (type === NalType.StapA) {
    type = (payload[3] ?? 0) & 0x1f;
    next = payload[4];
  } else if (type === NalType.FuA) {
    const fh = payload[1] ?? 0;
    if (!(fh & 0x80)) return false;
    type = fh & 0x1f;
    next = payload[2];
  } else {
    next = payload[1];
  }
  if (type === NalType.Slice || type === NalType.Idr) return next !== undefined && (next & 0x80) !== 0;
  return (type >= NalType.Sei && type <= NalType.Aud) || (type >= 14 && type <= 18);
}
