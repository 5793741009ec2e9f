/**
 * AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1): the parameter sets a player needs before the
 * first frame; FLV sends it as the AVC sequence header (flv.ts avcSequenceHeader). Also where parameter
 * sets come from besides the stream: the SDP's sprop-parameter-sets (RFC 6184 §8.1).
 *
 *   configurationVersion 1 | AVCProfileIndication | profile_compatibility | AVCLevelIndication
 *   111111 lengthSizeMinusOne(2) | 111 numOfSequenceParameterSets(5) | { length(16) SPS }*
 *   numOfPictureParameterSets(8) | { length(16) PPS }*
 *   [profiles other than 66/77/88: 111111 chroma_format(2) | 11111 bit_depth_luma_minus8(3)
 *    | 11111 bit_depth_chroma_minus8(3) | numOfSequenceParameterSetExt(8) = 0]
 */
import { NalType, nalType } from './nal.js';
import { BitReader, parseSps, type Sps } from './sps.js';

/** Baseline, Main and Extended have no chroma/bit-depth extension; every other profile has it (as ffmpeg writes it). */
const NO_EXTENSION_PROFILES = new Set([66, 77, 88]);

export interface AvcDecoderConfig {
  profile: number;
  compatibility: number;
  level: number;
  /** 1-4 (NAL length prefix size of the frames that follow). */
  lengthSize: number;
  sps: Buffer[];
  pps: Buffer[];
  /** Present when the record carries the extension (High profiles). */
  chromaFormat?: number;
  bitDepthLuma?: number;
  bitDepthChroma?: number;
}

/**
 * Build the record for one SPS and its PPS(s); profile, compatibility and level are the SPS's bytes 1-3,
 * lengthSizeMinusOne = 3 (toAvcc's 4-byte prefixes). Throws RangeError on an SPS it cannot read.
 */
export function buildAvcDecoderConfig(sps: Buffer, pps: Buffer | readonly Buffer[]): Buffer {
  const ppsList: readonly Buffer[] = Buffer.isBuffer(pps) ? [pps] : pps;
  const info = parseSps(sps);
  if (ppsList.length === 0 || ppsList.length > 255) throw new RangeError(`AVC config: ${ppsList.length} PPS`);
  if (sps.length > 0xffff || ppsList.some((p) => p.length === 0 || p.length > 0xffff)) {
    throw new RangeError('AVC config: parameter set size');
  }
  const ext = !NO_EXTENSION_PROFILES.has(info.profileIdc);
  let size = 6 + 2 + sps.length + 1 + (ext ? 4 : 0);
  for (const p of ppsList) size += 2 + p.length;
  const out = Buffer.allocUnsafe(size);
  out[0] = 1;
  out[1] = sps[1]!;
  out[2] = sps[2]!;
  out[3] = sps[3]!;
  out[4] = 0xfc | 3;
  out[5] = 0xe0 | 1;
  let o = 6;
  o = out.writeUInt16BE(sps.length, o);
  o += sps.copy(out, o);
  out[o++] = ppsList.length;
  for (const p of ppsList) {
    o = out.writeUInt16BE(p.length, o);
    o += p.copy(out, o);
  }
  if (ext) {
    out[o++] = 0xfc | info.chromaFormatIdc;
    out[o++] = 0xf8 | (info.bitDepthLuma - 8);
    out[o++] = 0xf8 | (info.bitDepthChroma - 8);
    out[o++] = 0;
  }
  return out;
}

/** Read a record (from an FLV/MP4, or our own). The parameter sets are views of `b`. Throws RangeError. */
export function parseAvcDecoderConfig(b: Buffer): AvcDecoderConfig {
  if (b.length < 7) throw new RangeError(`AVC config: ${b.length} bytes`);
  if (b[0] !== 1) throw new RangeError(`AVC config: configurationVersion ${b[0]}`);
  let o = 5;
  const take = (): Buffer => {
    if (o + 2 > b.length) throw new RangeError('AVC config: truncated');
    const n = b.readUInt16BE(o);
    if (n === 0 || o + 2 + n > b.length) throw new RangeError(`AVC config: parameter set of ${n} bytes at ${o}`);
    o += 2 + n;
    return b.subarray(o - n, o);
  };
  const sps: Buffer[] = [];
  for (let i = b[o++]! & 0x1f; i > 0; i--) sps.push(take());
  if (o >= b.length) throw new RangeError('AVC config: truncated');
  const pps: Buffer[] = [];
  for (let i = b[o++]!; i > 0; i--) pps.push(take());
  const config: AvcDecoderConfig = {
    profile: b[1]!, compatibility: b[2]!, level: b[3]!, lengthSize: (b[4]! & 3) + 1, sps, pps,
  };
  // The extension is optional in practice (older writers omit it), so read it only when it is all there.
  if (!NO_EXTENSION_PROFILES.has(config.profile) && o + 4 <= b.length) {
    config.chromaFormat = b[o]! & 3;
    config.bitDepthLuma = (b[o + 1]! & 7) + 8;
    config.bitDepthChroma = (b[o + 2]! & 7) + 8;
  }
  return config;
}

/**
 * sprop-parameter-sets from an SDP fmtp (RFC 6184 §8.1): base64 NAL units, comma-separated. Accepts the
 * parameter list alone or the whole attribute ("a=fmtp:99 packetization-mode=1; sprop-parameter-sets=...").
 * Units that are neither SPS nor PPS, or that do not decode, are skipped; the first SPS wins.
 */
export function parseSpropParameterSets(fmtp: string): { sps?: Buffer; pps?: Buffer[] } {
  const out: { sps?: Buffer; pps?: Buffer[] } = {};
  for (const token of fmtp.split(/[;\s]+/)) {
    const eq = token.indexOf('=');
    if (eq < 0 || token.slice(0, eq).toLowerCase() !== 'sprop-parameter-sets') continue;
    for (const b64 of token.slice(eq + 1).split(',')) {
      if (!/^[A-Za-z0-9+/]+=*$/.test(b64)) continue;
      const nal = Buffer.from(b64, 'base64');
      if (nal.length < 2 || nal[0]! & 0x80) continue;
      const t = nalType(nal);
      if (t === NalType.Sps) out.sps ??= nal;
      else if (t === NalType.Pps) (out.pps ??= []).push(nal);
    }
  }
  return out;
}

export interface AvcConfigTrackerStats {
  /** Records handed out by update(). */
  records: number;
  /** SPS units that could not be read (ignored; the previous one stays). */
  badSps: number;
}

/**
 * Follows the stream's parameter sets and says when the FLV sequence header must be (re)sent: update()
 * returns a new record when the SPS or a PPS differs from the last one (a resolution change mid-call),
 * else undefined. Encoders repeat identical SPS/PPS on every IDR; those return undefined.
 *
 * PPS are kept by pic_parameter_set_id, so a stream with several PPS keeps them all; a new SPS brings a new
 * PPS set when its access unit carries PPS, else the previous PPS stay (a PPS may outlive an SPS change).
 */
export class AvcConfigTracker {
  readonly stats: AvcConfigTrackerStats = { records: 0, badSps: 0 };

  private sps: Buffer | undefined;
  private spsInfo: Sps | undefined;
  private pps = new Map<number, Buffer>();
  private dirty = false;
  private record: Buffer | undefined;

  /** `initial`: out-of-band parameter sets (parseSpropParameterSets), used until the stream sends its own. */
  constructor(initial?: { sps?: Buffer; pps?: readonly Buffer[] }) {
    if (initial?.sps) this.setSps(initial.sps);
    for (const p of initial?.pps ?? []) this.setPps(p);
  }

  get current(): Buffer | undefined {
    return this.record;
  }

  get width(): number | undefined {
    return this.spsInfo?.width;
  }

  get height(): number | undefined {
    return this.spsInfo?.height;
  }

  /** The SPS fields (profile, level, size...) of the current record. */
  get info(): Sps | undefined {
    return this.spsInfo;
  }

  update(au: { nalus: readonly Buffer[] }): Buffer | undefined {
    let spsChanged = false;
    let ppsSeen = false;
    for (const nal of au.nalus) {
      const t = nalType(nal);
      if (t === NalType.Sps) {
        if (this.setSps(nal)) spsChanged = true;
      } else if (t === NalType.Pps) {
        // A new SPS with its own PPS: the old PPS set goes (its ids may now mean other things).
        if (spsChanged && !ppsSeen) this.pps.clear();
        ppsSeen = true;
        this.setPps(nal);
      }
    }
    if (!this.dirty || this.sps === undefined || this.pps.size === 0) return undefined;
    this.dirty = false;
    this.record = buildAvcDecoderConfig(this.sps, [...this.pps.values()]);
    this.stats.records++;
    return this.record;
  }

  toJSON(): AvcConfigTrackerStats & { width?: number; height?: number; profile?: number; level?: number } {
    const i = this.spsInfo;
    return i ? { ...this.stats, width: i.width, height: i.height, profile: i.profileIdc, level: i.levelIdc } : { ...this.stats };
  }

  /** True when the SPS differs from the one held. */
  private setSps(nal: Buffer): boolean {
    if (this.sps?.equals(nal)) return false;
    let info: Sps;
    try {
      info = parseSps(nal);
    } catch {
      this.stats.badSps++;
      return false;
    }
    // Copied: a view would keep the whole datagram alive for the rest of the call.
    this.sps = Buffer.from(nal);
    this.spsInfo = info;
    this.dirty = true;
    return true;
  }

  private setPps(nal: Buffer): void {
    let id: number;
    try {
      id = new BitReader(nal.subarray(1, 6)).ue(); // pic_parameter_set_id, the first field
    } catch {
      return;
    }
    if (id > 255) return;
    if (this.pps.get(id)?.equals(nal)) return;
    this.pps.set(id, Buffer.from(nal));
    this.dirty = true;
  }
}
