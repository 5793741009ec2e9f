/**
 * Video calls end to end: the sipp far end sends H.264 (pcap) with a white flash at the instant of each
 * 1 kHz beep in its audio, every 2 s. What nginx-rtmp received must decode cleanly, keep keyframes within
 * YouTube's limits, and keep the flashes on the beeps (lip sync).
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { parseRtcp } from '../../plugin/media/ingest/rtcp.js';
import { analyzeAvSync } from '../helpers/av-sync.js';
import { relayRecordedCall, startTestApp, type TestApp } from '../helpers/app.js';
import { audioInfo, decodePcm, rms } from '../helpers/audio-analysis.js';
import { uniqueId } from '../helpers/sandbox.js';

let t: TestApp;
before(async () => {
  t = await startTestApp();
});
after(async () => {
  await t?.stop();
});

/**
 * The sipp-video far end's video RTCP port: sipp binds its video RTP on the media port + 2 (16602, see
 * scripts/sandbox) and nothing on RTP + 1, where Asterisk sends that stream's RTCP. Listening there shows
 * what our keyframe requests become on the far side.
 */
const FAR_VIDEO_RTCP_PORT = 16603;

test('beep/flash: H.264 passthrough decodes cleanly, keyframes ≤ 2.5 s apart, A/V offset within limits', { timeout: 90_000 }, async () => {
  const farRtcp = createSocket('udp4');
  const firs: number[] = [];
  farRtcp.on('message', (buf) => {
    for (const p of parseRtcp(buf).packets) if (p.type === 'other' && p.packetType === 206 && p.count === 4) firs.push(Date.now());
  });
  await new Promise<void>((res) => farRtcp.bind(FAR_VIDEO_RTCP_PORT, '127.0.0.1', res));
  const { view, key, recording } = await relayRecordedCall(t, {
    callId: uniqueId('vc'), callee: 'video', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_VIDEO_PORT, hasVideo: 'true', rtmpStream: uniqueId('video'),
  }, 20).finally(() => farRtcp.close());

  type Stats = Record<string, number>;
  const media = view.media as { rtcp: Stats; video?: { rtp: Stats; rtcp: Stats; width?: number; height?: number } };
  console.log(`# video pipeline: ${JSON.stringify(media.video?.rtp)} ${media.video?.width}x${media.video?.height}`);
  // Measured, not used for sync (see plugin/media/timeline/sync.ts): how far Asterisk's SRs on the leg are from
  // the arrival times of the packets they name.
  console.log(`# Asterisk's SRs on the leg: audio ${JSON.stringify(media.rtcp)}, video ${JSON.stringify(media.video?.rtcp)}`);
  assert.ok((media.rtcp.senderReports ?? 0) >= 2 && (media.video?.rtcp.senderReports ?? 0) >= 2, 'Asterisk sends SRs on the leg for both streams');
  // Our PLIs (RR + SDES + PLI) reach the H.264 far end through Asterisk as RTCP FIR (PSFB FMT 4).
  const requests = media.video?.rtp.keyframeRequests ?? 0;
  console.log(`# keyframe requests: ${requests} sent as PLI on the leg; ${firs.length} FIR reached the far end`);
  assert.ok(requests >= 1 && firs.length >= 1, `PLI ${requests} → FIR ${firs.length}`);
  const rep = await analyzeAvSync(recording);
  const mean = rep.offsetsMs.reduce((a, b) => a + Math.abs(b), 0) / Math.max(1, rep.offsetsMs.length);
  const maxAbs = Math.max(...rep.offsetsMs.map(Math.abs));
  const maxKey = Math.max(...rep.keyframeIntervals);
  const maxGap = Math.max(0, ...rep.videoGaps.map((g) => g.ms));
  console.log(`# A/V offsets (ms, audio minus video): ${rep.offsetsMs.map((o) => o.toFixed(0)).join(' ')}; mean |offset| ${mean.toFixed(1)}, max ${maxAbs.toFixed(1)}`);
  console.log(`# keyframe intervals (s): ${rep.keyframeIntervals.map((k) => k.toFixed(2)).join(' ')}; video gaps: ${JSON.stringify(rep.videoGaps)}; decode errors ${rep.decodeErrors}`);
  assert.equal(rep.decodeErrors, 0, rep.decodeErrorLines.join('\n'));
  assert.ok(rep.pairs.length >= 8, `${rep.pairs.length} beep/flash pairs over 20 s`);
  assert.ok(maxKey <= 2.5, `max keyframe interval ${maxKey} s`);
  assert.ok(mean <= 40, `mean |A/V offset| ${mean.toFixed(1)} ms`);
  assert.ok(maxAbs <= 80, `max |A/V offset| ${maxAbs.toFixed(1)} ms`);
  assert.ok(maxGap <= 100, `video timestamp gap ${maxGap} ms`);
  await t.assertNoLeaks([key]);
});

test('audio-only callee with hasVideo=true: both tracks from the first second, video decodes as the slate', { timeout: 60_000 }, async () => {
  const { key, recording } = await relayRecordedCall(t, {
    callId: uniqueId('bc'), callee: 'answer', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_ANSWER_PORT, hasVideo: 'true', rtmpStream: uniqueId('black'),
  }, 5);
  const rep = await analyzeAvSync(recording);
  assert.equal(rep.decodeErrors, 0, rep.decodeErrorLines.join('\n'));
  assert.ok(rep.frames.length >= 40, `${rep.frames.length} video frames in 5 s`);
  assert.ok(rep.frames[0]!.pts < 1 && rep.audioStart < 1, `both tracks start in the first second (video ${rep.frames[0]!.pts}, audio ${rep.audioStart})`);
  // The slate: a dark blue-grey picture with the callee's name (mean luma ~40), the same in every frame.
  const lumas = rep.frames.map((f) => f.luma);
  assert.ok(lumas.every((l) => l > 25 && l < 90 && Math.abs(l - lumas[0]!) < 3), `every frame is the slate: ${Math.min(...lumas)}..${Math.max(...lumas)}`);
  assert.ok(Math.max(...rep.keyframeIntervals) <= 2.5, 'keyframes at least every 2.5 s');
  await t.assertNoLeaks([key]);
});

test('hasAudio=false with video: the stream still has an AAC track, and it is silent', { timeout: 60_000 }, async () => {
  const { key, recording } = await relayRecordedCall(t, {
    callId: uniqueId('na'), callee: 'video', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_VIDEO_PORT, hasAudio: 'false', hasVideo: 'true', rtmpStream: uniqueId('noaudio'),
  }, 5);
  const info = await audioInfo(recording);
  assert.equal(info.codec, 'aac');
  assert.equal(info.sampleRate, 48000);
  const pcm = await decodePcm(recording, 48000);
  assert.ok(pcm.length > 4 * 48000, 'audio for the whole call');
  assert.ok(rms(pcm, 0, pcm.length) < 0.001, 'and it is silence (the far end beeps every 2 s)');
  const rep = await analyzeAvSync(recording);
  assert.ok(rep.frames.length > 50, 'the video is there');
  await t.assertNoLeaks([key]);
});
