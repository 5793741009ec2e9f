/**
 * The AudioEncoder port served in-process by our AAC-LC encoder: no child process, no pipes, no
 * wake-ups of its own. Frames are made synchronously inside write(), so a frame completed by a tick
 * reaches the outputs in that same tick.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { AudioEncoder, AudioEncoderEvents, AudioEncoderOptions } from '../../ports.js';
import { AacLcEncoder } from './encoder.js';

/** Time spent encoding, all calls together (s): /metrics shows it as the in-process encoder's CPU. */
export const nativeEncoderTime = { seconds: 0 };

export class NativeAacEncoder extends EventEmitter<AudioEncoderEvents> implements AudioEncoder {
  readonly audioSpecificConfig: Buffer;
  readonly outputRate: number;
  readonly pid = undefined;
  private readonly enc: AacLcEncoder;
  private index = 0;
  private closed = false;

  constructor(opts: AudioEncoderOptions) {
    super();
    if (opts.channels !== 1 && opts.channels !== 2) throw new RangeError(`AAC channels must be 1 or 2, got ${opts.channels}`);
    this.enc = new AacLcEncoder({ inputRate: opts.inputRate, outputRate: opts.outputRate, channels: opts.channels, bitrate: opts.bitrate });
    this.audioSpecificConfig = this.enc.audioSpecificConfig;
    this.outputRate = opts.outputRate;
  }

  write(pcm: Int16Array): void {
    if (this.closed || pcm.length === 0) return;
    const t0 = performance.now();
    const frames = this.enc.encode(pcm);
    nativeEncoderTime.seconds += (performance.now() - t0) / 1000;
    this.emitFrames(frames);
  }

  async finish(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.emitFrames(this.enc.flush());
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private emitFrames(frames: Buffer[]): void {
    for (const raw of frames) this.emit('frame', { raw, index: this.index++ });
  }
}
