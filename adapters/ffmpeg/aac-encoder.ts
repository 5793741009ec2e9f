/**
 * AAC-LC through a persistent ffmpeg child: mono s16le PCM on stdin, ADTS on stdout.
 * There is no maintained streaming AAC encoder for Node (DESIGN.md); Debian's ffmpeg is.
 * Timestamps never come from ffmpeg: frame n of the output is n × 1024 samples after the first.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { AdtsSplitter, audioSpecificConfig } from '../../plugin/media/encode/adts.js';
import type { AudioEncoder, AudioEncoderEvents, AudioEncoderOptions } from '../../plugin/media/ports.js';

export interface FfmpegAacOptions extends AudioEncoderOptions {
  ffmpegPath?: string;
  /** ffmpeg's AAC coder: "fast" costs about 20% less CPU than the default "twoloop" (DESIGN.md). */
  coder?: 'fast' | 'twoloop';
  /** stdin backlog beyond which the encoder counts as stuck (bytes). */
  maxBacklog?: number;
}

export class FfmpegAacEncoder extends EventEmitter<AudioEncoderEvents> implements AudioEncoder {
  readonly audioSpecificConfig: Buffer;
  readonly outputRate: number;
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly splitter = new AdtsSplitter();
  private index = 0;
  private closing = false;
  private exited: Promise<void>;
  private stderrTail = '';
  readonly stats = { bytesIn: 0, framesOut: 0, dropped: 0 };

  constructor(private readonly opts: FfmpegAacOptions) {
    super();
    this.outputRate = opts.outputRate;
    this.audioSpecificConfig = audioSpecificConfig(1, opts.outputRate, opts.channels) // 1 = AAC-LC (ADTS profile numbering);
    const args = [
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      // Raw PCM needs no probing; without these ffmpeg reads ~2 s of input before its first frame.
      '-probesize', '32', '-analyzeduration', '0',
      '-f', 's16le', '-ar', String(opts.inputRate), '-ac', '1', '-i', 'pipe:0',
      '-c:a', 'aac', '-aac_coder', opts.coder ?? 'fast', '-b:a', String(opts.bitrate),
      '-ar', String(opts.outputRate), '-ac', String(opts.channels),
      // One ADTS frame per write, as soon as it is encoded.
      '-flush_packets', '1', '-f', 'adts', 'pipe:1',
    ];
    this.child = spawn(opts.ffmpegPath ?? 'ffmpeg', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdout.on('data', (chunk: Buffer) => {
      for (const f of this.splitter.push(chunk)) {
        this.stats.framesOut++;
        this.emit('frame', { raw: f.raw, index: this.index++ });
      }
    });
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-500);
    });
    this.child.stdin.on('error', () => {}); // EPIPE after a crash: reported by 'exit'
    this.child.once('error', (err) => this.fail(new Error(`ffmpeg could not start: ${err.message}`)));
    this.child.once('exit', (code, signal) => {
      if (!this.closing) this.fail(new Error(`ffmpeg AAC encoder exited (${signal ?? code})${this.stderrTail ? `: ${this.stderrTail.trim()}` : ''}`));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  write(pcm: Int16Array): void {
    if (this.closing || pcm.length === 0) return;
    const stdin = this.child.stdin;
    if (stdin.writableLength > (this.opts.maxBacklog ?? 512 * 1024)) {
      // The encoder is not keeping up (or hung): dropping beats unbounded memory; the gap is counted.
      this.stats.dropped += pcm.length;
      return;
    }
    // s16le on a little-endian host: the Int16Array's bytes are already the wire format. No copy: the
    // caller hands the array over (AudioTimeline.read() returns a fresh one).
    const buf = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    this.stats.bytesIn += buf.length;
    stdin.write(buf);
  }

  private fail(err: Error): void {
    if (this.closing) return;
    this.closing = true;
    this.emit('error', err);
  }

  /** End of input: ffmpeg encodes the rest, writes the last frames and exits; killed if it takes too long. */
  async finish(timeoutMs: number): Promise<void> {
    if (this.closing || this.child.exitCode !== null || this.child.signalCode !== null) return this.close();
    this.closing = true; // its exit is expected from here on
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    // Frames still in the stdout pipe arrive before 'end'.
    if (!this.child.stdout.readableEnded) await new Promise<void>((r) => this.child.stdout.once('close', () => r()));
    this.child.stderr.destroy();
  }

  /** Stop the child and wait for it: no zombie, no pipe left open. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.exited;
    clearTimeout(timer);
    this.child.stdout.destroy();
    this.child.stderr.destroy();
  }
}
