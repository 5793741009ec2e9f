/**
 * Long-call limits on a fake clock: the platform table, and CallLimits (calls/limits.ts) warning once,
 * LIMIT_WARNING_SEC before each limit, ending the call at its own limit, never the push at the platform's,
 * and leaving no timer behind. call-service.test.ts runs the same on real time with short limits.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Call } from '../../plugin/calls/call.js';
import type { Outcome } from '../../plugin/calls/causes.js';
import { CallLimits, durationLimit } from '../../plugin/calls/limits.js';
import { CallPush } from '../../plugin/calls/pushes.js';
import { validateStartup } from '../../plugin/calls/validate.js';
import { loadConfig } from '../../plugin/config.js';
import { createLogger } from '../../plugin/lib/log.js';
import { platformLimit } from '../../plugin/media/output/platform-limits.js';
import { parseOutputTarget } from '../../plugin/media/output/target.js';

test('platform session limits by RTMP host: Facebook 8 h, YouTube 12 h, whole labels only', () => {
  const facebook = { platform: 'facebook', limitSec: 8 * 3600 };
  const youtube = { platform: 'youtube', limitSec: 12 * 3600 };
  assert.deepEqual(platformLimit('live-api-s.facebook.com'), facebook);
  assert.deepEqual(platformLimit('rtmp-api.facebook.com'), facebook);
  assert.deepEqual(platformLimit('facebook.com'), facebook);
  assert.deepEqual(platformLimit('a.rtmp.youtube.com'), youtube);
  assert.deepEqual(platformLimit('B.RTMPS.YouTube.com.'), youtube, 'case and a trailing dot do not matter');
  for (const host of ['127.0.0.1', 'notfacebook.com', 'youtube.com.evil.example', 'rtmp.example.org', 'a.rtmp.youtube.co']) {
    assert.equal(platformLimit(host), undefined, host);
  }
});

const T0 = 1_700_000_000_000;
const SEC = 1000;

/** A call answered at T0 on a fake clock, its limits, and what they did: hooks, log lines, the end. */
function setup(env: Record<string, string>, body: Record<string, unknown> = {}) {
  const config = loadConfig({ ARI_PASSWORD: 't', ...env });
  const req = validateStartup({ callId: 'show-1', callee: 'far', sipDomain: 'pbx.example', toStream: 'show', appKey: 'k', ...body });
  const call = new Call('sar-test', req);
  call.maxDurationSec = durationLimit(req.maxDuration, config.calls.maxDurationSec);
  call.answeredAtMs = T0;
  const clock = { t: T0 };
  const hooks: [string, Record<string, unknown>][] = [];
  const ends: Outcome[] = [];
  let logged = '';
  const log = createLogger({ level: 'info', destination: new Writable({ write(c: Buffer, _e, cb) { logged += c.toString(); cb(); } }) });
  const limits = new CallLimits({
    config, log,
    hook: (method, b) => void hooks.push([method, b]),
    end: async (_call, o) => void ends.push(o),
  }, call, () => clock.t);
  const warnings = () => hooks.filter(([m]) => m === 'CallLimitWarningEvent').map(([, b]) => b);
  return { call, limits, clock, ends, warnings, logged: () => logged };
}

test('MAX_CALL_DURATION: one warning LIMIT_WARNING_SEC before, then the call ends as a terminate would', () => {
  const { limits, clock, ends, warnings } = setup({ MAX_CALL_DURATION: '7200' });
  try {
    limits.check();
    assert.equal(limits.wakeAtMs, T0 + 6900 * SEC, 'wakes for the warning');
    assert.deepEqual(warnings(), []);
    clock.t = T0 + 6900 * SEC;
    limits.check();
    limits.check(); // a second look (an output changed) warns no more
    assert.deepEqual(warnings(), [{
      callId: 'show-1', limit: 'maxCallDuration', limitSec: 7200, remainingSec: 300, endsAt: new Date(T0 + 7200 * SEC).toISOString(), appKey: 'k',
    }]);
    assert.equal(limits.wakeAtMs, T0 + 7200 * SEC, 'then for the end');
    assert.deepEqual(ends, []);
    clock.t = T0 + 7200 * SEC;
    limits.check();
    assert.deepEqual(ends, [{ status: 'FINISH', reason: 'NORMAL_CALL_CLEARING', sipStatus: 200, info: 'call reached MAX_CALL_DURATION (7200 s)' }]);
    assert.equal(limits.wakeAtMs, undefined, 'no timer left');
    assert.equal(warnings().length, 1);
  } finally {
    limits.stop();
  }
});

test('maxDuration shortens MAX_CALL_DURATION, never lifts it; a limit shorter than LIMIT_WARNING_SEC is warned of at once', () => {
  assert.deepEqual([durationLimit(60, 7200), durationLimit(9000, 7200), durationLimit(0, 7200), durationLimit(undefined, 7200), durationLimit(60, 0), durationLimit(undefined, 0)], [60, 7200, 7200, 7200, 60, 0]);
  const short = setup({ MAX_CALL_DURATION: '7200' }, { maxDuration: '60' });
  try {
    short.limits.check();
    assert.deepEqual(short.warnings().map((w) => [w.limitSec, w.remainingSec]), [[60, 60]]);
    assert.equal(short.limits.wakeAtMs, T0 + 60 * SEC);
    short.clock.t = T0 + 60 * SEC;
    short.limits.check();
    assert.equal(short.ends[0]?.info, 'call reached its maxDuration (60 s)');
  } finally {
    short.limits.stop();
  }
  const none = setup({}, { maxDuration: 0 });
  none.limits.check();
  assert.equal(none.limits.wakeAtMs, undefined, 'maxDuration 0 and no MAX_CALL_DURATION: no limit, no timer');
  assert.equal(none.call.view().maxDuration, null);
  const quiet = setup({ MAX_CALL_DURATION: '7200', LIMIT_WARNING_SEC: '0' });
  try {
    quiet.limits.check();
    assert.equal(quiet.limits.wakeAtMs, T0 + 7200 * SEC, 'LIMIT_WARNING_SEC=0: only the end');
  } finally {
    quiet.limits.stop();
  }
});

test('a platform session: shown from the first publish, warned of once with the URL masked, never ended by us', () => {
  const { call, limits, clock, ends, warnings, logged } = setup({});
  const key = 'FB-1234567890-0-AbCdEfGh';
  const cp = new CallPush('show-1', 'show', `rtmps://live-api-s.facebook.com:443/rtmp/${key}`,
    parseOutputTarget(`rtmps://live-api-s.facebook.com:443/rtmp/${key}`), {}, false);
  call.pushes.push(cp);
  try {
    assert.deepEqual([cp.view().platform, cp.view().sessionLimitSec, cp.view().sessionEndsAt], ['facebook', 28800, null], 'the end is unknown before it publishes');
    limits.check();
    assert.equal(limits.wakeAtMs, undefined, 'no MAX_CALL_DURATION, nothing published: no timer');
    clock.t = cp.publishedAtMs = T0 + 60 * SEC;
    limits.check(); // what push-desk's state change leads to
    const endsAt = new Date(T0 + 60 * SEC + 8 * 3600 * SEC).toISOString();
    assert.equal(cp.view().sessionEndsAt, endsAt);
    assert.equal(limits.wakeAtMs, T0 + 60 * SEC + (8 * 3600 - 300) * SEC);
    clock.t = limits.wakeAtMs;
    limits.check();
    const [w, ...more] = warnings();
    assert.deepEqual(more, []);
    assert.deepEqual(w, {
      callId: 'show-1', limit: 'platformSession', platform: 'facebook', limitSec: 28800, mediaSessionId: cp.id, remainingSec: 300, endsAt,
      appKey: 'k', streamName: 'show', rtmpUrl: cp.target.display,
    });
    assert.match(logged(), /"msg":"call limit approaching"/);
    assert.ok(!logged().includes(key) && !JSON.stringify(w).includes(key), 'the stream key is never shown');
    clock.t += 3600 * SEC;
    limits.check();
    assert.deepEqual(ends, [], 'the platform ends its session, not us');
    assert.equal(limits.wakeAtMs, undefined);
  } finally {
    limits.stop();
  }
});
