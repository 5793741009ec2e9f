import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { ffmpegFillVideo } from '../../adapters/ffmpeg/fill-video.js';
import type { FillVideoSpec } from '../../plugin/media/ports.js';
import { FillLibrary, slateText } from '../../plugin/media/timeline/fill-library.js';

const run = promisify(execFile);
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fill-test-'));
});
after(() => rm(dir, { recursive: true, force: true }));

/** Mean luma of the GOP's first picture, decoded by ffmpeg. */
async function meanLuma(frames: { avcc: Buffer }[], w: number, h: number): Promise<number> {
  const f = frames[0]!.avcc;
  const parts: Buffer[] = [];
  for (let o = 0; o < f.length;) {
    const n = f.readUInt32BE(o);
    parts.push(Buffer.from([0, 0, 0, 1]), f.subarray(o + 4, o + 4 + n));
    o += 4 + n;
  }
  const file = join(dir, `${Math.random()}.h264`);
  await (await import('node:fs/promises')).writeFile(file, Buffer.concat(parts));
  const { stdout } = await run('ffmpeg', ['-loglevel', 'error', '-i', file, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], { encoding: 'buffer', maxBuffer: 1 << 24 });
  const y = stdout as unknown as Buffer;
  assert.equal(y.length, w * h);
  return y.reduce((a, b) => a + b, 0) / y.length;
}

test('fill video: black and slate GOPs at the size and rate asked, one keyframe first, small', async () => {
  const enc = ffmpegFillVideo();
  const black = await enc({ kind: 'black', width: 640, height: 360, fps: 25, seconds: 2 });
  assert.equal(black.frames.length, 50);
  assert.deepEqual(black.frames.map((f) => f.keyframe).filter(Boolean).length, 1);
  assert.equal(black.frames[0]!.keyframe, true);
  assert.deepEqual([black.width, black.height, black.fps], [640, 360, 25]);
  const bytes = (g: typeof black) => g.frames.reduce((n, f) => n + f.avcc.length, 0);
  assert.ok(bytes(black) < 4000, `black GOP ${bytes(black)} bytes`);
  assert.ok((await meanLuma(black.frames, 640, 360)) < 20, 'black');

  // A name with every character the filter syntax treats specially: shown as text, nothing else.
  const slate = await enc({ kind: 'slate', width: 352, height: 288, fps: 25, seconds: 2, text: `O'Brien: 100% \\ {x} ; [a] %{pts}` });
  assert.deepEqual([slate.width, slate.height], [352, 288]);
  assert.equal(slate.frames[0]!.keyframe, true);
  const plain = await enc({ kind: 'slate', width: 352, height: 288, fps: 25, seconds: 2 });
  assert.ok((await meanLuma(slate.frames, 352, 288)) > (await meanLuma(plain.frames, 352, 288)) + 1, 'the name is drawn (white text raises the mean luma)');
  console.log(`# black 640x360: ${bytes(black)} B a GOP; slate 352x288: ${bytes(slate)} B`);

  const logo = join(dir, 'logo.png');
  await run('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', 'color=white:s=200x100', '-frames:v', '1', logo]);
  const withImage = await enc({ kind: 'slate', width: 640, height: 360, fps: 25, seconds: 2, text: 'Radio', image: logo });
  assert.ok((await meanLuma(withImage.frames, 640, 360)) > (await meanLuma(plain.frames, 352, 288)) + 10, 'the image is there');
  await assert.rejects(enc({ kind: 'slate', width: 640, height: 360, fps: 25, seconds: 2, image: join(dir, 'missing.png') }));
});

test('fill library: one encode per picture, shared; a failing slate falls back to black; none is none', async () => {
  const specs: FillVideoSpec[] = [];
  const real = ffmpegFillVideo();
  const lib = new FillLibrary({
    encode: async (s) => {
      specs.push(s);
      if (s.image) throw new Error('no such image');
      return real(s);
    },
    kind: 'slate', fps: 10, gopSeconds: 1, image: '/nonexistent.png',
  });
  const [a, b] = await Promise.all([lib.get(320, 180, 'Alice'), lib.get(320, 180, 'Alice')]);
  assert.ok(a && a === b, 'one encode for both');
  assert.deepEqual(specs.map((s) => s.kind), ['slate', 'black'], 'slate failed: black instead');
  assert.equal(lib.stats.failures, 1);
  // One encode at a time: a burst of names queues instead of taking every core.
  let running = 0;
  let most = 0;
  const queued = new FillLibrary({
    encode: async (s) => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      return real({ ...s, text: '' });
    },
    kind: 'slate', fps: 10, gopSeconds: 1,
  });
  const all = await Promise.all(['a', 'b', 'c', 'd'].map((n) => queued.get(320, 180, n)));
  assert.ok(all.every(Boolean));
  assert.equal(most, 1);
  // A burst of new calls' names beyond the queue (maxQueued) keep the nameless slate: one encode for all of them.
  const nameless = await queued.get(320, 180, '');
  const offers = ['e', 'f', 'g', 'h', 'i', 'j', 'k'].map((n) => queued.offer(320, 180, n));
  assert.equal(queued.stats.skippedBusy, 3, 'four queued, three beyond');
  const later = await Promise.all(offers.map((o) => o.later));
  assert.ok(later.slice(4).every((g) => g === nameless), 'those beyond get the nameless slate');
  assert.ok(later.slice(0, 4).every((g) => g && g !== nameless), 'the first four get their own');
  const none = new FillLibrary({ encode: real, kind: 'none', fps: 10, gopSeconds: 1 });
  assert.equal(await none.get(320, 180, 'x'), undefined);
  assert.equal(slateText('  a\u0000b\n\tc  '), 'a b c');
  assert.equal(slateText('x'.repeat(60)).length, 48);
});
