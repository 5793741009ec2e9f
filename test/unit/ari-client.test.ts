import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { AriClient, toQueryString } from '../../adapters/ari/client.js';
import { AriConnectionError, AriError, ariErrorFromResponse } from '../../adapters/ari/errors.js';

test('error mapping: JSON message from Asterisk', () => {
  const e = ariErrorFromResponse(404, '{"message":"Channel not found"}', 'DELETE', '/channels/x');
  assert.ok(e instanceof AriError);
  assert.equal(e.status, 404);
  assert.equal(e.ariMessage, 'Channel not found');
  assert.equal(e.isNotFound, true);
  assert.equal(e.message, 'ARI DELETE /channels/x failed: 404 Channel not found');
});

test('error mapping: 422 and 409 flags', () => {
  assert.equal(ariErrorFromResponse(422, '{"message":"Channel not in Stasis application"}', 'POST', '/b').isUnprocessable, true);
  assert.equal(ariErrorFromResponse(409, '{"message":"Channel not in a bridge"}', 'POST', '/b').isConflict, true);
});

test('error mapping: plain text, HTML, empty and odd JSON bodies', () => {
  assert.equal(ariErrorFromResponse(401, 'Unauthorized', 'GET', '/a').ariMessage, 'Unauthorized');
  assert.equal(
    ariErrorFromResponse(404, '<html><head><title>404 Not Found</title></head><body>x</body></html>', 'GET', '/a').ariMessage,
    '404 Not Found',
  );
  assert.equal(ariErrorFromResponse(401, '', 'GET', '/a').ariMessage, 'Unauthorized (check ARI user/password)');
  assert.equal(ariErrorFromResponse(418, '', 'GET', '/a').ariMessage, 'HTTP 418');
  assert.equal(ariErrorFromResponse(500, '{"error":"Allocation failed"}', 'GET', '/a').ariMessage, 'Allocation failed');
  assert.equal(ariErrorFromResponse(500, '{"message":', 'GET', '/a').ariMessage, '{"message":');
  assert.equal(ariErrorFromResponse(400, 'x'.repeat(500), 'GET', '/a').ariMessage.length, 200);
});

test('query strings skip undefined and join lists', () => {
  assert.equal(toQueryString(undefined), '');
  assert.equal(toQueryString({ a: undefined, b: null }), '');
  assert.equal(toQueryString({ endpoint: 'PJSIP/x/sip:a@b:5060', timeout: 10, ok: true, media: ['a', 'b'] }),
    '?endpoint=PJSIP%2Fx%2Fsip%3Aa%40b%3A5060&timeout=10&ok=true&media=a%2Cb');
});

/** A fetch stand-in that records requests and answers from a table. */
function fakeFetch(answer: (url: URL, init: RequestInit) => Response | Promise<Response>) {
  const calls: { url: URL; init: RequestInit }[] = [];
  const f = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    calls.push({ url, init: init ?? {} });
    return answer(url, init ?? {});
  }) as typeof fetch;
  return { f, calls };
}

test('requests carry basic auth and JSON; errors become AriError', async () => {
  const { f, calls } = fakeFetch((url) =>
    url.pathname.endsWith('/dynamic/res_pjsip/endpoint/e1')
      ? new Response('{"message":"Unable to create or update object"}', { status: 400 })
      : new Response('[{"attribute":"username","value":"u"}]', { status: 200 }));
  const ari = new AriClient({ url: 'http://127.0.0.1:8088/', user: 'u', password: 'p@ss', app: 'app', fetch: f });
  const tuples = await ari.pjsip.put('auth', 'a1', { username: 'u' });
  assert.deepEqual(tuples, [{ attribute: 'username', value: 'u' }]);
  assert.equal(calls[0]!.url.toString(), 'http://127.0.0.1:8088/ari/asterisk/config/dynamic/res_pjsip/auth/a1');
  const headers = calls[0]!.init.headers as Record<string, string>;
  assert.equal(headers.authorization, 'Basic ' + Buffer.from('u:p@ss').toString('base64'));
  assert.deepEqual(JSON.parse(String(calls[0]!.init.body)), { fields: [{ attribute: 'username', value: 'u' }] });

  await assert.rejects(ari.pjsip.put('endpoint', 'e1', { x: 'y' }), (e: unknown) =>
    e instanceof AriError && e.status === 400 && e.ariMessage === 'Unable to create or update object' && e.method === 'PUT');
});

test('originate sends our channelId and the app, variables in the body', async () => {
  const { f, calls } = fakeFetch(() => new Response('{"id":"c1","state":"Down"}', { status: 200 }));
  const ari = new AriClient({ url: 'http://h:1', user: 'u', password: 'p', app: 'myapp', fetch: f });
  await ari.channels.originate({ endpoint: 'PJSIP/x', channelId: 'c1', formats: 'slin16,h264', variables: { A: '1' } });
  const q = calls[0]!.url.searchParams;
  assert.equal(q.get('app'), 'myapp');
  assert.equal(q.get('channelId'), 'c1');
  assert.equal(q.get('formats'), 'slin16,h264');
  assert.equal(q.get('variables'), null);
  assert.deepEqual(JSON.parse(String(calls[0]!.init.body)), { variables: { A: '1' } });
});

test('204 answers resolve to undefined', async () => {
  const { f } = fakeFetch(() => new Response(null, { status: 204 }));
  const ari = new AriClient({ url: 'http://h:1', user: 'u', password: 'p', app: 'a', fetch: f });
  assert.equal(await ari.channels.hangup('c1'), undefined);
});

test('an unreachable Asterisk is an AriConnectionError naming the cause', async () => {
  // A port that was just free: nothing listens (connection refused).
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as AddressInfo).port;
  srv.close();
  await once(srv, 'close');
  const ari = new AriClient({ url: `http://127.0.0.1:${port}`, user: 'u', password: 'p', app: 'a', timeoutMs: 2000 });
  await assert.rejects(ari.asterisk.ping(), (e: unknown) => e instanceof AriConnectionError && e.reason === 'ECONNREFUSED');
});

test('a hanging Asterisk times out as AriConnectionError', async () => {
  const { f } = fakeFetch((_u, init) => new Promise((_res, rej) => {
    init.signal?.addEventListener('abort', () => rej(init.signal?.reason));
  }));
  const ari = new AriClient({ url: 'http://h:1', user: 'u', password: 'p', app: 'a', timeoutMs: 50, fetch: f });
  // AbortSignal.timeout's timer does not hold the event loop open; this one does, for the test's sake.
  const keepAlive = setTimeout(() => {}, 5000);
  await assert.rejects(ari.asterisk.ping(), (e: unknown) => e instanceof AriConnectionError && e.reason === 'timed out');
  clearTimeout(keepAlive);
});
