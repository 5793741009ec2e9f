/**
 * A sound file (any format ffmpeg reads) decoded to mono s16 PCM, for sounds played toward the SIP side.
 */
import type { PcmDecoder } from '../../plugin/media/ports.js';
import { MAX_AUDIO_SECONDS, runFfmpeg } from './run.js';

export interface PcmDecoderOptions {
  ffmpegPath?: string;
  timeoutMs?: number;
}

export function pcmDecoder(opts: PcmDecoderOptions = {}): PcmDecoder {
  return async (file, sampleRate) => {
    if (!(Number.isInteger(sampleRate) && sampleRate >= 1000 && sampleRate <= 192_000)) throw new RangeError(`PCM decode: sample rate ${sampleRate}`);
    const what = `decoding ${file}`;
    // One second past the cap, so "longer than the cap" is seen without decoding all of a long file.
    const maxSamples = (MAX_AUDIO_SECONDS + 1) * sampleRate;
    const bytes = await runFfmpeg([
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      // See aac-clip.ts: a local file only, whatever its name or format.
      '-protocol_whitelist', 'file', '-i', `file:${file}`,
      '-map', '0:a:0', '-ac', '1', '-ar', String(sampleRate),
      '-t', String(MAX_AUDIO_SECONDS + 1),
      '-c:a', 'pcm_s16le', '-f', 's16le', 'pipe:1',
    ], { what, maxBytes: 2 * maxSamples + 4096, timeoutMs: opts.timeoutMs, ffmpegPath: opts.ffmpegPath });

    const n = bytes.length >> 1;
    if (n === 0) throw new Error(`ffmpeg produced no audio ${what}`);
    // A tenth of a second of slack for the resampler's tail.
    if (n > MAX_AUDIO_SECONDS * sampleRate + sampleRate / 10) throw new Error(`sound is longer than ${MAX_AUDIO_SECONDS / 60} minutes (${what})`);
    // A copy: Buffer.concat's result may sit at an odd offset in a shared pool. s16le is host order (little-endian
    // hosts only, as in aac-encoder.ts).
    const out = new Int16Array(n);
    new Uint8Array(out.buffer).set(bytes.subarray(0, 2 * n));
    return out;
  };
}

export const decodePcm: PcmDecoder = pcmDecoder();
