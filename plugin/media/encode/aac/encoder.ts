/**
 * In-process AAC-LC encoder for telephone audio (mono 8/16 kHz in, 44.1/48 kHz AAC out), cheap
 * enough to run one per call.
 *
 * Bitstream (ISO/IEC 14496-3 §4.4.2): long blocks only (ONLY_LONG_SEQUENCE, sine window), no
 * TNS/PNS/pulse/prediction/gain control. Mono is one SCE; stereo is one CPE with a common window and
 * M/S on every band, the side channel being all ZERO_HCB, so it decodes as L = R for a few bits.
 *
 * Rate control: each band's scalefactor follows its RMS at a quarter of its slope (NOISE_TILT), down
 * to DYNAMIC_RANGE under the loudest band: the quantization noise is nearly white, a little lower
 * where the spectrum is weak, which is close to the least squared error for the bits (a constant SNR
 * in every band, noise shaped like the spectrum, spends most of the frame on weak high bands: with
 * 16 kHz callers, 4–8 kHz is half the coefficients). Never finer than the 16-bit noise floor. One
 * global offset is then searched (counting bits without writing) for the finest quantization whose
 * frame fits its budget: bitrate·1024/outputRate bits, plus what earlier frames left unused (a bit
 * reservoir of at most one frame, so a loud frame after quiet ones may take up to twice the mean).
 * Coefficients above the input's Nyquist frequency are zeroed, which also removes the resampler's
 * images (see resample.ts) and leaves those bands empty.
 *
 * Delay: frame k (from 0) decodes to output samples [(k−1)·1024, k·1024), like ffmpeg's encoder: the
 * first frame transforms 1024 zeros then the first 1024 samples.
 */

import { audioSpecificConfig } from '../adts.js';
import { BitWriter } from './bit-writer.js';
import { Mdct2048 } from './mdct.js';
import { Resampler } from './resample.js';
import { NUM_SWB_LONG_48, SF_CODE, SF_LEN, SPECTRAL_CODE, SPECTRAL_LEN, SWB_OFFSET_LONG_48 } from './tables.js';

export interface AacLcEncoderOptions {
  /** PCM rate of encode()'s input, Hz (8000 or 16000 expected; anything ≤ outputRate works). */
  inputRate: number;
  /** AAC sampling rate: 44100 or 48000. */
  outputRate: number;
  channels: 1 | 2;
  /**
   * Target bits per second: the stream's average stays within it (any run of frames takes at most one
   * frame's bits more than bitrate·1024/outputRate each), and no frame exceeds twice that.
   */
  bitrate: number;
}

export interface AacLcEncoderStats {
  frames: number;
  bytes: number;
  maxFrameBytes: number;
  /** Rate-control quantization trials, summed over frames. */
  trials: number;
}

const FRAME = 1024;
const ID_SCE = 0;
const ID_CPE = 1;
const ID_END = 7;
/** Makes the decoder reproduce int16-scale input (spec's forward MDCT factor, verified with ffmpeg). */
const MDCT_SCALE = 2;
/** Finest scalefactor worth using: its quantizer step equals one 16-bit LSB in the time domain. */
const SF_FLOOR = 122;
/**
 * Global offset range: G_MIN is the quality ceiling (about 60 dB SNR in the loudest band, 50 dB over
 * a frame of speech); G_MAX quantizes all to 0.
 */
const G_MIN = -44;
const G_MAX = 28;
const MAX_TRIALS = 8;
/** ln of the bit count's ratio per global offset step, roughly (for the search's first steps). */
const LN_STEP = Math.log(1.04);
/**
 * Noise shaping: a band's scalefactor sits NOISE_TILT × (its level under the loudest band's) below
 * the loudest band's, counting at most DYNAMIC_RANGE scalefactor steps (1.5 dB of level each) of that
 * level difference. So the noise is at most NOISE_TILT · DYNAMIC_RANGE · 1.5 = 7.5 dB lower in weak
 * bands than in the loudest (the x^0.75 quantizer adds a little shaping of its own). On flite speech
 * (four voices) at 64 kb/s, every band up to 8 kHz gets an SNR within 1 dB of ffmpeg's `-aac_coder
 * fast` or (mostly) better, and overall 0.2–2.7 dB more from 16 kHz callers, 5–9 dB more from 8 kHz
 * ones; constant SNR in every band (tilt 1, as before) was 12–18 dB worse than ffmpeg from 16 kHz
 * callers. See aac-quality.test.ts.
 */
const NOISE_TILT = 0.25;
const DYNAMIC_RANGE = 20;
const MAX_Q = 8191;
const ROUNDING = 0.4054;
/** Input chunk for the resampler, so its buffer stays small whatever encode() is given. */
const CHUNK = 1024;

/** Per codebook, code lengths plus the sign bits sent apart (unsigned books), for bit counting. */
const COUNT_LEN: readonly Uint8Array[] = SPECTRAL_LEN.map((len, cb) => {
  if (cb === 0) return len;
  const dim = cb <= 4 ? 4 : 2;
  const mod = cb <= 4 ? 3 : cb <= 6 ? 9 : cb <= 8 ? 8 : cb <= 10 ? 13 : 17;
  const unsigned = cb === 3 || cb === 4 || cb >= 7;
  const out = new Uint8Array(len.length);
  for (let idx = 0; idx < len.length; idx++) {
    let signs = 0;
    if (unsigned) {
      let r = idx;
      for (let d = 0; d < dim; d++) {
        if (r % mod !== 0) signs++;
        r = Math.floor(r / mod);
      }
    }
    out[idx] = len[idx]! + signs;
  }
  return out;
});

/** Escape sequence length for |q| ≥ 16: N ones, a zero, N+4 bits, with N = floor(log2 q) − 4. */
const ESC_BITS = (() => {
  const t = new Uint8Array(MAX_Q + 1);
  for (let v = 16; v <= MAX_Q; v++) t[v] = 2 * (Math.floor(Math.log2(v)) - 4) + 5;
  return t;
})();

/** 2^(−0.1875·(sf − 100)): the quantizer's gain on |x|^0.75. */
const POW34 = (() => {
  const t = new Float64Array(256);
  for (let sf = 0; sf < 256; sf++) t[sf] = Math.pow(2, -0.1875 * (sf - 100));
  return t;
})();

// Hot tables and per-frame scratch live at module level, not in instance fields: V8 then knows the
// typed arrays as constants and the loops run 2–3× faster. Sharing the scratch between encoders is
// safe because a frame is analysed, searched and written in one synchronous call.
const L1 = COUNT_LEN[1]!;
const L2 = COUNT_LEN[2]!;
const L3 = COUNT_LEN[3]!;
const L4 = COUNT_LEN[4]!;
const L5 = COUNT_LEN[5]!;
const L6 = COUNT_LEN[6]!;
const L7 = COUNT_LEN[7]!;
const L8 = COUNT_LEN[8]!;
const L9 = COUNT_LEN[9]!;
const L10 = COUNT_LEN[10]!;
const L11 = COUNT_LEN[11]!;
const SWB = SWB_OFFSET_LONG_48;
const NB = NUM_SWB_LONG_48;
const SPEC = new Float64Array(FRAME);
const A34 = new Float64Array(FRAME); // |x|^0.75
const SGN = new Int32Array(FRAME); // −1 where x < 0, else 0: signed q = (q ^ SGN) − SGN
const BAND_MAX34 = new Float64Array(NB);
const SF_BASE = new Float64Array(NB); // −Infinity: silent band
const SF_TARGET = new Float64Array(NB); // the scalefactor before the global offset (NOISE_TILT)
// A trial quantizes into the first half (q: magnitudes; sf, cb: per band); the best feasible trial
// so far is copied into the second half.
const Q = new Int32Array(2 * FRAME);
const SF = new Int32Array(2 * NB);
const CB = new Uint8Array(2 * NB);

/**
 * Bits of trial band [start, end) in the cheaper codebook of the pair that can hold max |q| = m,
 * returned as (codebook << 16) | bits.
 */
function countBand(start: number, end: number, m: number): number {
  const q = Q;
  const sg = SGN;
  let bitsA = 0;
  let bitsB = 0;
  let book: number;
  if (m === 1) {
    book = 1;
    for (let i = start; i < end; i += 4) {
      const idx = 27 * ((q[i]! ^ sg[i]!) - sg[i]!) + 9 * ((q[i + 1]! ^ sg[i + 1]!) - sg[i + 1]!) + 3 * ((q[i + 2]! ^ sg[i + 2]!) - sg[i + 2]!) + ((q[i + 3]! ^ sg[i + 3]!) - sg[i + 3]!) + 40;
      bitsA += L1[idx]!;
      bitsB += L2[idx]!;
    }
  } else if (m === 2) {
    book = 3;
    for (let i = start; i < end; i += 4) {
      const idx = 27 * q[i]! + 9 * q[i + 1]! + 3 * q[i + 2]! + q[i + 3]!;
      bitsA += L3[idx]!;
      bitsB += L4[idx]!;
    }
  } else if (m <= 4) {
    book = 5;
    for (let i = start; i < end; i += 2) {
      const idx = 9 * ((q[i]! ^ sg[i]!) - sg[i]!) + ((q[i + 1]! ^ sg[i + 1]!) - sg[i + 1]!) + 40;
      bitsA += L5[idx]!;
      bitsB += L6[idx]!;
    }
  } else if (m <= 7) {
    book = 7;
    for (let i = start; i < end; i += 2) {
      const idx = 8 * q[i]! + q[i + 1]!;
      bitsA += L7[idx]!;
      bitsB += L8[idx]!;
    }
  } else if (m <= 12) {
    book = 9;
    for (let i = start; i < end; i += 2) {
      const idx = 13 * q[i]! + q[i + 1]!;
      bitsA += L9[idx]!;
      bitsB += L10[idx]!;
    }
  } else {
    for (let i = start; i < end; i += 2) {
      const y = q[i]!;
      const z = q[i + 1]!;
      bitsA += L11[17 * (y < 16 ? y : 16) + (z < 16 ? z : 16)]! + ESC_BITS[y]! + ESC_BITS[z]!;
    }
    return (11 << 16) | bitsA;
  }
  return bitsB < bitsA ? ((book + 1) << 16) | bitsB : (book << 16) | bitsA;
}

function sectionBits(len: number): number {
  return 4 + 5 * (Math.floor(len / 31) + 1);
}

export class AacLcEncoder {
  readonly audioSpecificConfig: Buffer;
  readonly stats: AacLcEncoderStats = { frames: 0, bytes: 0, maxFrameBytes: 0, trials: 0 };
  readonly inputRate: number;
  readonly outputRate: number;
  readonly channels: 1 | 2;
  readonly bitrate: number;
  /** Mean bits per frame at the bitrate (whole bytes); a frame may borrow what earlier ones left. */
  readonly frameBits: number;
  /** The most bits one frame may take (whole bytes): twice frameBits, within the decoder's buffer. */
  readonly maxFrameBits: number;

  private readonly rs: Resampler;
  private readonly mdct = new Mdct2048(MDCT_SCALE);
  /** [previous block | block being filled], output-rate samples. */
  private readonly time = new Float64Array(2 * FRAME);
  private fill = 0;
  private streamSamples = 0;
  /** Coefficients kept (below the input's Nyquist frequency) and the bands that hold them. */
  private readonly kept: number;
  private readonly bands: number;
  private topBase = 0; // the largest SF_BASE
  private maxSfbCur = 0;
  private maxSfbBest = 0;
  private bitsBest = 0;
  private prevG = 0;
  /** Bits left unused by earlier frames (whole bytes), at most maxFrameBits − frameBits. */
  private reservoir = 0;
  private readonly fixedBits: number;
  private readonly writer: BitWriter;

  constructor(opts: AacLcEncoderOptions) {
    const { inputRate, outputRate, channels, bitrate } = opts;
    if (outputRate !== 48000 && outputRate !== 44100) throw new RangeError(`AacLcEncoder: output rate ${outputRate} (44100 or 48000)`);
    if (channels !== 1 && channels !== 2) throw new RangeError(`AacLcEncoder: channels ${String(channels)}`);
    if (!(bitrate > 0)) throw new RangeError(`AacLcEncoder: bitrate ${bitrate}`);
    this.inputRate = inputRate;
    this.outputRate = outputRate;
    this.channels = channels;
    this.bitrate = bitrate;
    this.rs = new Resampler(inputRate, outputRate);
    this.audioSpecificConfig = audioSpecificConfig(1, outputRate, channels);
    const maxBits = Math.min((bitrate * FRAME) / outputRate, 6144 * channels);
    this.frameBits = Math.floor(maxBits / 8) * 8;
    this.maxFrameBits = Math.min(2 * this.frameBits, 6144 * channels);
    this.kept = Math.min(FRAME, Math.round((FRAME * inputRate) / outputRate));
    let bands = 0;
    while (bands < NUM_SWB_LONG_48 && SWB_OFFSET_LONG_48[bands]! < this.kept) bands++;
    this.bands = bands;
    // SCE: id, tag, global_gain, ics_info, pulse/tns/gain-control flags, END.
    // CPE: id, tag, common_window, ics_info, ms_mask_present, 2×(global_gain + flags), END
    // (the side channel's one ZERO_HCB section is added per frame: it depends on max_sfb).
    this.fixedBits = channels === 1 ? 3 + 4 + 8 + 11 + 3 + 3 : 3 + 4 + 1 + 11 + 2 + 2 * (8 + 3) + 3;
    this.writer = new BitWriter(Math.ceil((6144 * channels) / 8) + 16);
    // An empty frame must fit, with room for something in it.
    if (this.frameBits < this.fixedBits + 64) throw new RangeError(`AacLcEncoder: bitrate ${bitrate} too low`);
  }

  /** Encode mono int16 PCM at inputRate; returns the raw_data_blocks completed, in order. */
  encode(pcm: Int16Array): Buffer[] {
    const out: Buffer[] = [];
    for (let at = 0; at < pcm.length; at += CHUNK) {
      this.rs.write(pcm, at, Math.min(pcm.length, at + CHUNK));
      this.drain(out);
    }
    return out;
  }

  /**
   * End of stream: zero-pad the last partial frame and emit it, plus the frame that completes its
   * overlap. The encoder is then back at its initial state, ready for a new stream.
   */
  flush(): Buffer[] {
    const out: Buffer[] = [];
    this.rs.end();
    this.drain(out);
    if (this.streamSamples > 0) {
      if (this.fill > 0) {
        this.time.fill(0, FRAME + this.fill);
        out.push(this.frame());
      }
      this.time.fill(0, FRAME);
      out.push(this.frame());
    }
    this.rs.reset();
    this.time.fill(0);
    this.fill = 0;
    this.streamSamples = 0;
    this.prevG = 0;
    this.reservoir = 0;
    return out;
  }

  private drain(out: Buffer[]): void {
    for (;;) {
      const n = this.rs.read(this.time, FRAME + this.fill, FRAME - this.fill);
      this.fill += n;
      this.streamSamples += n;
      if (this.fill < FRAME) return;
      out.push(this.frame());
    }
  }

  /** Encode time[0, 2048) and shift the block along. */
  private frame(): Buffer {
    this.mdct.forward(this.time, 0, SPEC);
    this.time.copyWithin(0, FRAME, 2 * FRAME);
    this.fill = 0;
    this.analyse();
    this.search();
    const buf = this.write();
    this.reservoir = Math.min(this.reservoir + this.frameBits - 8 * buf.length, this.maxFrameBits - this.frameBits);
    const s = this.stats;
    s.frames++;
    s.bytes += buf.length;
    if (buf.length > s.maxFrameBytes) s.maxFrameBytes = buf.length;
    return buf;
  }

  /**
   * Per band: |x|^0.75, its maximum, the scalefactor that would put its RMS at quantized value ~1
   * (SF_BASE), and the one the noise shaping picks (SF_TARGET), both before the global offset.
   */
  private analyse(): void {
    const spec = SPEC;
    const a34 = A34;
    const sgn = SGN;
    spec.fill(0, this.kept);
    let top = -Infinity;
    const bands = this.bands;
    const kept = this.kept;
    for (let b = 0; b < bands; b++) {
      const start = SWB[b]!;
      const end = SWB[b + 1]!;
      let energy = 0;
      let max34 = 0;
      for (let i = start; i < end; i++) {
        const x = spec[i]!;
        const neg = x < 0;
        const ax = neg ? -x : x;
        sgn[i] = neg ? -1 : 0;
        energy += x * x;
        const v = Math.sqrt(ax * Math.sqrt(ax));
        a34[i] = v;
        if (v > max34) max34 = v;
      }
      BAND_MAX34[b] = max34;
      // sf = 100 + 4·log2(rms) puts the band's RMS at quantized value ~1 before the global offset.
      // The top band may straddle the cut-off: its RMS is over the coefficients kept.
      const base = energy > 0 ? 100 + 2 * Math.log2(energy / ((end < kept ? end : kept) - start)) : -Infinity;
      SF_BASE[b] = base;
      if (base > top) top = base;
    }
    this.topBase = top;
    const low = top - DYNAMIC_RANGE;
    for (let b = 0; b < bands; b++) {
      const base = SF_BASE[b]!;
      SF_TARGET[b] = top - NOISE_TILT * (top - (base > low ? base : low));
    }
  }

  /**
   * Find (nearly) the smallest global offset whose frame fits; leaves the result in the "best"
   * buffers. Starts from the previous frame's offset and steps by a model of the bit count (about
   * 4% fewer bits per offset step) until the answer is bracketed, then bisects.
   */
  private search(): void {
    const budget = this.frameBits + this.reservoir;
    if (this.topBase === -Infinity) {
      // Digital silence: nothing to search.
      this.maxSfbBest = 0;
      this.bitsBest = this.fixedBits;
      return;
    }
    let trials = 0;
    let feasible = G_MAX + 1; // smallest offset known to fit
    let infeasible = G_MIN - 1; // largest offset known not to fit (G_MIN − 1: none)
    let g = Math.min(Math.max(this.prevG, G_MIN), G_MAX);
    for (;;) {
      trials++;
      const bits = this.trial(g);
      if (bits <= budget) {
        feasible = g;
        this.keepBest(bits);
        // Within 1/8 of the budget: stop. What is left goes to the reservoir for the next frames, so
        // this costs ~0.15 dB against bracketing to one step, and saves a third of the trials.
        if (bits >= budget - (budget >> 3)) break;
      } else {
        infeasible = g;
      }
      if (feasible - infeasible <= 1 || trials >= MAX_TRIALS) break;
      if (feasible > G_MAX) {
        g = Math.min(infeasible + Math.max(1, Math.ceil(Math.log(bits / budget) / LN_STEP)), G_MAX);
      } else if (infeasible < G_MIN) {
        g = Math.max(feasible - Math.max(1, Math.floor(Math.log(budget / bits) / LN_STEP)), G_MIN);
      } else {
        g = (feasible + infeasible) >> 1;
      }
    }
    if (feasible > G_MAX) {
      // Nothing fitted within MAX_TRIALS: the coarsest offset, or failing that an empty frame.
      trials++;
      const bits = this.trial(G_MAX);
      if (bits <= budget) {
        feasible = G_MAX;
        this.keepBest(bits);
      } else {
        this.maxSfbBest = 0;
        this.bitsBest = this.fixedBits;
      }
    }
    // A near-empty frame at the quality ceiling says nothing about the next busy one (a pause in
    // speech): keep the offset of the last frame that used its budget.
    if (feasible <= G_MAX && !(feasible === G_MIN && this.bitsBest < budget / 2)) this.prevG = feasible;
    this.stats.trials += trials;
  }

  private keepBest(bits: number): void {
    Q.copyWithin(FRAME, 0, SWB[this.bands]!);
    SF.copyWithin(NB, 0, this.bands);
    CB.copyWithin(NB, 0, this.bands);
    this.maxSfbBest = this.maxSfbCur;
    this.bitsBest = bits;
  }

  /** Quantize with global offset g into the "cur" buffers; returns the frame's size in bits. */
  private trial(g: number): number {
    const bands = this.bands;
    const sfBase = SF_BASE;
    const target = SF_TARGET;
    const sf = SF;
    const cb = CB;
    // Scalefactors: the shaped targets, not below the noise floor, and all within 60 of the largest
    // so that every difference the bitstream carries is codable.
    let top = 0;
    for (let b = 0; b < bands; b++) {
      const base = sfBase[b]!;
      let s = base === -Infinity ? 0 : Math.round(target[b]! + g);
      if (s < SF_FLOOR) s = SF_FLOOR;
      if (s > 255) s = 255;
      sf[b] = s;
      if (base !== -Infinity && s > top) top = s;
    }
    const bottom = top - 60;
    const q = Q;
    const a34 = A34;
    const max34 = BAND_MAX34;
    let spectral = 0;
    let maxSfb = 0;
    for (let b = 0; b < bands; b++) {
      let s = sf[b]!;
      if (s < bottom) sf[b] = s = bottom;
      const gain = POW34[s]!;
      if (sfBase[b] === -Infinity || max34[b]! * gain + ROUNDING < 1) {
        cb[b] = 0;
        continue;
      }
      const start = SWB[b]!;
      const end = SWB[b + 1]!;
      let m = 0;
      for (let i = start; i < end; i++) {
        let v = (a34[i]! * gain + ROUNDING) | 0;
        if (v > MAX_Q) v = MAX_Q;
        if (v > m) m = v;
        q[i] = v;
      }
      if (m === 0) {
        cb[b] = 0;
        continue;
      }
      const bits = countBand(start, end, m);
      cb[b] = bits >>> 16;
      spectral += bits & 0xffff;
      maxSfb = b + 1;
    }
    this.maxSfbCur = maxSfb;
    if (maxSfb === 0) return this.fixedBits;
    // Sections (runs of one codebook) and scalefactor differences.
    let side = 0;
    let run = 1;
    for (let b = 1; b < maxSfb; b++) {
      if (cb[b] === cb[b - 1]) run++;
      else {
        side += sectionBits(run);
        run = 1;
      }
    }
    side += sectionBits(run);
    let last = -1;
    for (let b = 0; b < maxSfb; b++) {
      if (cb[b] === 0) continue;
      const s = sf[b]!;
      side += SF_LEN[last < 0 ? 60 : s - last + 60]!; // the first is coded against global_gain = itself
      last = s;
    }
    if (this.channels === 2) side += sectionBits(maxSfb); // side channel: one ZERO_HCB section
    return this.fixedBits + side + spectral;
  }

  /** Write the "best" trial as a raw_data_block and return a copy of its bytes. */
  private write(): Buffer {
    const w = this.writer;
    w.reset();
    const maxSfb = this.maxSfbBest;
    // The best trial's per-band values sit at [NB, 2·NB), its q at [FRAME, 2·FRAME).
    const sf = SF;
    const cb = CB;
    let globalGain = 0;
    for (let b = 0; b < maxSfb; b++) {
      if (cb[NB + b] !== 0) {
        globalGain = sf[NB + b]!;
        break;
      }
    }
    if (this.channels === 1) {
      w.write(ID_SCE, 3);
      w.write(0, 4); // element_instance_tag
      w.write(globalGain, 8);
      this.writeIcsInfo(maxSfb);
    } else {
      w.write(ID_CPE, 3);
      w.write(0, 4);
      w.write(1, 1); // common_window
      this.writeIcsInfo(maxSfb);
      w.write(2, 2); // ms_mask_present = 2: M/S on all bands
      w.write(globalGain, 8);
    }
    // Section data.
    let b = 0;
    while (b < maxSfb) {
      const book = cb[NB + b]!;
      let e = b + 1;
      while (e < maxSfb && cb[NB + e] === book) e++;
      w.write(book, 4);
      this.writeSectionLength(e - b);
      b = e;
    }
    // Scalefactor differences, the first one against global_gain (so 0).
    let last = globalGain;
    for (let k = NB; k < NB + maxSfb; k++) {
      if (cb[k] === 0) continue;
      const d = sf[k]! - last + 60;
      w.write(SF_CODE[d]!, SF_LEN[d]!);
      last = sf[k]!;
    }
    w.write(0, 3); // pulse_data_present, tns_data_present, gain_control_data_present
    this.writeSpectral(maxSfb);
    if (this.channels === 2) {
      // Side channel: global_gain, one ZERO_HCB section over max_sfb bands, no flags set.
      w.write(globalGain, 8);
      if (maxSfb > 0) {
        w.write(0, 4);
        this.writeSectionLength(maxSfb);
      }
      w.write(0, 3);
    }
    w.write(ID_END, 3);
    const bits = w.bitLength;
    w.byteAlign();
    if (bits !== this.bitsBest) throw new Error(`AacLcEncoder: wrote ${bits} bits, counted ${this.bitsBest}`);
    const out = Buffer.allocUnsafe(w.length);
    out.set(w.bytes);
    return out;
  }

  private writeIcsInfo(maxSfb: number): void {
    const w = this.writer;
    w.write(0, 1); // ics_reserved_bit
    w.write(0, 2); // ONLY_LONG_SEQUENCE
    w.write(0, 1); // sine window
    w.write(maxSfb, 6);
    w.write(0, 1); // predictor_data_present
  }

  private writeSectionLength(len: number): void {
    const w = this.writer;
    while (len >= 31) {
      w.write(31, 5);
      len -= 31;
    }
    w.write(len, 5);
  }

  private writeSpectral(maxSfb: number): void {
    const w = this.writer;
    const q = Q;
    const sg = SGN;
    const o = FRAME; // the best trial's q
    for (let b = 0; b < maxSfb; b++) {
      const cb = CB[NB + b]!;
      if (cb === 0) continue;
      const codes = SPECTRAL_CODE[cb]!;
      const lens = SPECTRAL_LEN[cb]!;
      const start = SWB[b]!;
      const end = SWB[b + 1]!;
      if (cb <= 2) {
        for (let i = start; i < end; i += 4) {
          const idx = 27 * ((q[o + i]! ^ sg[i]!) - sg[i]!) + 9 * ((q[o + i + 1]! ^ sg[i + 1]!) - sg[i + 1]!) + 3 * ((q[o + i + 2]! ^ sg[i + 2]!) - sg[i + 2]!) + ((q[o + i + 3]! ^ sg[i + 3]!) - sg[i + 3]!) + 40;
          w.write(codes[idx]!, lens[idx]!);
        }
      } else if (cb <= 4) {
        for (let i = start; i < end; i += 4) {
          const idx = 27 * q[o + i]! + 9 * q[o + i + 1]! + 3 * q[o + i + 2]! + q[o + i + 3]!;
          w.write(codes[idx]!, lens[idx]!);
          for (let j = i; j < i + 4; j++) if (q[o + j] !== 0) w.write(-sg[j]!, 1); // sign bit: 1 = negative
        }
      } else if (cb <= 6) {
        for (let i = start; i < end; i += 2) {
          const idx = 9 * ((q[o + i]! ^ sg[i]!) - sg[i]!) + ((q[o + i + 1]! ^ sg[i + 1]!) - sg[i + 1]!) + 40;
          w.write(codes[idx]!, lens[idx]!);
        }
      } else {
        const mod = cb <= 8 ? 8 : cb <= 10 ? 13 : 17;
        for (let i = start; i < end; i += 2) {
          const ay = q[o + i]!;
          const az = q[o + i + 1]!;
          const idx = mod * (ay < 16 ? ay : 16) + (az < 16 ? az : 16);
          w.write(codes[idx]!, lens[idx]!);
          if (ay !== 0) w.write(-sg[i]!, 1);
          if (az !== 0) w.write(-sg[i + 1]!, 1);
          if (ay >= 16) this.writeEscape(ay);
          if (az >= 16) this.writeEscape(az);
        }
      }
    }
  }

  private writeEscape(v: number): void {
    const n = Math.floor(Math.log2(v)) - 4;
    this.writer.write(((1 << n) - 1) << 1, n + 1); // n ones, then a zero
    this.writer.write(v - (1 << (n + 4)), n + 4);
  }
}
