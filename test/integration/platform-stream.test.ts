/**
 * Every call is a stream YouTube and Facebook accept, judged from its first byte: the FLV nginx-rtmp
 * recorded from our publish, run through the same rules as `npm run check-stream`
 * (scripts/lib/stream-rules.ts), plus lip sync from the beep/flash signal where the far end sends it.
 *   - an audio-only call gets the slate: AAC + H.264, first keyframe within 1 s, keyframes ≤ 2.5 s, one size;
 *   - baresip-video (a real softphone: 352x288, keyframes ~10 s apart, deaf to FIR) over 60 s;
 *   - the stubborn far end (10 s GOP, ignores every request): transcode within 5 s, then ≤ 2.5 s, same size;
 *   - check-stream fails, naming the rule, on a call without video and on a 10 s GOP passed through.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { after, describe, test } from 'node:test';
import { analyzeFlvBytes, checkRules, summarize, type RuleResult, type StreamFacts } from '../../scripts/lib/stream-rules.js';
import { analyzeAvSync } from '../helpers/av-sync.js';
import { relayRecordedCall, startTestApp, type TestApp } from '../helpers/app.js';
import { REPO_ROOT, uniqueId } from '../helpers/sandbox.js';

const run = promisify(execFile);
/** One app at a time (they share the media-leg SIP port): a test with other settings replaces the last one. */
let current: TestApp | undefined;
after(() => current?.stop());
async function app(overrides: Record<string, string> = {}): Promise<TestApp> {
  await current?.stop();
  current = undefined;
  current = await startTestApp(overrides);
  return current;
}

function judge(recording: string): { facts: StreamFacts; results: RuleResult[]; failed: string[] } {
  const facts = analyzeFlvBytes(readFileSync(recording));
  const results = checkRules(facts);
  const failed = summarize(results).errors.map((r) => `${r.rule}: ${r.detail}`);
  for (const r of results) console.log(`#   ${r.ok ? 'pass' : r.level === 'error' ? 'FAIL' : 'warn'} ${r.rule}: ${r.detail}`);
  return { facts, results, failed };
}

const keyGaps = (f: StreamFacts) => f.video?.keyframeInterval.maxMs ?? Infinity;

describe('platform rules, from the server\'s recording', () => {
  let t: TestApp;

  test('audio-only call: the slate from the first second, AAC + H.264, keyframes every 2 s, one size', { timeout: 60_000 }, async () => {
    t = await app();
    const { view, key, recording } = await relayRecordedCall(t, {
      callId: uniqueId('slate'), callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, hasVideo: 'false',
      visibleName: 'Town hall caller', rtmpStream: uniqueId('slate'),
    }, 8);
    assert.deepEqual(view.video, { mode: 'passthrough', source: 'generated', size: '640x360' });
    // The output's own health says the same as the recording (what /push/find, the console and /metrics show).
    const health = t.app.calls.get(view.callId)!.pushes[0]!.push!.health.view();
    assert.equal(health.bothTracks, true);
    assert.equal(health.sizeChanges, 0);
    assert.equal(health.size, '640x360');
    assert.ok(health.maxKeyframeIntervalMs !== null && health.maxKeyframeIntervalMs <= 2100, `output keyframe interval ${health.maxKeyframeIntervalMs}`);
    const { facts, failed } = judge(recording);
    assert.deepEqual(failed, []);
    assert.ok(facts.video && facts.audio, 'both tracks');
    assert.ok(facts.video.firstKeyframeMs !== undefined && facts.video.firstKeyframeMs <= 1000, `first keyframe at ${facts.video.firstKeyframeMs} ms`);
    assert.ok(keyGaps(facts) <= 2500, `keyframe gap ${keyGaps(facts)} ms`);
    assert.equal(facts.video.distinctSizes, 1);
    assert.ok(facts.video.maxStepMs <= 100 && facts.audio.maxStepMs <= 100, `gaps: video ${facts.video.maxStepMs}, audio ${facts.audio.maxStepMs} ms`);
    await t.assertNoLeaks([key]);
  });

  test('check-stream passes on that recording (the CLI, as an operator runs it)', { timeout: 30_000 }, async () => {
    const { view, recording } = await relayRecordedCall(t, {
      callId: uniqueId('cli'), callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, rtmpStream: uniqueId('cli'),
    }, 4);
    assert.equal(view.video?.source, 'generated');
    const { stdout } = await run('node', [`${REPO_ROOT}/dist/scripts/check-stream.js`, recording]);
    assert.match(stdout, /result: PASS/);
  });

  test('VIDEO_FILL=none: an audio-only stream, which check-stream fails on both-tracks', { timeout: 30_000 }, async () => {
    const none = await app({ VIDEO_FILL: 'none' });
    const { view, recording } = await relayRecordedCall(none, {
      callId: uniqueId('none'), callee: 'softphone', sipDomain: '127.0.0.1', sipPort: none.env.BARESIP_PORT, rtmpStream: uniqueId('none'),
    }, 3);
    assert.equal(view.video, null);
    const r = await run('node', [`${REPO_ROOT}/dist/scripts/check-stream.js`, recording]).then(() => ({ code: 0, stdout: '' }), (e: { code: number; stdout: string }) => e);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL\s+both-tracks/);
  });
});

describe('real phones', () => {
  test('baresip-video over 60 s: keyframes ≤ 2.5 s apart, one size, A/V offset ≤ 80 ms', { timeout: 120_000 }, async () => {
    const t = await app();
    const { view, key, recording } = await relayRecordedCall(t, {
      callId: uniqueId('bv'), callee: 'videophone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_VIDEO_PORT, hasVideo: 'true', rtmpStream: uniqueId('bv'),
    }, 60);
    console.log(`# baresip-video: ${JSON.stringify(view.video)}; events ${view.events.filter((e) => e.type.startsWith('VIDEO')).map((e) => `${e.type} ${e.detail}`).join('; ')}`);
    const { facts, failed } = judge(recording);
    assert.deepEqual(failed, []);
    assert.ok(keyGaps(facts) <= 2500, `keyframe gap ${keyGaps(facts)} ms`);
    assert.equal(facts.video!.distinctSizes, 1, JSON.stringify(facts.video!.sizes));
    const rep = await analyzeAvSync(recording);
    const maxAbs = Math.max(...rep.offsetsMs.map(Math.abs));
    const mean = rep.offsetsMs.reduce((a, b) => a + Math.abs(b), 0) / Math.max(1, rep.offsetsMs.length);
    console.log(`# A/V offsets (ms): ${rep.offsetsMs.map((o) => o.toFixed(0)).join(' ')}; mean |offset| ${mean.toFixed(1)}, max ${maxAbs.toFixed(1)}; pairs ${rep.pairs.length}`);
    assert.ok(rep.pairs.length >= 20, `${rep.pairs.length} beep/flash pairs in 60 s`);
    assert.ok(maxAbs <= 80, `largest |A/V offset| ${maxAbs.toFixed(1)} ms`);
    await t.assertNoLeaks([key]);
  });

  test('the stubborn far end: transcode within 5 s, then keyframes ≤ 2.5 s apart and the size unchanged', { timeout: 90_000 }, async () => {
    const t = await app();
    const callId = uniqueId('st');
    const { view, key, recording } = await relayRecordedCall(t, {
      callId, callee: 'stubborn', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_STUBBORN_PORT, hasVideo: 'true', rtmpStream: uniqueId('st'),
    }, 25);
    assert.equal(view.video?.mode, 'transcode');
    const est = view.events.find((e) => e.type === 'ESTABLISHED')!;
    const tx = view.events.find((e) => e.type === 'VIDEO_TRANSCODE');
    assert.ok(tx, 'a VIDEO_TRANSCODE event');
    const after = (Date.parse(tx.at) - Date.parse(est.at)) / 1000;
    console.log(`# stubborn: transcode ${after.toFixed(2)} s after the answer (${tx.detail})`);
    assert.ok(after <= 5, `transcode after ${after} s`);
    const { facts, failed } = judge(recording);
    assert.deepEqual(failed, []);
    assert.equal(facts.video!.distinctSizes, 1);
    await t.assertNoLeaks([key]);
  });

  test('VIDEO_TRANSCODE=never with the stubborn far end: check-stream fails on keyframe-interval', { timeout: 60_000 }, async () => {
    const t = await app({ VIDEO_TRANSCODE: 'never' });
    const { recording } = await relayRecordedCall(t, {
      callId: uniqueId('nv'), callee: 'stubborn', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_STUBBORN_PORT, hasVideo: 'true', rtmpStream: uniqueId('nv'),
    }, 24);
    const r = await run('node', [`${REPO_ROOT}/dist/scripts/check-stream.js`, recording]).then(() => ({ code: 0, stdout: '' }), (e: { code: number; stdout: string }) => e);
    assert.equal(r.code, 1);
    // The phone's own GOP, passed through (its first IDR came at 10 s: the fill until then), and its own size.
    assert.match(r.stdout, /FAIL\s+keyframe-interval\s+largest keyframe gap (9|10)\.\d+ s/);
    assert.match(r.stdout, /FAIL\s+one-size/);
  });
});
