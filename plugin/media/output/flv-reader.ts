/**
 * FLV the other way (Adobe FLV spec v10.1): bytes in any chunking → tags, then tag bodies → what they
 * carry. The transcode path reads its ffmpeg child's output with it; the stream checker reads recordings.
 * Pure: no I/O.
 */
import { FlvTagType, type FlvTagTypeId } from './flv.js';

export interface ReadTag {
  type: FlvTagTypeId;
  /** ms, 32 bits (24 low + 8 extended). */
  timestampMs: number;
  body: Buffer;
}

export class FlvFormatError extends Error {}

/** Incremental: push() whatever arrived, get the whole tags it completed. Tags of other types are skipped. */
export class FlvTagReader {
  private buf: Buffer = Buffer.alloc(0);
  private headerDone = false;
  readonly stats = { tags: 0, skipped: 0 };

  /** Max body size accepted (a corrupt size must not make the reader buffer forever). */
  constructor(private readonly maxBody = 8 * 1024 * 1024) {}

  push(chunk: Buffer): ReadTag[] {
    // Always a copy of our own: a caller may reuse its read buffer.
    this.buf = Buffer.concat([this.buf, chunk]);
    const out: ReadTag[] = [];
    let off = 0;
    if (!this.headerDone) {
      if (this.buf.length < 13) return out;
      if (this.buf.toString('latin1', 0, 3) !== 'FLV') throw new FlvFormatError('not an FLV stream (no "FLV" signature)');
      const start = this.buf.readUInt32BE(5) + 4; // header size, then PreviousTagSize0
      if (start < 13) throw new FlvFormatError('bad FLV header size');
      if (this.buf.length < start) return out;
      off = start;
      this.headerDone = true;
    }
    while (this.buf.length - off >= 11) {
      const type = this.buf[off]! & 0x1f;
      const size = this.buf.readUIntBE(off + 1, 3);
      if (size > this.maxBody) throw new FlvFormatError(`FLV tag body of ${size} bytes is over the ${this.maxBody} limit`);
      if (this.buf.length - off < 11 + size + 4) break;
      const ts = (this.buf.readUIntBE(off + 4, 3) | (this.buf[off + 7]! << 24)) >>> 0;
      const body = Buffer.from(this.buf.subarray(off + 11, off + 11 + size));
      off += 11 + size + 4;
      if (type === FlvTagType.Audio || type === FlvTagType.Video || type === FlvTagType.Script) {
        this.stats.tags++;
        out.push({ type, timestampMs: ts, body });
      } else this.stats.skipped++;
    }
    this.buf = this.buf.subarray(off);
    return out;
  }
}

export type VideoBody =
  | { kind: 'avc-config'; avcConfig: Buffer }
  | { kind: 'avc-frame'; keyframe: boolean; compositionTimeMs: number; nalusAvcc: Buffer }
  | { kind: 'avc-end' }
  | { kind: 'other'; codecId: number; keyframe: boolean };

/** A video tag body: AVC config, an AVC access unit (AVCC), or another codec (named by its id). */
export function parseVideoBody(body: Buffer): VideoBody {
  if (body.length < 1) throw new FlvFormatError('empty video tag');
  const frameType = (body[0]! >> 4) & 0x07;
  const codecId = body[0]! & 0x0f;
  // Enhanced RTMP (high bit set: the low nibble is a packet type, a FourCC follows) and info/command frames.
  if (body[0]! & 0x80 || frameType === 5) return { kind: 'other', codecId: body[0]! & 0x80 ? -1 : codecId, keyframe: false };
  if (codecId !== 7) return { kind: 'other', codecId, keyframe: frameType === 1 };
  if (body.length < 5) throw new FlvFormatError('AVC video tag shorter than its 5-byte header');
  const packetType = body[1]!;
  if (packetType === 0) return { kind: 'avc-config', avcConfig: body.subarray(5) };
  if (packetType === 2) return { kind: 'avc-end' };
  const cts = ((body.readUIntBE(2, 3) << 8) >> 8); // signed 24 bits
  return { kind: 'avc-frame', keyframe: frameType === 1, compositionTimeMs: cts, nalusAvcc: body.subarray(5) };
}

export type AudioBody =
  | { kind: 'aac-config'; audioSpecificConfig: Buffer }
  | { kind: 'aac-frame'; raw: Buffer }
  | { kind: 'other'; soundFormat: number };

/** An audio tag body: AAC config, a raw AAC frame, or another format (named by its SoundFormat). */
export function parseAudioBody(body: Buffer): AudioBody {
  if (body.length < 1) throw new FlvFormatError('empty audio tag');
  const soundFormat = body[0]! >> 4;
  if (soundFormat !== 10) return { kind: 'other', soundFormat };
  if (body.length < 2) throw new FlvFormatError('AAC audio tag shorter than its 2-byte header');
  return body[1] === 0 ? { kind: 'aac-config', audioSpecificConfig: body.subarray(2) } : { kind: 'aac-frame', raw: body.subarray(2) };
}
