/**
 * The operator console in real Chromium (Debian's, driven by playwright-core) against the real sandbox:
 * a person's path through the page. The form refuses a bad field with the API's own message; a call
 * placed from the form to the sandbox's video far end reaches ESTABLISHED on the live feed; the preview
 * plays what the call publishes (its clock advances, and the far end's white flashes show up as bright
 * frames); a DTMF key pressed in the page reaches the far end (sipp logs the INFO digit); a second push
 * is added from the page and publishes, is muted, gets a sound, and is removed; Hang up ends the call as
 * FINISH, and it holds nothing more.
 * A screenshot at each step goes to test-artifacts/console/ (not committed).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { REPO_ROOT, SANDBOX_RUN, uniqueId } from '../helpers/sandbox.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test-artifacts', 'console');

let t: TestApp;
let browser: Browser;
before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: scripts/sandbox up installs Debian's chromium`);
  mkdirSync(SHOTS, { recursive: true });
  t = await startTestApp({}, { sounds: { 'hello.wav': 'sine=frequency=440:sample_rate=44100:duration=1.5' } });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required'] });
});
after(async () => {
  await browser?.close();
  await t?.stop();
});

async function shot(page: Page, name: string): Promise<void> {
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`# screenshot ${file}`);
}

/**
 * Brightest mean luma (0-255) of the preview's frames over `ms`, stopping early at the first frame brighter
 * than `enough` (the far end flashes white for 120 ms every 2 s, black between; a loaded machine may show
 * the slate for a while before the caller's first keyframe reaches the page). Browser code, as a string:
 * this project's TypeScript has no DOM types.
 */
function brightestFrame(page: Page, ms: number, enough = 256): Promise<number> {
  return page.evaluate(`(async () => {
    const video = document.querySelector('#preview');
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 36;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    let best = 0;
    for (const end = performance.now() + ${ms}; performance.now() < end; ) {
      if (video.videoWidth > 0) {
        ctx.drawImage(video, 0, 0, 64, 36);
        const px = ctx.getImageData(0, 0, 64, 36).data;
        let sum = 0;
        for (let i = 0; i < px.length; i += 4) sum += 0.299 * px[i] + 0.587 * px[i + 1] + 0.114 * px[i + 2];
        best = Math.max(best, sum / (px.length / 4));
      }
      if (best > ${enough}) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return best;
  })()`);
}

const currentTime = (page: Page) => page.locator('#preview').evaluate((v) => (v as unknown as { currentTime: number }).currentTime);

test('console: form → ESTABLISHED → preview playing with a picture → DTMF at the far end → second push (mute, sound, remove) → Hang up → FINISH', { timeout: 120_000 }, async (ctx) => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
  });
  const stream = uniqueId('console');
  // Should a step fail, its call must not outlive it: the next test counts the RTP ports still held.
  ctx.after(async () => {
    for (const c of t.app.calls.list().filter((c) => c.req.rtmpStream === stream && !c.final)) {
      await t.post('/call/terminate', { callId: c.req.callId }).catch(() => {});
      await t.waitStatus(c.req.callId, ['FINISH', 'FAILED']).catch(() => {});
    }
  });
  const prefill = new URLSearchParams({ callee: 'video', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_VIDEO_PORT!, hasVideo: 'true', rtmpUrl: t.env.RTMP_URL!, rtmpStream: stream });
  const res = await page.goto(`${new URL(t.app.restUrl).origin}/console/?${prefill}`);
  assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'self'/, 'the page allows only its own scripts');
  await page.waitForSelector('#feed-state:has-text("connected")');
  await shot(page, '01-form');

  // A bad field: the page shows the message the API gives for the same body.
  await page.fill('#sipPort', '99999');
  await page.click('#call-btn');
  const api = await t.post('/call/startup', { callId: 'x', callee: 'video', sipDomain: '127.0.0.1', sipPort: '99999' });
  assert.equal(api.status, 400);
  const apiMessage = (api.json as { error: string }).error;
  await page.waitForSelector('.field-error[data-field="sipPort"]:not(:empty)');
  assert.equal((await page.textContent('.field-error[data-field="sipPort"]'))?.trim(), apiMessage);
  await shot(page, '02-validation');
  await page.fill('#sipPort', t.env.SIPP_VIDEO_PORT!);

  // The call, from the form; its status arrives over the live feed.
  await page.click('#call-btn');
  await page.waitForSelector('#call-status:text-is("ESTABLISHED")', { timeout: 15_000 });
  const call = t.app.calls.list().find((c) => c.req.rtmpStream === stream);
  assert.ok(call, 'the app has the call the page placed');
  const callId = call.req.callId;
  await page.waitForSelector('#timeline li:has-text("ESTABLISHED")');
  await shot(page, '03-established');

  // The preview: plays (its clock advances) and shows the far end's picture (a white flash every 2 s).
  await waitFor(async () => (await currentTime(page)) > 0.5, 15_000, 'the preview plays');
  const t1 = await currentTime(page);
  const w1 = Date.now();
  await new Promise((r) => setTimeout(r, 3000));
  const t2 = await currentTime(page);
  const luma = await brightestFrame(page, 12_000, 128);
  console.log(`# preview: currentTime ${t1.toFixed(2)} → ${t2.toFixed(2)} s over 3 s; first bright frame after ${((Date.now() - w1) / 1000).toFixed(1)} s, mean luma ${luma.toFixed(0)}/255`);
  assert.ok(t2 - t1 > 2, 'currentTime advances in real time');
  assert.ok(luma > 128, `a bright (non-black) frame was shown within 15 s: ${luma}`);
  // The calls list shows the call's live stats (a bitrate once two samples exist).
  await waitFor(async () => /\d/.test((await page.textContent(`#calls tr[data-call-id="${callId}"] [data-col="kbps"]`)) ?? ''), 5000, 'bitrate in the calls list');
  await shot(page, '04-preview');

  // DTMF from the keypad, as SIP INFO: sipp logs the digit it received.
  const infoLog = join(SANDBOX_RUN, 'logs', 'sipp-video-info.log');
  const from = existsSync(infoLog) ? statSync(infoLog).size : 0;
  await page.selectOption('#dtmf-type', 'INFO');
  await page.click('#keypad [data-digit="5"]');
  await waitFor(async () => existsSync(infoLog) && readFileSync(infoLog).subarray(from).toString().includes('digit=5'), 5000, 'the far end received INFO digit 5');
  await page.waitForSelector('#timeline li:has-text("DTMF_SENT")');
  await shot(page, '05-dtmf');

  // A second output, added from the page; it publishes alongside the first.
  await page.fill('#push-rtmpUrl', t.env.RTMP_URL!.replace(/\/live$/, '/recorded'));
  await page.click('#push-add');
  await waitFor(async () => (await page.locator('#pushes tr[data-push-id]').count()) === 2, 5000, 'two pushes listed');
  await waitFor(async () => call.pushes.filter((p) => p.view().status === 'PUBLISHING').length === 2, 10_000, 'both pushes publishing');
  await waitFor(async () => (await page.locator('#pushes tr[data-push-id]:has-text("PUBLISHING")').count()) === 2, 5000, 'the page shows both publishing');
  await shot(page, '06-second-push');

  // Its controls: mute, a sound file played into it, then remove it; the primary goes on.
  const second = call.pushes.find((p) => !p.primary)!;
  const row = page.locator(`#pushes tr[data-push-id="${second.id}"]`);
  await row.locator('.push-mute').click();
  await waitFor(async () => second.view().muted, 5000, 'the second push muted');
  await row.locator('.push-sound-file').fill('hello.wav');
  await row.locator('.push-sound-on').click();
  await waitFor(async () => second.view().soundEnabled && second.view().soundFile === 'hello.wav', 5000, 'a sound plays into the second push');
  await shot(page, '07-push-controls');
  await row.locator('.push-remove').click();
  await waitFor(async () => (await page.locator('#pushes tr[data-push-id]').count()) === 1, 5000, 'the second push removed from the page');
  assert.deepEqual(call.pushes.map((p) => [p.primary, p.view().status]), [[true, 'PUBLISHING']]);

  await page.click('#hangup-btn');
  await page.waitForSelector('#call-status:text-is("FINISH")', { timeout: 10_000 });
  await shot(page, '08-finish');
  await t.assertNoLeaks([call.key]);
  assert.deepEqual(pageErrors, [], 'no uncaught errors or CSP violations in the page');
  await page.close();
});

test('/docs in Chromium: Swagger UI shows one block per documented method; "Execute" on the /call/startup example places the call', { timeout: 30_000 }, async () => {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${new URL(t.app.restUrl).origin}/docs`);
  await page.waitForSelector('.opblock');
  const doc = (await (await fetch(`${new URL(t.app.restUrl).origin}/docs/json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const documented = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
  const blocks = await page.locator('.opblock').count();
  console.log(`# Swagger UI: ${blocks} operation blocks for ${documented} documented methods`);
  assert.equal(blocks, documented);
  // "Try it out" → "Execute" on /call/startup, with the example as the page shows it: a call to the sandbox.
  const startup = page.locator('.opblock').filter({ has: page.locator('.opblock-summary-path', { hasText: /\/rest-api\/call\/startup$/ }) });
  await startup.locator('.opblock-summary').click();
  const tryOut = startup.locator('button.try-out__btn');
  if ((await tryOut.textContent())?.includes('Try it out')) await tryOut.click();
  await startup.locator('button.execute').click();
  await startup.locator('.live-responses-table tr.response td.response-col_status').first().waitFor();
  assert.equal((await startup.locator('.live-responses-table tr.response td.response-col_status').first().textContent())?.trim(), '200');
  const example = (doc.paths['/rest-api/call/startup']!.post as { requestBody: { content: Record<string, { example: { callId: string } }> } }).requestBody.content['application/json']!.example;
  const view = await t.waitStatus(example.callId, ['ESTABLISHED']);
  console.log(`# Swagger UI "Execute" on the /call/startup example: 200, call ${view.callId} ${view.status}`);
  await shot(page, '09-docs');
  assert.equal((await t.post('/call/terminate', { callId: example.callId })).status, 200);
  await t.waitStatus(example.callId, ['FINISH']);
  await t.assertNoLeaks([t.app.calls.get(example.callId)!.key]);
  await page.close();
});
