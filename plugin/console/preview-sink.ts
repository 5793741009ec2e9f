/**
 * HTTP-FLV for the console's live preview: one more sink on the call's LiveStream, so a viewer gets the
 * very tags the RTMP outputs get (no decode, no encode), in FLV file framing that mpegts.js plays.
 *
 * A viewer joins mid-stream, so: timestamps start at 0 from the first tag it gets (a player's clock
 * starts there), video waits for a keyframe (P-frames before one can't be decoded), and the codec
 * headers LiveStream sends on join go out first. A slow viewer never slows the call: above
 * DROP_ABOVE bytes queued in the socket, frames are skipped (video until the next keyframe); above
 * CLOSE_ABOVE, the viewer is cut off.
 */
import { FlvFileWriter, FlvTagType, type FlvTagTypeId } from '../media/output/flv.js';
import type { StreamSink } from '../media/output/live-stream.js';

/** What the sink writes to: an HTTP response, in practice. */
export interface ByteOut {
  write(chunk: Buffer): boolean;
  readonly writableLength: number;
}

export interface PreviewSinkOptions {
  hasAudio: boolean;
  hasVideo: boolean;
  /** Skip frames while this much is queued (bytes). */
  dropAboveBytes?: number;
  /** Give up on the viewer beyond this (bytes): `onOverflow` is called once. */
  closeAboveBytes?: number;
  onOverflow?: () => void;
}

/** FLV AVC packet: byte 0 high nibble 1 = keyframe; byte 1 = 0 sequence header, 1 NAL units. */
const isVideoKeyframe = (body: Buffer) => body[0]! >> 4 === 1 && body[1] === 1;
const isSequenceHeader = (body: Buffer) => body[1] === 0;

export class FlvPreviewSink implements StreamSink {
  readonly stats = { tags: 0, bytes: 0, dropped: 0 };
  private readonly flv = new FlvFileWriter();
  private base: number | undefined;
  private lastTs = 0;
  private waitKeyframe = true;
  private overflowed = false;
  private readonly dropAbove: number;
  private readonly closeAbove: number;

  constructor(private readonly out: ByteOut, private readonly o: PreviewSinkOptions) {
    this.dropAbove = o.dropAboveBytes ?? 512 * 1024;
    this.closeAbove = o.closeAboveBytes ?? 4 * 1024 * 1024;
    this.send(this.flv.header(o.hasAudio, o.hasVideo));
  }

  writeMetadata(body: Buffer): void {
    // At the viewer's current time; it must not become the time base (it comes first, stamped 0).
    this.tag(FlvTagType.Script, undefined, body, true);
  }

  writeAudio(timestampMs: number, body: Buffer): void {
    if (!this.o.hasAudio) return;
    // AAC packet type 0 is the AudioSpecificConfig: always sent, the decoder needs it.
    this.tag(FlvTagType.Audio, timestampMs, body, body[1] === 0);
  }

  writeVideo(timestampMs: number, body: Buffer): void {
    if (!this.o.hasVideo) return;
    if (isSequenceHeader(body)) {
      this.tag(FlvTagType.Video, timestampMs, body, true);
      return;
    }
    if (this.waitKeyframe) {
      if (!isVideoKeyframe(body)) {
        this.stats.dropped++;
        return;
      }
      if (!this.tag(FlvTagType.Video, timestampMs, body, false)) return;
      this.waitKeyframe = false;
      return;
    }
    if (!this.tag(FlvTagType.Video, timestampMs, body, false)) this.waitKeyframe = true;
  }

  /** Writes one tag; false if it was skipped (viewer too slow). Headers are never skipped. */
  private tag(type: FlvTagTypeId, timestampMs: number | undefined, body: Buffer, essential: boolean): boolean {
    if (this.overflowed) return false;
    const queued = this.out.writableLength;
    if (queued > this.closeAbove) {
      this.overflowed = true;
      this.o.onOverflow?.();
      return false;
    }
    if (!essential && queued > this.dropAbove) {
      this.stats.dropped++;
      return false;
    }
    if (timestampMs !== undefined) this.base ??= timestampMs;
    const ts = timestampMs === undefined || this.base === undefined ? this.lastTs : Math.max(0, timestampMs - this.base);
    this.lastTs = ts;
    this.send(this.flv.tag(type, ts, body));
    this.stats.tags++;
    return true;
  }

  private send(b: Buffer): void {
    this.stats.bytes += b.length;
    this.out.write(b);
  }
}
