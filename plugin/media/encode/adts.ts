/**
 * ADTS (ISO/IEC 13818-7 / 14496-3 §1.A.2) framing of ffmpeg's AAC output, split into raw AAC frames
 * for FLV, plus the 2-byte AudioSpecificConfig FLV's AAC sequence header carries.
 *
 * A pipe delivers bytes in chunks split anywhere. The splitter keeps the unfinished tail and returns
 * whole frames. To lock on (at start, or after garbage) a sync word only counts when its header is
 * sane and the next frame's header follows where its length says; once locked, each frame ends where
 * the next begins, so frames are emitted as soon as complete. The output does not depend on where the
 * chunks were split. A frame alone between two stretches of garbage cannot be confirmed and is dropped.
 *
 * `profile` everywhere is the ADTS profile field: audio object type - 1 (0 Main, 1 LC, 2 SSR, 3 LTP).
 */

export interface AdtsFrame {
  /** The raw_data_block, without the ADTS header (a view of the input). */
  raw: Buffer;
  /** ADTS profile field: audio object type - 1 (1 = AAC-LC). */
  profile: number;
  sampleRate: number;
  channels: number;
  samples: 1024;
}

export interface AdtsStats {
  frames: number;
  /** Bytes skipped while searching for a sync word. */
  resyncBytes: number;
  /** Valid frames carrying more than one raw data block (never from ffmpeg), dropped as FLV wants one. */
  multiBlockFrames: number;
}

/** sampling_frequency_index → Hz (ISO/IEC 14496-3 Table 1.18); 13-15 are reserved/escape. */
export const AAC_SAMPLE_RATES: readonly number[] = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

const MIN_HEADER = 7;
const MAX_HEADER = 9;

/** Parsed fixed + variable header at `at`, or undefined when the bytes there are not a sane header. */
function headerAt(buf: Buffer, at: number): { headerLength: number; frameLength: number; rateIndex: number; fixed: number } | undefined {
  // syncword 0xFFF, then ID (MPEG-4/2, either) and layer, which is always 00.
  if (buf[at] !== 0xff || (buf[at + 1]! & 0xf6) !== 0xf0) return undefined;
  const b2 = buf[at + 2]!;
  const rateIndex = (b2 >> 2) & 0x0f;
  if (rateIndex >= AAC_SAMPLE_RATES.length) return undefined;
  const headerLength = buf[at + 1]! & 0x01 ? MIN_HEADER : MAX_HEADER; // protection_absent = 0 adds a CRC
  const frameLength = ((buf[at + 3]! & 0x03) << 11) | (buf[at + 4]! << 3) | (buf[at + 5]! >> 5);
  if (frameLength <= headerLength) return undefined;
  // Profile, rate and channel configuration: these do not change between frames of one stream.
  const fixed = ((b2 & 0xfd) << 8) | (buf[at + 3]! & 0xc0);
  return { headerLength, frameLength, rateIndex, fixed };
}

export class AdtsSplitter {
  readonly stats: AdtsStats = { frames: 0, resyncBytes: 0, multiBlockFrames: 0 };
  private pending: Buffer | undefined;
  /** The fixed header bits of the stream we are locked on, or -1 while searching. */
  private locked = -1;

  push(chunk: Buffer): AdtsFrame[] {
    const buf = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    const out: AdtsFrame[] = [];
    let at = 0;
    // MIN_HEADER bytes suffice to read a header; a CRC, when present, is inside frameLength.
    while (buf.length - at >= MIN_HEADER) {
      const h = headerAt(buf, at);
      if (h === undefined) {
        this.locked = -1;
        at = this.skip(buf, at);
        continue;
      }
      // New stream parameters: search mode, so the next header has to confirm this one.
      if (h.fixed !== this.locked) this.locked = -1;
      const end = at + h.frameLength;
      if (this.locked === -1) {
        // Searching: trust this sync word only when the next header sits where the length says.
        if (buf.length - end < MIN_HEADER) break;
        const next = headerAt(buf, end);
        if (next === undefined || next.fixed !== h.fixed) {
          at = this.skip(buf, at);
          continue;
        }
        this.locked = h.fixed;
      }
      if (end > buf.length) break;
      if ((buf[at + 6]! & 0x03) !== 0) {
        this.stats.multiBlockFrames++;
      } else {
        this.stats.frames++;
        out.push({
          raw: buf.subarray(at + h.headerLength, end),
          profile: buf[at + 2]! >> 6,
          sampleRate: AAC_SAMPLE_RATES[h.rateIndex]!,
          channels: ((buf[at + 2]! & 0x01) << 2) | (buf[at + 3]! >> 6),
          samples: 1024,
        });
      }
      at = end;
    }
    if (at < buf.length) this.pending = buf.subarray(at);
    return out;
  }

  /** Bytes held waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.pending?.length ?? 0;
  }

  toJSON(): AdtsStats {
    return { ...this.stats };
  }

  /** Skip to the next possible sync word after `at`, counting the bytes passed. */
  private skip(buf: Buffer, at: number): number {
    let next = buf.indexOf(0xff, at + 1);
    if (next === -1) next = buf.length;
    this.stats.resyncBytes += next - at;
    return next;
  }
}

/**
 * AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) for FLV's AAC sequence header: 5 bits object type,
 * 4 bits rate index, 4 bits channel configuration, 3 zero bits of GASpecificConfig. 2 bytes.
 */
export function audioSpecificConfig(profile: number, sampleRate: number, channels: number): Buffer {
  const rateIndex = AAC_SAMPLE_RATES.indexOf(sampleRate);
  if (rateIndex === -1) throw new RangeError(`AAC: no sampling frequency index for ${sampleRate} Hz`);
  if (!(profile >= 0 && profile <= 3)) throw new RangeError(`AAC: ADTS profile ${profile}`);
  if (!(channels >= 1 && channels <= 7)) throw new RangeError(`AAC: channel configuration ${channels}`);
  const objectType = profile + 1;
  const bits = (objectType << 11) | (rateIndex << 7) | (channels << 3);
  return Buffer.from([bits >> 8, bits & 0xff]);
}
