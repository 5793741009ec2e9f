/**
 * /metrics label sets without the sandbox: every call status and push state (calls/states.ts) is exported
 * from the first scrape on, and "active" pushes are the live push states.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { CALL_STATUSES, LIVE_PUSH_STATES, PUSH_STATES } from '../../plugin/calls/states.js';
import { RECORDING_STATES } from '../../plugin/media/output/states.js';
import { MediaTicker } from '../../plugin/media/timeline/ticker.js';
import { AppMetrics } from '../../plugin/metrics/metrics.js';

/** Value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, key: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  return line === undefined ? undefined : Number(line.slice(key.length + 1));
}

test('calls by status and pushes by state: every label from calls/states.ts, active = the live states', async () => {
  const push = (status: string) => ({ view: () => ({ status }), push: undefined, target: { kind: 'rtmp' } });
  const call = { status: 'ESTABLISHED', incoming: false, reason: null, media: undefined, pushes: PUSH_STATES.map(push) };
  const byState = Object.fromEntries(RECORDING_STATES.map((st) => [st, 0]));
  const ticker = new MediaTicker(20);
  ticker.late.add(3);
  ticker.work.add(12);
  const calls = { changes: new EventEmitter(), list: () => [call], recordingStats: () => ({ byState, started: 0, failed: 0, writtenBytes: 0, seconds: 0 }), ticker };
  const text = await new AppMetrics(calls as never, { jitterDepthMs: 60 }).scrape();
  // The output clock's timing: how late its ticks ran, how long their work took.
  assert.equal(sample(text, 'sip_as_rtmp_media_tick_late_seconds_bucket{le="0.002"}'), 0);
  assert.equal(sample(text, 'sip_as_rtmp_media_tick_late_seconds_bucket{le="0.003"}'), 1);
  assert.equal(sample(text, 'sip_as_rtmp_media_tick_work_seconds_bucket{le="0.015"}'), 1);
  assert.equal(sample(text, 'sip_as_rtmp_media_tick_work_seconds_count'), 1);
  for (const s of CALL_STATUSES) assert.equal(sample(text, `sip_as_rtmp_calls{status="${s}"}`), s === 'ESTABLISHED' ? 1 : 0, s);
  for (const s of PUSH_STATES) assert.equal(sample(text, `sip_as_rtmp_pushes{state="${s}"}`), 1, s);
  assert.equal(sample(text, 'sip_as_rtmp_pushes_active'), LIVE_PUSH_STATES.length);
  assert.equal(sample(text, 'sip_as_rtmp_outputs_active{kind="rtmp"}'), LIVE_PUSH_STATES.length);
  assert.equal(sample(text, 'sip_as_rtmp_outputs_active{kind="srt"}'), 0);
  for (const s of RECORDING_STATES) assert.equal(sample(text, `sip_as_rtmp_recordings{state="${s}"}`), 0, s);
  assert.equal(sample(text, 'sip_as_rtmp_recording_bytes_total'), 0);
});
