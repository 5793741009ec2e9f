/** AAC encoding in worker threads (AAC_ENCODER_THREADS): the same frames as on the main thread, in order, per call; finish, close, a dead thread. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AacEncoderPool } from '../../adapters/encoder-threads/aac-pool.js';
import { NativeAacEncoder } from '../../plugin/media/encode/aac/audio-encoder.js';
import type { AudioEncoder } from '../../plugin/media/ports.js';

const OPTS = { inputRate: 8000, outputRate: 48000, channels: 1, bitrate: 64000 };

/** A call's input: a tone of its own, in tick-sized chunks (1024 × 8000 / 48000 ≈ 171 samples). */
function chunks(freq: number, n: number): Int16Array[] {
  let k = 0;
  return Array.from({ length: n }, () => Int16Array.from({ length: 171 }, () => Math.round(8000 * Math.sin((2 * Math.PI * freq * k++) / 8000))));
}

function collect(enc: AudioEncoder): Buffer[] {
  const frames: Buffer[] = [];
  enc.on('frame', ({ raw, index }) => {
    assert.equal(index, frames.length, 'indexes in order from 0');
    frames.push(raw);
  });
  return frames;
}

async function reference(input: Int16Array[]): Promise<Buffer[]> {
  const enc = new NativeAacEncoder(OPTS);
  const frames = collect(enc);
  for (const c of input) enc.write(Int16Array.from(c));
  await enc.finish();
  return frames;
}

test('frames byte for byte as the main-thread encoder, for many calls written in the same ticks, over 2 threads', async () => {
  const pool = new AacEncoderPool(2);
  try {
    const inputs = [300, 440, 1000, 2500, 3100].map((f) => chunks(f, 120));
    const encs = inputs.map(() => pool.factory(OPTS));
    assert.deepEqual(pool.load, [3, 2], 'placed on the least loaded thread');
    assert.deepEqual(encs[0]!.audioSpecificConfig, new NativeAacEncoder(OPTS).audioSpecificConfig);
    const got = encs.map(collect);
    for (let t = 0; t < 120; t++) {
      for (const [i, enc] of encs.entries()) enc.write(Int16Array.from(inputs[i]![t]!));
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(encs.map((e) => e.finish(2000)));
    for (const [i, input] of inputs.entries()) {
      const want = await reference(input);
      assert.equal(got[i]!.length, want.length, `call ${i}: frame count`);
      assert.ok(got[i]!.every((f, j) => f.equals(want[j]!)), `call ${i}: the same bytes`);
    }
    assert.deepEqual(pool.load, [0, 0], 'finished encoders leave their thread');
  } finally {
    await pool.close();
  }
});

test('close drops what is inside; a thread that dies fails its encoders and the next call gets a new one', async () => {
  const pool = new AacEncoderPool(1);
  try {
    const a = pool.factory(OPTS);
    const frames = collect(a);
    for (const c of chunks(440, 20)) a.write(c);
    await a.close();
    await new Promise((r) => setTimeout(r, 100));
    const after = frames.length;
    a.write(chunks(440, 1)[0]!);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(frames.length, after, 'nothing after close');

    const b = pool.factory(OPTS);
    const failed = new Promise<Error>((r) => b.once('error', r));
    await (pool as unknown as { threads: { worker: { terminate(): Promise<number> } }[] }).threads[0]!.worker.terminate();
    assert.match((await failed).message, /AAC encoder thread exited/);

    const c = pool.factory(OPTS);
    const cf = collect(c);
    for (const x of chunks(1000, 30)) c.write(x);
    await c.finish(2000);
    assert.ok(cf.length >= 5, `a new thread encodes (${cf.length} frames)`);
  } finally {
    await pool.close();
  }
});
