/**
 * A pre-encoded GOP (the fill video: slate or black), cut into access units once, then looped by
 * VideoOutput with new timestamps and sent toward callers by CallerFeed.
 */
import { AvcConfigTracker, NalType, nalType, splitAnnexB, toAvcc } from '../encode/h264/index.js';

/** A pre-encoded GOP (Annex B with access unit delimiters) cut into access units. */
export class GeneratedVideo {
  readonly frames: { avcc: Buffer; keyframe: boolean }[] = [];
  readonly avcConfig: Buffer;
  readonly width: number | undefined;
  readonly height: number | undefined;

  constructor(annexB: Buffer, readonly fps: number) {
    const tracker = new AvcConfigTracker();
    let au: Buffer[] = [];
    const flush = () => {
      if (!au.some((n) => nalType(n) === NalType.Idr || nalType(n) === NalType.Slice)) return;
      tracker.update({ nalus: au });
      this.frames.push({ avcc: toAvcc(au), keyframe: au.some((n) => nalType(n) === NalType.Idr) });
      au = [];
    };
    for (const nal of splitAnnexB(annexB)) {
      if (nalType(nal) === NalType.Aud) flush();
      else au.push(Buffer.from(nal));
    }
    flush();
    if (!tracker.current || !this.frames[0]?.keyframe) throw new Error('generated video: no keyframe with SPS/PPS at its start');
    this.avcConfig = tracker.current;
    this.width = tracker.width;
    this.height = tracker.height;
  }
}
