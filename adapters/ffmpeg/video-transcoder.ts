/**
 * The call's H.264 decoded and encoded again by one persistent ffmpeg child: a fixed size (scaled, padded)
 * and an IDR every keyframeIntervalMs, for phones whose keyframes are far apart or whose size changes.
 *
 *   write() → FLV tags (flv.ts) on stdin → ffmpeg → FLV on stdout → FlvTagReader → 'config' / 'frame'
 *
 * Timestamps ride through ffmpeg in the FLV tags (-copyts, -fps_mode passthrough, encoder time base 1 ms):
 * each output frame carries the timestamp of the input frame it came from. They are rebased on the way in
 * (the first frame written is 0 ms) and the offset is added back on the way out, so ffmpeg's keyframe
 * expression can keep a grid: keyframes at 0, K, 2K... from the first frame, not from the call's start.
 *
 * Findings on Debian 12's ffmpeg 5.1 (test/unit/video-transcoder.test.ts checks them):
 * - a new AVC sequence header mid-stream (the caller's SPS changed) reaches the decoder as new extradata and
 *   the filter graph is rebuilt for the new size: no restart needed, output size and timestamps unaffected;
 * - without an encoder time base of 1 ms, timestamps are rounded to the guessed frame rate (1/25 s);
 * - `-fflags nobuffer` must not be used: the packets read while probing are then lost, and with them the
 *   first keyframe (the decoder waits for the next one, ~10 s on the phones this path is for);
 * - the flv muxer keeps the first timestamp as it is (no shift to 0) with -copyts;
 * - SIGTERM does not end an ffmpeg blocked reading an idle pipe (the read restarts): close() uses SIGKILL.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { parseAvcDecoderConfig } from '../../plugin/media/encode/h264/avc-config.js';
import { parseSps } from '../../plugin/media/encode/h264/sps.js';
import { avcFrame, avcSequenceHeader, FlvFileWriter, FlvTagType } from '../../plugin/media/output/flv.js';
import { FlvTagReader, parseVideoBody } from '../../plugin/media/output/flv-reader.js';
import type {
  VideoTranscoder,
  VideoTranscoderEvents,
  VideoTranscoderFactory,
  VideoTranscoderOptions,
} from '../../plugin/media/ports.js';

export interface FfmpegVideoTranscoderOptions extends VideoTranscoderOptions {
  ffmpegPath?: string;
  /** stdin bytes not yet taken by ffmpeg beyond which frames are dropped (default 512 KiB, ~2 s of a phone's video). */
  maxBacklog?: number;
  /** Dropping for this long without ffmpeg catching up: it is stuck, 'error' (ms, default 5000). */
  stuckMs?: number;
  /** libx264 threads (default 1: ultrafast at ≤ 720p needs a few ms a frame, and a thread per core per call would not pay). */
  encoderThreads?: number;
}

const STDERR_TAIL = 500;
const DEFAULT_MAX_BACKLOG = 512 * 1024;
const DEFAULT_STUCK_MS = 5000;

/**
 * Bitrate cap for a size: 0.1 bit per pixel at 30 fps (352x288 ≈ 300 kbit/s, 640x360 ≈ 690 kbit/s,
 * 1280x720 ≈ 2.8 Mbit/s), at least 300 kbit/s. CRF 23 spends less on a still talking head; the cap
 * (VBV of 1 s) keeps motion from exceeding what an upload can carry.
 */
export function maxBitrate(width: number, height: number): number {
  return Math.max(300_000, Math.round((width * height * 30 * 0.1) / 1000) * 1000);
}

/** ffmpeg's arguments for these options (exported for the tests and the report). */
export function videoTranscoderArgs(o: FfmpegVideoTranscoderOptions): string[] {
  const { width: w, height: h } = o;
  if (!(Number.isInteger(w) && Number.isInteger(h) && w >= 16 && h >= 16 && w % 2 === 0 && h % 2 === 0)) {
    throw new RangeError(`video transcoder: size ${w}x${h} (even, at least 16x16)`);
  }
  if (!(o.keyframeIntervalMs >= 100)) throw new RangeError(`video transcoder: keyframeIntervalMs ${o.keyframeIntervalMs}`);
  const k = o.keyframeIntervalMs / 1000;
  const filters: string[] = [];
  if (o.maxFps !== undefined) {
    if (!(o.maxFps > 0)) throw new RangeError(`video transcoder: maxFps ${o.maxFps}`);
    // At most one frame per 1/maxFps slot, slots centred on the frame grid (a jittered 25 fps input under a
    // 25 fps cap keeps all its frames); frames keep their timestamps (no fps filter: it would retime them).
    const f = o.maxFps;
    filters.push(`select='isnan(prev_selected_t)+gte(floor(t*${f}+0.5)-floor(prev_selected_t*${f}+0.5),1)'`);
  }
  filters.push(`scale=${w}:${h}:force_original_aspect_ratio=decrease`, `pad=${w}:${h}:(ow-iw)/2:(oh-ih)/2`, 'setsar=1');
  const rate = maxBitrate(w, h);
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    // Input: FLV with one known video stream. Probing reads one frame; the decoder runs on one thread (frame
    // threads hold a frame each) and outputs each picture at once (low_delay).
    '-probesize', '32', '-analyzeduration', '0', '-flags', 'low_delay', '-threads', '1',
    '-f', 'flv', '-i', 'pipe:0',
    '-map', '0:v:0', '-an', '-sn', '-dn',
    // Timestamps: as they came (no start-time shift), one output frame per input frame (no duplicates,
    // no rounding to a frame rate), in ms.
    '-copyts', '-fps_mode', 'passthrough', '-enc_time_base:v', '1:1000',
    '-filter_threads', '1', '-vf', filters.join(','),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
    '-bf', '0', '-threads:v', String(o.encoderThreads ?? 1),
    '-crf', '23', '-maxrate', String(rate), '-bufsize', String(rate),
    // Keyframes by time only: the first frame at or after firstKeyframeAfterMs (t counts from the first frame:
    // ffmpeg's own reference, and our rebasing), then the first frame at or after each K from there. Frames
    // before it (a primed GOP) get no forced IDR. No GOP-length or scene-cut IDRs in between.
    '-g', '100000', '-sc_threshold', '0', '-forced-idr', '1',
    '-force_key_frames', keyframeGridFrom((o.firstKeyframeAfterMs ?? 0) / 1000, k),
    '-flush_packets', '1', '-flvflags', 'no_duration_filesize', '-f', 'flv', 'pipe:1',
  ];
}

/** The first frame at or after `f` (s), then the first at or after each f + n·k. */
function keyframeGridFrom(f: number, k: number): string {
  if (f <= 0) return `expr:if(isnan(prev_forced_t),1,gte(t,(floor(prev_forced_t/${k}+1e-6)+1)*${k}-0.0005))`;
  const first = f.toFixed(3);
  return `expr:if(isnan(prev_forced_t),gte(t,${first}-0.0005),gte(t,(floor((prev_forced_t-${first})/${k}+1e-6)+1)*${k}+${first}-0.0005))`;
}

export class FfmpegVideoTranscoder extends EventEmitter<VideoTranscoderEvents> implements VideoTranscoder {
  readonly stats = { framesIn: 0, framesOut: 0, dropped: 0 };
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly flv = new FlvFileWriter();
  private readonly reader = new FlvTagReader();
  private readonly exited: Promise<void>;
  private readonly maxBacklog: number;
  private readonly stuckMs: number;
  private stopped = false;
  private stderrTail = '';
  private inConfig: Buffer | undefined;
  private outConfig: Buffer | undefined;
  /** Timestamp (ms, rounded) of the first frame written: the child's 0. */
  private base: number | undefined;
  /** Last timestamp written, on the child's timeline. */
  private lastWire = -1;
  private lastOut = -Infinity;
  private needKeyframe = true;
  /** Since when frames are dropped for the backlog (ms, Date.now()). */
  private backlogSince: number | undefined;

  constructor(opts: FfmpegVideoTranscoderOptions) {
    super();
    this.maxBacklog = opts.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    this.stuckMs = opts.stuckMs ?? DEFAULT_STUCK_MS;
    const args = videoTranscoderArgs(opts);
    this.child = spawn(opts.ffmpegPath ?? 'ffmpeg', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      // A spawn failure (ENOENT, EACCES) has no 'exit'.
      this.child.once('error', () => {
        if (this.child.pid === undefined) resolve();
      });
    });
    this.child.stdout.on('data', (chunk: Buffer) => this.onOutput(chunk));
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-STDERR_TAIL);
    });
    this.child.stdin.on('error', () => {}); // EPIPE when the child died: reported by 'close'
    this.child.once('error', (err) => this.fail(`ffmpeg video transcoder could not start: ${err.message}`));
    // 'close', not 'exit': by then stderr is read to its end, and the tail says why.
    this.child.once('close', (code, signal) => {
      if (this.child.pid !== undefined) this.fail(`ffmpeg video transcoder exited (${signal ?? `code ${code}`})`, true);
    });
    this.child.stdin.write(this.flv.header(false, true));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  inputConfig(avcConfig: Buffer): void {
    if (this.stopped || this.inConfig?.equals(avcConfig)) return;
    this.inConfig = Buffer.from(avcConfig);
    // New parameter sets go in as a new sequence header (ffmpeg's flv demuxer hands it to the decoder as new
    // extradata); the frames after it must start with a keyframe that uses them.
    this.needKeyframe = true;
    this.send(this.flv.tag(FlvTagType.Video, Math.max(this.lastWire, 0), avcSequenceHeader(this.inConfig)));
  }

  write(ts: number, avcc: Buffer, keyframe: boolean): void {
    this.stats.framesIn++;
    if (this.stopped || this.inConfig === undefined || !Number.isFinite(ts)) {
      this.stats.dropped++;
      return;
    }
    // Checked for every frame, P-frames too: a stall must be seen even while waiting for a keyframe.
    if (this.child.stdin.writableLength > this.maxBacklog) {
      // ffmpeg isn't taking its input (too slow, or stuck): drop rather than buffer without bound; the
      // decoder can't use the P-frames after a gap, so the next frame written is a keyframe.
      this.stats.dropped++;
      this.needKeyframe = true;
      const now = Date.now();
      this.backlogSince ??= now;
      if (now - this.backlogSince >= this.stuckMs) {
        this.fail(`ffmpeg video transcoder stuck: ${this.child.stdin.writableLength} bytes not taken for ${now - this.backlogSince} ms`);
        this.child.kill('SIGKILL');
      }
      return;
    }
    this.backlogSince = undefined;
    if (this.needKeyframe && !keyframe) {
      this.stats.dropped++;
      return;
    }
    this.base ??= Math.round(ts);
    // FLV has whole ms, and ffmpeg wants strictly increasing timestamps: a duplicate moves 1 ms on.
    const wire = Math.max(Math.round(ts) - this.base, this.lastWire + 1);
    this.lastWire = wire;
    this.needKeyframe = false;
    this.send(this.flv.tag(FlvTagType.Video, wire, avcFrame(avcc, keyframe)));
  }

  /** Kill the child and wait for it: no zombie, no pipe left open, no event after this. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      this.child.stdin.end();
      // SIGKILL: nothing inside is wanted any more, and it also ends a stopped (SIGSTOP) child.
      this.child.kill('SIGKILL');
    }
    await this.exited;
    this.child.stdin.destroy();
    this.child.stdout.destroy();
    this.child.stderr.destroy();
  }

  private send(tag: Buffer): void {
    this.child.stdin.write(tag);
  }

  private onOutput(chunk: Buffer): void {
    if (this.stopped) return;
    let tags;
    try {
      tags = this.reader.push(chunk);
    } catch (err) {
      this.fail(`ffmpeg video transcoder output: ${(err as Error).message}`);
      this.child.kill('SIGKILL');
      return;
    }
    for (const tag of tags) {
      if (this.stopped) return;
      if (tag.type !== FlvTagType.Video) continue;
      let body;
      try {
        body = parseVideoBody(tag.body);
        if (body.kind === 'avc-config') this.onOutputConfig(body.avcConfig);
      } catch (err) {
        this.fail(`ffmpeg video transcoder output: ${(err as Error).message}`);
        this.child.kill('SIGKILL');
        return;
      }
      if (body.kind !== 'avc-frame') continue;
      const ts = tag.timestampMs + (this.base ?? 0);
      if (ts <= this.lastOut) continue; // never happens with passthrough; a consumer relies on it
      this.lastOut = ts;
      this.stats.framesOut++;
      // The reader copied the tag body out of its buffer: this view keeps only the frame alive.
      this.emit('frame', { ts, avcc: body.nalusAvcc, keyframe: body.keyframe });
    }
  }

  private onOutputConfig(avcConfig: Buffer): void {
    if (this.outConfig?.equals(avcConfig)) return;
    const sps = parseAvcDecoderConfig(avcConfig).sps[0];
    if (sps === undefined) throw new RangeError('AVC config without SPS');
    const { width, height } = parseSps(sps);
    this.outConfig = Buffer.from(avcConfig);
    this.emit('config', { avcConfig: this.outConfig, width, height });
  }

  private fail(message: string, withStderr = false): void {
    if (this.stopped) return;
    this.stopped = true;
    const tail = this.stderrTail.trim().slice(-STDERR_TAIL);
    this.emit('error', new Error(withStderr && tail ? `${message}: ${tail}` : message));
  }
}

export const ffmpegVideoTranscoder: VideoTranscoderFactory = (o) => new FfmpegVideoTranscoder(o);
