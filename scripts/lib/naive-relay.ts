/**
 * The benchmark's baseline: the pipeline people build today, one ffmpeg per call reading the call's RTP
 * (an SDP file) and publishing RTMP by itself (`-c:a aac`, `-c:v copy`). Same Asterisk, same far ends,
 * same signalling as the app: the callee is dialled over ARI, Asterisk dials a SIP media leg to our UAS,
 * and the UAS answers with ffmpeg's ports instead of the app's.
 *
 * Runs as a child of the benchmark (child_process.fork), so its CPU is measured apart. Messages:
 *   in:  { type: 'call', id, target, video, rtmpUrl, stream }   out: { type: 'answered'|'failed', id, ... }
 *   in:  { type: 'pids' }                                         out: { type: 'pids', pids: number[] }
 *   in:  { type: 'hangupAll' }                                    out: { type: 'hungUp' }
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AriClient } from '../../adapters/ari/client.js';
import { AsteriskPbx, DEFAULT_ENDPOINTS } from '../../adapters/asterisk/pbx.js';
import { LoopbackSipUas } from '../../adapters/sip/uas.js';
import type { PbxEvent } from '../../plugin/calls/ports.js';
import { loadConfig } from '../../plugin/config.js';
import { createLogger } from '../../plugin/lib/log.js';
import { answerLegOffer, type LegMedia } from '../../plugin/sip/negotiate.js';
import { LEG_CODECS } from '../../plugin/config.js';

export type NaiveRequest =
  | { type: 'call'; id: string; target: string; video: boolean; rtmpUrl: string; stream: string }
  | { type: 'pids' }
  | { type: 'hangupAll' };

export type NaiveReply =
  | { type: 'answered'; id: string; answeredAt: number }
  | { type: 'failed'; id: string; why: string }
  | { type: 'pids'; pids: number[] }
  | { type: 'hungUp' };

interface NaiveCall {
  id: string;
  channelId: string;
  legId: string;
  bridgeId: string;
  ffmpeg?: ChildProcess;
  sdpFile?: string;
  forget?: () => void;
}

const config = loadConfig(process.env);
const log = createLogger({ level: 'warn' });
const ari = new AriClient({ ...config.ari });
const events = ari.eventSocket();
// Bridged as the app is in the same run (MEDIA_BRIDGE), so Asterisk's share compares like for like.
const pbx = new AsteriskPbx(ari, events, log, { ...DEFAULT_ENDPOINTS, nativeBridge: process.env.MEDIA_BRIDGE !== 'core' }, undefined);
const uas = new LoopbackSipUas({ host: config.sipUas.host, port: config.sipUas.port });
const calls = new Map<string, NaiveCall>();
const waiters = new Map<string, (e: PbxEvent) => void>();
// Ports for ffmpeg's RTP: above the app's range, two pairs per call (audio, video).
let nextPort = Number(process.env.NAIVE_PORT_BASE ?? 30000);

const send = (m: NaiveReply) => process.send?.(m);

pbx.on('event', (e) => waiters.get(e.channelId)?.(e));

function waitFor(channelId: string, kind: PbxEvent['kind'], timeoutMs: number): Promise<PbxEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (waiters.delete(channelId), reject(new Error(`${kind} timeout`))), timeoutMs);
    waiters.set(channelId, (e) => {
      if (e.kind === kind) {
        clearTimeout(timer);
        waiters.delete(channelId);
        resolve(e);
      } else if (e.kind === 'hangup') {
        clearTimeout(timer);
        waiters.delete(channelId);
        reject(new Error(`hung up: ${e.causeText}`));
      }
    });
  });
}

/** The SDP ffmpeg reads: what Asterisk will send to its ports. */
function ffmpegSdp(m: LegMedia, audioPort: number, videoPort: number): string {
  const a = m.audio;
  const lines = ['v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=naive', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${audioPort} RTP/AVP ${a.payloadType}`, `a=rtpmap:${a.payloadType} ${a.encoding}/${a.clockRate}`];
  if (m.video) {
    const v = m.video.format;
    lines.push(`m=video ${videoPort} RTP/AVP ${v.payloadType}`, `a=rtpmap:${v.payloadType} H264/90000`, `a=fmtp:${v.payloadType} packetization-mode=1`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

async function place(req: Extract<NaiveRequest, { type: 'call' }>): Promise<void> {
  const c: NaiveCall = { id: req.id, channelId: `naive-${randomUUID()}`, legId: `naive-leg-${randomUUID()}`, bridgeId: `naive-br-${randomUUID()}` };
  calls.set(req.id, c);
  const audioPort = nextPort;
  const videoPort = nextPort + 2;
  nextPort += 4;
  const answered = waitFor(c.channelId, 'answered', 30_000);
  await pbx.dial({ channelId: c.channelId, accountId: 'sip-as-rtmp-outbound', target: req.target, video: req.video, timeoutSec: 30 });
  await answered;
  const answeredAt = Date.now();
  let media: LegMedia | undefined;
  // The far ends speak PCMU: ulaw first, as the app does for them (no transcoding in Asterisk either way).
  const prefs = [LEG_CODECS.ulaw!, ...config.media.legCodecs.filter((c) => c.encoding !== 'PCMU')];
  c.forget = uas.expect(c.legId, (offer) => {
    const a = answerLegOffer(offer, { audioPrefs: prefs, audioPort, ...(req.video ? { videoPort } : {}), address: '127.0.0.1', sessionId: 1, version: 1 });
    if (!('sdp' in a)) return a;
    if (!media) {
      media = a.media;
      c.sdpFile = join(tmpdir(), `${c.legId}.sdp`);
      writeFileSync(c.sdpFile, ffmpegSdp(media, audioPort, videoPort));
      // What a how-to gives: read the SDP, AAC for the audio, the video copied, FLV to the server.
      c.ffmpeg = spawn('ffmpeg', [
        '-hide_banner', '-nostdin', '-loglevel', 'error', '-protocol_whitelist', 'file,udp,rtp',
        '-i', c.sdpFile,
        '-c:a', 'aac', '-b:a', String(config.media.aacBitrate), '-ar', String(config.media.aacSampleRate), '-ac', String(config.media.aacChannels),
        ...(media.video ? ['-c:v', 'copy'] : ['-vn']),
        '-f', 'flv', `${req.rtmpUrl}/${req.stream}`,
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      c.ffmpeg.stderr?.resume();
    }
    return { sdp: a.sdp };
  });
  await pbx.createBridge(c.bridgeId);
  const legUp = waitFor(c.legId, 'answered', 10_000);
  await pbx.dialMediaLeg({ channelId: c.legId, uri: uas.uriFor(c.legId), codecs: prefs, video: !!req.video });
  await legUp;
  await pbx.addToBridge(c.bridgeId, [c.channelId, c.legId]);
  send({ type: 'answered', id: req.id, answeredAt });
}

async function hangupAll(): Promise<void> {
  await Promise.all([...calls.values()].map(async (c) => {
    c.forget?.();
    await pbx.hangup(c.channelId).catch(() => {});
    await pbx.hangup(c.legId).catch(() => {});
    await pbx.destroyBridge(c.bridgeId).catch(() => {});
    const ff = c.ffmpeg;
    if (ff && ff.exitCode === null) {
      const exited = new Promise((r) => ff.once('exit', r));
      ff.kill('SIGTERM');
      await exited;
    }
    if (c.sdpFile) rmSync(c.sdpFile, { force: true });
  }));
  calls.clear();
}

process.on('message', (m: NaiveRequest) => {
  if (m.type === 'call') void place(m).catch((err: Error) => send({ type: 'failed', id: m.id, why: err.message }));
  else if (m.type === 'pids') send({ type: 'pids', pids: [...calls.values()].flatMap((c) => (c.ffmpeg?.pid ? [c.ffmpeg.pid] : [])) });
  else if (m.type === 'hangupAll') void hangupAll().then(() => send({ type: 'hungUp' }));
});
process.on('disconnect', () => void hangupAll().finally(() => process.exit(0)));

await uas.listen();
await events.connect();
process.send?.({ type: 'ready' });
