import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { HttpApproval } from '../../adapters/hooks/approval.js';
import { RestHooks, type MinimalLog } from '../../adapters/hooks/rest-hooks.js';
import { buildRestServer } from '../../plugin/rest/server.js';
import { NoHooks, type Hooks } from '../../plugin/hooks/hooks.js';
import { parseHookApps, RoutedHooks } from '../../plugin/hooks/routed.js';
import { createLogger } from '../../plugin/lib/log.js';

interface Received {
  n: number;
  at: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A local backend; `handle` answers (or holds) each request. Tracks the largest number of concurrent requests. */
/** Every backend still listening: closed after the last test, so a failed one cannot hold the file open (it once hung CI). */
const listening = new Set<() => Promise<void>>();
after(() => Promise.all([...listening].map((close) => close())));

async function backend(handle: (res: ServerResponse, r: Received) => void) {
  const received: Received[] = [];
  let active = 0;
  let maxActive = 0;
  const server = createServer((req, res) => {
    active++;
    maxActive = Math.max(maxActive, active);
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        active--;
      }
    };
    res.on('close', finish);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { n: received.length, at: Date.now(), headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> };
      received.push(r);
      handle(res, r);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = (): Promise<void> => {
    if (!listening.delete(close)) return Promise.resolve();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  listening.add(close);
  return {
    port,
    url: `http://127.0.0.1:${port}/hook`,
    received,
    get maxActive() {
      return maxActive;
    },
    close,
  };
}

function reply(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, headers).end(status < 300 ? 'ok' : 'no');
}

function stubLog() {
  const lines: { level: 'warn' | 'debug'; obj: object; msg: string }[] = [];
  const log: MinimalLog = {
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    debug: (obj, msg) => lines.push({ level: 'debug', obj, msg }),
  };
  return { log, lines };
}

async function waitFor(what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const fast = { initialMs: 10, maxMs: 20, factor: 2, minFraction: 0.5 };

test('events arrive in order, one at a time, with method/timestamp/sequence and a JSON content type', async () => {
  const srv = await backend((res) => setTimeout(() => reply(res, 200), 5));
  const { log } = stubLog();
  const hooks = new RestHooks({ url: srv.url, timeoutMs: 1000, queueMax: 100, log, backoff: fast });
  const before = Date.now();
  for (let i = 0; i < 5; i++) hooks.post('CallStatusEvent', { callId: `c${i}`, status: 'ESTABLISHED', method: 'overridden' });
  await waitFor('5 delivered', () => hooks.stats.delivered === 5);
  assert.equal(srv.received.length, 5);
  assert.equal(srv.maxActive, 1);
  const seqs = srv.received.map((r) => r.body.sequence as number);
  for (let i = 0; i < 5; i++) {
    const r = srv.received[i]!;
    assert.equal(r.body.callId, `c${i}`);
    assert.equal(r.body.method, 'CallStatusEvent');
    assert.equal(r.body.status, 'ESTABLISHED');
    assert.ok(typeof r.body.timestamp === 'number' && r.body.timestamp >= before && r.body.timestamp <= Date.now());
    assert.match(String(r.headers['content-type']), /^application\/json/);
    if (i > 0) assert.equal(seqs[i], seqs[i - 1]! + 1);
  }
  assert.deepEqual({ ...hooks.stats }, { queued: 0, delivered: 5, retries: 0, dropped: 0, rejected: 0, inFlight: false });
  await hooks.close();
  await srv.close();
});

test('500 twice then 200: the event is retried and delivered, the following ones after it in order', async () => {
  const srv = await backend((res, r) => reply(res, r.n < 2 ? 500 : 200));
  const { log, lines } = stubLog();
  const hooks = new RestHooks({ url: srv.url, timeoutMs: 1000, queueMax: 100, log, backoff: fast });
  hooks.post('RegistrationStatusEvent', { status: 'REGISTERED' });
  hooks.post('CallStatusEvent', { status: 'RING' });
  hooks.post('CallStatusEvent', { status: 'ESTABLISHED' });
  await waitFor('3 delivered', () => hooks.stats.delivered === 3);
  assert.deepEqual(
    srv.received.map((r) => r.body.status),
    ['REGISTERED', 'REGISTERED', 'REGISTERED', 'RING', 'ESTABLISHED'],
  );
  assert.equal(srv.maxActive, 1);
  const s = hooks.stats;
  assert.equal(s.retries, 2);
  assert.equal(s.dropped, 0);
  assert.equal(s.lastError, 'HTTP 500');
  assert.equal(lines.filter((l) => l.level === 'debug').length, 2);
  await hooks.close();
  await srv.close();
});

test('a backend that never answers does not block post(); events time out, are retried, then dropped', async () => {
  const srv = await backend(() => {}); // hold every request open
  const { log, lines } = stubLog();
  const hooks = new RestHooks({ url: srv.url, timeoutMs: 200, queueMax: 1000, log, backoff: fast, maxAttempts: 2 });
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) hooks.post('CallStatusEvent', { i, status: 'RING' });
  const took = performance.now() - t0;
  assert.ok(took < 50, `1000 posts took ${took.toFixed(1)} ms`);
  assert.equal(hooks.stats.queued, 1000);
  await waitFor('first event dropped', () => hooks.stats.dropped >= 1, 2000);
  await waitFor('second event sent', () => srv.received.length >= 3, 1000);
  assert.deepEqual(srv.received.slice(0, 3).map((r) => r.body.i), [0, 0, 1]);
  // One at a time from the client; the server may see the timed-out request's close after the retry
  // arrives (seen on a loaded machine), so it may count two open for a moment, never more.
  assert.ok(srv.maxActive <= 2, `${srv.maxActive} requests open at once`);
  const s = hooks.stats;
  assert.equal(s.retries, 1);
  assert.equal(s.inFlight, true);
  assert.match(s.lastError ?? '', /timeout after 200 ms/);
  assert.ok(lines.some((l) => l.level === 'warn' && /max attempts/.test(l.msg)));
  const c0 = performance.now();
  await hooks.close(50);
  assert.ok(performance.now() - c0 < 500);
  assert.equal(hooks.stats.dropped, 1000);
  assert.equal(hooks.stats.queued, 0);
  assert.equal(hooks.stats.inFlight, false);
  await srv.close();
});

test('checkTarget is asked before each delivery: a refused host is retried like a network error, never fetched', async () => {
  const srv = await backend((res) => reply(res, 200));
  const { log } = stubLog();
  let refuse = 2;
  const asked: string[] = [];
  const hooks = new RestHooks({
    url: `${srv.url}/app`, timeoutMs: 1000, queueMax: 100, log, backoff: fast,
    checkTarget: async (url) => {
      asked.push(url);
      if (refuse-- > 0) throw new Error("HOOK_URL's host x resolves to a link-local address; refused");
    },
  });
  hooks.post('CallStatusEvent', { status: 'RING' });
  await waitFor('delivered', () => hooks.stats.delivered === 1);
  assert.equal(asked.length, 3);
  assert.equal(srv.received.length, 1, 'nothing was sent while refused');
  assert.equal(hooks.stats.retries, 2);
  await hooks.close();
  await srv.close();
});

test('queue overflow drops the oldest waiting event (never the in-flight one) and counts it', async () => {
  const held: ServerResponse[] = [];
  let hold = true;
  const srv = await backend((res) => (hold ? held.push(res) : reply(res, 200)));
  const { log, lines } = stubLog();
  const hooks = new RestHooks({ url: srv.url, timeoutMs: 2000, queueMax: 3, log, backoff: fast });
  for (let i = 1; i <= 6; i++) hooks.post('CallStatusEvent', { i });
  assert.equal(hooks.stats.dropped, 2);
  assert.equal(hooks.stats.queued, 4); // the head + 3 waiting
  assert.equal(lines.filter((l) => /queue full/.test(l.msg)).length, 1); // rate-limited
  await waitFor('first request held', () => held.length === 1);
  hold = false;
  reply(held[0]!, 200);
  await waitFor('4 delivered', () => hooks.stats.delivered === 4);
  assert.deepEqual(srv.received.map((r) => r.body.i), [1, 4, 5, 6]);
  assert.equal(hooks.stats.dropped, 2);
  await hooks.close();
  await srv.close();
});

test('4xx is a refusal: counted as rejected, not retried, warned once per status per minute', async () => {
  const srv = await backend((res) => reply(res, 400));
  const { log, lines } = stubLog();
  let clock = 1_700_000_000_000;
  const hooks = new RestHooks({ url: srv.url, timeoutMs: 1000, queueMax: 100, log, backoff: fast, now: () => clock });
  for (let i = 0; i < 3; i++) hooks.post('CallStatusEvent', { i });
  await waitFor('3 rejected', () => hooks.stats.rejected === 3);
  assert.equal(srv.received.length, 3);
  assert.equal(srv.received[0]!.body.timestamp, clock);
  assert.equal(hooks.stats.retries, 0);
  assert.equal(hooks.stats.delivered, 0);
  assert.equal(hooks.stats.lastError, 'HTTP 400');
  const warns = () => lines.filter((l) => l.level === 'warn' && /refused/.test(l.msg));
  assert.equal(warns().length, 1);
  assert.equal((warns()[0]!.obj as { status: number }).status, 400);
  clock += 61_000;
  hooks.post('CallStatusEvent', { i: 3 });
  await waitFor('4 rejected', () => hooks.stats.rejected === 4);
  assert.equal(warns().length, 2);
  assert.equal((warns()[1]!.obj as { suppressed?: number }).suppressed, 2);
  await hooks.close();
  await srv.close();
});

test('Retry-After is honoured on 503, and capped at the backoff maximum on 429', async () => {
  const srv = await backend((res, r) => {
    if (r.n === 0) reply(res, 503, { 'retry-after': '1' });
    else if (r.n === 2) reply(res, 429, { 'retry-after': '60' });
    else reply(res, 200);
  });
  const { log } = stubLog();
  // random 0 + minFraction 0: the backoff alone would retry at once, so any wait comes from Retry-After.
  const common = { url: srv.url, timeoutMs: 1000, queueMax: 100, log, random: () => 0 };
  const a = new RestHooks({ ...common, backoff: { initialMs: 10, maxMs: 5000, minFraction: 0 } });
  a.post('CallStatusEvent', { i: 0 });
  await waitFor('first delivered', () => a.stats.delivered === 1, 3000);
  const gap1 = srv.received[1]!.at - srv.received[0]!.at;
  assert.ok(gap1 >= 950 && gap1 < 1500, `503 Retry-After: 1 → gap ${gap1} ms`);
  await a.close();

  const b = new RestHooks({ ...common, backoff: { initialMs: 10, maxMs: 150, minFraction: 0 } });
  b.post('CallStatusEvent', { i: 1 });
  await waitFor('second delivered', () => b.stats.delivered === 1, 3000);
  const gap2 = srv.received[3]!.at - srv.received[2]!.at;
  assert.ok(gap2 >= 140 && gap2 < 800, `429 Retry-After: 60 capped at 150 → gap ${gap2} ms`);
  assert.equal(b.stats.retries, 1);
  await b.close();
  await srv.close();
});

test('close() flushes what is queued when the backend answers', async () => {
  const srv = await backend((res) => setTimeout(() => reply(res, 200), 20));
  const { log } = stubLog();
  const hooks = new RestHooks({ url: srv.url, timeoutMs: 1000, queueMax: 100, log, backoff: fast });
  for (let i = 0; i < 5; i++) hooks.post('CallStatusEvent', { i });
  await hooks.close(2000);
  assert.equal(hooks.stats.delivered, 5);
  assert.equal(hooks.stats.dropped, 0);
  hooks.post('CallStatusEvent', { i: 99 }); // after close: ignored, no throw
  assert.equal(hooks.stats.queued, 0);
  await srv.close();
});

test('close() aborts the in-flight request and retry timer; nothing runs afterwards and no handles remain', async () => {
  const count = (kind: string) => process.getActiveResourcesInfo().filter((k) => k === kind).length;
  const baseTimeouts = count('Timeout');
  const baseSockets = count('TCPSocketWrap');
  let held = 0;
  const srv = await backend((res, r) => {
    if (r.n === 0) reply(res, 500); // first event goes into its backoff wait
    else held++; // then hold
  });
  const { log, lines } = stubLog();
  let fetches = 0;
  const countingFetch: typeof fetch = (input, init) => {
    fetches++;
    return fetch(input, init);
  };
  const hooks = new RestHooks({ url: srv.url, timeoutMs: 5000, queueMax: 100, log, backoff: { initialMs: 1000, maxMs: 1000, minFraction: 1 }, fetch: countingFetch });
  for (let i = 0; i < 3; i++) hooks.post('CallStatusEvent', { i });
  await waitFor('retry scheduled', () => hooks.stats.retries === 1);
  const b0 = performance.now();
  await hooks.close(0); // closes during the 1 s backoff wait
  assert.ok(performance.now() - b0 < 200, 'close() waited for the backoff timer');
  const c = new RestHooks({ url: srv.url, timeoutMs: 5000, queueMax: 100, log, backoff: fast, fetch: countingFetch });
  c.post('CallStatusEvent', { i: 'c' });
  await waitFor('request held', () => held === 1);
  const c0 = performance.now();
  await c.close(20); // closes with a request in flight
  assert.ok(performance.now() - c0 < 500, 'close() waited for the hanging request');
  assert.equal(c.stats.inFlight, false);
  assert.equal(c.stats.dropped, 1);
  assert.equal(hooks.stats.dropped, 3);
  const fetchesAtClose = fetches;
  const logsAtClose = lines.length;
  await srv.close();
  await new Promise((r) => setTimeout(r, 150)); // nothing may fire after close()
  assert.equal(fetches, fetchesAtClose);
  assert.equal(lines.length, logsAtClose);
  await waitFor('sockets released', () => count('TCPSocketWrap') <= baseSockets, 1000);
  assert.equal(count('Timeout'), baseTimeouts, String(process.getActiveResourcesInfo()));
});

test('a process that closes its hooks while a request hangs can exit', async () => {
  const srv = await backend(() => {}); // never answers
  const mod = new URL('../../adapters/hooks/rest-hooks.js', import.meta.url).href;
  const script = `
    import { RestHooks } from ${JSON.stringify(mod)};
    const log = { warn() {}, debug() {} };
    const h = new RestHooks({ url: process.argv[1], timeoutMs: 30000, queueMax: 10, log, backoff: { initialMs: 10, maxMs: 20 } });
    for (let i = 0; i < 5; i++) h.post('CallStatusEvent', { i });
    await new Promise((r) => setTimeout(r, 100));
    await h.close(50);
    console.log(JSON.stringify(h.stats));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, srv.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | string>((resolve) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('did not exit within 3 s');
    }, 3000);
    child.on('exit', (c) => {
      clearTimeout(t);
      resolve(c ?? -1);
    });
  });
  await srv.close();
  assert.equal(code, 0, err);
  const stats = JSON.parse(out) as { dropped: number; inFlight: boolean };
  assert.equal(stats.dropped, 5);
  assert.equal(stats.inFlight, false);
});

test('credentials in the URL are sent as Basic auth and never logged', async () => {
  const srv = await backend((res, r) => reply(res, r.n === 0 ? 500 : r.n === 1 ? 503 : 401));
  const { log, lines } = stubLog();
  const pinoLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      pinoLines.push(chunk.toString());
      cb();
    },
  });
  const pinoLog = createLogger({ level: 'debug', destination: sink }); // the app's logger fits MinimalLog
  const url = `http://hookuser:s3cr%40t@127.0.0.1:${srv.port}/hook/path?token=tok123`;
  const a = new RestHooks({ url, timeoutMs: 1000, queueMax: 10, log, backoff: fast, maxAttempts: 2 });
  const b = new RestHooks({ url, timeoutMs: 1000, queueMax: 10, log: pinoLog, backoff: fast });
  a.post('CallStatusEvent', { i: 'a' }); // 500, 503 → dropped after 2 attempts
  await waitFor('a dropped', () => a.stats.dropped === 1);
  b.post('CallStatusEvent', { i: 'b' }); // 401 → rejected
  await waitFor('b rejected', () => b.stats.rejected === 1);
  await a.close();
  await b.close();
  await srv.close();
  const expected = `Basic ${Buffer.from('hookuser:s3cr@t').toString('base64')}`;
  for (const r of srv.received) assert.equal(r.headers.authorization, expected);
  const logged = JSON.stringify(lines) + pinoLines.join('') + JSON.stringify([a.stats, b.stats]);
  assert.ok(lines.length >= 2 && pinoLines.length >= 1);
  for (const secret of ['s3cr', 'hookuser', 'tok123', expected.slice(6)]) assert.ok(!logged.includes(secret), `${secret} leaked: ${logged}`);
  assert.ok(logged.includes(`http://127.0.0.1:${srv.port}/hook/path`));
});

test('post() never throws, even for an unserialisable body', async () => {
  const { log } = stubLog();
  const hooks = new RestHooks({ url: 'http://127.0.0.1:9/hook', timeoutMs: 100, queueMax: 10, log, fetch: () => Promise.reject(new Error('no network')) });
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.doesNotThrow(() => hooks.post('CallStatusEvent', circular));
  assert.doesNotThrow(() => hooks.post('CallStatusEvent', { big: 1n }));
  assert.equal(hooks.stats.dropped, 2);
  assert.match(hooks.stats.lastError ?? '', /unserialisable/);
  await hooks.close(0);
});

test('NoHooks has the same surface and does nothing', async () => {
  const pick = (url: string): Hooks => (url ? new RestHooks({ url, timeoutMs: 100, queueMax: 1, log: stubLog().log }) : NoHooks);
  const h = pick('');
  assert.equal(h, NoHooks);
  h.post('CallStatusEvent', { status: 'RING' });
  assert.deepEqual(h.stats, { queued: 0, delivered: 0, retries: 0, dropped: 0, rejected: 0, inFlight: false });
  await h.close();
});

test('WCS paths: each event to <app URL>/<method>; HOOK_APPS sends an appKey\'s events to its own app, the rest to HOOK_URL', async () => {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.writeHead(200).end('ok'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { log } = stubLog();
  const make = (url: string) => new RestHooks({ url, timeoutMs: 1000, queueMax: 10, log, backoff: fast });
  const hooks = new RoutedHooks(new Map([['clicktocall', make(`${base}/apps/ClickToCall/`)]]), make(`${base}/apps/Default?k=1`));
  hooks.post('CallStatusEvent', { appKey: 'clicktocall', status: 'TRYING' });
  hooks.post('CallStatusEvent', { appKey: 'other', status: 'TRYING' });
  hooks.post('RegistrationStatusEvent', { status: 'REGISTERED' });
  await waitFor('three delivered', () => hooks.stats.delivered === 3);
  await hooks.close();
  await new Promise((r) => server.close(r));
  assert.deepEqual(paths.sort(), ['/apps/ClickToCall/CallStatusEvent', '/apps/Default/CallStatusEvent?k=1', '/apps/Default/RegistrationStatusEvent?k=1']);
  assert.deepEqual(parseHookApps(' a=http://x/apps/A , b=https://y/B'), new Map([['a', 'http://x/apps/A'], ['b', 'https://y/B']]));
  assert.throws(() => parseHookApps('a=ftp://x'), /HOOK_APPS entry "a=ftp:\/\/x" must be appKey=http/);
  assert.throws(() => parseHookApps('=http://u:secret@x/'), (e: Error) => !e.message.includes('secret'));
});

test('the approval hook: /call/startup is offered to <app URL>/call first; a refusal is a 403 with the backend\'s reason and no call; a dead backend a 503', async () => {
  const seen: { path: string; body: Record<string, unknown> }[] = [];
  let answer = { status: 200, body: '' };
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c));
    req.on('end', () => {
      seen.push({ path: req.url ?? '', body: JSON.parse(text) as Record<string, unknown> });
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const started: string[] = [];
  const calls = { vetStartup: async () => {}, reserve: async () => {}, unreserve: async () => {}, startup: (r: { callId: string }) => void started.push(r.callId) };
  const approval = new HttpApproval({ appUrl: (key) => (key === 'nobackend' ? undefined : `${base}/apps/${key || 'Default'}`), timeoutMs: 500, nodeId: 'node-1' });
  const app = buildRestServer({ prefix: '/rest-api', log: createLogger({ level: 'silent' }), calls: calls as never, approval, streamPrefix: 'rtmp_' });
  const post = (body: Record<string, unknown>) => app.inject({ method: 'POST', url: '/rest-api/call/startup', payload: { callee: '1', sipDomain: 'h', rtmpUrl: 'rtmp://h/live', rtmpStream: 'secretkey123', sipPassword: 'pw-123', sipLogin: 'alice', ...body } });
  try {
    assert.equal((await post({ callId: 'ok-1', appKey: 'clicktocall' })).statusCode, 200);
    assert.deepEqual(started, ['ok-1']);
    assert.equal(seen[0]!.path, '/apps/clicktocall/call');
    assert.deepEqual([seen[0]!.body.callId, seen[0]!.body.appKey, seen[0]!.body.nodeId, seen[0]!.body.method], ['ok-1', 'clicktocall', 'node-1', 'call']);
    assert.ok(!JSON.stringify(seen).includes('pw-123') && !JSON.stringify(seen).includes('secretkey123'), 'no password or stream key to the backend');

    answer = { status: 403, body: JSON.stringify({ reason: 'callee 1 is not on the allow list' }) };
    const refused = await post({ callId: 'no-1' });
    assert.equal(refused.statusCode, 403);
    assert.deepEqual(JSON.parse(refused.body), { status: 403, error: 'refused by the backend\'s call hook (HTTP 403): callee 1 is not on the allow list' });
    assert.deepEqual(started, ['ok-1'], 'a refused call is never placed');

    assert.equal((await post({ callId: 'ok-2', appKey: 'nobackend' })).statusCode, 200, 'no app URL for it: nothing to ask');
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    const down = await post({ callId: 'down-1' });
    assert.equal(down.statusCode, 503);
    assert.match(JSON.parse(down.body).error, /did not answer/);
    assert.deepEqual(started, ['ok-1', 'ok-2']);
  } finally {
    await app.close();
  }
});
