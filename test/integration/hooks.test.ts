/**
 * WCS REST hooks against the real sandbox: a local receiver gets a registered call's events in order
 * (registration, call statuses, stream statuses, DTMF); and a receiver that never answers does not slow
 * a call down.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { uniqueId } from '../helpers/sandbox.js';

type Hook = Record<string, unknown> & { method: string; sequence: number };

async function receiver(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` };
}

async function callAndHangUp(t: TestApp, body: Record<string, unknown>, holdMs: number): Promise<{ establishedAfterMs: number; key: string }> {
  const callId = body.callId as string;
  const t0 = Date.now();
  const r = await t.post('/call/startup', { hasAudio: 'true', rtmpUrl: t.env.RTMP_URL, rtmpStream: callId, ...body });
  assert.equal(r.status, 200, r.text);
  const est = await t.waitStatus(callId, ['ESTABLISHED', 'FAILED', 'BUSY'], 20_000);
  const establishedAfterMs = Date.now() - t0;
  assert.equal(est.status, 'ESTABLISHED', est.info);
  const key = t.app.calls.get(callId)!.key;
  await waitFor(async () => (await t.find(callId))?.rtmpStreamStatus === 'PUBLISHING', 5000, 'publishing');
  await new Promise((res) => setTimeout(res, holdMs));
  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  await t.waitStatus(callId, ['FINISH']);
  await t.assertNoLeaks([key]);
  return { establishedAfterMs, key };
}

test('a hook receiver gets registration, call status, stream status and DTMF events, in order', { timeout: 60_000 }, async () => {
  const got: Hook[] = [];
  const { server, url } = await receiver((req, res, body) => {
    assert.equal(req.headers['content-type'], 'application/json');
    const hook = JSON.parse(body) as Hook;
    // WCS's paths: <app URL>/<method>.
    assert.equal(req.url, `/hook/${hook.method}`);
    got.push(hook);
    res.writeHead(200).end();
  });
  const t = await startTestApp({ HOOK_URL: url });
  try {
    const callId = uniqueId('hk');
    // The dtmf far end sends the digit 1 (RFC 4733) 1.5 s after answering; the registrar far end needs REGISTER first.
    const reg = { callId: uniqueId('hkr'), callee: 'far', sipDomain: `127.0.0.1:${t.env.SIPP_REGISTRAR_PORT}`, sipLogin: t.env.FAR_AUTH_USER, sipPassword: t.env.FAR_AUTH_PASSWORD, sipRegisterRequired: 'true' };
    await callAndHangUp(t, reg, 200);
    await callAndHangUp(t, { callId, callee: 'dtmf', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_DTMF_PORT }, 2500);
    await waitFor(async () => got.filter((h) => h.method === 'CallStatusEvent' && h.status === 'FINISH').length === 2, 5000, 'both FINISH events');
    await waitFor(async () => got.some((h) => h.method === 'RegistrationStatusEvent' && h.status === 'UNREGISTERED'), 5000, 'UNREGISTERED');
    const seqs = got.map((h) => h.sequence);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'delivered in order');
    const line = (h: Hook) => `${h.method}:${String(h.status ?? h.dtmf)}`;
    const of = (id: string) => got.filter((h) => h.callId === id).map(line);
    console.log(`# registered call: ${of(reg.callId).join(' ')}`);
    console.log(`# dtmf call: ${of(callId).join(' ')}`);
    // Ringing (and 183) depend on the far end: left out of the comparison.
    assert.deepEqual(of(reg.callId).filter((l) => !/^StreamStatusEvent|:RING$|:SESSION_PROGRESS$/.test(l)), [
      'CallStatusEvent:TRYING', 'RegistrationStatusEvent:REGISTERED', 'CallStatusEvent:ESTABLISHED', 'CallStatusEvent:FINISH', 'RegistrationStatusEvent:UNREGISTERED',
    ]);
    const calls = of(callId);
    assert.ok(calls.includes('CallStatusEvent:ESTABLISHED') && calls.includes('DtmfEvent:1') && calls.includes('StreamStatusEvent:PUBLISHING'), calls.join(' '));
    assert.ok(calls.indexOf('CallStatusEvent:ESTABLISHED') < calls.indexOf('DtmfEvent:1') && calls.indexOf('DtmfEvent:1') < calls.indexOf('CallStatusEvent:FINISH'), calls.join(' '));
    // The final status goes out first; the stream is closed as the call's resources are released.
    assert.deepEqual(calls.slice(-2), ['CallStatusEvent:FINISH', 'StreamStatusEvent:CLOSED']);
    const text = JSON.stringify(got);
    assert.ok(!text.includes(t.env.FAR_AUTH_PASSWORD!), 'no SIP password in any hook');
    assert.ok(!text.includes(`rtmp_${callId}`), 'no unmasked stream name in any hook');
    assert.equal(t.app.hooks.stats.dropped, 0);
  } finally {
    await t.stop();
    server.close();
  }
});

test('a hook receiver that never answers does not slow calls down', { timeout: 60_000 }, async () => {
  const held: ServerResponse[] = [];
  const { server, url } = await receiver((_req, res) => void held.push(res)); // never answers
  const baseline = await startTestApp();
  const fast = await callAndHangUp(baseline, { callId: uniqueId('hb'), callee: 'softphone', sipDomain: '127.0.0.1', sipPort: baseline.env.BARESIP_PORT }, 200);
  await baseline.stop();
  const t = await startTestApp({ HOOK_URL: url, HOOK_TIMEOUT_MS: '30000' });
  try {
    const slow = await callAndHangUp(t, { callId: uniqueId('hd'), callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT }, 200);
    console.log(`# startup → ESTABLISHED: ${fast.establishedAfterMs} ms without hooks, ${slow.establishedAfterMs} ms with a receiver that never answers; hooks ${JSON.stringify(t.app.hooks.stats)}`);
    assert.ok(slow.establishedAfterMs <= fast.establishedAfterMs + 500, `${slow.establishedAfterMs} ms vs ${fast.establishedAfterMs} ms`);
    assert.equal(held.length, 1, 'one request in flight at a time');
    assert.ok(t.app.hooks.stats.queued >= 3, 'the rest wait in the queue');
  } finally {
    const t0 = Date.now();
    await t.stop();
    assert.ok(Date.now() - t0 < 5000, 'stopping is not held up by the hook receiver');
    for (const r of held) r.destroy();
    server.close();
  }
});

test('WCS apps: an appKey in HOOK_APPS gets its calls\' events at its own URL; the approval hook vetoes a startup with 403 and its reason before anything reaches the PBX', { timeout: 60_000 }, async () => {
  const byApp: Record<string, { path: string; hook: Hook }[]> = { default: [], second: [] };
  const mk = (app: 'default' | 'second') => receiver((req, res, body) => {
    const hook = JSON.parse(body) as Hook;
    byApp[app]!.push({ path: req.url ?? '', hook });
    // The default app's backend refuses calls to "forbidden" (WCS: the `call` method answered 403).
    if (req.url?.endsWith('/call') && (hook as { callee?: string }).callee === 'forbidden') {
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ reason: 'this number is not allowed for your account' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  const one = await mk('default');
  const two = await mk('second');
  const t = await startTestApp({ HOOK_URL: one.url, HOOK_APPS: `second=${two.url.replace(/\/hook$/, '/second')}`, HOOK_APPROVE: 'true' });
  try {
    // Refused: 403 with the backend's reason; never a call, never a channel.
    const refusedId = uniqueId('veto');
    const r = await t.post('/call/startup', { callId: refusedId, callee: 'forbidden', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, hasAudio: 'true', rtmpUrl: t.env.RTMP_URL, rtmpStream: refusedId });
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /this number is not allowed for your account/);
    assert.equal((await t.post('/call/find', { callId: refusedId })).status, 404);
    await t.assertNoLeaks([]);

    // Accepted, for the second app: its approval and its events at its URL, none at the default app's.
    const callId = uniqueId('app2');
    await callAndHangUp(t, { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, appKey: 'second' }, 200);
    await waitFor(async () => byApp.second!.some((h) => h.hook.method === 'CallStatusEvent' && h.hook.status === 'FINISH'), 5000, 'FINISH at the second app');
    const second = byApp.second!.filter((h) => h.hook.callId === callId);
    console.log(`# second app: ${second.map((h) => `${h.path}:${String(h.hook.status ?? '')}`).join(' ')}`);
    assert.equal(second[0]!.path, '/second/call', 'the approval first');
    const statuses = second.filter((h) => h.path === '/second/CallStatusEvent').map((h) => String(h.hook.status));
    assert.equal(statuses[0], 'TRYING');
    assert.deepEqual(statuses.filter((s) => s === 'ESTABLISHED' || s === 'FINISH'), ['ESTABLISHED', 'FINISH']);
    // WCS's CallStatusEvent fields.
    const est = second.find((h) => h.path === '/second/CallStatusEvent' && h.hook.status === 'ESTABLISHED')!.hook;
    for (const field of ['nodeId', 'appKey', 'sessionId', 'callId', 'status', 'sipStatus', 'caller', 'callee', 'incoming']) assert.ok(field in est, `CallStatusEvent has ${field}`);
    assert.equal(est.appKey, 'second');
    assert.equal(est.sipStatus, 200);
    assert.equal(byApp.default!.filter((h) => h.hook.callId === callId).length, 0, 'nothing of it at the default app');
    assert.ok(byApp.default!.some((h) => h.path === '/hook/call' && h.hook.callId === refusedId), 'the refused call was asked of the default app');
  } finally {
    await t.stop();
    one.server.close();
    two.server.close();
  }
});
