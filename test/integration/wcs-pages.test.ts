/**
 * WCS's own "SIP as RTMP" demo pages (npm @flashphoner/websdk, MIT, pinned in package.json), unchanged,
 * served from another origin and driven in Chromium against the sandbox, as a new user coming from WCS
 * would: every REST answer the page gets while its call is live is a success, and its push controls work
 * through the page's own polls. Screenshots go to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { PushView } from '../../plugin/calls/pushes.js';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { isPublished } from '../helpers/audio-analysis.js';
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
  t = await startTestApp({ CORS_ORIGINS: origin, ENDED_CALL_TTL_SEC: '10' }, { sounds: { 'sample.wav': 'sine=frequency=440:sample_rate=48000:duration=3' } });
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

/**
 * The page's SIP form, filled as a WCS user would: every field, since the pages refuse to call with any
 * empty (a login and password baresip never asks for, the far end as its own outbound proxy).
 */
async function fillSipForm(page: Page, stream: string): Promise<void> {
  await page.fill('#restUrl', t.app.restUrl);
  await page.fill('#sipLogin', 'wcsuser');
  await page.fill('#sipAuthenticationName', 'wcsuser');
  await page.fill('#sipPassword', 'wcs-page-password');
  await page.fill('#sipDomain', '127.0.0.1');
  await page.fill('#sipOutboundProxy', '127.0.0.1');
  await page.fill('#sipPort', t.env.BARESIP_PORT!);
  await page.fill('#appKey', 'defaultApp');
  await page.fill('#callee', 'softphone');
  await page.check('#hasAudio');
  await page.fill('#rtmpUrl', t.env.RTMP_URL!);
  await page.fill('#rtmpStream', stream);
}

/** Call, and wait for the page to show ESTABLISHED (its own poll of /call/find). */
async function callFromPage(page: Page, name: string): Promise<void> {
  await page.click('#callBtn');
  // Strings: this file is compiled without the DOM's types.
  try {
    await page.waitForFunction(`document.getElementById('callStatus')?.textContent === 'ESTABLISHED'`, undefined, { timeout: 30_000 });
  } catch (err) {
    await shot(page, `${name}-not-established`);
    throw err;
  }
  await shot(page, `${name}-established`);
}

/**
 * Hang up from the page; it resets (its button says Call again). The pages reset only on an error answer
 * to their /call/find poll: the 404 once ENDED_CALL_TTL_SEC (the default, 10 s) has passed.
 */
async function hangUpFromPage(page: Page, name: string): Promise<void> {
  await page.click('#callBtn'); // Hangup
  await page.waitForFunction(`/^\\s*call\\s*$/i.test(document.getElementById('callBtn')?.textContent ?? '')`, undefined, { timeout: 20_000 });
  await shot(page, `${name}-hung-up`);
}

/** Every answer before `live` (the hang-up click) a success. */
function assertAllOk(api: { method: string; url: string; status: number }[], live: number, pushStoppedAt = Infinity): void {
  // A push poll already under way when the page's Stop went out may get the 404 of the push it just removed
  // (the page takes that as stopped, which it is); any other error while the call is live is a failure.
  const failures = api.slice(0, live).filter((a, i) => a.method !== 'OPTIONS' && (a.status < 200 || a.status >= 300) && !(a.url === '/push/find' && i >= pushStoppedAt));
  console.log(`# the page's API calls while live: ${api.slice(0, live).filter((a) => a.method !== 'OPTIONS').map((a) => `${a.url}:${a.status}`).join(' ')}`);
  assert.deepEqual(failures, [], 'every REST answer a live call\'s page got is a success');
}

/** Start, mute, unmute, music on and off, stop: each through the page's own buttons and its own push poll. */
/** Returns where in `api` the page's Stop went out. */
async function pushControls(page: Page, api: { url: string; status: number }[], stream: string, name: string): Promise<number> {
  // Start: /push/startup, then the page polls /push/find with "rtmp_" + stream.
  await page.click('#startRtmp');
  const find = async () => ((await t.post('/push/find', { streamName: `rtmp_${stream}` })).json as PushView[] | undefined)?.[0];
  await waitFor(async () => (await find())?.status === 'PUBLISHING', 15_000, 'the page\'s push publishing');
  await waitFor(async () => api.some((a) => a.url === '/push/find' && a.status === 200), 12_000, 'the page\'s own push poll answered');
  // The switches are styled labels around hidden checkboxes: a user clicks the label.
  const toggle = (id: string) => page.locator('label.switch', { has: page.locator(`#${id}`) }).click();
  await toggle('mute');
  await waitFor(async () => (await find())?.muted === true, 5000, 'muted by the page');
  await toggle('mute');
  await waitFor(async () => (await find())?.muted === false, 5000, 'unmuted by the page');
  await toggle('music');
  await waitFor(async () => (await find())?.soundEnabled === true, 5000, 'music on by the page');
  await shot(page, `${name}-pushing`);
  await toggle('music');
  await waitFor(async () => (await find())?.soundEnabled === false, 5000, 'music off by the page');
  await new Promise((r) => setTimeout(r, 6000)); // one more poll of each kind while everything is live
  const stoppedAt = api.length;
  await page.click('#startRtmp'); // Stop
  await waitFor(async () => (await find()) === undefined, 5000, 'the push stopped by the page');
  return stoppedAt;
}

for (const n of [2, 4] as const) {
  test(`sip-as-rtmp-${n}, unchanged: call, push start, mute, music, stop${n === 4 ? ', inject a stream' : ''}, hang up; every answer while live a success`, { timeout: 180_000 }, async () => {
    const page = await browser.newPage();
    const api = watchApi(page);
    await page.goto(`${origin}/sip/sip-as-rtmp-${n}/sip-as-rtmp-${n}.html`);
    const stream = uniqueId(`wcs${n}`);
    await fillSipForm(page, stream);
    await callFromPage(page, String(n));
    const stoppedAt = await pushControls(page, api, stream, String(n));
    if (n === 4) {
      // Inject: the page posts /call/inject_stream (WCS 5.0's name) with what is typed in; here a stream URL.
      const callId = await page.inputValue('#sipCallId');
      const tone = uniqueId('pagetone');
      const pub = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=44100', '-c:a', 'aac', '-f', 'flv', `${t.env.RTMP_URL}/${tone}`], { stdio: 'ignore' });
      try {
        await waitFor(() => isPublished(t.env.RTMP_STAT_URL!, tone), 10_000, 'a tone to inject');
        await page.fill('#injectStream', `${t.env.RTMP_URL}/${tone}`);
        await page.click('#injectStreamBtn');
        await waitFor(async () => api.some((a) => a.url === '/call/inject_stream' && a.status === 200), 5000, 'the page\'s injection answered');
        await new Promise((r) => setTimeout(r, 3000));
        const view = (await t.find(callId))!;
        assert.ok(view.events.some((e) => e.type === 'INJECT') && !view.events.some((e) => e.type === 'INJECT_END'), JSON.stringify(view.events.slice(-3)));
        await shot(page, '4-injecting');
      } finally {
        pub.kill('SIGINT');
      }
    }
    const live = api.length;
    await hangUpFromPage(page, String(n));
    assertAllOk(api, live, stoppedAt);
    await page.close();
  });
}

test('sip-as-rtmp-3, unchanged: a call published at once, DTMF from the page, hang up; every answer while live a success', { timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  const api = watchApi(page);
  await page.goto(`${origin}/sip/sip-as-rtmp-3/sip-as-rtmp-3.html`);
  const stream = uniqueId('wcs3');
  await fillSipForm(page, stream);
  await callFromPage(page, '3');
  // This page publishes with /call/startup itself: rtmpUrl + "/" + "rtmp_" + rtmpStream on nginx.
  await waitFor(() => isPublished(t.env.RTMP_STAT_URL!, `rtmp_${stream}`), 10_000, 'the page\'s call published');
  await page.fill('#dtmf', '1');
  await page.click('#dtmfBtn');
  await waitFor(async () => api.some((a) => a.url === '/call/send_dtmf' && a.status === 200), 5000, 'the page\'s DTMF sent');
  await new Promise((r) => setTimeout(r, 4000)); // a poll or two more while live
  const live = api.length;
  await hangUpFromPage(page, '3');
  assertAllOk(api, live);
  await page.close();
});
