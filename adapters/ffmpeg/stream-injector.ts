/**
 * /call/inject_stream's decoder: one ffmpeg child that reads the injected stream and hands back what the
 * caller feed sends toward the SIP party, already in the leg's terms.
 *
 *   URL, file, or our FLV on stdin → ffmpeg ─ audio: mono s16le at the leg's rate → stdout
 *                                           └ video: H.264 Constrained Baseline, Annex B, an access unit
 *                                             delimiter per frame → fd 3 (video legs only)
 *
 * Why ffmpeg: it already reads every input this takes (RTMP, HLS/HTTP, files) and we already ship it; the
 * leg wants PCM and Baseline H.264 at its own size, which is a decode and an encode whatever the input.
 *
 * - Access units are cut at the delimiters x264 writes (aud=1): a frame is whole when the next one starts.
 *   SPS and PPS come with every keyframe (repeat-headers), so a phone can start decoding at any of them.
 * - Inputs are limited to what was asked for (-protocol_whitelist): a URL of rtmp(s) or http(s) reaches
 *   no other protocol (no file:, no concat: through a playlist), a file only the file.
 * - A network input that goes quiet for 10 s is an error (-rw_timeout), not a call feed stuck forever.
 * - An input without audio fails ("does not contain any stream"): said as such.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { splitAnnexB } from '../../plugin/media/encode/h264/nal.js';
import type { FrameSink } from '../../plugin/media/frame.js';
import { FlvByteSink } from '../../plugin/media/output/flv-stream.js';
import type { InjectedStream, InjectedStreamEvents, InjectedStreamOptions } from '../../plugin/media/ports.js';

const STDERR_TAIL = 2000;
const NAL_AUD = 9;
const NAL_IDR = 5;

export function injectorArgs(o: InjectedStreamOptions): string[] {
  const input = 'frames' in o.input
    ? ['-probesize', '32768', '-analyzeduration', '500000', '-f', 'flv', '-i', 'pipe:0']
    : [
        // Probing a live input takes ffmpeg's default 5 s of it (measured: first audio after 3.8 s from nginx);
        // 1 s finds a stream's tracks (an RTMP server sends its metadata and sequence headers first): 1.35 s.
        '-analyzeduration', '1000000',
        // From an RTMP server: the tracks as its onMetaData declares them, so an audio track whose first
        // packets come after the probe is not missed (then "no audio").
        ...(/^rtmps?:/i.test(o.input.url) ? ['-flv_metadata', '1'] : []),
        ...(o.input.realtime ? ['-re'] : []),
        ...(/^(rtmps?|https?):/i.test(o.input.url)
          ? ['-protocol_whitelist', 'rtmp,rtmps,http,https,tcp,tls,crypto', '-rw_timeout', '10000000']
          : ['-protocol_whitelist', 'file']),
        '-i', /^(rtmps?|https?):/i.test(o.input.url) ? o.input.url : `file:${o.input.url}`,
      ];
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error', ...input,
    '-map', '0:a:0', '-ac', '1', '-ar', String(o.sampleRate), '-c:a', 'pcm_s16le', '-flush_packets', '1', '-f', 's16le', 'pipe:1'];
  const v = o.video;
  if (v) {
    args.push('-map', '0:v:0?',
      '-vf', `scale=${v.width}:${v.height}:force_original_aspect_ratio=decrease,pad=${v.width}:${v.height}:(ow-iw)/2:(oh-ih)/2,fps=${v.fps},format=yuv420p`,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-level:v', '3.1',
      '-g', String(v.fps * 2), '-bf', '0', '-x264-params', 'aud=1:repeat-headers=1',
      '-flush_packets', '1', '-f', 'h264', 'pipe:3');
  }
  return args;
}

/** What ffmpeg said, in words for the API (no URL: it may hold credentials). */
export function injectFailureReason(stderr: string, url?: string): string {
  let text = stderr;
  if (url) text = text.split(url).join('<stream>');
  text = text.replace(/\b(rtmps?|https?):\/\/\S+/gi, '<stream>');
  if (/does not contain any stream|Stream map '0:a:0' matches no streams/i.test(text)) return 'the stream has no audio';
  if (/Connection refused/i.test(text)) return 'could not connect (connection refused)';
  if (/Server returned 404|404 Not Found|Failed to (?:play|open)|Stream not found|NetStream\.Play\.StreamNotFound/i.test(text)) return 'no such stream there';
  if (/No such file or directory/i.test(text)) return 'no such file';
  if (/timed out|Operation timed out|Connection timed out/i.test(text)) return 'the stream stopped sending (timed out)';
  if (/Invalid data found/i.test(text)) return 'not a stream ffmpeg can read';
  const last = text.trim().split('\n').filter((l) => l.trim()).slice(-1)[0];
  return last ? last.slice(0, 300) : 'ffmpeg exited';
}

export interface StreamInjectorOptions {
  ffmpegPath?: string;
}

class FfmpegInjectedStream extends EventEmitter<InjectedStreamEvents> implements InjectedStream {
  readonly sink: FrameSink | undefined;
  private readonly child;
  private stderr = '';
  private closing = false;
  private readonly exited: Promise<void>;
  private odd: Buffer | undefined;
  private video: Buffer = Buffer.alloc(0);

  constructor(o: InjectedStreamOptions, ffmpegPath: string) {
    super();
    const url = 'url' in o.input ? o.input.url : undefined;
    this.child = spawn(ffmpegPath, injectorArgs(o), { stdio: ['frames' in o.input ? 'pipe' : 'ignore', 'pipe', 'pipe', o.video ? 'pipe' : 'ignore'] });
    const child = this.child;
    this.exited = new Promise((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => {
        if (child.pid === undefined) resolve();
      });
    });
    const stdin = child.stdin as Writable | null;
    if (stdin) {
      stdin.on('error', () => {}); // EPIPE when it died: 'close' reports it
      // The other call's frames as FLV (the preview's muxer): a slow ffmpeg drops frames, never slows that call.
      this.sink = new FlvByteSink(stdin, { hasAudio: true, hasVideo: true, dropAboveBytes: 512 * 1024, closeAboveBytes: 4 * 1024 * 1024, onOverflow: () => child.kill('SIGKILL') });
    }
    (child.stdout as Readable).on('data', (d: Buffer) => this.onAudio(d));
    (child.stderr as Readable).on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-STDERR_TAIL);
    });
    const videoOut = child.stdio[3] as Readable | null;
    videoOut?.on('data', (d: Buffer) => this.onVideo(d));
    videoOut?.on('error', () => {});
    child.once('error', (err) => this.finish(new Error(`ffmpeg could not start: ${err.message}`)));
    child.once('close', (code, signal) => {
      if (this.closing) return this.finish();
      if (code === 0) return this.finish(); // played out
      this.finish(new Error(`${injectFailureReason(this.stderr, url)} (ffmpeg ${signal ?? `exit code ${code}`})`));
    });
  }

  private ended = false;
  private finish(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.flushVideo();
    this.emit('end', ...(err ? [err] : []));
  }

  private onAudio(d: Buffer): void {
    // s16le in host order (little-endian hosts, as elsewhere); a chunk may end mid-sample.
    let buf = this.odd ? Buffer.concat([this.odd, d]) : d;
    this.odd = undefined;
    if (buf.length & 1) {
      this.odd = Buffer.from(buf.subarray(buf.length - 1));
      buf = buf.subarray(0, buf.length - 1);
    }
    if (buf.length === 0) return;
    const pcm = new Int16Array(buf.length >> 1);
    new Uint8Array(pcm.buffer).set(buf);
    this.emit('audio', pcm);
  }

  /** Annex B bytes: every access unit before the last delimiter is whole. */
  private onVideo(d: Buffer): void {
    this.video = this.video.length ? Buffer.concat([this.video, d]) : d;
    let last = -1;
    for (let i = this.video.length - 4; i >= 0; i--) {
      if (this.video[i] === 0 && this.video[i + 1] === 0 && this.video[i + 2] === 1 && (this.video[i + 3]! & 0x1f) === NAL_AUD) {
        last = i;
        break;
      }
    }
    if (last <= 0) return;
    const whole = this.video.subarray(0, last);
    this.video = Buffer.from(this.video.subarray(last));
    this.emitUnits(whole);
  }

  private flushVideo(): void {
    if (this.video.length) this.emitUnits(this.video);
    this.video = Buffer.alloc(0);
  }

  private emitUnits(bytes: Buffer): void {
    let au: Buffer[] = [];
    const flush = () => {
      if (au.length) this.emit('video', au, au.some((n) => (n[0]! & 0x1f) === NAL_IDR));
      au = [];
    };
    for (const nal of splitAnnexB(bytes)) {
      if ((nal[0]! & 0x1f) === NAL_AUD) flush();
      else au.push(Buffer.from(nal));
    }
    flush();
  }

  async close(): Promise<void> {
    this.closing = true;
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      // SIGKILL: an ffmpeg blocked reading an idle network input or pipe ignores SIGTERM (video-transcoder.ts).
      c.kill('SIGKILL');
    }
    await this.exited;
  }
}

export function streamInjector(opts: StreamInjectorOptions = {}): (o: InjectedStreamOptions) => InjectedStream {
  return (o) => new FfmpegInjectedStream(o, opts.ffmpegPath ?? 'ffmpeg');
}
