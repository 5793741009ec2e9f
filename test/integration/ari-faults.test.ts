/**
 * Losing Asterisk, against the real sandbox:
 * - the ARI socket drops (Asterisk still up): the app reconnects, reconciles its call table, and the live
 *   call keeps running;
 * - Asterisk restarts: REST stays up and answers 503 with the reason while ARI is down; the call that died
 *   is ended with a reason (no ghost) and everything is released; new calls work once Asterisk is back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { WebSocket } from 'ws';
import { isPublished } from '../helpers/audio-analysis.js';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { asteriskCli, sandboxAri, uniqueId } from '../helpers/sandbox.js';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t?.stop();
});

async function startCall(): Promise<{ callId: string; stream: string; key: string }> {
  const callId = uniqueId('ari');
  const stream = uniqueId('as');
  const r = await t.post('/call/startup', { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, hasAudio: 'true', rtmpUrl: t.env.RTMP_URL, rtmpStream: stream });
  assert.equal(r.status, 200, r.text);
  assert.equal((await t.waitStatus(callId, ['ESTABLISHED', 'FAILED'])).status, 'ESTABLISHED');
  await waitFor(async () => (await t.find(callId))?.rtmpStreamStatus === 'PUBLISHING', 5000, 'publishing');
  return { callId, stream, key: t.app.calls.get(callId)!.key };
}

const accepted = async (callId: string) => ((await t.find(callId))?.media as { rtp: { accepted: number } }).rtp.accepted;

test('the ARI socket drops: reconnect, reconcile, and the call goes on', { timeout: 60_000 }, async () => {
  const { callId, stream, key } = await startCall();
  // As a network fault would: the TCP connection dies without a close handshake.
  (t.app.events as unknown as { ws: WebSocket }).ws.terminate();
  await waitFor(async () => t.app.events.state !== 'open', 2000, 'the socket noticed');
  await waitFor(async () => t.app.events.state === 'open', 10_000, 'reconnected');
  const before = await accepted(callId);
  await new Promise((r) => setTimeout(r, 1500));
  const view = (await t.find(callId))!;
  console.log(`# after the drop: status ${view.status}, stream ${view.rtmpStreamStatus}, RTP packets ${before} → ${await accepted(callId)}`);
  assert.equal(view.status, 'ESTABLISHED');
  assert.equal(view.rtmpStreamStatus, 'PUBLISHING');
  assert.ok((await accepted(callId)) > before + 50, 'media still flows');
  assert.ok(await isPublished(t.env.RTMP_STAT_URL!, `rtmp_${stream}`));
  // Events still reach the app: a terminate is seen through to the end.
  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  await t.assertNoLeaks([key]);
});

test('a call that ends while the socket is down is found on reconnect and ended with that reason (no ghost)', { timeout: 60_000 }, async () => {
  const { callId, key } = await startCall();
  const channelId = t.app.calls.get(callId)!.channelId;
  (t.app.events as unknown as { ws: WebSocket }).ws.terminate();
  // The callee's channel goes away while nobody listens: its ChannelDestroyed is lost.
  await sandboxAri().channels.hangup(channelId);
  await waitFor(async () => t.app.events.state === 'open', 10_000, 'reconnected');
  const ended = await t.waitStatus(callId, ['FAILED', 'FINISH'], 10_000);
  console.log(`# ${ended.status} ${ended.reason}: ${ended.info}`);
  assert.equal(ended.status, 'FAILED');
  assert.match(ended.info, /while the connection to Asterisk was down/);
  await t.assertNoLeaks([key]);
});

test('Asterisk restarts: 503 with the reason meanwhile, the dead call ends with a reason, nothing leaks, new calls work', { timeout: 90_000 }, async () => {
  const { callId, key } = await startCall();
  void asteriskCli('core restart now').catch(() => {}); // the CLI connection may die with it
  await waitFor(async () => t.app.events.state !== 'open', 10_000, 'ARI down');
  const refused = await t.post('/call/startup', { callId: uniqueId('down'), callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, toStream: 'x' });
  console.log(`# while Asterisk restarts: /call/startup → ${refused.status} ${refused.text}`);
  assert.equal(refused.status, 503);
  assert.match(refused.text, /not connected/);
  const ended = await t.waitStatus(callId, ['FAILED', 'FINISH'], 60_000);
  console.log(`# the call: ${ended.status} ${ended.reason}: ${ended.info}`);
  assert.ok(ended.reason, 'a reason');
  await waitFor(async () => t.app.events.state === 'open', 60_000, 'ARI back');
  await t.assertNoLeaks([key]);
  // Asterisk is back for everyone after us: a new call is relayed.
  const again = await startCall();
  assert.equal((await t.post('/call/terminate', { callId: again.callId })).status, 200);
  await t.assertNoLeaks([again.key]);
});
