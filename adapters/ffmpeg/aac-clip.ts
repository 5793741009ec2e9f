/**
 * A sound file, or silence, encoded once into raw AAC frames with the live encoder's settings
 * (aac-encoder.ts), so its frames can be spliced into a call's stream under the same sequence header.
 */
import { AdtsSplitter, audioSpecificConfig } from '../../plugin/media/encode/adts.js';
import type { AacClip, AacClipEncoder } from '../../plugin/media/ports.js';
import { ffmpegSeconds, MAX_AUDIO_SECONDS, runFfmpeg } from './run.js';

export interface AacClipEncoderOptions {
  ffmpegPath?: string;
  timeoutMs?: number;
}

const SAMPLES_PER_FRAME = 1024;
/** Largest raw_data_block: 6144 bits per channel (ISO/IEC 14496-3 §4.5.3.2), plus a 9-byte header. */
const maxFrameBytes = (channels: number) => (6144 / 8) * channels + 9;

export function aacClipEncoder(opts: AacClipEncoderOptions = {}): AacClipEncoder {
  return async (input, format) => {
    const { sampleRate, channels, bitrate } = format;
    // Same object type as FfmpegAacEncoder announces (1 = AAC-LC in ADTS profile numbering); throws on a bad rate.
    const asc = audioSpecificConfig(1, sampleRate, channels);
    if (channels !== 1 && channels !== 2) throw new RangeError(`AAC clip: ${channels} channels (1 or 2)`);
    if (!(Number.isInteger(bitrate) && bitrate > 0)) throw new RangeError(`AAC clip: bitrate ${bitrate}`);

    let source: string[];
    let what: string;
    if ('file' in input) {
      // "file:" so a name like "http:x" or "concat:a|b" stays a local file; the whitelist keeps playlist
      // formats (HLS, concat) from reaching the network.
      source = ['-protocol_whitelist', 'file', '-i', `file:${input.file}`];
      what = `encoding ${input.file}`;
    } else {
      const ms = input.silenceMs;
      // ffmpeg reads "-t 0" as "no limit".
      if (!(Number.isFinite(ms) && ms > 0)) throw new RangeError(`AAC clip: silenceMs ${ms}`);
      if (ms > MAX_AUDIO_SECONDS * 1000) throw new RangeError(`AAC clip: silence longer than ${MAX_AUDIO_SECONDS / 60} minutes`);
      source = ['-f', 'lavfi', '-t', ffmpegSeconds(ms / 1000), '-i', `anullsrc=r=${sampleRate}:cl=${channels === 1 ? 'mono' : 'stereo'}`];
      what = `encoding ${ms} ms of silence`;
    }

    // One second past the cap, so "longer than the cap" is seen without encoding all of a long file.
    const maxFrames = Math.ceil(((MAX_AUDIO_SECONDS + 1) * sampleRate) / SAMPLES_PER_FRAME) + 2;
    const adts = await runFfmpeg([
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      ...source,
      '-map', '0:a:0',
      '-c:a', 'aac', '-aac_coder', 'fast', '-b:a', String(bitrate),
      '-ar', String(sampleRate), '-ac', String(channels),
      '-t', String(MAX_AUDIO_SECONDS + 1),
      '-f', 'adts', 'pipe:1',
    ], { what, maxBytes: maxFrames * maxFrameBytes(channels), timeoutMs: opts.timeoutMs, ffmpegPath: opts.ffmpegPath });

    const splitter = new AdtsSplitter();
    const parsed = splitter.push(adts);
    if (parsed.length === 0) throw new Error(`ffmpeg produced no AAC frames ${what} (no audio?)`);
    if (splitter.pendingBytes > 0 || splitter.stats.resyncBytes > 0) {
      throw new Error(`ffmpeg produced malformed ADTS ${what} (${splitter.stats.resyncBytes} bytes skipped, ${splitter.pendingBytes} left over)`);
    }
    for (const f of parsed) {
      if (f.profile !== 1 || f.sampleRate !== sampleRate || f.channels !== channels) {
        throw new Error(`ffmpeg produced AAC profile ${f.profile} ${f.sampleRate} Hz ${f.channels} ch ${what}, expected LC ${sampleRate} Hz ${channels} ch`);
      }
    }
    // Priming (1024) plus the last frame's padding: a file of exactly the cap still fits.
    if (parsed.length * SAMPLES_PER_FRAME > MAX_AUDIO_SECONDS * sampleRate + 2 * SAMPLES_PER_FRAME) {
      throw new Error(`sound is longer than ${MAX_AUDIO_SECONDS / 60} minutes (${what})`);
    }
    // Views of one buffer: the whole clip is a single allocation.
    const clip: AacClip = { audioSpecificConfig: asc, frames: parsed.map((f) => f.raw) };
    return clip;
  };
}

export const encodeAacClip: AacClipEncoder = aacClipEncoder();
