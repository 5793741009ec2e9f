import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeAdts, encodeFfmpeg, encodeNative, hasFfmpegFlite, idealResample, measure, speech } from '../helpers/aac-quality.js';

// Our encoder against the reference path (ffmpeg `-aac_coder fast`, as adapters/ffmpeg/aac-encoder.ts
// runs it) on ~27 s of synthesized speech at the app's defaults (48 kHz mono, 64 kb/s), for both kinds
// of caller: 8 kHz (G.711) and 16 kHz (L16). Both streams are decoded by ffmpeg and aligned
// sample-exact on an ideal upsampling of the input.

const needFlite = { skip: hasFfmpegFlite ? false : 'ffmpeg with the flite source not installed' };
const cache = join(tmpdir(), 'sip-as-rtmp-aac-quality');

for (const rate of [8000, 16000] as const) {
  test(`speech from ${rate / 1000} kHz callers, 48 kHz mono 64 kb/s: SNR ≥ ffmpeg fast's − 1 dB, level within 0.5 %`, needFlite, (t) => {
    const x = speech(cache, rate);
    const ref = idealResample(x, rate, 48000);
    encodeNative(x, rate); // warm-up, so the time printed is the JIT-compiled encoder's
    const native = encodeNative(x, rate);
    const ours = measure(decodeAdts(native.stream), ref);
    const theirs = measure(decodeAdts(encodeFfmpeg(x, rate)), ref);
    const seconds = x.length / rate;
    const kbps = (n: number): string => ((n * 8) / seconds / 1000).toFixed(1);
    t.diagnostic(`native: SNR ${ours.snrDb.toFixed(2)} dB, level ${ours.gain.toFixed(4)}, ${kbps(native.rawBytes)} kb/s, ${native.usPerFrame.toFixed(1)} µs/frame`);
    t.diagnostic(`ffmpeg fast: SNR ${theirs.snrDb.toFixed(2)} dB, level ${theirs.gain.toFixed(4)}`);
    assert.equal(ours.lag, 1024, 'native delay: one frame');
    const frames = (native.stream.length - native.rawBytes) / 7; // one ADTS header each
    assert.ok(native.rawBytes * 8 <= (frames * 1024 * 64000) / 48000, `native used ${kbps(native.rawBytes)} kb/s`); // no SNR bought with bits
    assert.ok(ours.snrDb >= theirs.snrDb - 1, `native ${ours.snrDb.toFixed(2)} dB vs ffmpeg fast ${theirs.snrDb.toFixed(2)} dB`);
    assert.ok(Math.abs(ours.gain - 1) <= 0.005, `level (least-squares gain) ${ours.gain.toFixed(4)}`);
    assert.ok(Math.abs(ours.rmsRatio - 1) <= 0.005, `level (RMS ratio) ${ours.rmsRatio.toFixed(4)}`);
  });
}
