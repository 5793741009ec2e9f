/**
 * Hostile HTTP clients against the real web front (plugin/app.ts createWebFront: the REST API, console,
 * docs, live feed, preview and /metrics, over real sockets on 127.0.0.1, HTTP and HTTPS), with the calls
 * faked: DNS rebinding, cross-origin posts, a missing Host, prototype poisoning, token guessing,
 * slowloris, the connection cap; and the long-lived answers (live feed, preview) outliving every timeout.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { createWebFront, type WebFront } from '../../plugin/app.js';
import { loadConfig } from '../../plugin/config.js';
import { LiveFeed, type FeedClient } from '../../plugin/console/live-feed.js';
import { createLogger } from '../../plugin/lib/log.js';
import { MediaTicker } from '../../plugin/media/timeline/ticker.js';
import { AppMetrics } from '../../plugin/metrics/metrics.js';

const TOKEN = 'hostile-test-token-0123456789';
/** Low, so that the test is short: Node checks its connections every tenth of it (rest/server.ts). */
const HEADERS_TIMEOUT_MS = 1500;
const LIMITS = { HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), HTTP_REQUEST_TIMEOUT_MS: '2000', HTTP_KEEPALIVE_TIMEOUT_MS: '1000' };

/** The calls, faked: one live call c1 (its preview never sends a frame), startups recorded. */
function fakeCalls() {
  const started: string[] = [];
  const sinks = new Set<unknown>();
  const view = { callId: 'c1', status: 'ESTABLISHED' };
  const call = {
    key: 'k1', final: false, ending: false, status: 'ESTABLISHED', req: { callId: 'c1', hasVideo: false },
    media: { stream: { addSink: (s: unknown) => sinks.add(s), removeSink: (s: unknown) => sinks.delete(s) } },
    resources: { add: () => () => undefined },
  };
  const calls = {
    changes: new EventEmitter(),
    list: () => [],
    get: (id: string) => (id === 'c1' ? call : undefined),
    find: () => [view],
    vetStartup: async () => undefined,
    reserve: async () => undefined,
    unreserve: async () => undefined,
    startup: (r: { callId: string }) => started.push(r.callId),
    recordingStats: () => ({ byState: {}, started: 0, failed: 0, writtenBytes: 0, seconds: 0 }),
    ticker: new MediaTicker(20),
  };
  return { calls, started, sinks };
}

interface Front {
  web: WebFront;
  started: string[];
  /** host:port of each listener. */
  http: string;
  https: string;
  stop(): Promise<void>;
}

async function startFront(env: Record<string, string>): Promise<Front> {
  const config = loadConfig({ ARI_PASSWORD: 'x', REST_PORT: '0', ...LIMITS, ...env });
  const { calls, started } = fakeCalls();
  const metrics = new AppMetrics(calls as never, { jitterDepthMs: 60 });
  const web = createWebFront(config, { log: createLogger({ level: 'silent' }), calls: calls as never, metrics });
  await web.listen();
  const hostOf = (url: string) => (url ? new URL(url).host : '');
  return { web, started, http: hostOf(web.restUrl.startsWith('http:') ? web.restUrl : ''), https: hostOf(web.httpsUrl), stop: () => web.close() };
}

interface Answer { status: number; headers: IncomingMessage['headers']; body: string; ms: number }

/** One request over a fresh connection; `headers` replace Node's (Host included). */
function send(
  base: string, method: string, path: string, o: { headers?: Record<string, string>; body?: string; tls?: { ca: Buffer } } = {},
): Promise<Answer> {
  const t0 = Date.now();
  const [hostname, port] = [base.slice(0, base.lastIndexOf(':')), Number(base.slice(base.lastIndexOf(':') + 1))];
  const body = o.body ?? (method === 'POST' ? '{}' : undefined);
  const headers: Record<string, string> = { ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...o.headers };
  if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
  const opts = { hostname, port, method, path, headers, agent: false as const, ...(o.tls ? { ca: o.tls.ca, servername: 'localhost' } : {}) };
  return new Promise((resolve, reject) => {
    const req = (o.tls ? httpsRequest : httpRequest)(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: Date.now() - t0 }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const json = (a: Answer) => JSON.parse(a.body) as { status: number; error: string; field?: string };

/** Raw bytes over a socket; resolves with what came back once the server closes it. */
function raw(base: string, text: string): Promise<string> {
  const [host, port] = [base.slice(0, base.lastIndexOf(':')), Number(base.slice(base.lastIndexOf(':') + 1))];
  return new Promise((resolve, reject) => {
    const s = connect({ host, port }, () => s.write(text));
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

let plain: Front;
before(async () => {
  plain = await startFront({ CORS_ORIGINS: 'https://wcs.example.com:8444' });
});
after(async () => plain.stop());

test('DNS rebinding: Host evil.example:8081 with its own Origin gets 403 on every path, nothing runs', async () => {
  const evil = { host: 'evil.example:8081', origin: 'http://evil.example:8081' };
  const r = await send(plain.http, 'POST', '/rest-api/call/find_all', { headers: evil });
  assert.equal(r.status, 403);
  assert.deepEqual(json(r), { status: 403, error: 'host evil.example:8081 is not served here (REST_HOSTNAMES)' });
  for (const [method, path] of [['GET', '/console/'], ['GET', '/docs'], ['GET', '/metrics'], ['GET', '/rest-api/events'], ['GET', '/rest-api/preview/c1.flv'], ['POST', '/rest-api/call/startup']]) {
    assert.equal((await send(plain.http, method!, path!, { headers: { host: 'evil.example:8081' } })).status, 403, `${method} ${path}`);
  }
  assert.deepEqual(plain.started, []);
  // The very same request by the loopback name it listens on: served.
  const ok = await send(plain.http, 'POST', '/rest-api/call/find_all', { headers: { host: plain.http } });
  assert.equal(ok.status, 200);
});

test('a cross-origin POST without a token: 403 before the body is read; the configured origin and same-origin pass', async () => {
  const body = JSON.stringify({ callId: 'x1', callee: '100', sipDomain: 'pbx', toStream: 's', rtmpUrl: 'rtmp://h/live' });
  const foreign = await send(plain.http, 'POST', '/rest-api/call/startup', { headers: { origin: 'https://evil.example', 'content-type': 'text/plain' }, body });
  assert.equal(foreign.status, 403);
  assert.deepEqual(json(foreign), { status: 403, error: 'origin https://evil.example is not allowed (CORS_ORIGINS)' });
  assert.deepEqual(plain.started, []);
  const wcs = await send(plain.http, 'POST', '/rest-api/call/find_all', { headers: { origin: 'https://wcs.example.com:8444' } });
  assert.equal(wcs.status, 200);
  assert.equal(wcs.headers['access-control-allow-origin'], 'https://wcs.example.com:8444');
  const same = await send(plain.http, 'POST', '/rest-api/call/find_all', { headers: { origin: `http://${plain.http}` } });
  assert.equal(same.status, 200, 'the console posts same-origin');
  assert.equal((await send(plain.http, 'POST', '/rest-api/call/find_all')).status, 200, 'no Origin (curl, a backend): served');
});

test('no Host: HTTP/1.0 from a loopback peer is served (browsers always send one); HTTP/1.1 without it is Node\'s 400', async () => {
  const ten = await raw(plain.http, 'POST /rest-api/call/find_all HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}');
  assert.match(ten, /^HTTP\/1\.[01] 200 /);
  const eleven = await raw(plain.http, 'POST /rest-api/call/find_all HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.match(eleven, /^HTTP\/1\.1 400 /);
});

test('prototype poisoning: __proto__ and constructor.prototype keys are a 400 naming body; plain JSON still parses', async () => {
  for (const body of ['{"callId":"c1","__proto__":{"admin":true}}', '{"a":{"constructor":{"prototype":{"admin":true}}}}', '[{"__proto__":{}}]']) {
    const r = await send(plain.http, 'POST', '/rest-api/call/find', { body });
    assert.equal(r.status, 400, body);
    assert.deepEqual(json(r), { status: 400, error: 'body must not contain __proto__ or constructor.prototype keys', field: 'body' });
  }
  const bad = await send(plain.http, 'POST', '/rest-api/call/find', { body: '{"callId":' });
  assert.deepEqual(json(bad), { status: 400, error: 'body is not valid JSON', field: 'body' });
  assert.equal((await send(plain.http, 'POST', '/rest-api/call/find', { body: '{"callId":"c1","constructor":"x"}' })).status, 200);
});

test('200 slowloris connections are each closed within the headers timeout; the API answers in under 1 s meanwhile', { timeout: 30_000 }, async () => {
  const [host, port] = [plain.http.split(':')[0]!, Number(plain.http.split(':')[1])];
  const closedAfter: number[] = [];
  const sockets: Socket[] = [];
  const done = Array.from({ length: 200 }, () => new Promise<void>((resolve) => {
    const t0 = Date.now();
    const s = connect({ host, port }, () => s.write(`GET /rest-api/call/find_all HTTP/1.1\r\nHost: ${plain.http}\r\nX-Slow: `));
    sockets.push(s);
    // A byte every 400 ms: the headers never end, but the socket is never idle either.
    const drip = setInterval(() => s.writable && s.write('a'), 400);
    s.on('error', () => undefined);
    // Read what comes (the 408): a paused socket would notice the server's close only at its next write.
    s.resume();
    s.on('close', () => {
      clearInterval(drip);
      closedAfter.push(Date.now() - t0);
      resolve();
    });
  }));
  const latencies: number[] = [];
  const t0 = Date.now();
  while (Date.now() - t0 < HEADERS_TIMEOUT_MS + 500) {
    const r = await send(plain.http, 'POST', '/rest-api/call/find_all');
    assert.equal(r.status, 200);
    latencies.push(r.ms);
    await new Promise((res) => setTimeout(res, 100));
  }
  const watchdog = setTimeout(() => sockets.forEach((s) => s.destroy()), 15_000);
  await Promise.all(done);
  clearTimeout(watchdog);
  const worst = Math.max(...closedAfter);
  console.log(`# slowloris: 200 closed after ${Math.min(...closedAfter)}-${worst} ms (headers timeout ${HEADERS_TIMEOUT_MS} ms); API meanwhile ${latencies.length} answers, slowest ${Math.max(...latencies)} ms`);
  assert.equal(closedAfter.length, 200);
  // The timeout plus one connection check (a tenth of it), with room for a busy 2-core machine.
  assert.ok(worst < HEADERS_TIMEOUT_MS + HEADERS_TIMEOUT_MS / 10 + 1000, `slowest close ${worst} ms`);
  assert.ok(Math.max(...latencies) < 1000, `slowest API answer ${Math.max(...latencies)} ms`);
});

test('the live feed and the preview outlive the headers, request and keep-alive timeouts', { timeout: 20_000 }, async () => {
  const [host, port] = [plain.http.split(':')[0]!, Number(plain.http.split(':')[1])];
  const hold = (path: string) => new Promise<{ bytes: number; open: boolean; res: IncomingMessage }>((resolve, reject) => {
    const req = httpRequest({ host, port, path, agent: false }, (res) => {
      let bytes = 0;
      let open = true;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('close', () => (open = false));
      // Past all three timeouts (1.5, 2 and 1 s) and then some.
      setTimeout(() => resolve({ bytes, open, res }), 4500);
    });
    req.on('error', reject);
    req.end();
  });
  const [feed, preview] = await Promise.all([hold('/rest-api/events'), hold('/rest-api/preview/c1.flv')]);
  assert.equal(feed.res.statusCode, 200);
  assert.ok(feed.open, 'the feed is still open');
  assert.ok(feed.bytes > 0, 'and got its snapshot');
  assert.equal(preview.res.statusCode, 200);
  assert.ok(preview.open, 'the preview is still open (idle: its call sends nothing)');
  assert.equal(preview.bytes, 13, 'the FLV header');
  feed.res.destroy();
  preview.res.destroy();
});

test('a failed token is answered after the delay and counted in /metrics (API and /metrics alike)', { timeout: 20_000 }, async () => {
  const f = await startFront({ API_TOKEN: TOKEN });
  try {
    const wrong = await send(f.http, 'POST', '/rest-api/call/find_all', { headers: { 'x-api-token': 'guess-guess-guess-1' } });
    assert.equal(wrong.status, 401);
    assert.ok(wrong.ms >= 280, `answered after ${wrong.ms} ms`);
    assert.equal((await send(f.http, 'GET', '/metrics', { headers: { authorization: 'Bearer nope' } })).status, 401);
    const right = await send(f.http, 'POST', '/rest-api/call/find_all', { headers: { 'x-api-token': TOKEN, host: 'evil.example:8081' } });
    assert.equal(right.status, 200, 'with a token the Host is not what guards it');
    const m = await send(f.http, 'GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(m.status, 200);
    assert.match(m.body, /^sip_as_rtmp_rest_auth_failures_total 2$/m);
  } finally {
    await f.stop();
  }
});

test('HTTP_MAX_CONNECTIONS: a connection over the cap is closed at once; freed places are taken again', { timeout: 20_000 }, async () => {
  const f = await startFront({ HTTP_MAX_CONNECTIONS: '5' });
  const [host, port] = [f.http.split(':')[0]!, Number(f.http.split(':')[1])];
  const open = (): Promise<Socket> => new Promise((resolve) => {
    const s = connect({ host, port }, () => resolve(s));
    s.on('error', () => undefined);
  });
  try {
    const held = await Promise.all(Array.from({ length: 5 }, open));
    await new Promise((res) => setTimeout(res, 100));
    const t0 = Date.now();
    const over = await raw(f.http, `GET /console/config.json HTTP/1.1\r\nHost: ${f.http}\r\nConnection: close\r\n\r\n`);
    assert.equal(over, '', 'closed without an answer');
    assert.ok(Date.now() - t0 < 1000);
    for (const s of held) s.destroy();
    await new Promise((res) => setTimeout(res, 200));
    assert.equal((await send(f.http, 'GET', '/console/config.json')).status, 200);
  } finally {
    await f.stop();
  }
});

test('a slow live-feed client is destroyed (its socket and queue freed now), not ended', () => {
  const calls = { changes: new EventEmitter(), list: () => [] };
  const feed = new LiveFeed(calls as never, { prefix: '/rest-api', statsIntervalMs: 60_000, heartbeatMs: 60_000 });
  const did: string[] = [];
  const slow: FeedClient = { write: () => false, writableLength: 2 * 1024 * 1024, end: () => did.push('end'), destroy: () => did.push('destroy') };
  feed.attach(slow);
  assert.deepEqual(did, ['destroy']);
  assert.equal(feed.clientCount, 0);
  feed.close();
});

test('HTTPS (REST_PORT=off): the same API, console and feed over TLS; the Host check takes the HTTPS port', { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const ca = readFileSync(cert);
  const f = await startFront({ REST_PORT: 'off', HTTPS_PORT: '0', TLS_CERT_FILE: cert, TLS_KEY_FILE: key, CORS_ORIGINS: 'https://wcs.example.com:8444' });
  try {
    assert.equal(f.http, '', 'no plain listener');
    assert.match(f.web.restUrl, /^https:\/\/127\.0\.0\.1:\d+\/rest-api$/);
    const tls = { ca };
    const port = f.https.split(':')[1]!;
    const body = JSON.stringify({ callId: 'tls-1', callee: '100', sipDomain: 'pbx.example.com', toStream: 's1' });
    const startup = await send(f.https, 'POST', '/rest-api/call/startup', { tls, body, headers: { host: `localhost:${port}`, origin: 'https://wcs.example.com:8444' } });
    assert.equal(startup.status, 200, startup.body);
    assert.equal(startup.headers['access-control-allow-origin'], 'https://wcs.example.com:8444');
    assert.deepEqual(f.started, ['tls-1']);
    // The console page posts same-origin over https.
    assert.equal((await send(f.https, 'POST', '/rest-api/call/find_all', { tls, headers: { host: f.https, origin: `https://${f.https}` } })).status, 200);
    assert.equal((await send(f.https, 'GET', '/console/', { tls })).status, 200);
    const evil = await send(f.https, 'POST', '/rest-api/call/find_all', { tls, headers: { host: `evil.example:${port}` } });
    assert.equal(evil.status, 403);
    // The live feed over TLS outlives the timeouts too.
    const feed = await new Promise<{ open: boolean; status: number; close(): void }>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: Number(port), path: '/rest-api/events', ca, servername: 'localhost', agent: false }, (res) => {
        let open = true;
        res.on('close', () => (open = false));
        res.resume();
        setTimeout(() => resolve({ open, status: res.statusCode ?? 0, close: () => res.destroy() }), 3000);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(feed.status, 200);
    assert.ok(feed.open);
    feed.close();
  } finally {
    await f.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the console page works under https: no absolute http:// or ws:// URL in its files (all relative to its origin)', () => {
  const dir = join(import.meta.dirname, '../../../plugin/console/static');
  for (const f of ['index.html', 'api.js', 'feed.js', 'preview.js', 'console.js', 'call-form.js', 'call-panel.js', 'calls-table.js', 'pushes.js', 'recordings.js', 'state.js', 'dom.js']) {
    const text = readFileSync(join(dir, f), 'utf8').replace(/^\s*(\/\/|\*|\/\*).*$/gm, '');
    assert.doesNotMatch(text, /['"`](https?|wss?):\/\/(?!\$\{)/, f);
  }
});
