/**
 * A sink whose receiver comes a moment later: a recording asked for at the call's answer still has its
 * file to open (mkdir, open: milliseconds, more on a busy disk) while the stream's first keyframe goes by.
 * Attached at once, this holds what arrives meanwhile and hands it over in order when the receiver
 * comes, so the recording starts where it was asked for (measured: one opened after the fact began
 * ~1 s late, at the caller's second keyframe).
 */
import type { ConfigChange, FrameSink, MediaFrame } from '../frame.js';

type Held = { config: ConfigChange; frame?: undefined } | { frame: MediaFrame; config?: undefined };

export class LateSink implements FrameSink {
  private held: Held[] | undefined = [];
  private target: FrameSink | undefined;
  /** Frames not held (past `maxHeld`: a receiver that takes this long is not coming soon). */
  dropped = 0;

  /** maxHeld: ~40 s of audio and video at 50 + 25 frames a second by default. */
  constructor(private readonly maxHeld = 3000) {}

  config(c: ConfigChange): void {
    if (this.target) this.target.config(c);
    else this.held?.push({ config: c }); // configs are always held: a decoder needs them
  }

  frame(f: MediaFrame): void {
    if (this.target) return this.target.frame(f);
    if (!this.held) return;
    if (this.held.length < this.maxHeld) this.held.push({ frame: f });
    else this.dropped++;
  }

  /** The receiver: everything held, in order, then every frame as it comes. */
  attach(target: FrameSink): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const h of held) {
      if (h.config) target.config(h.config);
      else target.frame(h.frame!);
    }
    this.target = target;
  }

  /** No receiver is coming: what was held is let go. */
  discard(): void {
    this.held = undefined;
  }
}
