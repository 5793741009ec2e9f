/**
 * Hostile clients against the real app and sandbox (issue 19). One call runs through all of it, a sipp
 * far end published to nginx; each hostile case is refused with a clear status and reason, and that call
 * is not disturbed: it stays ESTABLISHED and PUBLISHING, its audio timeline never re-anchors, and nginx
 * still has its stream at the end.
 * The app serves plain HTTP and HTTPS (the sandbox's self-signed certificate) at once; Chromium posts
 * /call/startup over HTTPS from an https page of another origin, allowed by CORS_ORIGINS.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { isPublished } from '../helpers/audio-analysis.js';
import { sandboxEnv, uniqueId } from '../helpers/sandbox.js';

const TOKENLESS_PAGE_ORIGIN = 'https://127.0.0.1:9443';
const HEADERS_TIMEOUT_MS = 2000;
const MAX_PUSHES = 10;

let t: TestApp;
let httpsPort: number;
let baseline: { callId: string; stream: string };
/** The calm call's re-anchors once it had settled (its start may see some on a loaded box). */
let calmReanchors = 0;
const timelineOf = () =>
  (t.app.calls.get(baseline.callId)!.media?.toJSON() as { timeline?: { reanchors: number; lastReanchor: unknown } } | undefined)?.timeline;

/** The sandbox's self-signed certificate and key (nginx's RTMPS front uses them too). */
const tlsDir = () => join(sandboxEnv().SANDBOX_CACHE ?? '/var/cache/sip-as-rtmp', 'tls');

let pageServer: Server;
let browser: Browser;
let browserTab: Page;

before(async () => {
  // The https page of another origin, and Chromium on it, before the calm call starts: launching Chromium
  // takes both cores of a 2-core box for a moment, which is the test's load, not a hostile client's.
  pageServer = createHttpsServer({ cert: readFileSync(`${tlsDir()}/cert.pem`), key: readFileSync(`${tlsDir()}/key.pem`) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>WCS-like page</title><p>page</p>');
  });
  await new Promise<void>((r) => pageServer.listen(Number(new URL(TOKENLESS_PAGE_ORIGIN).port), '127.0.0.1', r));
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--ignore-certificate-errors'] });
  browserTab = await browser.newPage();
  await browserTab.goto(`${TOKENLESS_PAGE_ORIGIN}/`);
  t = await startTestApp({
    HTTPS_PORT: '0', TLS_CERT_FILE: `${tlsDir()}/cert.pem`, TLS_KEY_FILE: `${tlsDir()}/key.pem`,
    CORS_ORIGINS: TOKENLESS_PAGE_ORIGIN, HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS), MAX_PUSHES_PER_CALL: String(MAX_PUSHES),
  });
  httpsPort = Number(new URL(t.app.httpsUrl).port);
  // The call that must not be disturbed.
  baseline = { callId: uniqueId('calm'), stream: uniqueId('calm') };
  const r = await t.post('/call/startup', { callId: baseline.callId, callee: 'answer', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_ANSWER_PORT, hasAudio: 'true', rtmpUrl: t.env.RTMP_URL, rtmpStream: baseline.stream });
  assert.equal(r.status, 200, r.text);
  await t.waitStatus(baseline.callId, ['ESTABLISHED']);
  await waitFor(async () => (await t.find(baseline.callId))?.rtmpStreamStatus === 'PUBLISHING', 5000, 'the calm call publishing');
  // Its own start is not a hostile case: what its timeline did until it settled is the baseline.
  await new Promise((r) => setTimeout(r, 1500));
  calmReanchors = timelineOf()?.reanchors ?? 0;
});

after(async () => {
  await browser?.close();
  await new Promise((r) => (pageServer ? pageServer.close(r) : r(undefined)));
  await t?.stop();
});

/** The calm call is as it was: ESTABLISHED, PUBLISHING, no re-anchor, and on nginx. */
async function assertUndisturbed(): Promise<void> {
  const view = await t.find(baseline.callId);
  assert.equal(view?.status, 'ESTABLISHED', 'the calm call is still up');
  assert.equal(view?.rtmpStreamStatus, 'PUBLISHING', 'the calm call still publishes');
  const tl = timelineOf();
  assert.equal(tl?.reanchors ?? 0, calmReanchors, `the calm call re-anchored since it settled: the last ${JSON.stringify(tl?.lastReanchor)}`);
  assert.ok(await isPublished(t.env.RTMP_STAT_URL!, `rtmp_${baseline.stream}`), 'nginx has the calm stream');
}

/** A raw HTTP request with the headers as given (fetch would not send a foreign Host). */
function rawRequest(port: number, method: string, path: string, headers: Record<string, string>, body = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) }, setHost: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const restPort = () => Number(new URL(t.app.restUrl).port);
const prefix = () => new URL(t.app.restUrl).pathname.replace(/\/$/, '');

test('DNS rebinding: a foreign Host is refused (403, naming the host), whatever the path', async () => {
  for (const path of [`${prefix()}/call/find_all`, '/console/', '/metrics']) {
    const r = await rawRequest(restPort(), path.endsWith('find_all') ? 'POST' : 'GET', path, { host: `evil.example:${restPort()}`, origin: `http://evil.example:${restPort()}`, 'content-type': 'application/json' }, path.endsWith('find_all') ? '{}' : '');
    console.log(`# Host evil.example ${path}: ${r.status} ${r.text.slice(0, 120)}`);
    assert.equal(r.status, 403);
    assert.match(r.text, /evil\.example/);
    assert.doesNotMatch(r.text, new RegExp(baseline.callId));
  }
  await assertUndisturbed();
});

test('a cross-origin POST without a token is refused before it runs', async () => {
  const callId = uniqueId('xo');
  const body = JSON.stringify({ callId, callee: 'answer', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_ANSWER_PORT, rtmpUrl: t.env.RTMP_URL, rtmpStream: callId });
  // text/plain: a "simple" request a foreign page can send without a preflight.
  for (const type of ['text/plain', 'application/json']) {
    const r = await rawRequest(restPort(), 'POST', `${prefix()}/call/startup`, { host: `127.0.0.1:${restPort()}`, origin: 'http://evil.example', 'content-type': type }, body);
    console.log(`# cross-origin POST (${type}): ${r.status} ${r.text}`);
    assert.equal(r.status, 403);
    assert.match(r.text, /origin http:\/\/evil\.example is not allowed/);
  }
  assert.equal(t.app.calls.get(callId), undefined, 'no call was placed');
  await assertUndisturbed();
});

test('rtmpUrls at the metadata address, a name for it, and the app\'s own ports are refused (400 naming rtmpUrl)', async () => {
  const urls = [
    'rtmp://169.254.169.254/live',
    'rtmp://[::ffff:169.254.169.254]/live',
    'rtmp://metadata.google.internal/live',
    `rtmp://127.0.0.1:${restPort()}/live`,
    `rtmp://localhost:${t.app.config.sipUas.port}/live`,
    `rtmps://127.0.0.1:${httpsPort}/live`,
    'srt://169.254.169.254:9000',
  ];
  for (const rtmpUrl of urls) {
    const callId = uniqueId('meta');
    const r = await t.post('/call/startup', { callId, callee: 'answer', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_ANSWER_PORT, rtmpUrl, rtmpStream: callId });
    console.log(`# rtmpUrl ${rtmpUrl}: ${r.status} ${r.text}`);
    assert.equal(r.status, 400, rtmpUrl);
    assert.equal((r.json as { field: string }).field, 'rtmpUrl');
    const push = await t.post('/push/startup', { streamName: baseline.stream, rtmpUrl });
    assert.equal(push.status, 400, `push to ${rtmpUrl}`);
  }
  await assertUndisturbed();
});

test('SIP targets at Asterisk itself or at the app\'s UAS, and a sipLogin that names a PJSIP endpoint, are refused', async () => {
  const cases: [Record<string, string>, string][] = [
    [{ sipDomain: '127.0.0.1', sipPort: t.env.ASTERISK_SIP_PORT ?? '5060' }, 'sipDomain'],
    [{ sipDomain: 'localhost:5060' }, 'sipDomain'],
    [{ sipDomain: '127.0.0.1', sipPort: String(t.app.config.sipUas.port) }, 'sipDomain'],
    [{ sipDomain: '127.0.0.1', sipPort: t.env.SIPP_ANSWER_PORT!, sipOutboundProxy: '127.0.0.1:5060' }, 'sipOutboundProxy'],
    [{ sipDomain: '169.254.169.254' }, 'sipDomain'],
    [{ sipDomain: '127.0.0.1', sipPort: t.env.SIPP_ANSWER_PORT!, sipLogin: 'sip-as-rtmp-media', sipPassword: 'x' }, 'sipLogin'],
  ];
  for (const [fields, field] of cases) {
    const callId = uniqueId('self');
    const r = await t.post('/call/startup', { callId, callee: 'answer', rtmpUrl: t.env.RTMP_URL, rtmpStream: callId, ...fields });
    console.log(`# ${JSON.stringify(fields)}: ${r.status} ${r.text}`);
    assert.equal(r.status, 400, JSON.stringify(fields));
    assert.equal((r.json as { field: string }).field, field);
    assert.equal(t.app.calls.get(callId), undefined);
  }
  await assertUndisturbed();
});

test(`1,000 pushes on one call: ${MAX_PUSHES} outputs at most, the rest refused; the call goes on`, { timeout: 60_000 }, async () => {
  const codes = new Map<number, number>();
  let reason = '';
  for (let i = 0; i < 1000; i++) {
    // Each its own name on nginx (one name publishes once), so the accepted ones all publish and count.
    const r = await t.post('/push/startup', { streamName: baseline.stream, rtmpUrl: `${t.env.RTMP_URL}/${baseline.stream}-${i}`, rtmpTransponderFullUrl: 'true' });
    codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
    if (r.status !== 200) reason ||= r.text;
  }
  console.log(`# 1000 /push/startup: ${JSON.stringify(Object.fromEntries(codes))}; refused with ${reason}`);
  const call = t.app.calls.get(baseline.callId)!;
  assert.equal(codes.get(200), MAX_PUSHES - 1, 'the primary output counts');
  assert.ok(call.pushes.length <= MAX_PUSHES + 5, `outputs held: ${call.pushes.length}`);
  for (const p of call.pushes.filter((p) => !p.primary)) await t.post('/push/terminate', { mediaSessionId: p.id });
  await waitFor(async () => call.pushes.filter((p) => !p.primary && p.view().status !== 'FAILED' && p.view().status !== 'CLOSED').length === 0, 10_000, 'the extra pushes ended');
  await assertUndisturbed();
});

test(`200 slowloris connections: each closed within the ${HEADERS_TIMEOUT_MS} ms headers timeout; the API answers in under 1 s meanwhile`, { timeout: 60_000 }, async () => {
  const sockets: { s: Socket; opened: number; closedAfter?: number }[] = [];
  for (let i = 0; i < 200; i++) {
    const s = connect(restPort(), '127.0.0.1');
    const entry = { s, opened: Date.now() } as (typeof sockets)[number];
    s.on('error', () => {});
    s.resume(); // a socket that reads notices the server's close at once
    s.on('close', () => (entry.closedAfter = Date.now() - entry.opened));
    s.write(`GET ${prefix()}/call/find_all HTTP/1.1\r\nHost: 127.0.0.1\r\n`);
    sockets.push(entry);
  }
  const drip = setInterval(() => sockets.forEach((e) => e.closedAfter === undefined && e.s.write('X-a: b\r\n')), 500);
  const answers: number[] = [];
  try {
    while (sockets.some((e) => e.closedAfter === undefined) && Date.now() - sockets[0]!.opened < HEADERS_TIMEOUT_MS * 4) {
      const t0 = Date.now();
      const r = await t.post('/call/find', { callId: baseline.callId });
      assert.equal(r.status, 200);
      answers.push(Date.now() - t0);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    clearInterval(drip);
  }
  const closed = sockets.map((e) => e.closedAfter ?? Infinity).sort((a, b) => a - b);
  console.log(`# slowloris: closed after ${closed[0]}..${closed.at(-1)} ms; API answered in ${Math.min(...answers)}..${Math.max(...answers)} ms (${answers.length} requests)`);
  // Node checks the headers timeout every connectionsCheckingInterval: allow one interval more.
  assert.ok(closed.at(-1)! < HEADERS_TIMEOUT_MS * 2, `every slow connection closed: the last after ${closed.at(-1)} ms`);
  assert.ok(Math.max(...answers) < 1000, `API answers under 1 s: ${Math.max(...answers)} ms`);
  sockets.forEach((e) => e.s.destroy());
  await assertUndisturbed();
});

/**
 * A fake RTMP server, in a process of its own (so its pumping is not the app's load): the handshake, then
 * up to `totalBytes` of chunks on many chunk streams, none of which ever completes a message (each announces
 * 1 MiB and sends 64 KiB of it). It prints its port, then the bytes it got out when the app hangs up.
 */
const FLOOD_SERVER = `
const net = require('node:net');
const total = Number(process.argv[1]);
const server = net.createServer((sock) => {
  let sent = 0;
  let got = Buffer.alloc(0);
  let flooding = false;
  sock.on('error', () => {});
  sock.on('close', () => { console.log('sent ' + sent); });
  sock.on('data', (d) => {
    got = Buffer.concat([got, d]);
    if (flooding || got.length < 1537) return;
    flooding = true;
    sock.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536), got.subarray(1, 1537)]));
    const scs = Buffer.alloc(16); // Set Chunk Size 65536 (csid 2)
    scs.writeUInt8(0x02, 0); scs.writeUIntBE(4, 4, 3); scs.writeUInt8(1, 7); scs.writeUInt32BE(65536, 12);
    sock.write(scs);
    const payload = Buffer.alloc(65536, 0x41);
    let csid = 0;
    // 64 KiB every 4 ms: 16 MB/s, a fast server across a network. Unpaced on loopback, this process alone
    // took a core and starved Asterisk's media relay on a 2-core box (a 95 ms RTP gap in the calm call).
    const timer = setInterval(() => {
      if (sent >= total || sock.destroyed) return void clearInterval(timer);
      // Type 0 with a 3-byte basic header (chunk streams 64-65599), 1 MiB announced, 64 KiB sent.
      const h = Buffer.alloc(14);
      h.writeUInt8(1, 0); h.writeUInt16LE(csid++ % 60000, 1);
      h.writeUIntBE(1 << 20, 6, 3); h.writeUInt8(9, 9); h.writeUInt32LE(1, 10);
      sent += h.length + payload.length;
      sock.write(Buffer.concat([h, payload]));
    }, 4);
  });
});
server.listen(0, '127.0.0.1', () => console.log('port ' + server.address().port));
`;

async function chunkFlood(totalBytes: number): Promise<{ url: string; sent: () => Promise<number>; close: () => void }> {
  const child = spawn(process.execPath, ['-e', FLOOD_SERVER, String(totalBytes)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  await waitFor(async () => /port \d+/.test(out), 5000, 'the flood server listening');
  const port = /port (\d+)/.exec(out)![1];
  return {
    url: `rtmp://127.0.0.1:${port}/live`,
    sent: async () => {
      await waitFor(async () => /sent \d+/.test(out), 5000, 'the flood server saw the app hang up');
      return Number(/sent (\d+)/.exec(out)![1]);
    },
    close: () => child.kill(),
  };
}

test('a 50 MB RTMP chunk flood from a fake server: the push fails with a reason, RSS stays within 50 MB, the call goes on', { timeout: 60_000 }, async () => {
  const rss0 = process.memoryUsage().rss;
  const flood = await chunkFlood(50 * 1024 * 1024);
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  try {
    const r = await t.post('/push/startup', { streamName: baseline.stream, rtmpUrl: flood.url });
    assert.equal(r.status, 200, r.text);
    const { mediaSessionId } = r.json as { mediaSessionId: string };
    const call = t.app.calls.get(baseline.callId)!;
    const push = () => call.pushes.find((p) => p.id === mediaSessionId)!;
    await waitFor(async () => /FAILED|RECONNECTING/.test(push().view().status) && push().view().reason !== null, 20_000, 'the flooded push gives up on that connection');
    const view = push().view();
    lag.disable();
    console.log(`# chunk flood: ${((await flood.sent()) / 1e6).toFixed(1)} MB sent; push ${view.status}: ${view.reason}; RSS ${(rss0 / 1e6).toFixed(0)} → peak ${(peak / 1e6).toFixed(0)} MB; event loop delay max ${(lag.max / 1e6).toFixed(0)} ms`);
    assert.ok(peak - rss0 < 50 * 1024 * 1024, `RSS grew ${((peak - rss0) / 1e6).toFixed(0)} MB`);
    await t.post('/push/terminate', { mediaSessionId });
  } finally {
    clearInterval(sampler);
    flood.close();
  }
  await assertUndisturbed();
});

test('Chromium on an https page of another origin places a call over HTTPS (/call/startup), then hangs up', { timeout: 60_000 }, async () => {
  const callId = uniqueId('tls');
  const apiBase = `https://127.0.0.1:${httpsPort}${prefix()}`;
  const body = { callId, callee: 'answer', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_ANSWER_PORT, hasAudio: 'true', rtmpUrl: t.env.RTMP_URL, rtmpStream: callId };
  {
    const tab = browserTab;
    const post = (method: string, b: unknown) => tab.evaluate(`fetch(${JSON.stringify(`${apiBase}${method}`)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(JSON.stringify(b))} }).then((r) => r.status)`);
    assert.equal(await post('/call/startup', body), 200);
    const est = await t.waitStatus(callId, ['ESTABLISHED', 'FAILED']);
    console.log(`# Chromium on ${TOKENLESS_PAGE_ORIGIN}: /call/startup over HTTPS → 200, ${est.status}`);
    assert.equal(est.status, 'ESTABLISHED', est.info);
    assert.equal(await post('/call/terminate', { callId }), 200);
    await t.waitStatus(callId, ['FINISH']);
  }
  await assertUndisturbed();
});

test('the calm call ends cleanly after all of it', async () => {
  const key = t.app.calls.get(baseline.callId)!.key;
  assert.equal((await t.post('/call/terminate', { callId: baseline.callId })).status, 200);
  await t.waitStatus(baseline.callId, ['FINISH']);
  await t.assertNoLeaks([key]);
});
