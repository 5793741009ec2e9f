/** The player side of tests: ffmpeg/ffprobe run against the sandbox's RTMP server. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { AdtsSplitter, audioSpecificConfig } from '../../plugin/media/encode/adts.js';

const run = promisify(execFile);

export interface ProbedStream {
  codec_type: string;
  codec_name: string;
  sample_rate?: string;
  channels?: number;
  width?: number;
  height?: number;
}

/** ffprobe a live URL: the streams it carries. */
export async function probeStreams(url: string, timeoutMs = 15_000): Promise<ProbedStream[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-rw_timeout', '8000000', '-show_streams', '-of', 'json', url], { timeout: timeoutMs });
  return (JSON.parse(stdout) as { streams: ProbedStream[] }).streams;
}

/** Publish a test pattern + tone with ffmpeg (a stand-in publisher for checking the server itself). */
export function publishTestPattern(url: string, seconds: number, extra: string[] = []): ChildProcess {
  return spawn('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', `testsrc=size=320x240:rate=25:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=48000:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-c:a', 'aac', ...extra, '-f', 'flv', url,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** ADTS (ffmpeg's AAC output) split into raw frames plus their AudioSpecificConfig, with the app's splitter. */
export function splitAdts(buf: Buffer): { asc: Buffer; sampleRate: number; channels: number; frames: Buffer[] } {
  const frames = new AdtsSplitter().push(buf);
  const first = frames[0];
  if (!first) throw new Error('no ADTS frames');
  return { asc: audioSpecificConfig(first.profile, first.sampleRate, first.channels), sampleRate: first.sampleRate, channels: first.channels, frames: frames.map((f) => f.raw) };
}
