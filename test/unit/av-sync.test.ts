/**
 * test/helpers/av-sync.ts on files made by ffmpeg with a known A/V offset: the beep/flash pattern of
 * scripts/make-test-media.ts, with the beeps 40 ms before the flashes (audio leading), as AAC + H.264
 * in FLV, the way nginx-rtmp records a stream.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { analyzeAvSync, findFlashOnsets, findToneOnsets, pairOnsets } from '../helpers/av-sync.js';

const run = promisify(execFile);

/** Flashes at frames 12-14 of every 50 (0.48 s + 2k s, 120 ms); beeps `leadMs` earlier, 120 ms long. */
async function makeFlv(file: string, opts: { seconds: number; leadMs: number; dropFrames?: [number, number] }): Promise<void> {
  const beep = 0.48 - opts.leadMs / 1000;
  const select = opts.dropFrames ? `,select='not(between(n\\,${opts.dropFrames[0]}\\,${opts.dropFrames[1]}))'` : '';
  await run('ffmpeg', ['-nostdin', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `color=c=black:s=320x240:r=25:d=${opts.seconds},format=yuv420p,` +
      `drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='between(mod(n,50),12,14)'${select}`,
    '-f', 'lavfi', '-i', `aevalsrc='if(between(mod(t+2-${beep},2),0,0.12),0.5*sin(2*PI*1000*t),0)':s=48000:d=${opts.seconds}`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-keyint_min', '25', '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k', '-ar', '48000', '-fps_mode', 'passthrough', '-f', 'flv', file]);
}

describe('av-sync analysis', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'av-sync-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('measures a known 40 ms audio lead within ±5 ms; keyframes every 1 s; no gaps, no errors', async () => {
    const file = join(dir, 'lead40.flv');
    await makeFlv(file, { seconds: 8, leadMs: 40 });
    const r = await analyzeAvSync(file);
    console.log(`offsets (audio - video): ${r.offsetsMs.map((o) => o.toFixed(1)).join(', ')} ms`);
    assert.equal(r.pairs.length, 4, `pairs: ${JSON.stringify(r.pairs)}`);
    assert.deepEqual([r.unpairedAudio, r.unpairedVideo], [[], []]);
    for (const o of r.offsetsMs) assert.ok(Math.abs(o - -40) <= 5, `offset ${o.toFixed(1)} ms, expected -40`);
    // The flashes are 2 s apart on the file's timeline, the first 0.48 s after the first frame.
    const v0 = r.frames[0]!.pts;
    r.videoOnsets.forEach((t, k) => assert.ok(Math.abs(t - v0 - (0.48 + 2 * k)) < 0.001, `flash ${k} at ${t}`));
    assert.equal(r.frames.length, 200);
    assert.equal(r.frameStepMs, 40);
    assert.deepEqual(r.videoGaps, []);
    assert.equal(r.keyframeTimes.length, 8);
    for (const k of r.keyframeIntervals) assert.ok(Math.abs(k - 1) < 0.001, `keyframe interval ${k}`);
    assert.equal(r.decodeErrors, 0, r.decodeErrorLines.join('\n'));
    assert.ok(r.audioSeconds > 7.9, `audio ${r.audioSeconds} s`);
  });

  test('audio lagging by 80 ms reads +80 ms; a hole in the video shows as a timestamp gap', async () => {
    const file = join(dir, 'lag80.flv');
    // Frames 80-89 (3.2-3.6 s) dropped: a 440 ms step between frames 79 and 90.
    await makeFlv(file, { seconds: 6, leadMs: -80, dropFrames: [80, 89] });
    const r = await analyzeAvSync(file);
    assert.equal(r.pairs.length, 3);
    for (const o of r.offsetsMs) assert.ok(Math.abs(o - 80) <= 5, `offset ${o.toFixed(1)} ms, expected +80`);
    assert.equal(r.videoGaps.length, 1, JSON.stringify(r.videoGaps));
    assert.ok(Math.abs(r.videoGaps[0]!.ms - 440) < 1, `gap ${r.videoGaps[0]!.ms} ms`);
    assert.ok(Math.abs(r.videoGaps[0]!.at - r.frames[0]!.pts - 3.16) < 0.001);
  });

  test('counts decode errors in a damaged file', async () => {
    const good = join(dir, 'good.flv');
    await makeFlv(good, { seconds: 4, leadMs: 0 });
    const bytes = readFileSync(good);
    // Scribble over the middle of the file: the H.264 decoder reports what it cannot parse.
    for (let i = Math.floor(bytes.length * 0.4); i < Math.floor(bytes.length * 0.4) + 3000; i += 7) bytes[i] = 0xff;
    const bad = join(dir, 'bad.flv');
    writeFileSync(bad, bytes);
    const r = await analyzeAvSync(bad);
    assert.ok(r.decodeErrors > 0, 'errors counted');
    assert.equal(r.decodeErrorLines.length, r.decodeErrors);
  });

  test('onset finders and pairing on synthetic data', () => {
    const rate = 16000;
    const pcm = new Float32Array(rate * 3);
    // Beeps at exactly 0.5003 s and 2.5 s (sub-sample start), 100 ms of 1 kHz at 0.3.
    for (const t0 of [0.5003, 2.5]) {
      for (let i = Math.ceil(t0 * rate); i < (t0 + 0.1) * rate; i++) pcm[i] = 0.3 * Math.sin(2 * Math.PI * 1000 * (i / rate - t0));
    }
    const onsets = findToneOnsets(pcm, rate, 1000, 0.5, 0.02);
    assert.equal(onsets.length, 2);
    assert.ok(Math.abs(onsets[0]! - 0.5003) < 0.0003, `onset ${onsets[0]}`);
    assert.ok(Math.abs(onsets[1]! - 2.5) < 0.0003, `onset ${onsets[1]}`);
    assert.deepEqual(findToneOnsets(new Float32Array(rate), rate, 1000, 0.5, 0.02), [], 'silence: none');

    const frames = Array.from({ length: 100 }, (_, n) => ({ pts: n * 0.04, luma: n % 50 >= 12 && n % 50 <= 14 ? 235 : 16, key: n % 25 === 0, type: 'P' }));
    assert.deepEqual(findFlashOnsets(frames, 0.5, 60).map((t) => Number(t.toFixed(3))), [0.48, 2.48]);
    assert.deepEqual(findFlashOnsets(frames.map((f) => ({ ...f, luma: 16 })), 0.5, 60), [], 'all dark: none');
    // Frames 10-13 lost (a freeze until a keyframe): the flash shows from its third frame on, onset unknown.
    const holed = frames.filter((_, n) => n < 10 || n > 13);
    assert.deepEqual(findFlashOnsets(holed, 0.5, 60).map((t) => Number(t.toFixed(3))), [2.48], 'a flash after a hole is not timed');
    // The stream starting mid-flash: its first frame is no onset either.
    assert.deepEqual(findFlashOnsets(frames.slice(13), 0.5, 60).map((t) => Number(t.toFixed(3))), [2.48]);

    const p = pairOnsets([0.45, 2.5, 4.1], [0.48, 2.48, 6.48], 0.5);
    assert.deepEqual(p.pairs.map((x) => Math.round(x.offsetMs)), [-30, 20]);
    assert.deepEqual(p.unpairedAudio, [4.1]);
    assert.deepEqual(p.unpairedVideo, [6.48]);
  });
});
