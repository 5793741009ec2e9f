/**
 * The console with API_TOKEN set (required beyond loopback), in real Chromium against the sandbox: the
 * page asks for the token; a wrong one is refused; with the right one the live feed connects, a call
 * placed from the form gets a playing preview (the player sends the token too), and Hang up ends it.
 * The token stays in the tab's sessionStorage, never in localStorage or the page's URL.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { uniqueId } from '../helpers/sandbox.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-test-token-7c1e9a';

let t: TestApp;
let browser: Browser;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/sandbox up installs Debian's chromium`);
  t = await startTestApp({ API_TOKEN: TOKEN });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});
after(async () => {
  await browser?.close();
  await t?.stop();
});

test('with API_TOKEN: the page asks for it, refuses a wrong one, then feed, call, preview and hang-up work', { timeout: 60_000 }, async () => {
  const origin = new URL(t.app.restUrl).origin;
  assert.equal((await fetch(`${t.app.restUrl}/events`)).status, 401, 'the feed needs the token');
  assert.equal((await fetch(`${origin}/metrics`)).status, 401, '/metrics too');
  assert.equal((await fetch(`${origin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);

  const page = await browser.newPage();
  const stream = uniqueId('console-token');
  await page.goto(`${origin}/console/?${new URLSearchParams({ callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT!, rtmpUrl: t.env.RTMP_URL!, rtmpStream: stream })}`);
  await page.waitForSelector('#token-form:visible');
  await page.waitForSelector('#feed-state:has-text("token")');
  await page.fill('#api-token', 'wrong-token');
  await page.press('#api-token', 'Enter');
  await page.waitForSelector('#feed-state:has-text("token")');
  assert.doesNotMatch((await page.textContent('#feed-state')) ?? '', /^.*\bconnected$/);

  await page.fill('#api-token', TOKEN);
  await page.press('#api-token', 'Enter');
  await page.waitForSelector('#feed-state:has-text("connected")');
  await page.click('#call-btn');
  await page.waitForSelector('#call-status:text-is("ESTABLISHED")', { timeout: 15_000 });
  await waitFor(async () => (await page.locator('#preview').evaluate((v) => (v as unknown as { currentTime: number }).currentTime)) > 1, 15_000, 'the preview plays with the token');
  const call = t.app.calls.list().find((c) => c.req.rtmpStream === stream)!;
  await page.click('#hangup-btn');
  await page.waitForSelector('#call-status:text-is("FINISH")', { timeout: 10_000 });
  await t.assertNoLeaks([call.key]);

  const stored = String(await page.evaluate('JSON.stringify({ local: { ...localStorage }, url: location.href })'));
  assert.ok(!stored.includes(TOKEN), `the token is not kept beyond the tab: ${stored}`);
  await page.close();
});
