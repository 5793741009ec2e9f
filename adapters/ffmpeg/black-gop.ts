/**
 * The generated video (WCS generate_av): one black GOP, encoded once per process with ffmpeg (about 0.1 s,
 * about 2 KB for 640x360), then looped by VideoOutput with new timestamps. Baseline profile, no B-frames,
 * access unit delimiters so it can be cut into frames without parsing slices.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { GeneratedVideo } from '../../plugin/media/timeline/video-output.js';

const run = promisify(execFile);

export interface BlackGopOptions {
  width: number;
  height: number;
  /** Low: a black picture needs few frames, and every frame costs a wake-up and a write. */
  fps: number;
  /** GOP length = keyframe interval (s). */
  seconds: number;
  ffmpegPath?: string;
}

export async function encodeBlackGop(o: BlackGopOptions): Promise<GeneratedVideo> {
  const frames = Math.round(o.fps * o.seconds);
  const { stdout } = await run(o.ffmpegPath ?? 'ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', `color=black:s=${o.width}x${o.height}:r=${o.fps}`,
    '-frames:v', String(frames), '-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'ultrafast', '-tune', 'zerolatency',
    '-g', String(frames), '-bf', '0', '-pix_fmt', 'yuv420p', '-x264-params', 'aud=1:repeat-headers=1', '-f', 'h264', 'pipe:1',
  ], { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024, timeout: 20_000 });
  return new GeneratedVideo(stdout as unknown as Buffer, o.fps);
}
