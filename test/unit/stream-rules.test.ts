/**
 * The stream checker (scripts/lib/stream-rules.ts, scripts/check-stream.ts) on FLV files ffmpeg makes: a good
 * one (2 s GOP, AAC-LC 48 kHz stereo) passes every rule; audio-only, a 10 s GOP, a size change mid-stream
 * and AAC at 8 kHz each fail the rule they break, saying what and where; edited copies of the good file
 * break the timing rules. The CLI's exit codes, and a URL's stream key never printed.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FlvFileWriter, FlvTagType } from '../../plugin/media/output/flv.js';
import { FlvTagReader, parseVideoBody, type ReadTag } from '../../plugin/media/output/flv-reader.js';
import { analyzeFlv, analyzeFlvBytes, checkRules, summarize, type RuleResult } from '../../scripts/lib/stream-rules.js';

const run = promisify(execFile);
const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../scripts/check-stream.js');
const dir = mkdtempSync(join(tmpdir(), 'check-stream-'));
const file = (name: string): string => join(dir, `${name}.flv`);

/** testsrc + sine through libx264/aac into an FLV file. */
async function encode(name: string, o: { seconds: number; size?: string; gop?: number; rate?: number; video?: boolean; preset?: string }): Promise<void> {
  const video = o.video ?? true;
  await run('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-y',
    ...(video ? ['-f', 'lavfi', '-i', `testsrc=size=${o.size ?? '320x240'}:rate=25:duration=${o.seconds}`] : []),
    '-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=48000:duration=${o.seconds}`,
    // yuv420p: testsrc is RGB, which libx264 would encode as High 4:4:4.
    ...(video ? ['-c:v', 'libx264', '-preset', o.preset ?? 'ultrafast', '-pix_fmt', 'yuv420p', '-r', '25', '-g', String(o.gop ?? 50), '-sc_threshold', '0'] : ['-vn']),
    '-c:a', 'aac', '-ar', String(o.rate ?? 48000), '-ac', '2', '-f', 'flv', file(name),
  ]);
}

const tagsOf = (name: string): ReadTag[] => new FlvTagReader().push(readFileSync(file(name)));
const rule = (results: RuleResult[], name: string): RuleResult => {
  const r = results.find((x) => x.rule === name);
  assert.ok(r, `no rule ${name}`);
  return r;
};

/** Two encodes of different sizes in one FLV, the second's sequence headers where it starts (as a relay does). */
function concatenate(out: string, a: string, b: string): void {
  const w = new FlvFileWriter();
  const first = tagsOf(a).filter((t) => t.type !== FlvTagType.Script);
  const offset = Math.max(...first.map((t) => t.timestampMs)) + 40;
  const second = tagsOf(b).filter((t) => t.type !== FlvTagType.Script).map((t) => ({ ...t, timestampMs: t.timestampMs + offset }));
  writeFileSync(file(out), Buffer.concat([w.header(true, true), ...[...first, ...second].map((t) => w.tag(t.type, t.timestampMs, t.body))]));
}

before(async () => {
  await Promise.all([
    encode('good', { seconds: 6, preset: 'veryfast' }),
    encode('gop10', { seconds: 12, gop: 250 }),
    encode('audio-only', { seconds: 4, video: false }),
    encode('rate8k', { seconds: 4, rate: 8000 }),
    encode('small', { seconds: 4, size: '320x240' }),
    encode('large', { seconds: 4, size: '640x360' }),
  ]);
  concatenate('size-change', 'small', 'large');
  writeFileSync(join(dir, 'junk.flv'), 'this is not an FLV file at all');
});

after(() => rmSync(dir, { recursive: true, force: true }));

test('good stream (2 s GOP, H.264 High, AAC-LC 48 kHz stereo): every rule passes, facts as encoded', () => {
  const facts = analyzeFlvBytes(readFileSync(file('good')));
  const results = checkRules(facts);
  assert.deepEqual(results.filter((r) => !r.ok), [], JSON.stringify(results.filter((r) => !r.ok), null, 1));
  assert.equal(summarize(results).ok, true);
  const v = facts.video!;
  const a = facts.audio!;
  assert.equal(v.codecId, 7);
  assert.equal(v.profiles[0]?.name, 'High');
  assert.deepEqual(v.sizes.map((z) => [z.width, z.height]), [[320, 240]]);
  assert.equal(v.distinctSizes, 1);
  assert.equal(v.firstFrameIsKeyframe, true);
  assert.ok(v.firstKeyframeMs! <= 100, `first keyframe at ${v.firstKeyframeMs} ms`);
  assert.equal(v.keyframes, 3);
  assert.ok(Math.abs(v.keyframeInterval.maxMs - 2000) <= 40 && Math.abs(v.keyframeInterval.meanMs! - 2000) <= 40);
  assert.equal(v.expectedStepMs, 40);
  assert.deepEqual([a.objectTypes, a.sampleRates, a.channelCounts, a.samplesPerFrame], [[2], [48000], [2], 1024]);
  assert.equal(a.expectedStepMs, 21.3);
  assert.ok(a.maxStepMs <= 22 && v.maxStepMs <= 41);
  assert.ok(a.bitrateKbps > 50 && a.bitrateKbps < 256, `audio ${a.bitrateKbps} kb/s`);
  assert.ok(facts.avOffset!.maxMs < 100 && facts.avOffset!.p99Ms <= facts.avOffset!.maxMs);
  assert.ok(Math.abs(facts.durationMs - 6000) < 100);
});

test('audio-only: both-tracks fails naming the missing video; the video rules are skipped, not failed', () => {
  const results = checkRules(analyzeFlv(tagsOf('audio-only')));
  const both = rule(results, 'both-tracks');
  assert.equal(both.ok, false);
  assert.match(both.detail, /no video frames/);
  for (const name of ['video-codec', 'first-keyframe', 'keyframe-interval', 'one-size', 'av-offset']) {
    assert.equal(rule(results, name).skipped, true, name);
  }
  assert.deepEqual(summarize(results).errors.map((r) => r.rule), ['both-tracks']);
});

test('10 s GOP: keyframe-interval fails with the 10 s gap and where it is', () => {
  const results = checkRules(analyzeFlv(tagsOf('gop10')));
  const k = rule(results, 'keyframe-interval');
  assert.equal(k.ok, false);
  assert.match(k.detail, /largest keyframe gap 10\.0\d s between 0\.\d\d s and 10\.\d\d s/);
  assert.deepEqual(summarize(results).errors.map((r) => r.rule), ['keyframe-interval']);
  // The limit is an option: 11 s lets it through.
  assert.equal(rule(checkRules(analyzeFlv(tagsOf('gop10')), { maxKeyframeIntervalS: 11 }), 'keyframe-interval').ok, true);
});

test('a size change mid-stream (two encodes in one FLV): one-size fails naming both sizes and when', () => {
  const facts = analyzeFlv(tagsOf('size-change'));
  const results = checkRules(facts);
  const one = rule(results, 'one-size');
  assert.equal(one.ok, false);
  assert.match(one.detail, /2 sizes: 320x240 at 0\.\d\d s \(sequence-header\), 640x360 at 4\.\d\d s \(sequence-header\)/);
  assert.equal(facts.video!.configChanges, 1);
  assert.equal(rule(results, 'one-config').ok, false); // a warning
  assert.deepEqual(summarize(results).errors.map((r) => r.rule), ['one-size']);
});

test('AAC at 8 kHz: audio-rate fails with the rate from the AudioSpecificConfig', () => {
  const results = checkRules(analyzeFlv(tagsOf('rate8k')));
  const r = rule(results, 'audio-rate');
  assert.equal(r.ok, false);
  assert.match(r.detail, /^8000 Hz/);
  assert.deepEqual(summarize(results).errors.map((x) => x.rule), ['audio-rate']);
});

test('timing rules on edited copies of the good file: a gap, a step back, a late first keyframe, an A/V offset', () => {
  const good = tagsOf('good');
  const isAudio = (t: ReadTag): boolean => t.type === FlvTagType.Audio && t.body[1] === 1;
  const isVideoFrame = (t: ReadTag): boolean => t.type === FlvTagType.Video && parseVideoBody(t.body).kind === 'avc-frame';

  // 300 ms of audio frames missing from 2.0 s.
  const gap = checkRules(analyzeFlv(good.filter((t) => !(isAudio(t) && t.timestampMs >= 2000 && t.timestampMs < 2300))));
  assert.equal(rule(gap, 'timestamp-gaps').ok, false);
  assert.match(rule(gap, 'timestamp-gaps').detail, /audio 3\d\d ms before the frame at 2\.3\d s/);

  // One video frame 200 ms in the past.
  let n = 0;
  const back = checkRules(analyzeFlv(good.map((t) => (isVideoFrame(t) && ++n === 60 ? { ...t, timestampMs: t.timestampMs - 200 } : t))));
  assert.equal(rule(back, 'timestamps-monotonic').ok, false);
  assert.match(rule(back, 'timestamps-monotonic').detail, /video 1 time\(s\), first at 2\.\d\d s/);

  // Video frames 1.5 s late against audio (sequence headers at the start, as a relay whose video starts late).
  const late = analyzeFlv(good.map((t) => (isVideoFrame(t) ? { ...t, timestampMs: t.timestampMs + 1500 } : t)));
  const lateResults = checkRules(late);
  assert.equal(rule(lateResults, 'first-keyframe').ok, false);
  assert.match(rule(lateResults, 'first-keyframe').detail, /keyframe, at 1\.5\d s from the stream's start/);
  assert.equal(rule(lateResults, 'av-offset').ok, false);
  assert.ok(late.avOffset!.maxMs >= 1450 && late.avOffset!.p99Ms >= 1400, JSON.stringify(late.avOffset));
  // Joined live, the first keyframe can't be judged: a warning only.
  assert.equal(rule(checkRules(late, { joinedLate: true }), 'first-keyframe').level, 'warning');

  // The first video frame not a keyframe: drop the stream's first keyframe.
  const noKey = checkRules(analyzeFlv(good.filter((t) => !(isVideoFrame(t) && t.timestampMs < 100))));
  assert.match(rule(noKey, 'first-keyframe').detail, /is not a keyframe; the first keyframe comes at 2\.\d\d s/);
});

test('CLI: exit 0 on a good file, 1 on a failing one (FAIL line), 2 on something not FLV or missing; --json parses', async () => {
  const good = await run('node', [CLI, file('good')]);
  assert.match(good.stdout, /result: PASS/);
  const bad = await run('node', [CLI, file('gop10')]).then(() => assert.fail('exit 0'), (e: { code: number; stdout: string }) => e);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout, /FAIL {2}keyframe-interval +largest keyframe gap 10\.0/);
  for (const path of [join(dir, 'junk.flv'), join(dir, 'missing.flv')]) {
    const e = await run('node', [CLI, path]).then(() => assert.fail('exit 0'), (x: { code: number; stderr: string }) => x);
    assert.equal(e.code, 2, path);
  }
  const json = JSON.parse((await run('node', [CLI, file('good'), '--json'])).stdout) as { ok: boolean; results: RuleResult[] };
  assert.equal(json.ok, true);
  assert.ok(json.results.length >= 15);
});

test('CLI: a URL to a closed port fails fast with exit 2, and never prints the stream key', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  const key = 'SECRETKEY123456789';
  const e = await run('node', [CLI, `rtmp://user:pa55word@127.0.0.1:${port}/live/${key}?token=tok123`, '--seconds', '2'], { timeout: 20_000 })
    .then(() => assert.fail('exit 0'), (x: { code: number; stdout: string; stderr: string }) => x);
  assert.equal(e.code, 2);
  const out = e.stdout + e.stderr;
  assert.match(out, /SECR\*\*\*/);
  for (const secret of [key, 'pa55word', 'tok123']) assert.ok(!out.includes(secret), `${secret} printed: ${out}`);
});
