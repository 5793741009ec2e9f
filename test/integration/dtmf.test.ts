/**
 * /call/send_dtmf and /call/inject_sound against the real sandbox, checked at the far end: baresip logs RFC 4733 events as
 * "received event: 'X' (end=1)" and SIP INFO digits as "call: received DTMF: 'X'". DTMF the far end
 * sends (sipp's RFC 4733 pcap of the digit 1) shows up in the Call object's events.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { loudestHeardByBaresip } from '../helpers/baresip-dump.js';
import { SANDBOX_RUN, uniqueId } from '../helpers/sandbox.js';

let t: TestApp;
before(async () => {
  t = await startTestApp({}, { sounds: { 'hello.wav': 'sine=frequency=440:sample_rate=44100:duration=1.5' } });
});
after(async () => {
  await t?.stop();
});

/** What a far end's log gains from now on. */
function tail(file: string): () => string {
  const from = statSync(file).size;
  return () => readFileSync(file).subarray(from).toString('utf8');
}

async function established(callee: string, port: string): Promise<{ callId: string; key: string }> {
  const callId = uniqueId('dtmf');
  const r = await t.post('/call/startup', { callId, callee, sipDomain: '127.0.0.1', sipPort: port, hasAudio: 'true', toStream: callId });
  assert.equal(r.status, 200, r.text);
  const est = await t.waitStatus(callId, ['ESTABLISHED', 'FAILED', 'BUSY']);
  assert.equal(est.status, 'ESTABLISHED', est.info);
  return { callId, key: t.app.calls.get(callId)!.key };
}

async function hangUp(callId: string, key: string): Promise<void> {
  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  await t.assertNoLeaks([key]);
}

test('RFC2833 and INFO: baresip receives the digits, each kind as such, in order', { timeout: 30_000 }, async () => {
  const log = tail(join(SANDBOX_RUN, 'logs', 'baresip.log'));
  const { callId, key } = await established('softphone', t.env.BARESIP_PORT!);
  const r = await t.post('/call/send_dtmf', { callId, dtmf: '12#', type: 'RFC2833' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.text, '', 'an empty body, as WCS answers');
  // Two requests at once: they go out one after the other, in order.
  const [a, b] = await Promise.all([
    t.post('/call/send_dtmf', { callId, dtmf: '*9', type: 'INFO' }),
    t.post('/call/send_dtmf', { callId, dtmf: 'a', type: 'info' }),
  ]);
  assert.deepEqual([a.status, b.status], [200, 200], a.text + b.text);
  await waitFor(async () => /received DTMF: 'A'/.test(log()), 5000, 'baresip got A by INFO');
  assert.equal([...log().matchAll(/received event: '(.)' \(end=1\)/g)].map((m) => m[1]).join(''), '12#', 'RFC 4733');
  assert.equal([...log().matchAll(/received DTMF: '(.)'/g)].map((m) => m[1]).join(''), '*9A', 'SIP INFO');
  const events = (await t.find(callId))!.events;
  assert.ok(events.some((e) => e.type === 'DTMF_SENT' && e.detail === '12# (RFC2833)'), JSON.stringify(events));
  await hangUp(callId, key);
});

test('DTMF from the far end (RFC 4733) is in the Call object', { timeout: 30_000 }, async () => {
  const { callId, key } = await established('dtmf', t.env.SIPP_DTMF_PORT!);
  await waitFor(async () => (await t.find(callId))!.events.some((e) => e.type === 'DTMF' && e.detail === '1'), 8000, 'the far end\'s digit 1 in the events');
  // Once: with MEDIA_BRIDGE=native the digit is read on the media leg, and a report of it from ARI too
  // (there is none for a natively relayed RFC 4733 digit) would count once.
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal((await t.find(callId))!.events.filter((e) => e.type === 'DTMF').length, 1, 'the digit 1, once');
  await hangUp(callId, key);
});

test('/call/send_dtmf errors: 400 naming the field, 404 for an unknown call', async () => {
  const post = async (body: unknown) => {
    const r = await t.post('/call/send_dtmf', body);
    return [r.status, (r.json as { field?: string } | undefined)?.field];
  };
  assert.deepEqual(await post({ dtmf: '1' }), [400, 'callId']);
  assert.deepEqual(await post({ callId: 'x' }), [400, 'dtmf']);
  assert.deepEqual(await post({ callId: 'x', dtmf: '1x' }), [400, 'dtmf']);
  assert.deepEqual(await post({ callId: 'x', dtmf: '1', type: 'INBAND' }), [400, 'type']);
  assert.deepEqual(await post({ callId: 'no-such-call', dtmf: '1' }), [404, 'callId']);
});

test('inject_sound: the far end hears the file (baresip records what it receives); errors name the field', { timeout: 30_000 }, async () => {
  const app = t;
  {
    const callId = uniqueId('snd');
    assert.equal((await app.post('/call/startup', { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: app.env.BARESIP_PORT, hasAudio: 'true', toStream: callId })).status, 200);
    assert.equal((await app.waitStatus(callId, ['ESTABLISHED', 'FAILED'])).status, 'ESTABLISHED');
    const key = app.app.calls.get(callId)!.key;
    const bad = async (body: unknown) => {
      const r = await app.post('/call/inject_sound', body);
      return [r.status, (r.json as { field?: string } | undefined)?.field];
    };
    assert.deepEqual(await bad({ callId }), [400, 'fileName']);
    assert.deepEqual(await bad({ callId, fileName: '../x.wav' }), [400, 'fileName']);
    assert.deepEqual(await bad({ callId, fileName: 'missing.wav' }), [404, 'fileName'], 'WCS: 404 File not found');
    assert.deepEqual(await bad({ callId: 'nope', fileName: 'hello.wav' }), [404, 'callId']);
    await new Promise((r) => setTimeout(r, 500));
    const r = await app.post('/call/inject_sound', { callId, fileName: 'hello.wav' });
    assert.equal(r.status, 200, r.text);
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal((await app.post('/call/terminate', { callId })).status, 200);
    await app.assertNoLeaks([key]);
    const f = await loudestHeardByBaresip();
    console.log(`# baresip received ${f.seconds.toFixed(1)} s; loudest second at ${f.at.toFixed(1)} s: ${f.freq.toFixed(0)} Hz (${(f.share * 100).toFixed(1)}%), rms ${f.rms.toFixed(3)}`);
    assert.ok(Math.abs(f.freq - 440) < 15 && f.share > 0.9 && f.rms > 0.05, JSON.stringify(f));
  }
});
