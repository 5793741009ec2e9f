/**
 * An output's RTMP connection: neutral frames and config, muxed to FLV tag bodies (built once for all
 * the call's outputs, see flv.ts) and written by one RtmpPublisher, which knows nothing of frames.
 */
import type { ConfigChange, MediaFrame } from '../../plugin/media/frame.js';
import { FlvTagType, flvConfigTags, flvFrameBody } from '../../plugin/media/output/flv.js';
import type { OutputError, OutputSink } from '../../plugin/media/output/sink.js';

/** What the sink uses of RtmpPublisher (./publisher.ts); tests pass a stub. */
export interface FlvPublisher {
  start(): Promise<void>;
  writeMetadata(body: Buffer): void;
  writeAudio(timestampMs: number, body: Buffer): void;
  writeVideo(timestampMs: number, body: Buffer): void;
  close(): Promise<void>;
  on(event: 'close', listener: (e: { error?: OutputError }) => void): unknown;
}

export class RtmpSink implements OutputSink {
  constructor(readonly publisher: FlvPublisher) {}

  start(): Promise<void> {
    return this.publisher.start();
  }

  config(c: ConfigChange): void {
    const p = this.publisher;
    for (const t of flvConfigTags(c)) {
      if (t.type === FlvTagType.Script) p.writeMetadata(t.body);
      else if (t.type === FlvTagType.Audio) p.writeAudio(t.timestampMs ?? 0, t.body);
      else p.writeVideo(t.timestampMs ?? 0, t.body);
    }
  }

  frame(f: MediaFrame): void {
    // RTMP message time is the decode time; the composition offset is inside the video body.
    if (f.track === 'audio') this.publisher.writeAudio(f.dts, flvFrameBody(f));
    else this.publisher.writeVideo(f.dts, flvFrameBody(f));
  }

  close(): Promise<void> {
    return this.publisher.close();
  }

  on(event: 'close', listener: (e: { error?: OutputError }) => void): this {
    this.publisher.on(event, listener);
    return this;
  }
}
