/**
 * WCS's own "SIP as RTMP" demo pages (npm @flashphoner/websdk, MIT, pinned in package.json), unchanged,
 * served from another origin and driven in Chromium against the sandbox, as a new user coming from WCS
 * would: every REST answer the page gets while its call is live is a success, and its push controls work
 * through the page's own polls. Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { PushView } from '../../plugin/calls/pushes.js';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { REPO_ROOT, uniqueId } from '../helpers/sandbox.js';

const DEMO = join(REPO_ROOT, 'node_modules/@flashphoner/websdk/examples/demo');
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.png': 'image/png', '.svg': 'image/svg+xml' };

let pages: Server;
let origin: string;
let browser: Browser;
let t: TestApp;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  pages = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)).replace(/^(\.\.[/\\])+/, '');
    const file = join(DEMO, path);
    if (!file.startsWith(DEMO) || !existsSync(file) || !statSync(file).isFile()) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  // The page's music button plays "sample.wav" (its own name for it).
  t = await startTestApp({ CORS_ORIGINS: origin }, { sounds: { 'sample.wav': 'sine=frequency=440:sample_rate=48000:duration=3' } });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await t?.stop();
  pages?.close();
});

/** Every answer the page got from our API, in order. */
function watchApi(page: Page): { method: string; url: string; status: number }[] {
  const seen: { method: string; url: string; status: number }[] = [];
  page.on('response', (r) => {
    if (r.url().startsWith(t.app.restUrl)) seen.push({ method: r.request().method(), url: r.url().slice(t.app.restUrl.length), status: r.status() });
  });
  return seen;
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `wcs-${name}.png`), fullPage: true });

test('sip-as-rtmp-4, unchanged: call, push start, mute, music, stop, hang up; every answer while live a success', { timeout: 180_000 }, async () => {
  const page = await browser.newPage();
  const api = watchApi(page);
  await page.goto(`${origin}/sip/sip-as-rtmp-4/sip-as-rtmp-4.html`);
  const stream = uniqueId('wcs4');
  await page.fill('#restUrl', t.app.restUrl);
  await page.fill('#sipDomain', '127.0.0.1');
  await page.fill('#sipPort', t.env.BARESIP_PORT!);
  await page.fill('#callee', 'softphone');
  await page.check('#hasAudio');
  await page.fill('#rtmpUrl', t.env.RTMP_URL!);
  await page.fill('#rtmpStream', stream);
  await page.click('#callBtn');
  // Strings: this file is compiled without the DOM's types.
  await page.waitForFunction(`document.getElementById('callStatus')?.textContent === 'ESTABLISHED'`, undefined, { timeout: 30_000 });
  await shot(page, '4-established');

  // Start: /push/startup, then the page polls /push/find with "rtmp_" + stream.
  await page.click('#startRtmp');
  const find = async () => ((await t.post('/push/find', { streamName: `rtmp_${stream}` })).json as PushView[] | undefined)?.[0];
  await waitFor(async () => (await find())?.status === 'PUBLISHING', 15_000, 'the page\'s push publishing');
  await waitFor(async () => api.some((a) => a.url === '/push/find' && a.status === 200), 12_000, 'the page\'s own push poll answered');
  await page.click('#mute');
  await waitFor(async () => (await find())?.muted === true, 5000, 'muted by the page');
  await page.click('#mute');
  await waitFor(async () => (await find())?.muted === false, 5000, 'unmuted by the page');
  await page.click('#music');
  await waitFor(async () => (await find())?.soundEnabled === true, 5000, 'music on by the page');
  await shot(page, '4-pushing');
  await page.click('#music');
  await waitFor(async () => (await find())?.soundEnabled === false, 5000, 'music off by the page');
  await new Promise((r) => setTimeout(r, 6000)); // one more poll of each kind while everything is live
  await page.click('#startRtmp'); // Stop
  await waitFor(async () => (await find()) === undefined, 5000, 'the push stopped by the page');

  const live = api.length;
  await page.click('#callBtn'); // Hangup
  await page.waitForFunction(`/call/i.test(document.getElementById('callBtn')?.textContent ?? '')`, undefined, { timeout: 30_000 });
  await shot(page, '4-hung-up');
  const failures = api.slice(0, live).filter((a) => a.method !== 'OPTIONS' && (a.status < 200 || a.status >= 300));
  console.log(`# the page's API calls while live: ${api.slice(0, live).map((a) => `${a.url}:${a.status}`).join(' ')}`);
  assert.deepEqual(failures, [], 'every REST answer a live call\'s page got is a success');
  await page.close();
});
