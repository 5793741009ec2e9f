/** What the sandbox's baresip heard: its sndfile module writes each call's received audio to dump-<time>-dec.wav. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './app.js';
import { decodePcm, dominantFrequency, rms } from './audio-analysis.js';
import { SANDBOX_RUN } from './sandbox.js';

/** The loudest second of what baresip heard in its last call (finished when the call ends): where, its level, its dominant frequency. */
export async function loudestHeardByBaresip(): Promise<{ freq: number; share: number; rms: number; at: number; seconds: number }> {
  const dumps = join(SANDBOX_RUN, 'baresip', 'dump');
  const wav = join(dumps, readdirSync(dumps).filter((f) => f.endsWith('-dec.wav')).sort().at(-1)!);
  await waitFor(async () => { try { return (await decodePcm(wav, 8000)).length > 8000; } catch { return false; } }, 5000, 'baresip\'s recording');
  const pcm = await decodePcm(wav, 8000);
  let best = 0;
  let at = 0;
  for (let s = 0; s + 8000 <= pcm.length; s += 800) {
    const e = rms(pcm, s, 8000);
    if (e > best) [best, at] = [e, s];
  }
  return { ...dominantFrequency(pcm, 8000, { start: at, seconds: 1 }), rms: best, at: at / 8000, seconds: pcm.length / 8000 };
}
