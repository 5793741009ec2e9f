/**
 * One-shot ffmpeg runs (sound clips, decoded sounds): spawn, collect stdout, bounded in time and size.
 * The child is always waited for (no zombie), and errors carry the tail of ffmpeg's stderr.
 */
import { spawn } from 'node:child_process';

/** Longest sound accepted, in seconds: a clip or decoded sound is held whole in memory. */
export const MAX_AUDIO_SECONDS = 600;

export const DEFAULT_FFMPEG_TIMEOUT_MS = 20_000;

export interface RunFfmpegOptions {
  /** SIGKILL after this long (default 20 s). */
  timeoutMs?: number;
  /** SIGKILL once stdout exceeds this: a memory bound, set above what a valid run can produce. */
  maxBytes: number;
  ffmpegPath?: string;
  /** What the run does, for error messages ("encoding a sound clip"). */
  what: string;
}

export type FfmpegFailure = 'start' | 'timeout' | 'too-large' | 'failed';

export class FfmpegError extends Error {
  override readonly name = 'FfmpegError';
  constructor(readonly kind: FfmpegFailure, message: string) {
    super(message);
  }
}

const STDERR_TAIL = 500;

export function runFfmpeg(args: readonly string[], opts: RunFfmpegOptions): Promise<Buffer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_FFMPEG_TIMEOUT_MS;
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn(opts.ffmpegPath ?? 'ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let stderrTail = '';
    // Why we killed it, if we did: the exit status then says nothing useful.
    let killedFor: 'timeout' | 'too-large' | undefined;
    let settled = false;

    const kill = (why: 'timeout' | 'too-large') => {
      if (killedFor !== undefined) return;
      killedFor = why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill('timeout'), timeoutMs);
    const withStderr = (msg: string) => {
      const tail = plain(stderrTail.trim());
      return tail ? `${msg}: ${tail}` : msg;
    };

    child.stdout.on('data', (chunk: Buffer) => {
      if (killedFor !== undefined) return;
      bytes += chunk.length;
      if (bytes > opts.maxBytes) {
        kill('too-large');
        return;
      }
      chunks.push(chunk);
    });
    child.stderr.on('data', (d: Buffer) => {
      stderrTail = (stderrTail + d.toString()).slice(-STDERR_TAIL);
    });
    child.once('error', (err) => {
      // Spawn failure (ENOENT, EACCES): there may be no 'close' to wait for.
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new FfmpegError('start', `ffmpeg could not start (${opts.what}): ${err.message}`));
    });
    // 'close', not 'exit': stdout is fully read by then.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      if (killedFor === 'timeout') {
        reject(new FfmpegError('timeout', withStderr(`ffmpeg timed out after ${timeoutMs / 1000} s ${opts.what}`)));
      } else if (killedFor === 'too-large') {
        reject(new FfmpegError('too-large', `ffmpeg output exceeded ${opts.maxBytes} bytes ${opts.what}`));
      } else if (code !== 0) {
        reject(new FfmpegError('failed', withStderr(`ffmpeg failed ${opts.what} (${signal ?? `exit code ${code}`})`)));
      } else {
        resolve(Buffer.concat(chunks, bytes));
      }
    });
  });
}

/** ffmpeg's wording where it would mislead whoever reads our error (an API client, say). */
function plain(stderr: string): string {
  // Its hint about "-map 0:a:0?" is for the command line's author, not for whoever supplied the file.
  return stderr.replace(/Stream map '0:a:0' matches no streams\.[\s\S]*/, 'no audio stream in the input');
}

/** ffmpeg's duration syntax wants a leading digit (".1" is refused). */
export function ffmpegSeconds(seconds: number): string {
  return seconds.toFixed(3);
}
