/**
 * A WCS-style web page on another origin, in real Chromium (Debian's, driven by playwright-core), calls
 * the REST API the way the WCS "SIP as RTMP" demo pages do: jQuery $.ajax with contentType
 * application/json (so every call is a CORS preflight plus a POST). It drives startup → find until
 * ESTABLISHED → push/startup → send_dtmf → terminate → find until FINISH, against the real sandbox.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { REPO_ROOT, uniqueId } from '../helpers/sandbox.js';

const CHROMIUM = '/usr/bin/chromium';

/** The page: jQuery plus the flow, as a WCS demo page would write it. */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>SIP as RTMP</title>
<script src="/jquery.js"></script>
<script>
function post(api, method, data) {
  return $.ajax({ url: api + method, type: 'POST', contentType: 'application/json', data: JSON.stringify(data || {}) });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function poll(api, callId, want) {
  for (let i = 0; i < 100; i++) {
    try {
      const r = await post(api, '/call/find', { callId });
      if (r[0].status === want) return r[0];
    } catch (e) {
      if (e.status === 404 && want === 'GONE') return { status: 'GONE' };
    }
    await sleep(200);
  }
  throw new Error('timed out waiting for ' + want);
}
window.runFlow = async function (api, p) {
  const seen = [];
  await post(api, '/call/startup', { callId: p.callId, callee: p.callee, sipDomain: p.sipDomain, sipPort: p.sipPort,
    hasAudio: 'true', hasVideo: 'false', toStream: p.stream });
  seen.push('startup');
  seen.push((await poll(api, p.callId, 'ESTABLISHED')).status);
  const push = await post(api, '/push/startup', { streamName: p.stream, rtmpUrl: p.rtmpUrl });
  seen.push('push ' + (push.mediaSessionId ? 'ok' : 'no id'));
  await post(api, '/call/send_dtmf', { callId: p.callId, dtmf: '1', type: 'RFC2833' });
  seen.push('dtmf');
  await post(api, '/call/terminate', { callId: p.callId });
  seen.push('terminate');
  seen.push((await poll(api, p.callId, 'FINISH')).status);
  return seen;
};
window.tryStartup = async function (api, body) {
  try {
    await post(api, '/call/startup', body);
    return 'ok';
  } catch (e) {
    return 'failed, status ' + e.status;
  }
};
</script></head><body>SIP as RTMP</body></html>`;

async function pageServer(): Promise<{ server: Server; origin: string }> {
  const jquery = readFileSync(join(REPO_ROOT, 'node_modules/jquery/dist/jquery.min.js'));
  const server = createServer((req, res) => {
    if (req.url === '/jquery.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(jquery);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

let t: TestApp;
let browser: Browser;
let allowed: { server: Server; origin: string };
let other: { server: Server; origin: string };
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/sandbox up installs Debian's chromium`);
  allowed = await pageServer();
  other = await pageServer();
  t = await startTestApp({ CORS_ORIGINS: allowed.origin });
  // --no-sandbox: the suite runs as root, where Chromium's own sandbox refuses to start.
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await t?.stop();
  allowed?.server.close();
  other?.server.close();
});

test('a page on another origin drives a call with jQuery: ESTABLISHED, push, DTMF, then FINISH', { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(allowed.origin);
  const callId = uniqueId('web');
  const seen = await page.evaluate(([api, p]) => (globalThis as unknown as { runFlow: (a: string, p: unknown) => Promise<string[]> }).runFlow(api, p), [
    t.app.restUrl,
    { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, stream: uniqueId('web'), rtmpUrl: t.env.RTMP_URL },
  ] as const);
  // A cross-origin POST with Content-Type application/json needs a preflight: Chromium made it and got
  // through (playwright does not show preflights; the next test shows a refused one).
  console.log(`# page saw: ${seen.join(' → ')}`);
  assert.deepEqual(seen, ['startup', 'ESTABLISHED', 'push ok', 'dtmf', 'terminate', 'FINISH']);
  await t.assertNoLeaks([t.app.calls.get(callId)!.key]);
  await page.close();
});

test('a page on an origin not in CORS_ORIGINS cannot start a call', { timeout: 30_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(other.origin);
  const callId = uniqueId('web-no');
  const r = await page.evaluate(([api, body]) => (globalThis as unknown as { tryStartup: (a: string, b: unknown) => Promise<string> }).tryStartup(api, body), [
    t.app.restUrl,
    { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, toStream: callId },
  ] as const);
  assert.equal(r, 'failed, status 0', 'the browser blocked it (preflight refused)');
  assert.equal(t.app.calls.get(callId), undefined, 'no call was made');
  await page.close();
});
