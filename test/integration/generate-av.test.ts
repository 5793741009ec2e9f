/**
 * WCS generate_av_for_ua against the real sandbox: with GENERATE_AV_FOR_UA naming the callee's Server
 * header, Asterisk passes our silence and black H.264 on to the callee; other callees get nothing.
 * The evidence is Asterisk's own RTCP toward each far end (sipp does not bind RTP + 1, so the test can):
 * a sender report, with a packet count, appears only once Asterisk sends that far end media.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { parseRtcp, type SenderReport } from '../../plugin/media/ingest/rtcp.js';
import { startTestApp, waitFor, type TestApp } from '../helpers/app.js';
import { uniqueId } from '../helpers/sandbox.js';

/** RTP + 1 of each far end's streams, per scripts/sandbox (sipp -mp; video on media port + 2). */
const SIPP_VIDEO_AUDIO_RTCP = 16601;
const SIPP_VIDEO_VIDEO_RTCP = 16603;
const SIPP_ANSWER_AUDIO_RTCP = 16001;

let t: TestApp;
before(async () => {
  t = await startTestApp({ GENERATE_AV_FOR_UA: 'polycom, SIPP-VIDEO' });
});
after(async () => {
  await t?.stop();
});

/** The last SR Asterisk sent to a port, and how many RRs (reports of a sender that sent nothing). */
async function listen(port: number): Promise<{ socket: Socket; last?: SenderReport; rrs: number }> {
  const socket = createSocket('udp4');
  const seen: { socket: Socket; last?: SenderReport; rrs: number } = { socket, rrs: 0 };
  socket.on('message', (buf) => {
    for (const p of parseRtcp(buf).packets) {
      if (p.type === 'sr') seen.last = p;
      if (p.type === 'rr') seen.rrs++;
    }
  });
  await new Promise<void>((res) => socket.bind(port, '127.0.0.1', res));
  return seen;
}

async function call(callee: string, port: string, hasVideo: boolean, seconds: number) {
  const callId = uniqueId('gen');
  const r = await t.post('/call/startup', { callId, callee, sipDomain: '127.0.0.1', sipPort: port, hasAudio: 'true', hasVideo: String(hasVideo), rtmpUrl: t.env.RTMP_URL, rtmpStream: callId });
  assert.equal(r.status, 200, r.text);
  const est = await t.waitStatus(callId, ['ESTABLISHED', 'FAILED']);
  assert.equal(est.status, 'ESTABLISHED', est.info);
  const key = t.app.calls.get(callId)!.key;
  await new Promise((res) => setTimeout(res, seconds * 1000));
  const view = (await t.find(callId))!;
  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  await waitFor(async () => ['FINISH', 'FAILED'].includes((await t.find(callId))?.status ?? ''), 5000, 'call ended');
  return { view, key };
}

test('a callee whose Server header matches gets our silence and black video through Asterisk', { timeout: 60_000 }, async () => {
  const audio = await listen(SIPP_VIDEO_AUDIO_RTCP);
  const video = await listen(SIPP_VIDEO_VIDEO_RTCP);
  try {
    // Asterisk reports every 5 s: 11 s gives two reports per stream.
    const { view, key } = await call('video', t.env.SIPP_VIDEO_PORT!, true, 11);
    const media = view.media as { toCaller?: { audioPackets: number; videoPackets: number; videoFrames: number } };
    console.log(`# sent toward the callee: ${JSON.stringify(media.toCaller)}; Asterisk's SRs to it: audio ${audio.last?.packetCount} packets, video ${video.last?.packetCount} packets`);
    assert.ok((media.toCaller?.audioPackets ?? 0) >= 500, 'about 50 silence packets a second');
    assert.ok((media.toCaller?.videoFrames ?? 0) >= 150, 'about 15 black frames a second');
    assert.ok(audio.last && audio.last.packetCount >= 400, `Asterisk sent the callee audio (${audio.last?.packetCount} packets by its last SR)`);
    assert.ok(video.last && video.last.packetCount >= 100, `Asterisk sent the callee video (${video.last?.packetCount} packets by its last SR)`);
    assert.ok(view.events.some((h) => h.type === 'GENERATE_AV_FOR_UA' && h.detail === 'sipp-video-far-end'), JSON.stringify(view.events));
    await t.assertNoLeaks([key]);
  } finally {
    audio.socket.close();
    video.socket.close();
  }
});

test('a callee that does not match gets nothing from us', { timeout: 60_000 }, async () => {
  const audio = await listen(SIPP_ANSWER_AUDIO_RTCP);
  try {
    const { view, key } = await call('answer', t.env.SIPP_ANSWER_PORT!, false, 6);
    assert.deepEqual((view.media as { toCaller?: unknown }).toCaller, { audioPackets: 0, videoPackets: 0, videoFrames: 0 });
    assert.ok(audio.rrs >= 1, 'Asterisk reported to the far end');
    assert.equal(audio.last, undefined, 'but never as a sender');
    await t.assertNoLeaks([key]);
  } finally {
    audio.socket.close();
  }
});
