import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { registerAccess, requireToken } from '../../plugin/rest/access.js';

const PAGE = 'https://demo.example.com';
const OTHER = 'https://evil.example.net';
const TOKEN = 's3cret-token-0123456789';

function sendError(reply: FastifyReply, status: number, message: string) {
  return reply.code(status).send({ status, error: message });
}

/** A miniature of server.ts: same error format, find_all answers [], startup wants a JSON object. */
function buildApp(o: { corsOrigins?: string[]; apiToken?: string; prefix?: string; hostnames?: string[]; onAuthFailure?: () => void; authFailureDelayMs?: number; ran?: string[] } = {}): FastifyInstance {
  const app = Fastify({ logger: false });
  const p = o.prefix ?? '/rest-api';
  app.setErrorHandler((err, _req, reply) => {
    const e = err as { statusCode?: number; message: string };
    return sendError(reply, e.statusCode && e.statusCode < 500 ? e.statusCode : 500, e.message);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, `no such method ${req.method} ${req.url.split('?')[0]}`));
  app.post(`${p}/call/find_all`, async () => []);
  app.get('/console/', async () => 'page');
  app.post(`${p}/call/startup`, async (req, reply) => {
    o.ran?.push('startup');
    const b = req.body;
    if (!b || typeof b !== 'object') return sendError(reply, 400, 'body must be a JSON object');
    return reply.code(200).send();
  });
  registerAccess(app, {
    prefix: p, corsOrigins: o.corsOrigins ?? [], apiToken: o.apiToken ?? '', hostnames: o.hostnames ?? [], authFailureDelayMs: o.authFailureDelayMs ?? 0,
    ...(o.onAuthFailure ? { onAuthFailure: o.onAuthFailure } : {}),
  });
  return app;
}

function preflight(app: FastifyInstance, origin: string | undefined, reqHeaders = 'content-type', url = '/rest-api/call/find_all') {
  const headers: Record<string, string> = { 'access-control-request-method': 'POST' };
  if (origin !== undefined) headers.origin = origin;
  if (reqHeaders) headers['access-control-request-headers'] = reqHeaders;
  return app.inject({ method: 'OPTIONS', url, headers });
}

function post(app: FastifyInstance, headers: Record<string, string> = {}, url = '/rest-api/call/find_all', payload = '{}') {
  return app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload });
}

test('preflight from an allowed origin: 204 with the CORS headers', async () => {
  const app = buildApp({ corsOrigins: [PAGE] });
  const r = await preflight(app, PAGE, 'content-type');
  assert.equal(r.statusCode, 204);
  assert.equal(r.headers['access-control-allow-origin'], PAGE);
  assert.equal(r.headers['access-control-allow-methods'], 'POST, OPTIONS');
  assert.equal(r.headers['access-control-allow-headers'], 'content-type');
  assert.equal(r.headers['access-control-max-age'], '600');
  assert.match(String(r.headers.vary), /\bOrigin\b/);
  assert.equal(r.headers['access-control-allow-credentials'], undefined);
  assert.equal(r.body, '');
});

test('origin match is case-insensitive and exact on scheme, host and port', async () => {
  const app = buildApp({ corsOrigins: ['https://demo.example.com', 'http://localhost:8888'] });
  const upper = await preflight(app, 'HTTPS://Demo.Example.COM');
  assert.equal(upper.statusCode, 204);
  assert.equal(upper.headers['access-control-allow-origin'], 'HTTPS://Demo.Example.COM');
  assert.equal((await preflight(app, 'http://localhost:8888')).statusCode, 204);
  for (const o of ['http://demo.example.com', 'https://demo.example.com:8443', 'http://localhost:8889', 'https://demo.example.com.evil.net']) {
    assert.equal((await preflight(app, o)).statusCode, 403, o);
  }
});

test('preflight from a disallowed origin: 403 JSON error, no CORS headers', async () => {
  const app = buildApp({ corsOrigins: [PAGE] });
  const r = await preflight(app, OTHER);
  assert.equal(r.statusCode, 403);
  assert.deepEqual(r.json(), { status: 403, error: `origin ${OTHER} is not allowed (CORS_ORIGINS)` });
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  assert.equal(r.headers['access-control-allow-methods'], undefined);
});

test('no CORS_ORIGINS configured: every preflight is refused', async () => {
  const app = buildApp();
  const r = await preflight(app, PAGE);
  assert.equal(r.statusCode, 403);
  assert.equal(r.headers['access-control-allow-origin'], undefined);
  const p = await post(app, { origin: PAGE });
  assert.equal(p.statusCode, 403, 'a cross-origin POST is refused, not processed');
  assert.equal(p.headers['access-control-allow-origin'], undefined);
});

test('"*" allows any origin and echoes it (not a literal *)', async () => {
  const app = buildApp({ corsOrigins: ['*'] });
  for (const o of [OTHER, 'http://127.0.0.1:3000', 'null']) {
    const r = await preflight(app, o);
    assert.equal(r.statusCode, 204, o);
    assert.equal(r.headers['access-control-allow-origin'], o);
    const p = await post(app, { origin: o });
    assert.equal(p.statusCode, 200);
    assert.equal(p.headers['access-control-allow-origin'], o);
    assert.match(String(p.headers.vary), /\bOrigin\b/);
  }
});

test('preflight echoes only allow-listed request headers', async () => {
  const app = buildApp({ corsOrigins: [PAGE] });
  const all = await preflight(app, PAGE, 'Content-Type, X-Api-Token,authorization , X-Requested-With');
  assert.equal(all.headers['access-control-allow-headers'], 'content-type, x-api-token, authorization, x-requested-with');
  const mixed = await preflight(app, PAGE, 'content-type, x-evil, cookie, content-type');
  assert.equal(mixed.headers['access-control-allow-headers'], 'content-type');
  const none = await preflight(app, PAGE, 'x-evil');
  assert.equal(none.statusCode, 204);
  assert.equal(none.headers['access-control-allow-headers'], undefined);
  const absent = await preflight(app, PAGE, '');
  assert.equal(absent.statusCode, 204);
  assert.equal(absent.headers['access-control-allow-headers'], undefined);
});

test('preflight works on any path under the prefix, even ones with no route', async () => {
  const app = buildApp({ corsOrigins: [PAGE] });
  for (const url of ['/rest-api/call/startup', '/rest-api/call/nope', '/rest-api', '/rest-api/call/find_all?x=1']) {
    assert.equal((await preflight(app, PAGE, 'content-type', url)).statusCode, 204, url);
  }
  // Outside the prefix: not ours, plain 404.
  assert.equal((await preflight(app, PAGE, 'content-type', '/other/x')).statusCode, 404);
  assert.equal((await preflight(app, PAGE, 'content-type', '/rest-apix/call/find_all')).statusCode, 404);
});

test('a bare OPTIONS without Origin is answered 204 with Allow, no CORS headers', async () => {
  const app = buildApp({ corsOrigins: [PAGE], apiToken: TOKEN });
  const r = await preflight(app, undefined);
  assert.equal(r.statusCode, 204);
  assert.equal(r.headers.allow, 'POST, OPTIONS');
  assert.equal(r.headers['access-control-allow-origin'], undefined);
});

test('simple POST: Allow-Origin for an allowed origin; a disallowed one is refused (403) before the handler runs', async () => {
  const app = buildApp({ corsOrigins: [PAGE] });
  const ok = await post(app, { origin: PAGE });
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(ok.json(), []);
  assert.equal(ok.headers['access-control-allow-origin'], PAGE);
  assert.match(String(ok.headers.vary), /\bOrigin\b/);
  assert.equal(ok.headers['access-control-allow-credentials'], undefined);

  const ran: string[] = [];
  const guarded = buildApp({ corsOrigins: [PAGE], ran });
  for (const [type, payload] of [['application/json', '{}'], ['text/plain', '{}'], ['application/x-www-form-urlencoded', 'a=1'], ['application/json', '{"__proto__":']]) {
    const other = await guarded.inject({ method: 'POST', url: '/rest-api/call/startup', headers: { origin: OTHER, 'content-type': type! }, payload });
    assert.equal(other.statusCode, 403, type);
    assert.deepEqual(other.json(), { status: 403, error: `origin ${OTHER} is not allowed (CORS_ORIGINS)` });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  }
  assert.deepEqual(ran, [], 'nothing ran, no body was parsed (a malformed one is still 403, not 400)');
  // A GET from a foreign origin (a page's <img>, a link) is not state-changing: not refused for its Origin.
  assert.equal((await guarded.inject({ method: 'GET', url: '/console/', headers: { origin: OTHER } })).statusCode, 200);
});

test('same-origin POST (Origin is the Host): allowed without CORS_ORIGINS, default ports normalized', async () => {
  const app = buildApp();
  const cases: [string, string, number][] = [
    ['http://localhost:8081', 'localhost:8081', 200],
    ['https://127.0.0.1:8444', '127.0.0.1:8444', 200],
    ['https://localhost', 'localhost:443', 200],
    ['http://LOCALHOST', 'localhost', 200],
    ['http://[::1]:8081', '[::1]:8081', 200],
    ['http://localhost:8082', 'localhost:8081', 403],
    ['http://localhost', 'localhost:443', 403],
    ['http://localhost.evil.net:8081', 'localhost:8081', 403],
    ['null', 'localhost:8081', 403],
    ['file://', 'localhost', 403],
  ];
  for (const [origin, host, code] of cases) {
    assert.equal((await post(app, { origin, host })).statusCode, code, `${origin} on ${host}`);
  }
});

test('a disallowed Origin is refused with or without the token, and with the right one', async () => {
  const app = buildApp({ corsOrigins: [PAGE], apiToken: TOKEN });
  for (const headers of [{}, { 'x-api-token': TOKEN }, { 'x-api-token': 'wrong' }] as Record<string, string>[]) {
    const r = await post(app, { origin: OTHER, ...headers });
    assert.equal(r.statusCode, 403, JSON.stringify(headers));
    assert.match(r.json().error, /is not allowed \(CORS_ORIGINS\)/);
  }
});

test('errors from later handlers (400, 404) still carry the CORS headers', async () => {
  const app = buildApp({ corsOrigins: [PAGE] });
  const bad = await post(app, { origin: PAGE }, '/rest-api/call/startup', '"a string"');
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.headers['access-control-allow-origin'], PAGE);
  const nf = await post(app, { origin: PAGE }, '/rest-api/call/nope');
  assert.equal(nf.statusCode, 404);
  assert.equal(nf.headers['access-control-allow-origin'], PAGE);
  assert.equal(nf.json().status, 404);
});

test('no Origin (server to server) works, with and without CORS configured', async () => {
  for (const corsOrigins of [[], [PAGE], ['*']]) {
    const app = buildApp({ corsOrigins });
    const r = await post(app);
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), []);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  }
});

test('token missing: 401 with WWW-Authenticate, and CORS headers for an allowed origin', async () => {
  const app = buildApp({ corsOrigins: [PAGE], apiToken: TOKEN });
  const r = await post(app, { origin: PAGE });
  assert.equal(r.statusCode, 401);
  assert.deepEqual(r.json(), { status: 401, error: 'missing or wrong API token (X-Api-Token header)' });
  assert.equal(r.headers['www-authenticate'], 'Bearer');
  assert.equal(r.headers['access-control-allow-origin'], PAGE);
  assert.ok(!r.body.includes(TOKEN));

  const noOrigin = await post(app);
  assert.equal(noOrigin.statusCode, 401);
  assert.equal(noOrigin.headers['access-control-allow-origin'], undefined);

  const other = await post(app, { origin: OTHER });
  assert.equal(other.statusCode, 403, 'a disallowed origin is refused before the token matters');
  assert.equal(other.headers['access-control-allow-origin'], undefined);
});

test('wrong token: 401, and the token is never echoed', async () => {
  const app = buildApp({ corsOrigins: [PAGE], apiToken: TOKEN });
  const cases: Record<string, string>[] = [
    { 'x-api-token': 'nope' },
    { 'x-api-token': `${TOKEN}x` },
    { 'x-api-token': TOKEN.slice(0, -1) },
    { authorization: 'Bearer nope' },
    { authorization: `Basic ${TOKEN}` },
    { authorization: TOKEN },
    { 'x-api-token': '' },
  ];
  for (const headers of cases) {
    const r = await post(app, headers);
    assert.equal(r.statusCode, 401, JSON.stringify(headers));
    assert.equal(r.headers['www-authenticate'], 'Bearer');
    assert.ok(!r.body.includes(TOKEN) && !JSON.stringify(r.headers).includes(TOKEN));
  }
});

test('right token via X-Api-Token or Authorization: Bearer: 200', async () => {
  const app = buildApp({ corsOrigins: [PAGE], apiToken: TOKEN });
  const x = await post(app, { origin: PAGE, 'x-api-token': TOKEN });
  assert.equal(x.statusCode, 200);
  assert.deepEqual(x.json(), []);
  assert.equal(x.headers['access-control-allow-origin'], PAGE);
  const b = await post(app, { authorization: `Bearer ${TOKEN}` });
  assert.equal(b.statusCode, 200);
  const lower = await post(app, { authorization: `bearer  ${TOKEN}` });
  assert.equal(lower.statusCode, 200);
  // A wrong X-Api-Token does not spoil a right Bearer (and vice versa).
  assert.equal((await post(app, { 'x-api-token': 'nope', authorization: `Bearer ${TOKEN}` })).statusCode, 200);
});

test('preflight needs no token; a disallowed preflight is still 403 (not 401)', async () => {
  const app = buildApp({ corsOrigins: [PAGE], apiToken: TOKEN });
  const r = await preflight(app, PAGE, 'content-type, x-api-token');
  assert.equal(r.statusCode, 204);
  assert.equal(r.headers['access-control-allow-headers'], 'content-type, x-api-token');
  assert.equal((await preflight(app, OTHER)).statusCode, 403);
});

test('token compare does not throw on any length, including long and multibyte', async () => {
  const app = buildApp({ apiToken: TOKEN });
  for (const t of ['a', 'x'.repeat(4000), 'é'.repeat(TOKEN.length), TOKEN + TOKEN]) {
    const r = await post(app, { 'x-api-token': t });
    assert.equal(r.statusCode, 401);
  }
  const multi = buildApp({ apiToken: 'jeton-été' });
  assert.equal((await post(multi, { authorization: 'Bearer jeton-été' })).statusCode, 200);
});

test('the token check covers unknown paths under the prefix and %-encoded paths', async () => {
  const app = buildApp({ apiToken: TOKEN });
  assert.equal((await post(app, {}, '/rest-api/call/nope')).statusCode, 401);
  assert.equal((await post(app, {}, '/rest%2Dapi/call/find_all')).statusCode, 401);
  assert.equal((await post(app, {}, '/rest-api/call/find%5Fall')).statusCode, 401);
  // Outside the prefix there is nothing to protect: plain 404.
  assert.equal((await post(app, {}, '/other')).statusCode, 404);
});

test('empty apiToken: no token check at all', async () => {
  const app = buildApp({ corsOrigins: [PAGE], apiToken: '' });
  const r = await post(app, { origin: PAGE });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['www-authenticate'], undefined);
  assert.equal((await post(app, { 'x-api-token': 'anything' })).statusCode, 200);
});

test('empty prefix: the whole server is under it', async () => {
  const app = buildApp({ prefix: '', corsOrigins: [PAGE], apiToken: TOKEN });
  assert.equal((await preflight(app, PAGE, 'content-type', '/call/find_all')).statusCode, 204);
  assert.equal((await post(app, {}, '/call/find_all')).statusCode, 401);
  assert.equal((await post(app, { 'x-api-token': TOKEN }, '/call/find_all')).statusCode, 200);
});

test('requireToken guards a route outside the prefix (/metrics): 401 without, 200 with X-Api-Token or a bearer token', async () => {
  const app = Fastify({ logger: false });
  app.get('/metrics', { onRequest: requireToken(TOKEN, { authFailureDelayMs: 0 }) }, async () => 'ok');
  const open = Fastify({ logger: false });
  open.get('/metrics', { onRequest: requireToken('') }, async () => 'ok');
  const none = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(none.statusCode, 401);
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  assert.doesNotMatch(none.body, new RegExp(TOKEN));
  assert.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong' } })).statusCode, 401);
  assert.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { 'x-api-token': TOKEN } })).statusCode, 200);
  assert.equal((await open.inject({ method: 'GET', url: '/metrics' })).statusCode, 200, 'no token configured: open');
});

test('public pages (the console, /docs) load without the token even when the prefix is the whole server; the API does not', async () => {
  const app = Fastify({ logger: false });
  app.get('/console/', async () => 'page');
  app.get('/docs/json', async () => '{}');
  app.get('/events', async () => 'feed');
  app.post('/console/x', async () => 'no');
  app.get('/consoles', async () => 'other');
  registerAccess(app, { prefix: '', corsOrigins: [], apiToken: TOKEN, publicPages: ['/', '/console', '/docs'], authFailureDelayMs: 0 });
  const get = async (url: string, method: 'GET' | 'POST' = 'GET') => (await app.inject({ method, url })).statusCode;
  assert.equal(await get('/console/'), 200);
  assert.equal(await get('/docs/json'), 200);
  assert.equal(await get('/events'), 401, 'the live feed is not a page');
  assert.equal(await get('/console/x', 'POST'), 401, 'only GET and HEAD');
  assert.equal(await get('/consoles'), 401, 'a path segment, not a string prefix');
});

const EVIL = 'evil.example:8081';

test('DNS rebinding: without a token, a Host other than loopback and the configured names is refused on every path', async () => {
  const app = buildApp({ corsOrigins: [PAGE] });
  const r = await post(app, { host: EVIL, origin: `http://${EVIL}` });
  assert.equal(r.statusCode, 403);
  assert.deepEqual(r.json(), { status: 403, error: `host ${EVIL} is not served here (REST_HOSTNAMES)` });
  for (const [method, url] of [['GET', '/console/'], ['GET', '/metrics'], ['GET', '/rest-api/events'], ['GET', '/rest-api/preview/x.flv'], ['GET', '/docs'], ['OPTIONS', '/rest-api/call/find_all'], ['POST', '/nowhere']] as const) {
    const x = await app.inject({ method, url, headers: { host: EVIL } });
    assert.equal(x.statusCode, 403, `${method} ${url}`);
  }
  const long = await post(app, { host: `${'a'.repeat(300)}.example` });
  assert.equal(long.statusCode, 403);
  assert.ok(long.json().error.length < 300, 'the echoed host is truncated');
  for (const host of ['localhost:8081', '127.0.0.1', '127.0.0.1:1', 'LocalHost:8444', '[::1]:8081', '[::1]', 'localhost.:8081']) {
    assert.equal((await post(app, { host })).statusCode, 200, host);
  }
  for (const host of ['127.0.0.2', 'localhost.evil.example', '127.0.0.1.evil.example', 'evil.example', '[::2]', 'localhost:80:80', 'user@localhost', '0.0.0.0:8081']) {
    assert.equal((await post(app, { host })).statusCode, 403, host);
  }
});

test('REST_HOSTNAMES (and REST_HOST) are served, any port; with a token the Host is not checked', async () => {
  const named = buildApp({ hostnames: ['pbx.example.com', '10.0.0.5', '::5', '[fd00::5]'] });
  for (const host of ['pbx.example.com:8081', 'PBX.example.com', '10.0.0.5:8444', '[::5]:8081', '[fd00::5]']) {
    assert.equal((await post(named, { host })).statusCode, 200, host);
  }
  assert.equal((await post(named, { host: 'other.example.com' })).statusCode, 403);
  const tokened = buildApp({ apiToken: TOKEN });
  assert.equal((await post(tokened, { host: EVIL, 'x-api-token': TOKEN })).statusCode, 200, 'the token is what guards it');
  assert.equal((await post(tokened, { host: EVIL })).statusCode, 401);
});

test('a 401 is answered after the constant delay and counted; requireToken too', async () => {
  let failures = 0;
  const app = buildApp({ apiToken: TOKEN, authFailureDelayMs: 300, onAuthFailure: () => failures++ });
  const t0 = Date.now();
  assert.equal((await post(app, { 'x-api-token': 'wrong' })).statusCode, 401);
  const took = Date.now() - t0;
  assert.ok(took >= 280, `answered after ${took} ms`);
  assert.equal(failures, 1);
  const t1 = Date.now();
  assert.equal((await post(app, { 'x-api-token': TOKEN })).statusCode, 200);
  assert.ok(Date.now() - t1 < 280, 'the right token is not delayed');
  assert.equal(failures, 1);

  const metrics = Fastify({ logger: false });
  metrics.get('/metrics', { onRequest: requireToken(TOKEN, { authFailureDelayMs: 300, onAuthFailure: () => failures++ }) }, async () => 'ok');
  const t2 = Date.now();
  assert.equal((await metrics.inject({ method: 'GET', url: '/metrics' })).statusCode, 401);
  assert.ok(Date.now() - t2 >= 280);
  assert.equal(failures, 2);
});
