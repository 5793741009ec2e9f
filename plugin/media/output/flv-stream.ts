/**
 * HTTP-FLV for the console's live preview: one more sink on the call's LiveStream, muxed by the same FLV
 * muxer as the RTMP outputs, so a viewer gets their very tag bodies (no decode, no encode, built once),
 * in FLV file framing that mpegts.js plays.
 *
 * A viewer joins mid-stream, so: timestamps start at 0 from the first tag it gets (a player's clock
 * starts there), video waits for a keyframe (P-frames before one can't be decoded), and the codec
 * config LiveStream sends on join goes out first. A slow viewer never slows the call: above
 * DROP_ABOVE bytes queued in the socket, frames are skipped (video until the next keyframe); above
 * CLOSE_ABOVE, the viewer is cut off.
 */
import type { ConfigChange, FrameSink, MediaFrame } from '../frame.js';
import { FlvFileWriter, FlvTagType, flvConfigTags, flvFrameBody, type FlvTagTypeId } from './flv.js';

/** What the sink writes to: an HTTP response, a file, a child's stdin. */
export interface ByteOut {
  write(chunk: Buffer): boolean;
  readonly writableLength: number;
}

export interface FlvByteSinkOptions {
  hasAudio: boolean;
  hasVideo: boolean;
  /** Skip frames while this much is queued (bytes). */
  dropAboveBytes?: number;
  /** Give up on the reader beyond this (bytes): `onOverflow` is called once. */
  closeAboveBytes?: number;
  onOverflow?: () => void;
}

export class FlvByteSink implements FrameSink {
  /** durationMs: the last tag's time (from the first tag's, 0). */
  readonly stats = { tags: 0, bytes: 0, dropped: 0, durationMs: 0 };
  private readonly flv = new FlvFileWriter();
  private base: number | undefined;
  private lastTs = 0;
  private waitKeyframe = true;
  private overflowed = false;
  private readonly dropAbove: number;
  private readonly closeAbove: number;

  constructor(private readonly out: ByteOut, private readonly o: FlvByteSinkOptions) {
    this.dropAbove = o.dropAboveBytes ?? 512 * 1024;
    this.closeAbove = o.closeAboveBytes ?? 4 * 1024 * 1024;
    this.send(this.flv.header(o.hasAudio, o.hasVideo));
  }

  /** Metadata and sequence headers: always sent, a decoder needs them. */
  config(c: ConfigChange): void {
    for (const t of flvConfigTags(c)) {
      if (t.type === FlvTagType.Audio && !this.o.hasAudio) continue;
      if (t.type === FlvTagType.Video && !this.o.hasVideo) continue;
      // Metadata has no time: it goes at the viewer's current time and must not become the time base.
      this.tag(t.type, t.timestampMs, t.body, true);
    }
  }

  frame(f: MediaFrame): void {
    if (f.track === 'audio') {
      if (this.o.hasAudio) this.tag(FlvTagType.Audio, f.dts, flvFrameBody(f), false);
      return;
    }
    if (!this.o.hasVideo) return;
    if (this.waitKeyframe) {
      // P-frames before a keyframe can't be decoded.
      if (!f.keyframe) {
        this.stats.dropped++;
        return;
      }
      if (!this.tag(FlvTagType.Video, f.dts, flvFrameBody(f), false)) return;
      this.waitKeyframe = false;
      return;
    }
    if (!this.tag(FlvTagType.Video, f.dts, flvFrameBody(f), false)) this.waitKeyframe = true;
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
    if (ts > this.stats.durationMs) this.stats.durationMs = ts;
    this.send(this.flv.tag(type, ts, body));
    this.stats.tags++;
    return true;
  }

  private send(b: Buffer): void {
    this.stats.bytes += b.length;
    this.out.write(b);
  }
}
