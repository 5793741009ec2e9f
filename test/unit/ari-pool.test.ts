/**
 * AriClient against a real HTTP server on 127.0.0.1 that behaves like Asterisk's: it closes every connection
 * past its session limit at once (http.conf sessionlimit), and can reset a request's socket or never answer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { AriClient, DEFAULT_MAX_CONNECTIONS } from '../../adapters/ari/client.js';
import { AriConnectionError, AriError } from '../../adapters/ari/errors.js';
import { AriLedger } from '../../adapters/ari/ledger.js';
import type { AriEvent } from '../../adapters/ari/types.js';
import { loadConfig } from '../../plugin/config.js';

type Handler = (req: IncomingMessage, res: ServerResponse, attempt: number) => void;

/** A server like Asterisk's HTTP: at most `sessionLimit` connections, the rest closed on accept. */
async function fakeAsterisk(sessionLimit: number, handler: Handler) {
  const stats = { open: 0, maxOpen: 0, refused: 0, requests: 0 };
  const attempts = new Map<string, number>();
  const server = createServer((req, res) => {
    stats.requests++;
    const key = `${req.method} ${req.url!.split('?')[0]}`;
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    handler(req, res, n);
  });
  server.on('connection', (socket) => {
    if (stats.open >= sessionLimit) {
      stats.refused++;
      socket.destroy();
      return;
    }
    stats.open++;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    socket.on('close', () => stats.open--);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  };
  return { url, stats, attempts, close };
}

const client = (url: string, o: Partial<ConstructorParameters<typeof AriClient>[0]> = {}) =>
  new AriClient({ url, user: 'u', password: 'p', app: 'a', ...o });

test('300 DELETEs at once through the pool: all succeed, never more connections than the pool size', async (t) => {
  const max = 16;
  const srv = await fakeAsterisk(20, (_req, res) => setTimeout(() => res.writeHead(204).end(), 5));
  const ari = client(srv.url, { maxConnections: max });
  try {
    const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => ari.bridges.destroy(`b${i}`)));
    const failed = results.filter((r) => r.status === 'rejected');
    assert.equal(failed.length, 0, String((failed[0] as PromiseRejectedResult | undefined)?.reason));
    assert.ok(srv.stats.maxOpen <= max, `server saw ${srv.stats.maxOpen} connections at once`);
    assert.equal(srv.stats.refused, 0);
    assert.equal(srv.stats.requests, 300);
    t.diagnostic(`pool of ${max}: ${srv.stats.maxOpen} connections at most, ${srv.stats.refused} refused, ${failed.length} failed`);
  } finally {
    await ari.close();
    await srv.close();
  }
});

test('control: without a bounded pool the same burst overflows the session limit', async (t) => {
  const srv = await fakeAsterisk(20, (_req, res) => setTimeout(() => res.writeHead(204).end(), 50));
  // Node's global fetch: one connection per concurrent request, as before issue 20. One attempt, to count.
  const ari = client(srv.url, { fetch, attempts: 1 });
  try {
    const results = await Promise.allSettled(Array.from({ length: 300 }, (_, i) => ari.bridges.destroy(`b${i}`)));
    const failed = results.filter((r) => r.status === 'rejected');
    assert.ok(srv.stats.refused > 0 && failed.length > 0, `refused ${srv.stats.refused}, failed ${failed.length}`);
    t.diagnostic(`global fetch: ${srv.stats.maxOpen} connections at most, ${srv.stats.refused} refused, ${failed.length} of 300 failed`);
    const reason = (failed[0] as PromiseRejectedResult).reason as AriConnectionError;
    assert.ok(reason instanceof AriConnectionError && ['UND_ERR_SOCKET', 'ECONNRESET'].includes(reason.reason), reason.message);
  } finally {
    await srv.close();
  }
});

test('a reset socket: GET, PUT and DELETE are retried and succeed; a POST is not retried', async () => {
  const srv = await fakeAsterisk(50, (req, res, attempt) => {
    if (attempt === 1) {
      req.socket.destroy(); // after the request arrived: as if Asterisk went away mid-answer
      return;
    }
    if (req.method === 'GET') res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"c1","state":"Up"}');
    else if (req.method === 'PUT') res.writeHead(200, { 'content-type': 'application/json' }).end('[{"attribute":"username","value":"u"}]');
    else res.writeHead(204).end();
  });
  const ari = client(srv.url);
  try {
    assert.equal((await ari.channels.get('c1')).id, 'c1');
    assert.deepEqual(await ari.pjsip.put('auth', 'a1', { username: 'u' }), [{ attribute: 'username', value: 'u' }]);
    assert.equal(await ari.channels.hangup('c1'), undefined);
    assert.equal(srv.attempts.get('GET /ari/channels/c1'), 2);
    assert.equal(srv.attempts.get('PUT /ari/asterisk/config/dynamic/res_pjsip/auth/a1'), 2);
    assert.equal(srv.attempts.get('DELETE /ari/channels/c1'), 2);

    await assert.rejects(ari.bridges.create({ bridgeId: 'br1', type: 'mixing' }), (e: unknown) =>
      e instanceof AriConnectionError && e.attempts === 1 && ['UND_ERR_SOCKET', 'ECONNRESET'].includes(e.reason));
    await assert.rejects(ari.channels.originate({ endpoint: 'PJSIP/x', channelId: 'c2' }), AriConnectionError);
    assert.equal(srv.attempts.get('POST /ari/bridges'), 1);
    assert.equal(srv.attempts.get('POST /ari/channels'), 1);
  } finally {
    await ari.close();
    await srv.close();
  }
});

test('a DELETE whose lost first attempt did the work: the retry\'s 404 counts as done; a plain 404 is still an error', async () => {
  const deleted = new Set<string>();
  const srv = await fakeAsterisk(50, (req, res, attempt) => {
    const id = req.url!.split('?')[0]!.split('/').pop()!;
    if (deleted.has(id)) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Bridge not found"}');
      return;
    }
    deleted.add(id);
    if (attempt === 1 && id === 'lost') req.socket.destroy();
    else res.writeHead(204).end();
  });
  const ari = client(srv.url);
  try {
    assert.equal(await ari.bridges.destroy('lost'), undefined);
    assert.equal(srv.attempts.get('DELETE /ari/bridges/lost'), 2);
    await ari.bridges.destroy('once');
    await assert.rejects(ari.bridges.destroy('once'), (e: unknown) => e instanceof AriError && e.isNotFound);
  } finally {
    await ari.close();
    await srv.close();
  }
});

test('HTTP error statuses are answers: never retried', async () => {
  const srv = await fakeAsterisk(50, (_req, res) => res.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"Allocation failed"}'));
  const ari = client(srv.url);
  try {
    await assert.rejects(ari.bridges.destroy('b'), (e: unknown) => e instanceof AriError && e.status === 500);
    assert.equal(srv.attempts.get('DELETE /ari/bridges/b'), 1);
  } finally {
    await ari.close();
    await srv.close();
  }
});

test('the timeout applies to each attempt; a timed-out request is not retried', async () => {
  const srv = await fakeAsterisk(50, (req, _res, attempt) => {
    if (attempt === 1 && req.url!.startsWith('/ari/channels/reset-then-hang')) req.socket.destroy();
    // otherwise: never answer
  });
  const ari = client(srv.url, { timeoutMs: 300 });
  const keepAlive = setTimeout(() => {}, 20_000); // AbortSignal.timeout's timer does not hold the loop open
  try {
    let t0 = Date.now();
    await assert.rejects(ari.channels.get('hang'), (e: unknown) => e instanceof AriConnectionError && e.reason === 'timed out' && e.attempts === 1);
    assert.ok(Date.now() - t0 >= 250, `timed out after ${Date.now() - t0} ms`);
    assert.equal(srv.attempts.get('GET /ari/channels/hang'), 1);

    t0 = Date.now();
    await assert.rejects(ari.channels.get('reset-then-hang'), (e: unknown) => e instanceof AriConnectionError && e.reason === 'timed out' && e.attempts === 2);
    const ms = Date.now() - t0;
    assert.ok(ms >= 250 && ms < 5000, `second attempt timed out after ${ms} ms`);
    assert.equal(srv.attempts.get('GET /ari/channels/reset-then-hang'), 2);
  } finally {
    clearTimeout(keepAlive);
    await ari.close();
    await srv.close();
  }
});

test('connection refused: nothing was sent, so even a POST is tried again (3 attempts, then the error)', async () => {
  const srv = await fakeAsterisk(1, () => {});
  const url = srv.url;
  await srv.close(); // the port is free now: connections are refused
  const ari = client(url);
  try {
    const t0 = Date.now();
    await assert.rejects(ari.bridges.create({ bridgeId: 'b' }), (e: unknown) => e instanceof AriConnectionError && e.reason === 'ECONNREFUSED' && e.attempts === 3);
    assert.ok(Date.now() - t0 < 2000, `gave up after ${Date.now() - t0} ms`);
  } finally {
    await ari.close();
  }
});

test('the ledger: what was created and not seen going', () => {
  const l = new AriLedger();
  const ev = (e: object) => l.onEvent({ application: 'a', timestamp: '', ...e } as AriEvent);
  l.noteAnswer('POST', '/channels', 200, { id: 'c1' });
  l.noteAnswer('POST', '/channels/externalMedia', 200, { id: 'em1' });
  l.noteAnswer('POST', '/bridges', 200, { id: 'b1' });
  l.noteAnswer('PUT', '/asterisk/config/dynamic/res_pjsip/endpoint/acc%2F1', 200, []);
  l.noteAnswer('PUT', '/asterisk/config/dynamic/res_pjsip/auth/acc%2F1', 200, []);
  l.noteAnswer('PUT', '/asterisk/config/dynamic/res_pjsip/auth/acc%2F1', 200, []); // an update, not another
  ev({ type: 'StasisStart', args: [], channel: { id: 'in1' } });
  l.noteAnswer('POST', '/bridges', 409, undefined);
  l.noteAnswer('GET', '/channels/c1', 200, { id: 'c1' });
  assert.deepEqual(l.counts(), { channels: 3, bridges: 1, pjsipObjects: 2 });

  l.noteAnswer('DELETE', '/channels/c1', 204, undefined);
  l.noteAnswer('DELETE', '/bridges/b1', 404, undefined); // already gone
  l.noteAnswer('DELETE', '/asterisk/config/dynamic/res_pjsip/auth/acc%2F1', 204, undefined);
  l.noteAnswer('DELETE', '/channels/c1/hold', 204, undefined); // unhold: not the channel
  l.noteAnswer('GET', '/channels/em1', 404, undefined); // its ChannelDestroyed was missed (a reconnect)
  l.noteAnswer('POST', '/channels/in1/answer', 404, undefined); // not the channel's own path: kept
  ev({ type: 'StasisEnd', channel: { id: 'in1' } });
  assert.deepEqual(l.counts(), { channels: 0, bridges: 0, pjsipObjects: 1 });

  // A channel destroyed before the originate's answer came back is not counted as held.
  ev({ type: 'ChannelDestroyed', channel: { id: 'fast' }, cause: 17, cause_txt: '' });
  l.noteAnswer('POST', '/channels', 200, { id: 'fast' });
  ev({ type: 'BridgeDestroyed', bridge: { id: 'b2' } });
  l.noteAnswer('POST', '/bridges', 200, { id: 'b2' });
  assert.deepEqual(l.counts(), { channels: 0, bridges: 0, pjsipObjects: 1 });
});

test('the client feeds its ledger from answers and from its event socket', async () => {
  const srv = await fakeAsterisk(50, (req, res) => {
    if (req.method === 'POST') res.writeHead(200, { 'content-type': 'application/json' }).end('{"id":"b9"}');
    else res.writeHead(204).end();
  });
  const ari = client(srv.url);
  try {
    await ari.bridges.create({ bridgeId: 'b9' });
    assert.equal(ari.ledger.counts().bridges, 1);
    const events = ari.eventSocket();
    events.emit('event', { type: 'StasisStart', application: 'a', timestamp: '', args: [], channel: { id: 'in' } } as unknown as AriEvent);
    assert.equal(ari.ledger.counts().channels, 1);
    await ari.bridges.destroy('b9');
    assert.deepEqual(ari.ledger.counts(), { channels: 1, bridges: 0, pjsipObjects: 0 });
  } finally {
    await ari.close();
    await srv.close();
  }
});

test('the default pool (and its event WebSocket) stays well below the sessionlimit we ship in http.conf', () => {
  const conf = readFileSync(new URL('../../../asterisk-conf/http.conf', import.meta.url), 'utf8');
  const sessionLimit = Number(/^\s*sessionlimit\s*=\s*(\d+)/m.exec(conf)?.[1]);
  const c = loadConfig({ ARI_PASSWORD: 's' });
  assert.equal(c.ari.maxConnections, DEFAULT_MAX_CONNECTIONS);
  // Room for four apps on one Asterisk, each with its pool and its event WebSocket.
  assert.ok(4 * (c.ari.maxConnections + 1) < sessionLimit, `sessionlimit ${sessionLimit}`);
});
