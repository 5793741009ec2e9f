/**
 * Sequence parameter set (H.264 §7.3.2.1.1), read far enough to know the picture size: profile, level,
 * chroma format and bit depth (for the AVCDecoderConfigurationRecord), then the macroblock counts and the
 * frame cropping window. The VUI after that is not read.
 *
 * Parameter sets come from the network (in-band or SDP), so malformed input throws a RangeError with a
 * reason; callers decide whether to ignore it. SPS changes are rare, so a throw costs nothing.
 */
import { NalType, unescapeRbsp } from './nal.js';

export interface Sps {
  profileIdc: number;
  /** constraint_set0..5 flags and the two reserved bits: the byte between profile and level. */
  constraintFlags: number;
  levelIdc: number;
  spsId: number;
  /** 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4. */
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  /** False for interlaced coding (field or MBAFF): a map unit is then a macroblock pair. */
  frameMbsOnly: boolean;
  /** Displayed size: coded size minus the cropping window. */
  width: number;
  height: number;
}

/** Profiles whose SPS carries chroma format, bit depths and scaling matrices (§7.3.2.1.1). */
const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

/** MSB-first bit reader with Exp-Golomb codes (§9.1) over an RBSP (emulation prevention already removed). */
export class BitReader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get bitsLeft(): number {
    return this.buf.length * 8 - this.pos;
  }

  bit(): number {
    const byte = this.buf[this.pos >> 3];
    if (byte === undefined) throw new RangeError('H.264: read past the end');
    const b = (byte >> (7 - (this.pos & 7))) & 1;
    this.pos++;
    return b;
  }

  /** u(n), n ≤ 32. */
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }

  skip(n: number): void {
    if (n > this.bitsLeft) throw new RangeError('H.264: read past the end');
    this.pos += n;
  }

  /** ue(v): leadingZeros zeros, a 1, then leadingZeros bits. Values beyond 2^32 - 2 are invalid here. */
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      if (++zeros > 31) throw new RangeError('H.264: Exp-Golomb code longer than 32 bits');
    }
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  /** se(v): 1, -1, 2, -2, ... from ue 1, 2, 3, 4, ... (§9.1.1). */
  se(): number {
    const k = this.ue();
    return k & 1 ? (k + 1) / 2 : -k / 2;
  }
}

/** Parse an SPS NAL unit (with its header byte, emulation prevention bytes included). Throws RangeError. */
export function parseSps(nal: Buffer): Sps {
  if (nal.length < 4) throw new RangeError(`SPS: ${nal.length} bytes`);
  if ((nal[0]! & 0x1f) !== NalType.Sps) throw new RangeError(`SPS: NAL type ${nal[0]! & 0x1f}`);
  const r = new BitReader(unescapeRbsp(nal.subarray(1)));
  const profileIdc = r.bits(8);
  const constraintFlags = r.bits(8);
  const levelIdc = r.bits(8);
  const spsId = r.ue();
  if (spsId > 31) throw new RangeError(`SPS: seq_parameter_set_id ${spsId}`);

  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = r.ue();
    if (chromaFormatIdc > 3) throw new RangeError(`SPS: chroma_format_idc ${chromaFormatIdc}`);
    if (chromaFormatIdc === 3) separateColourPlane = r.bit() === 1;
    bitDepthLuma = 8 + r.ue();
    bitDepthChroma = 8 + r.ue();
    if (bitDepthLuma > 14 || bitDepthChroma > 14) throw new RangeError(`SPS: bit depth ${bitDepthLuma}/${bitDepthChroma}`);
    r.skip(1); // qpprime_y_zero_transform_bypass_flag
    if (r.bit()) {
      // seq_scaling_matrix_present_flag: 6 4x4 lists, then 2 (or 6 for 4:4:4) 8x8 lists.
      const lists = chromaFormatIdc === 3 ? 12 : 8;
      for (let i = 0; i < lists; i++) if (r.bit()) skipScalingList(r, i < 6 ? 16 : 64);
    }
  }

  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === 0) {
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    r.skip(1); // delta_pic_order_always_zero_flag
    r.se(); // offset_for_non_ref_pic
    r.se(); // offset_for_top_to_bottom_field
    const cycle = r.ue();
    if (cycle > 255) throw new RangeError(`SPS: num_ref_frames_in_pic_order_cnt_cycle ${cycle}`);
    for (let i = 0; i < cycle; i++) r.se();
  } else if (pocType !== 2) {
    throw new RangeError(`SPS: pic_order_cnt_type ${pocType}`);
  }
  r.ue(); // max_num_ref_frames
  r.skip(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.bit() === 1;
  if (!frameMbsOnly) r.skip(1); // mb_adaptive_frame_field_flag
  r.skip(1); // direct_8x8_inference_flag

  const frameHeightMbs = (frameMbsOnly ? 1 : 2) * heightMapUnits;
  let width = widthMbs * 16;
  let height = frameHeightMbs * 16;
  if (r.bit()) {
    // frame_cropping_flag: offsets are in chroma sample units (Table 6-1, equations 7-19..7-22).
    const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
    const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
    const subHeightC = chromaArrayType === 1 ? 2 : 1;
    const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
    const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (frameMbsOnly ? 1 : 2);
    const left = r.ue();
    const right = r.ue();
    const top = r.ue();
    const bottom = r.ue();
    width -= cropUnitX * (left + right);
    height -= cropUnitY * (top + bottom);
  }
  if (width <= 0 || height <= 0 || width > 16384 || height > 16384) {
    throw new RangeError(`SPS: picture size ${width}x${height}`);
  }
  return {
    profileIdc, constraintFlags, levelIdc, spsId, chromaFormatIdc, bitDepthLuma, bitDepthChroma,
    frameMbsOnly, width, height,
  };
}

/** scaling_list() (§7.3.2.1.1.1): only its length matters here. */
function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size && next !== 0; j++) {
    const delta = r.se();
    if (delta < -128 || delta > 127) throw new RangeError(`SPS: delta_scale ${delta}`);
    next = (last + delta + 256) % 256;
    if (next !== 0) last = next;
  }
}
