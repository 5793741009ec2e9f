/**
 * The fill video (what the stream shows while the caller sends none): one GOP, encoded once with ffmpeg
 * and looped by VideoOutput with new timestamps. A black picture, or a slate: a still picture with the
 * call's name and, optionally, the operator's image. A still picture costs one IDR and then skip frames
 * (640x360: about 2 KB a GOP for black, 10-30 KB for a slate), so looping it costs no encoding at all.
 * Baseline profile, no B-frames, access unit delimiters so it can be cut into frames without parsing slices.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { FillVideoEncoder, FillVideoSpec } from '../../plugin/media/ports.js';
import { GeneratedVideo } from '../../plugin/media/timeline/generated-video.js';

const run = promisify(execFile);

/** Debian's fonts-dejavu-core, then fontconfig's default sans. */
const FONT_FILES = ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/dejavu/DejaVuSans.ttf'];
const BACKGROUND = '0x1c2733';

export function ffmpegFillVideo(opts: { ffmpegPath?: string } = {}): FillVideoEncoder {
  return (spec) => encodeFill(spec, opts.ffmpegPath ?? 'ffmpeg');
}

async function encodeFill(s: FillVideoSpec, ffmpeg: string): Promise<GeneratedVideo> {
  const frames = Math.max(1, Math.round(s.fps * s.seconds));
  // The text goes through a file: nothing a caller's name contains can reach the filter graph's syntax.
  const dir = s.kind === 'slate' ? await mkdtemp(join(tmpdir(), 'sar-slate-')) : undefined;
  try {
    const inputs = ['-f', 'lavfi', '-i', `color=c=${s.kind === 'black' ? 'black' : BACKGROUND}:s=${s.width}x${s.height}:r=${s.fps}`];
    let graph = '[0:v]null[bg]';
    if (s.kind === 'slate' && s.image) {
      inputs.push('-loop', '1', '-framerate', String(s.fps), '-i', s.image);
      // The image in the upper part (at most 80 % wide, 55 % high), the name below it.
      graph = `[1:v]scale=w=${Math.floor(s.width * 0.8)}:h=${Math.floor(s.height * 0.55)}:force_original_aspect_ratio=decrease[img];` +
        `[0:v][img]overlay=x=(W-w)/2:y=H*0.08:shortest=1[bg]`;
    }
    if (dir && s.text) {
      const textFile = join(dir, 'name.txt');
      await writeFile(textFile, s.text);
      const font = FONT_FILES.find((f) => existsSync(f));
      // A twelfth of the height, smaller for a long name so it fits the width (a glyph is ~0.6 em wide).
      const size = Math.max(10, Math.min(Math.round(s.height / 12), Math.floor((s.width * 0.9) / (0.6 * [...s.text].length))));
      const y = s.image ? 'h*0.72' : '(h-text_h)/2';
      graph += `;[bg]drawtext=${font ? `fontfile=${font}` : 'font=Sans'}:textfile=${textFile}:expansion=none:fontcolor=white:fontsize=${size}:x=(w-text_w)/2:y=${y}[out]`;
    } else graph += ';[bg]null[out]';
    const job = run(ffmpeg, [
      '-nostdin', '-loglevel', 'error', ...inputs, '-filter_complex', graph, '-map', '[out]',
      '-frames:v', String(frames), '-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'veryfast', '-tune', 'stillimage', '-crf', '20',
      '-g', String(frames), '-keyint_min', String(frames), '-sc_threshold', '0', '-bf', '0', '-pix_fmt', 'yuv420p',
      '-x264-params', 'aud=1:repeat-headers=1', '-f', 'h264', 'pipe:1',
    ], { encoding: 'buffer', maxBuffer: 32 * 1024 * 1024, timeout: 20_000 });
    // ~0.3 CPU-s each (mostly ffmpeg's start-up), one per new name: at the lowest priority, a burst of new
    // calls' slates only takes what the live calls leave (measured at 50 calls: 381 audio re-anchors at
    // normal priority, 59 at the lowest).
    if (job.child.pid !== undefined) {
      try {
        setPriority(job.child.pid, 19);
      } catch {
        // gone already
      }
    }
    const { stdout } = await job;
    return new GeneratedVideo(stdout as unknown as Buffer, s.fps);
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}
