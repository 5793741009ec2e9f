import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { aacClipEncoder, encodeAacClip } from '../../adapters/ffmpeg/aac-clip.js';
import { decodePcm } from '../../adapters/ffmpeg/pcm-decode.js';
import { FfmpegError, runFfmpeg } from '../../adapters/ffmpeg/run.js';
import { AAC_SAMPLE_RATES, audioSpecificConfig } from '../../plugin/media/encode/adts.js';
import { SoundError, SoundLibrary } from '../../plugin/media/sounds.js';
import type { AacClipEncoder, AacClipFormat, PcmDecoder } from '../../plugin/media/ports.js';

const FORMAT: AacClipFormat = { sampleRate: 48000, channels: 1, bitrate: 64000 };
let root: string;
let dir: string;

const ffmpeg = (args: string[]) => execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y', ...args]);

before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'sounds-test-'));
  dir = path.join(root, 'sounds');
  mkdirSync(path.join(dir, 'sub'), { recursive: true });
  ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000:duration=1', '-ac', '1', path.join(dir, 'tone.wav')]);
  ffmpeg(['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=8000:duration=0.2', path.join(root, 'secret.wav')]);
  symlinkSync(path.join(root, 'secret.wav'), path.join(dir, 'escape.wav'));
  symlinkSync('tone.wav', path.join(dir, 'alias.wav')); // inside: allowed
  writeFileSync(path.join(dir, 'notes.txt'), 'this is not audio\n'.repeat(50));
  writeFileSync(path.join(dir, 'broken.wav'), 'RIFF1234WAVEjunkjunk');
  writeFileSync(path.join(dir, 'empty.wav'), '');
});

after(() => rmSync(root, { recursive: true, force: true }));

const library = (o: { encodeClip?: AacClipEncoder; decodePcm?: PcmDecoder; maxCached?: number } = {}) =>
  new SoundLibrary({ dir, encodeClip: o.encodeClip ?? encodeAacClip, decodePcm: o.decodePcm ?? decodePcm, maxCached: o.maxCached });

/** An ADTS header (AAC-LC, no CRC) in front of each raw frame, so ffmpeg can decode them. */
function toAdts(frames: Buffer[], sampleRate: number, channels: number): Buffer {
  const rateIndex = AAC_SAMPLE_RATES.indexOf(sampleRate);
  return Buffer.concat(frames.flatMap((raw) => {
    const len = raw.length + 7;
    const h = Buffer.from([0xff, 0xf1, (1 << 6) | (rateIndex << 2) | (channels >> 2), ((channels & 3) << 6) | (len >> 11), (len >> 3) & 0xff, ((len & 7) << 5) | 0x1f, 0xfc]);
    return [h, raw];
  }));
}

function decodeAdts(adts: Buffer, rate: number): Int16Array {
  const file = path.join(root, `decode-${process.hrtime.bigint()}.aac`);
  writeFileSync(file, adts);
  const out = execFileSync('ffmpeg', ['-nostdin', '-loglevel', 'error', '-i', file, '-ac', '1', '-ar', String(rate), '-f', 's16le', 'pipe:1']);
  return new Int16Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}

function goertzel(x: Int16Array, freq: number, rate: number): number {
  const k = 2 * Math.cos((2 * Math.PI * freq) / rate);
  let s1 = 0;
  let s2 = 0;
  for (const v of x) {
    const s0 = v + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - k * s1 * s2;
}

/** Strongest frequency on a 50 Hz grid up to 4 kHz. */
function dominant(x: Int16Array, rate: number): number {
  let best = 0;
  let bestP = -1;
  for (let f = 50; f <= 4000; f += 50) {
    const p = goertzel(x, f, rate);
    if (p > bestP) [best, bestP] = [f, p];
  }
  return best;
}

async function refused(p: Promise<unknown>, reason: SoundError['reason']): Promise<SoundError> {
  const err = await p.then(() => assert.fail('resolved'), (e: unknown) => e);
  assert.ok(err instanceof SoundError, `not a SoundError: ${String(err)}`);
  assert.equal(err.reason, reason, err.message);
  assert.ok(!err.message.includes(root), `message reveals the directory: ${err.message}`);
  return err;
}

test('clip: 1 s tone → ~47 AAC-LC frames under the live encoder\'s AudioSpecificConfig, and decodes back to 1 kHz', async () => {
  const t0 = performance.now();
  const clip = await library().clip('tone.wav', FORMAT);
  const ms = performance.now() - t0;
  assert.ok(Math.abs(clip.frames.length - 48000 / 1024) <= 3, `${clip.frames.length} frames`);
  assert.deepEqual(clip.audioSpecificConfig, audioSpecificConfig(1, 48000, 1)); // ADTS profile 1 = AAC-LC
  assert.equal(clip.audioSpecificConfig.toString('hex'), '1188'); // object type 2 (LC), 48 kHz, mono
  for (const f of clip.frames) assert.ok(f.length > 0 && f[0] !== 0xff, 'raw frames, no ADTS header');
  const pcm = decodeAdts(toAdts(clip.frames, 48000, 1), 48000);
  assert.equal(dominant(pcm.subarray(4800, 43200), 48000), 1000);
  console.log(`# clip of 1 s: ${ms.toFixed(0)} ms, ${clip.frames.length} frames, ${clip.frames.reduce((n, f) => n + f.length, 0)} bytes`);
});

test('clip: stereo 44.1 kHz agrees with its headers; bad formats are refused before ffmpeg runs', async () => {
  const clip = await encodeAacClip({ file: path.join(dir, 'tone.wav') }, { sampleRate: 44100, channels: 2, bitrate: 96000 });
  assert.deepEqual(clip.audioSpecificConfig, audioSpecificConfig(1, 44100, 2));
  assert.ok(Math.abs(clip.frames.length - 44100 / 1024) <= 3);
  await assert.rejects(encodeAacClip({ silenceMs: 100 }, { ...FORMAT, sampleRate: 47000 }), RangeError);
  await assert.rejects(encodeAacClip({ silenceMs: 0 }, FORMAT), RangeError); // ffmpeg reads -t 0 as endless
  await assert.rejects(encodeAacClip({ silenceMs: 600_001 }, FORMAT), /longer than 10 minutes/);
});

test('silence: one small steady-state frame that decodes to silence, encoded once per format', async () => {
  let calls = 0;
  const counting: AacClipEncoder = (input, format) => {
    calls++;
    return encodeAacClip(input, format);
  };
  const lib = library({ encodeClip: counting });
  const t0 = performance.now();
  const [frame, again] = await Promise.all([lib.silence(FORMAT), lib.silence(FORMAT)]);
  const ms = performance.now() - t0;
  assert.equal(frame, again);
  assert.equal(calls, 1);
  assert.ok(frame.length > 0 && frame.length <= 16, `${frame.length} bytes`);
  const first = (await encodeAacClip({ silenceMs: 100 }, FORMAT)).frames[0]!;
  assert.notDeepEqual(frame, first, 'not the priming frame');
  const pcm = decodeAdts(toAdts(Array.from({ length: 20 }, () => frame), 48000, 1), 48000);
  assert.ok(pcm.length >= 19 * 1024);
  assert.ok(pcm.every((v) => Math.abs(v) <= 1), 'silence');
  await lib.silence({ ...FORMAT, bitrate: 32000 });
  assert.equal(calls, 2);
  console.log(`# silence: ${ms.toFixed(0)} ms, ${frame.length} bytes (priming frame ${first.length})`);
});

test('pcm: 1 s at 16 kHz, dominant 1 kHz', async () => {
  const t0 = performance.now();
  const pcm = await library().pcm('tone.wav', 16000);
  const ms = performance.now() - t0;
  assert.ok(Math.abs(pcm.length - 16000) <= 32, `${pcm.length} samples`);
  assert.equal(pcm.byteOffset, 0);
  assert.equal(dominant(pcm, 16000), 1000);
  const peak = pcm.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assert.ok(peak > 1000, `peak ${peak}`);
  console.log(`# pcm of 1 s: ${ms.toFixed(0)} ms`);
});

test('resolve: real path inside the directory, symlinks inside it allowed', async () => {
  const lib = library();
  const tone = await lib.resolve('tone.wav');
  assert.equal(path.basename(tone), 'tone.wav');
  assert.equal(await lib.resolve('alias.wav'), tone);
  assert.equal(await lib.resolve('sub/../tone.wav'), tone);
  assert.equal(await lib.resolve('./tone.wav'), tone);
});

test('resolve: refusals, each with its reason and without the server path', async () => {
  const lib = library();
  const outside = await refused(lib.resolve('../x.wav'), 'outside');
  assert.match(outside.message, /soundFile "..\/x.wav" must name a file inside the sound directory/);
  await refused(lib.resolve('../secret.wav'), 'outside'); // exists out there: same answer as above
  await refused(lib.resolve('sub/../../secret.wav'), 'outside');
  await refused(lib.resolve('escape.wav'), 'outside'); // symlink pointing out
  await refused(lib.resolve('/etc/passwd'), 'invalid');
  await refused(lib.resolve(path.join(dir, 'tone.wav')), 'invalid'); // absolute, even inside
  await refused(lib.resolve('sub'), 'invalid');
  await refused(lib.resolve('.'), 'invalid');
  await refused(lib.resolve('missing.wav'), 'missing');
  await refused(lib.resolve('tone.wav/x'), 'missing'); // ENOTDIR
  await refused(lib.resolve('a\u0000b'), 'invalid');
  await refused(lib.resolve(''), 'invalid');
  // clip() and pcm() refuse the same way, before any ffmpeg run.
  let calls = 0;
  const never: AacClipEncoder = async () => {
    calls++;
    throw new Error('should not run');
  };
  await refused(library({ encodeClip: never }).clip('escape.wav', FORMAT), 'outside');
  await refused(library().pcm('../secret.wav', 8000), 'outside');
  assert.equal(calls, 0);
});

test('resolve: a missing sound directory is a server error that does not show its path', async () => {
  const lib = new SoundLibrary({ dir: path.join(root, 'nope'), encodeClip: encodeAacClip, decodePcm });
  await assert.rejects(lib.resolve('tone.wav'), (err: Error) => !(err instanceof SoundError) && /not available \(ENOENT\)/.test(err.message) && !err.message.includes(root));
});

test('cache: concurrent requests share one encode; keyed by format and mtime; LRU', async () => {
  let clips = 0;
  const countingClip: AacClipEncoder = (input, format) => {
    clips++;
    return encodeAacClip(input, format);
  };
  let pcms = 0;
  const countingPcm: PcmDecoder = (file, rate) => {
    pcms++;
    return decodePcm(file, rate);
  };
  const lib = library({ encodeClip: countingClip, decodePcm: countingPcm, maxCached: 2 });
  const [a, b] = await Promise.all([lib.clip('tone.wav', FORMAT), lib.clip('tone.wav', FORMAT)]);
  assert.equal(clips, 1);
  assert.equal(a, b);
  assert.equal(await lib.clip('alias.wav', FORMAT), a, 'same real path, same entry');
  assert.equal(clips, 1);
  await lib.clip('tone.wav', { ...FORMAT, bitrate: 32000 });
  assert.equal(clips, 2);
  // A rewritten file (new mtime) is encoded again.
  const later = new Date(Date.now() + 5000);
  utimesSync(path.join(dir, 'tone.wav'), later, later);
  assert.notEqual(await lib.clip('tone.wav', FORMAT), a);
  assert.equal(clips, 3);
  // LRU of 2: 16k, 8k, 16k (hit, now newest), 22.05k (evicts 8k), 8k again (miss).
  for (const rate of [16000, 8000, 16000, 22050, 8000]) await lib.pcm('tone.wav', rate);
  assert.equal(pcms, 4);
  // Failures are not cached.
  let failures = 0;
  const failing: AacClipEncoder = async () => {
    failures++;
    throw new Error('boom');
  };
  const bad = library({ encodeClip: failing });
  await assert.rejects(bad.clip('tone.wav', FORMAT), /boom/);
  await assert.rejects(bad.clip('tone.wav', FORMAT), /boom/);
  assert.equal(failures, 2);
});

test('files ffmpeg cannot use reject with its stderr, naming the file as the client did', async () => {
  const lib = library();
  const cases: [string, RegExp][] = [
    // ffmpeg reads a text file as a video (its "tty" demuxer).
    ['notes.txt', /^ffmpeg failed (encoding|decoding) notes\.txt \(exit code \d+\): no audio stream in the input$/],
    ['broken.wav', /^ffmpeg failed (encoding|decoding) broken\.wav \(exit code \d+\): file:broken\.wav: Invalid data found when processing input$/],
    ['empty.wav', /^ffmpeg failed (encoding|decoding) empty\.wav \(exit code \d+\): file:empty\.wav: Invalid data found when processing input$/],
  ];
  for (const [name, re] of cases) {
    for (const run of [() => lib.clip(name, FORMAT), () => lib.pcm(name, 8000)]) {
      await assert.rejects(run(), (err: Error) => {
        assert.match(err.message, re);
        assert.ok(!(err instanceof SoundError));
        return true;
      });
    }
  }
  // Direct calls keep the path (server side).
  await assert.rejects(decodePcm(path.join(dir, 'broken.wav'), 8000), new RegExp(`${path.join(dir, 'broken.wav')}: Invalid data found`));
});

test('runFfmpeg: timeout, output cap and a missing binary are reported', async () => {
  const endless = ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-f', 's16le', 'pipe:1'];
  const t0 = performance.now();
  await assert.rejects(runFfmpeg(['-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'anullsrc', '-f', 'null', '-'], { what: 'testing', maxBytes: 1000, timeoutMs: 300 }),
    (err: unknown) => err instanceof FfmpegError && err.kind === 'timeout' && /timed out after 0.3 s testing/.test(err.message));
  assert.ok(performance.now() - t0 < 3000);
  await assert.rejects(runFfmpeg(endless, { what: 'testing', maxBytes: 100_000 }), (err: unknown) => err instanceof FfmpegError && err.kind === 'too-large');
  await assert.rejects(runFfmpeg(endless, { what: 'testing', maxBytes: 1000, ffmpegPath: path.join(root, 'no-ffmpeg') }),
    (err: unknown) => err instanceof FfmpegError && err.kind === 'start' && /ENOENT/.test(err.message));
  const timeout = aacClipEncoder({ timeoutMs: 1 });
  await assert.rejects(timeout({ silenceMs: 100 }, FORMAT), /timed out/);
});

test('sounds of 10 minutes are accepted, longer ones refused without decoding all of them', async () => {
  // Noise: ffmpeg's "fast" AAC coder is several times slower on a pure tone.
  const make = (name: string, seconds: number) => {
    const file = path.join(root, name);
    ffmpeg(['-f', 'lavfi', '-i', `anoisesrc=d=${seconds}:c=pink:r=8000:a=0.2`, file]);
    return file;
  };
  const fmt = { sampleRate: 8000, channels: 1, bitrate: 24000 };
  const ten = make('ten.wav', 600);
  const long = make('long.wav', 620);
  const t0 = performance.now();
  assert.equal((await decodePcm(ten, 8000)).length, 600 * 8000);
  const t1 = performance.now();
  const clip = await encodeAacClip({ file: ten }, fmt);
  const t2 = performance.now();
  assert.ok(Math.abs(clip.frames.length - (600 * 8000) / 1024) <= 3, `${clip.frames.length} frames`);
  await assert.rejects(decodePcm(long, 8000), /^Error: sound is longer than 10 minutes \(decoding /);
  await assert.rejects(encodeAacClip({ file: long }, fmt), /^Error: sound is longer than 10 minutes \(encoding /);
  console.log(`# 600 s at 8 kHz: pcm ${(t1 - t0).toFixed(0)} ms, aac ${(t2 - t1).toFixed(0)} ms`);
});
