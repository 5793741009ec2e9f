/**
 * Releasing what a killed earlier run left in the PBX: which channels count as ours (inStasisApp, on the
 * Channel shapes Asterisk 22 really reports), what AsteriskPbx.releaseLeftovers does against a scripted ARI,
 * and when CallService asks for it (first connection only, ids no call holds, never fatal).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { AriClient } from '../../adapters/ari/client.js';
import type { AriEventSocket } from '../../adapters/ari/events.js';
import type { Channel } from '../../adapters/ari/types.js';
import { AsteriskPbx, inStasisApp } from '../../adapters/asterisk/pbx.js';
import { RtpPortPool } from '../../adapters/rtp/port-pool.js';
import { CALL_KEY_PREFIX, callKeyPrefix, CallService } from '../../plugin/calls/call-service.js';
import type { LeftoversReleased } from '../../plugin/calls/ports.js';
import { validateStartup } from '../../plugin/calls/validate.js';
import { loadConfig } from '../../plugin/config.js';
import { createLogger } from '../../plugin/lib/log.js';
import { NativeAacEncoder } from '../../plugin/media/encode/aac/audio-encoder.js';
import { FakeMediaLegServer, FakePbx } from '../helpers/fake-pbx.js';

const APP = 'sip-as-rtmp';

/** A channel as GET /channels lists it. */
function channel(id: string, dialplan: Partial<Channel['dialplan']>): Channel {
  return {
    id, name: `PJSIP/${id}`, state: 'Up', caller: { name: '', number: '' }, connected: { name: '', number: '' }, accountcode: '',
    dialplan: { context: 'default', exten: 's', priority: 1, ...dialplan }, creationtime: '2026-12-03T16:21:44.233+0000', language: 'en',
  };
}

test('inStasisApp: the shapes Asterisk 22 reports', () => {
  // Measured in the sandbox after kill -9: the inbound caller, and channels the app originated.
  assert.equal(inStasisApp(channel('1796314904.26', { context: 'sandbox-inbound', exten: '7100', app_name: 'Stasis', app_data: 'sip-as-rtmp,rtmp://127.0.0.1:1935/recorded,inbound-7100' }), APP), true);
  assert.equal(inStasisApp(channel('sar-e4922791b5-call', { context: 'sip-as-rtmp-unroutable', app_name: 'Stasis', app_data: 'sip-as-rtmp' }), APP), true);
  assert.equal(inStasisApp(channel('x', { app_name: 'Stasis', app_data: ' sip-as-rtmp , a' }), APP), true);
  assert.equal(inStasisApp(channel('x', { app_name: 'Stasis', app_data: '"sip-as-rtmp",a' }), APP), true);
  assert.equal(inStasisApp(channel('x', { app_name: 'stasis', app_data: 'sip-as-rtmp' }), APP), true);
  // Another ARI application, a name that only starts like ours, other dialplan applications, nothing.
  assert.equal(inStasisApp(channel('x', { app_name: 'Stasis', app_data: 'sip-as-rtmp-test' }), APP), false);
  assert.equal(inStasisApp(channel('x', { app_name: 'Stasis', app_data: 'other-app,sip-as-rtmp' }), APP), false);
  assert.equal(inStasisApp(channel('x', { app_name: 'Dial', app_data: 'PJSIP/sip-as-rtmp' }), APP), false);
  assert.equal(inStasisApp(channel('x', { app_name: 'AppDial', app_data: '(Outgoing Line)' }), APP), false);
  assert.equal(inStasisApp(channel('x', {}), APP), false);
  assert.equal(inStasisApp(channel('x', { app_name: 'Stasis', app_data: '' }), APP), false);
});

// ---------------------------------------------------------------------------------------------------------
// AsteriskPbx.releaseLeftovers against a scripted Asterisk (AriClient on a fake fetch)

interface FakeAsterisk {
  channels: Channel[];
  bridges: string[];
  endpoints: string[];
  /** PJSIP objects: "type id". */
  objects: Set<string>;
  /** DELETE paths answered 500. */
  broken: Set<string>;
  /** Every request, "METHOD /path" (no query). */
  log: string[];
  failList?: boolean;
}

function fakeFetch(a: FakeAsterisk): typeof fetch {
  const json = (status: number, body?: unknown) => new Response(body === undefined ? null : JSON.stringify(body), { status });
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const path = decodeURIComponent(url.pathname.replace(/^\/ari/, ''));
    const method = init?.method ?? 'GET';
    a.log.push(`${method} ${path}`);
    if (method === 'DELETE' && a.broken.has(path)) return json(500, { message: 'Internal error' });
    if (method === 'GET' && a.failList) return json(500, { message: 'Internal error' });
    if (method === 'GET' && path === '/channels') return json(200, a.channels);
    if (method === 'POST' && path === '/channels') {
      const c = channel(url.searchParams.get('channelId')!, { app_name: 'Stasis', app_data: APP });
      a.channels.push(c);
      return json(200, c);
    }
    if (method === 'GET' && path === '/bridges') return json(200, a.bridges.map((id) => ({ id, technology: 'simple_bridge', bridge_type: 'mixing', bridge_class: 'stasis', creator: 'Stasis', name: id, channels: [] })));
    if (method === 'GET' && path === '/endpoints/PJSIP') return json(200, a.endpoints.map((resource) => ({ technology: 'PJSIP', resource, state: 'offline', channel_ids: [] })));
    let m = /^\/channels\/(.+)$/.exec(path);
    if (method === 'DELETE' && m) {
      const i = a.channels.findIndex((c) => c.id === m![1]);
      if (i < 0) return json(404, { message: 'Channel not found' });
      a.channels.splice(i, 1);
      return json(204);
    }
    m = /^\/bridges\/(.+)$/.exec(path);
    if (method === 'DELETE' && m) {
      const i = a.bridges.indexOf(m[1]!);
      if (i < 0) return json(404, { message: 'Bridge not found' });
      a.bridges.splice(i, 1);
      return json(204);
    }
    m = /^\/asterisk\/config\/dynamic\/res_pjsip\/(\w+)\/(.+)$/.exec(path);
    if (method === 'DELETE' && m) {
      const key = `${m[1]} ${m[2]}`;
      if (!a.objects.delete(key)) return json(404, { message: 'Object not found' });
      if (m[1] === 'endpoint') a.endpoints = a.endpoints.filter((e) => e !== m![2]);
      return json(204);
    }
    return json(404, { message: `unscripted ${method} ${path}` });
  }) as typeof fetch;
}

/** A log that keeps its lines. */
function capturingLog() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, log: createLogger({ level: 'debug', destination }) };
}

function pbxOn(a: FakeAsterisk, graceMs = 50) {
  const ari = new AriClient({ url: 'http://asterisk.invalid:8088', user: 'u', password: 'p', app: APP, fetch: fakeFetch(a) });
  const socket = Object.assign(new EventEmitter(), { state: 'open' }) as unknown as AriEventSocket;
  const { lines, log } = capturingLog();
  const pbx = new AsteriskPbx(ari, socket, log, { baseEndpoint: 'sip-as-rtmp-outbound', mediaEndpoint: 'sip-as-rtmp-media', inboundGraceMs: graceMs });
  const stasisStart = (c: Channel) => (socket as unknown as EventEmitter).emit('event', { type: 'StasisStart', application: APP, timestamp: '', args: [], channel: c });
  return { pbx, lines, stasisStart };
}

const account = (id: string, types = ['registration', 'endpoint', 'aor', 'auth']) => types.map((t) => `${t} ${id}`);

test('releaseLeftovers: our channels, stray inbound callers, bridges and accounts; nothing else', async () => {
  const stasis = (data: string) => ({ app_name: 'Stasis', app_data: data });
  const heardBefore = channel('111.2', { exten: '7100', ...stasis('sip-as-rtmp,rtmp://h/app,s') });
  const heardDuringGrace = channel('111.3', { exten: '7100', ...stasis('sip-as-rtmp') });
  const a: FakeAsterisk = {
    channels: [
      channel('sar-aaaaaaaaaa-call', stasis(APP)),
      channel('sar-aaaaaaaaaa-leg', stasis(APP)),
      channel('111.1', { exten: '7100', ...stasis('sip-as-rtmp,rtmp://h/app,s') }), // a caller the dead run held
      heardBefore, heardDuringGrace,
      channel('111.4', stasis('sip-as-rtmp-test')), // another ARI app's
      channel('111.5', { app_name: 'Dial', app_data: 'PJSIP/alice' }), // a PBX call of nobody's
    ],
    bridges: ['sar-aaaaaaaaaa-bridge', 'sar-bbbbbbbbbb-bridge', 'conference-1', 'sar-cccccccccc-bridge'],
    endpoints: ['sip-as-rtmp-outbound', 'sip-as-rtmp-media', 'sar-aaaaaaaaaa', 'sar-bbbbbbbbbb', 'sar-dddddddddd', 'sar-eeeeeeeeee', 'sar-ffffffffff'],
    objects: new Set([
      ...account('sar-aaaaaaaaaa'), ...account('sar-bbbbbbbbbb'),
      ...account('sar-dddddddddd', ['endpoint', 'aor', 'auth']), // no registration
      // sar-eeeeeeeeee: listed, but its objects are already gone (404 everywhere)
      ...account('sar-ffffffffff', ['endpoint', 'aor', 'auth']),
    ]),
    broken: new Set(['/asterisk/config/dynamic/res_pjsip/endpoint/sar-ffffffffff']),
    log: [],
  };
  const { pbx, lines, stasisStart } = pbxOn(a);
  // A live call of this run: its media leg dialled, its key refused by the predicate.
  await pbx.dialMediaLeg({ channelId: 'sar-bbbbbbbbbb-leg', uri: 'sip:sar-bbbbbbbbbb-leg@127.0.0.1:5090', codecs: [{ encoding: 'PCMU', clockRate: 8000 }], video: false });
  stasisStart(heardBefore);
  setTimeout(() => stasisStart(heardDuringGrace), 10);
  const isLeftover = (id: string) => id.startsWith('sar-') && !id.startsWith('sar-bbbbbbbbbb');

  const n = await pbx.releaseLeftovers(isLeftover);

  assert.deepEqual(a.channels.map((c) => c.id), ['111.2', '111.3', '111.4', '111.5', 'sar-bbbbbbbbbb-leg']);
  assert.deepEqual(a.bridges, ['sar-bbbbbbbbbb-bridge', 'conference-1']);
  assert.deepEqual([...a.objects].sort(), [...account('sar-bbbbbbbbbb'), 'endpoint sar-ffffffffff'].sort());
  // sar-eeeeeeeeee (all 404) is not counted; sar-ffffffffff lost its aor and auth, so it is.
  assert.deepEqual(n, { channels: 3, bridges: 2, accounts: 3 } satisfies LeftoversReleased);

  // Channels first (they leave their bridges), then bridges, then accounts, each account in dependency order.
  const deletes = a.log.filter((l) => l.startsWith('DELETE'));
  const kind = (l: string) => (l.includes('/channels/') ? 0 : l.includes('/bridges/') ? 1 : 2);
  assert.deepEqual(deletes.map(kind), [...deletes.map(kind)].sort());
  assert.deepEqual(deletes.filter((l) => l.endsWith('/sar-aaaaaaaaaa')).map((l) => l.split('/')[5]), ['registration', 'endpoint', 'aor', 'auth']);
  // One failure is logged and does not stop the rest.
  assert.ok(lines.some((l) => l.level === 40 && l['PJSIP endpoint'] === 'sar-ffffffffff'), JSON.stringify(lines));
});

test('releaseLeftovers: the grace is waited only when a stray inbound caller is found', async () => {
  const a: FakeAsterisk = { channels: [channel('sar-aaaaaaaaaa-call', { app_name: 'Stasis', app_data: APP })], bridges: [], endpoints: [], objects: new Set(), broken: new Set(), log: [] };
  const { pbx } = pbxOn(a, 10_000);
  const t0 = Date.now();
  assert.deepEqual(await pbx.releaseLeftovers((id) => id.startsWith('sar-')), { channels: 1, bridges: 0, accounts: 0 });
  assert.ok(Date.now() - t0 < 1000);
});

test('releaseLeftovers: a list that fails rejects (nothing released)', async () => {
  const a: FakeAsterisk = { channels: [channel('sar-aaaaaaaaaa-call', {})], bridges: [], endpoints: [], objects: new Set(), broken: new Set(), log: [], failList: true };
  const { pbx } = pbxOn(a);
  await assert.rejects(pbx.releaseLeftovers(() => true), /500/);
  assert.equal(a.channels.length, 1);
});

// ---------------------------------------------------------------------------------------------------------
// CallService: when it asks, with which predicate, and what it logs

function service(release: (isLeftover: (id: string) => boolean) => Promise<LeftoversReleased>) {
  const config = loadConfig({ ARI_PASSWORD: 'test', RTP_PORT_MIN: '34600', RTP_PORT_MAX: '34699', RTP_TIMEOUT_SEC: '0' });
  const uas = new FakeMediaLegServer();
  const pbx = Object.assign(new FakePbx({ uas }), { releaseLeftovers: release });
  const { lines, log } = capturingLog();
  const svc = new CallService({
    config, log, pbx, uas, ports: new RtpPortPool({ host: '127.0.0.1', portMin: 34600, portMax: 34699 }),
    openOutput: () => {
      throw new Error('no outputs in this test');
    },
    encoderFactory: (o) => new NativeAacEncoder(o),
  });
  return { svc, pbx, lines };
}

test('CallService: on the first connection and after each reconnect, for ids of this app that no call holds; the count is logged', async () => {
  const asked: ((id: string) => boolean)[] = [];
  const { svc, pbx, lines } = service(async (isLeftover) => {
    asked.push(isLeftover);
    return { channels: 2, bridges: 1, accounts: 1 };
  });
  try {
    pbx.emit('up', { reconnect: false });
    await svc.leftoversReleased;
    assert.equal(asked.length, 1);
    const isLeftover = asked[0]!;
    const mine = callKeyPrefix('sip-as-rtmp');
    assert.match(mine, /^sar-[0-9a-f]{4}-$/);
    assert.ok(mine.startsWith(CALL_KEY_PREFIX));
    assert.notEqual(callKeyPrefix('sip-as-rtmp-2'), mine, 'another app on the same Asterisk marks its objects otherwise');
    for (const id of [`${mine}01234567-call`, `${mine}01234567-leg`, `${mine}01234567-bridge`, `${mine}01234567`, 'sar-defaults-probe-42']) assert.equal(isLeftover(id), true, id);
    // Another app's objects (its own ARI_APP), the PBX's own, and nobody's.
    for (const id of [`${callKeyPrefix('sip-as-rtmp-2')}01234567-call`, '1796314904.26', 'sip-as-rtmp-media', 'conference-1']) assert.equal(isLeftover(id), false, id);
    // A call of this run (its key made with the same prefix) is never a leftover, whatever its objects.
    const call = svc.startup(validateStartup({ callId: 'c1', callee: 'answer', sipDomain: '127.0.0.1', rtmpUrl: 'rtmp://127.0.0.1/live', rtmpStream: 's1' }, { streamPrefix: 'rtmp_' }));
    assert.ok(call.key.startsWith(mine));
    for (const id of [call.key, call.channelId, call.legChannelId, call.bridgeId]) assert.equal(isLeftover(id), false, id);
    assert.ok(lines.some((l) => l.level === 30 && l.channels === 2 && l.bridges === 1 && l.accounts === 1), 'the release is logged with its counts');
    // A reconnect reconciles calls, then releases again what no live call holds.
    pbx.disconnect();
    pbx.reconnect();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(asked.length, 2);
    assert.equal(asked[1]!(call.key), false, 'the live call keeps its objects');
  } finally {
    await svc.close();
    pbx.close();
  }
});

test('CallService: nothing released, nothing logged; a failure is a warning and the app goes on', async () => {
  const quiet = service(async () => ({ channels: 0, bridges: 0, accounts: 0 }));
  quiet.pbx.emit('up', { reconnect: false });
  await quiet.svc.leftoversReleased;
  assert.ok(!quiet.lines.some((l) => String(l.msg).includes('left in the PBX')));
  await quiet.svc.close();
  quiet.pbx.close();

  const failing = service(async () => {
    throw new Error('ARI GET /channels failed: 500');
  });
  failing.pbx.emit('up', { reconnect: false });
  await failing.svc.leftoversReleased; // settles, never rejects
  assert.ok(failing.lines.some((l) => l.level === 40 && String(l.err).includes('500')), JSON.stringify(failing.lines));
  await failing.svc.close();
  failing.pbx.close();
});
