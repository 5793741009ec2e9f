/**
 * The sandbox's video far ends:
 * - sipp-video (test/sipp/uas-video.xml): answers audio + H.264, and, called directly, sends the beep and
 *   the flash at the same instant: the baseline a later A/V sync test at the RTMP server compares against;
 * - sipp-stubborn (test/sipp/uas-stubborn.xml): the same signal at 352x288 with an IDR only every 10 s,
 *   deaf to keyframe requests (RTCP, SIP INFO);
 * - baresip-video: a real softphone (baresip 1.0, H.264 from its own encoder, keyframes ~10 s apart)
 *   sending the same beep/flash signal.
 * Through Asterisk (ARI originate), each answers audio + H.264 and Asterisk receives both (RTP counts from
 * CHANNEL(rtcp,rxcount,<type>)); called directly, what each sends is checked on the wire.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ulawToPcm } from '../../plugin/media/encode/g711.js';
import { joinAnnexB, NalType, nalType } from '../../plugin/media/encode/h264/nal.js';
import { parseSps } from '../../plugin/media/encode/h264/sps.js';
import { type AccessUnit, H264Depacketizer } from '../../plugin/media/ingest/h264-depacketizer.js';
import { buildKeyframeRequest, buildReceiverReport } from '../../plugin/media/ingest/rtcp.js';
import { parseUdpFrame, readPcap } from '../../scripts/lib/pcap.js';
import { BEEP_FLASH, FAR_END_MEDIA, isFlashFrame } from '../../scripts/make-test-media.js';
import { ariSession, sandboxEnv, uniqueId } from '../helpers/sandbox.js';

const env = sandboxEnv();
const port = Number(env.SIPP_VIDEO_PORT);
const stubbornPort = Number(env.SIPP_STUBBORN_PORT);
const phonePort = Number(env.BARESIP_VIDEO_PORT);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('video far ends against the sandbox Asterisk', () => {
  const session = ariSession();
  const { ari, log } = session;
  before(() => session.open());
  after(() => session.close());

  /** Asterisk calls `uri` offering ulaw + H.264; after 2.5 s, what it negotiated and received. */
  async function callThroughAsterisk(name: string, uri: string) {
    const channelId = uniqueId(name);
    const started = log.wait('StasisStart', (e) => e.channel.id === channelId);
    const destroyed = log.wait('ChannelDestroyed', (e) => e.channel.id === channelId, 20_000);
    await ari.channels.originate({ endpoint: `PJSIP/sip-as-rtmp-outbound/${uri}`, channelId, timeout: 10, formats: 'ulaw,h264' });
    const start = await Promise.race([started, destroyed.then((d) => assert.fail(`call failed: ${d.cause} ${d.cause_txt}`))]);
    assert.equal(start.channel.state, 'Up');
    let got: { audio: number; video: number; videoDest: string; audioFormat: string; videoFormat: string };
    try {
      // The Stasis control loop reads the channel, so every RTP stream is consumed and counted.
      await sleep(2500);
      const v = (name: string) => ari.channels.getVariable(channelId, name);
      got = {
        audio: Number(await v('CHANNEL(rtcp,rxcount,audio)')),
        video: Number(await v('CHANNEL(rtcp,rxcount,video)')),
        videoDest: await v('CHANNEL(rtp,dest,video)'),
        audioFormat: await v('CHANNEL(audionativeformat)'),
        videoFormat: await v('CHANNEL(videonativeformat)'),
      };
      console.log(`${name}: after 2.5 s Asterisk received ${got.audio} audio (${got.audioFormat}) and ${got.video} video ` +
        `(${got.videoFormat}) RTP packets (video from ${got.videoDest})`);
    } finally {
      await ari.channels.hangup(channelId).catch(() => {});
    }
    const d = await destroyed;
    assert.equal(d.cause, 16, `normal clearing, got ${d.cause} ${d.cause_txt}`);
    return got;
  }

  test('sipp-video answers ulaw + H.264; Asterisk receives audio and video RTP; hangup is clean', async () => {
    const got = await callThroughAsterisk('video', `sip:video@127.0.0.1:${port}`);
    // 50 audio packets/s; 25 frames/s, more packets on IDRs.
    assert.ok(got.audio >= 100, `audio packets: ${got.audio}`);
    assert.ok(got.video >= 50, `video packets: ${got.video}`);
    assert.match(got.videoDest, /^127\.0\.0\.1:\d+$/, 'sipp answered the video m-line');
  });

  test('sipp-stubborn answers ulaw + H.264; Asterisk receives audio and video RTP; hangup is clean', async () => {
    const got = await callThroughAsterisk('stubborn', `sip:stubborn@127.0.0.1:${stubbornPort}`);
    assert.match(got.audioFormat, /^\(?ulaw\)?$/);
    assert.match(got.videoFormat, /^\(?h264\)?$/);
    assert.ok(got.audio >= 100, `audio packets: ${got.audio}`);
    assert.ok(got.video >= 50, `video packets: ${got.video}`);
    assert.match(got.videoDest, /^127\.0\.0\.1:\d+$/);
  });

  test('baresip-video answers ulaw + H.264; Asterisk receives audio and video RTP; hangup is clean', async () => {
    const got = await callThroughAsterisk('baresip-video', `sip:videophone@127.0.0.1:${phonePort}`);
    assert.match(got.audioFormat, /^\(?ulaw\)?$/);
    assert.match(got.videoFormat, /^\(?h264\)?$/);
    assert.ok(got.audio >= 100, `audio packets: ${got.audio}`);
    // 25 frames/s from the moment its encoder runs (a few hundred ms after the answer).
    assert.ok(got.video >= 40, `video packets: ${got.video}`);
    assert.match(got.videoDest, /^127\.0\.0\.1:\d+$/);
  });
});

/** A bare SIP UAC over UDP, enough for one dialog with sipp: INVITE / ACK, INFO, re-INVITE, BYE. */
class MiniUac {
  private readonly sock = dgram.createSocket('udp4');
  private readonly callId = `${randomBytes(8).toString('hex')}@127.0.0.1`;
  private readonly fromTag = randomBytes(4).toString('hex');
  private toTag = '';
  private cseq = 0;
  private readonly inbox: string[] = [];
  private waiter: (() => void) | null = null;

  constructor(private readonly target: number, private readonly user = 'video') {
    this.sock.on('message', (m) => {
      this.inbox.push(m.toString());
      this.waiter?.();
    });
  }

  async open(): Promise<void> {
    this.sock.bind(0, '127.0.0.1');
    await once(this.sock, 'listening');
  }

  close(): void {
    this.sock.close();
  }

  private send(method: string, cseq: number, body = '', contentType = 'application/sdp'): void {
    const me = this.sock.address().port;
    const lines = [
      `${method} sip:${this.user}@127.0.0.1:${this.target} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70',
      `From: <sip:test@127.0.0.1>;tag=${this.fromTag}`,
      `To: <sip:${this.user}@127.0.0.1:${this.target}>${this.toTag ? `;tag=${this.toTag}` : ''}`,
      `Call-ID: ${this.callId}`,
      `CSeq: ${cseq} ${method}`,
      `Contact: <sip:test@127.0.0.1:${me}>`,
      ...(body ? [`Content-Type: ${contentType}`] : []),
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    this.sock.send(lines.join('\r\n'), this.target, '127.0.0.1');
  }

  /** The final response to request `cseq` (provisional responses and other messages are skipped). */
  private async response(cseq: number, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    const mine = new RegExp(`^CSeq:\\s*${cseq} `, 'mi');
    for (;;) {
      const i = this.inbox.findIndex((m) => /^SIP\/2\.0 [2-6]\d\d /.test(m) && mine.test(m));
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no final response to CSeq ${cseq}; got: ${this.inbox.map((m) => m.split('\r\n')[0]).join(' | ')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiter = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  /** INVITE (or re-INVITE), expect 200, ACK it; returns the answer SDP. */
  async invite(sdp: string): Promise<string> {
    const cseq = ++this.cseq;
    this.send('INVITE', cseq, sdp);
    const res = await this.response(cseq);
    assert.match(res, /^SIP\/2\.0 200 /);
    this.toTag ||= /^To:.*;tag=([^;\s]+)/im.exec(res)?.[1] ?? '';
    this.send('ACK', cseq);
    return res.slice(res.indexOf('\r\n\r\n') + 4);
  }

  /** A request in the dialog; returns the final response's status line. */
  async request(method: string, body = '', contentType?: string): Promise<string> {
    const cseq = ++this.cseq;
    this.send(method, cseq, body, contentType);
    return (await this.response(cseq)).split('\r\n')[0]!;
  }
}

/** `fmtp`: the H.264 fmtp line's value, or null for none (Asterisk offers none: packetization-mode 0). */
function offer(audioPort: number, videoPort?: number, fmtp: string | null = 'packetization-mode=1'): string {
  return [
    'v=0', 'o=test 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${audioPort} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000',
    ...(videoPort ? [`m=video ${videoPort} RTP/AVP 99`, 'a=rtpmap:99 H264/90000', ...(fmtp ? [`a=fmtp:99 ${fmtp}`] : [])] : []),
    '',
  ].join('\r\n');
}

const FAST_UPDATE = '<?xml version="1.0" encoding="utf-8" ?>\r\n<media_control><vc_primitive><to_encoder>' +
  '<picture_fast_update/></to_encoder></vc_primitive></media_control>\r\n';

interface Arrival {
  at: number;
  buf: Buffer;
}

/** A far end called directly (no Asterisk): our audio and video sockets, and what arrives on them. */
async function directCall(sipPort: number, user?: string) {
  const audio = dgram.createSocket('udp4');
  const video = dgram.createSocket('udp4');
  const uac = new MiniUac(sipPort, user);
  const got = { audio: [] as Arrival[], video: [] as Arrival[] };
  audio.on('message', (buf) => got.audio.push({ at: performance.now(), buf }));
  video.on('message', (buf) => got.video.push({ at: performance.now(), buf }));
  audio.bind(0, '127.0.0.1');
  video.bind(0, '127.0.0.1');
  await Promise.all([once(audio, 'listening'), once(video, 'listening'), uac.open()]);
  return { audio, video, uac, got };
}

describe('sipp-video far end, called directly', () => {
  test('sends the beep and the white frames together (audio 0-20 ms after video); INFO and re-INVITE answered', async () => {
    const { audio, video, uac, got } = await directCall(port);
    try {
      const answer = await uac.invite(offer(audio.address().port, video.address().port));
      assert.match(answer, /^m=audio \d+ RTP\/AVP 0/m);
      assert.match(answer, /^m=video \d+ RTP\/AVP 99\r?$/m);
      assert.match(answer, /^a=fmtp:99 .*packetization-mode=1/m);
      await sleep(1000);
      // What Asterisk sends mid-call: a keyframe request (INFO) and a re-INVITE; neither restarts the media.
      assert.match(await uac.request('INFO', FAST_UPDATE, 'application/media_control+xml'), /^SIP\/2\.0 200 /);
      const reanswer = await uac.invite(offer(audio.address().port, video.address().port));
      assert.match(reanswer, /^m=video \d+ RTP\/AVP 99\r?$/m);
      await sleep(2000); // the onsets at 0.48 s and 2.48 s
      assert.match(await uac.request('BYE'), /^SIP\/2\.0 200 /);
    } finally {
      uac.close();
      audio.close();
      video.close();
    }
    assert.ok(got.audio.length >= 140, `audio packets: ${got.audio.length}`);
    assert.ok(got.video.length >= 70, `video packets: ${got.video.length}`);

    // One stream each, never restarted (the re-INVITE): a single SSRC and a contiguous sequence.
    for (const [kind, list] of Object.entries(got)) {
      assert.equal(new Set(list.map((a) => a.buf.readUInt32BE(8))).size, 1, `${kind}: one SSRC`);
      list.forEach((a, i) => i === 0 || assert.equal(a.buf.readUInt16BE(2), (list[i - 1]!.buf.readUInt16BE(2) + 1) & 0xffff, `${kind} seq`));
    }
    // Each packet's place in its stream's schedule: audio packet i at 20 ms * i, video frame n at 40 ms * n.
    const ts0 = got.video[0]!.buf.readUInt32BE(4);
    const frame = (v: Arrival) => Math.round(((v.buf.readUInt32BE(4) - ts0) >>> 0) / (90000 / BEEP_FLASH.fps));
    const audioSlot = (i: number) => i * 20;
    const videoSlot = (n: number) => (n * 1000) / BEEP_FLASH.fps;
    // Audio onsets: the first loud packet of each beep (the beep starts on a packet boundary).
    const loud = got.audio.map((a) => {
      const pcm = ulawToPcm(a.buf.subarray(12));
      return pcm.reduce((m, s) => Math.max(m, Math.abs(s)), 0) > 4000;
    });
    const audioOnsets = got.audio.flatMap((_, i) => (loud[i] && !loud[i - 1] ? [i] : []));
    // Video onsets: the first frame of each flash, by RTP timestamp from the first frame.
    const first = Math.round(BEEP_FLASH.firstOnsetSec * BEEP_FLASH.fps);
    const period = BEEP_FLASH.periodSec * BEEP_FLASH.fps;
    const videoOnsets = [...new Set(got.video.map(frame))].filter((n) => n % period === first);
    assert.equal(frame(got.video[0]!), 0);
    assert.equal(audioOnsets.length, 2, `beeps heard: ${audioOnsets.length}`);
    assert.equal(videoOnsets.length, 2, `flashes seen: ${videoOnsets.length}`);
    // When each stream's schedule started, from the median lag of its packets behind their slots: one
    // packet held up on a busy machine (CI saw an onset 10.5 ms off) or sent a tick early (sipp's audio
    // runs ~20 ms behind its slots, then catches up with two packets at once) is not the far end's A/V
    // offset. The arrival offsets of the onset packets themselves are printed too.
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    const audioStart = median(got.audio.map((a, i) => a.at - audioSlot(i)));
    const videoStart = median(got.video.map((v) => v.at - videoSlot(frame(v))));
    const offsets = audioOnsets.map((i, k) => audioStart + audioSlot(i) - (videoStart + videoSlot(videoOnsets[k]!)));
    const arrival = (n: number) => got.video.find((v) => frame(v) === n)!.at;
    const raw = audioOnsets.map((i, k) => got.audio[i]!.at - arrival(videoOnsets[k]!));
    console.log(`far end: first audio minus first video packet ${(got.audio[0]!.at - got.video[0]!.at).toFixed(1)} ms; ` +
      `beep minus flash ${offsets.map((o) => o.toFixed(1)).join(', ')} ms by schedule, ${raw.map((o) => o.toFixed(1)).join(', ')} ms by arrival`);
    // sipp's rtp_stream sends on its own 20 ms tick (of a 4 ms coarse clock), after the video has started:
    // 0-20 ms late; the margin is for a schedule start itself read late.
    for (const o of offsets) assert.ok(o >= -10 && o <= 30, `beep minus flash ${o.toFixed(1)} ms`);
  });

  test('an audio-only offer gets an audio-only answer', async () => {
    const audio = dgram.createSocket('udp4');
    const uac = new MiniUac(port);
    let packets = 0;
    audio.on('message', () => packets++);
    audio.bind(0, '127.0.0.1');
    await Promise.all([once(audio, 'listening'), uac.open()]);
    try {
      const answer = await uac.invite(offer(audio.address().port));
      assert.match(answer, /^m=audio \d+ RTP\/AVP 0/m);
      assert.doesNotMatch(answer, /^m=video/m);
      await sleep(500);
      assert.match(await uac.request('BYE'), /^SIP\/2\.0 200 /);
    } finally {
      uac.close();
      audio.close();
    }
    assert.ok(packets >= 15, `audio packets: ${packets}`);
  });
});

/** The RTP payload: after the fixed header, CSRCs and a header extension. */
function rtpPayload(b: Buffer): Buffer {
  let o = 12 + 4 * (b[0]! & 0x0f);
  if (b[0]! & 0x10) o += 4 + 4 * b.readUInt16BE(o + 2);
  return b.subarray(o);
}

/**
 * The access units of an H.264 RTP stream (in order, as loopback delivers it), each timed by the arrival of
 * its first packet (a phone paces a large picture's packets out over tens of milliseconds).
 */
function accessUnits(packets: Arrival[]): { au: AccessUnit; at: number }[] {
  const d = new H264Depacketizer();
  const firstAt = new Map<number, number>();
  const out: { au: AccessUnit; at: number }[] = [];
  for (const p of packets) {
    const timestamp = p.buf.readUInt32BE(4);
    if (!firstAt.has(timestamp)) firstAt.set(timestamp, p.at);
    const units = d.push({ sequenceNumber: p.buf.readUInt16BE(2), timestamp, marker: (p.buf[1]! & 0x80) !== 0, payload: rtpPayload(p.buf) });
    for (const au of units) out.push({ au, at: firstAt.get(au.timestamp)! });
  }
  for (const au of d.flush()) out.push({ au, at: firstAt.get(au.timestamp)! });
  return out;
}

/** The mean luma (0-255) of every decoded picture, in order (ffmpeg). */
async function decodeLuma(annexB: Buffer): Promise<Buffer> {
  const ff = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-f', 'h264', '-i', 'pipe:0', '-fps_mode', 'passthrough',
    '-vf', 'scale=1:1', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  ff.stdout.on('data', (d: Buffer) => out.push(d));
  ff.stderr.on('data', (d: Buffer) => (err += d.toString()));
  ff.stdin.end(annexB);
  const [code] = (await once(ff, 'close')) as [number | null];
  assert.equal(code, 0, `ffmpeg: ${err}`);
  return Buffer.concat(out);
}

function pictureSize(aus: { au: AccessUnit }[]): string {
  const sps = aus.flatMap((a) => a.au.nalus).find((n) => nalType(n) === NalType.Sps);
  assert.ok(sps, 'an SPS in band');
  const { width, height } = parseSps(sps);
  return `${width}x${height}`;
}

/** Arrival times of the first loud packet of each beep (μ-law RTP). */
function beepOnsets(audio: Arrival[]): number[] {
  const loud = audio.map((a) => ulawToPcm(rtpPayload(a.buf)).reduce((m, s) => Math.max(m, Math.abs(s)), 0) > 4000);
  return audio.filter((_, i) => loud[i] && !loud[i - 1]).map((a) => a.at);
}

describe('sipp-stubborn far end', () => {
  test('its video (the pcap sipp replays): 352x288, 25 fps, an IDR exactly every 10 s, white frames at the beeps', async () => {
    const file = join(env.SANDBOX_CACHE!, 'media', FAR_END_MEDIA.stubbornPcap);
    const packets = readPcap(readFileSync(file)).records.map((r) => ({ at: r.time, buf: parseUdpFrame(r.data).payload }));
    const aus = accessUnits(packets);
    const ts0 = aus[0]!.au.timestamp;
    const frameOf = (au: AccessUnit) => Math.round((((au.timestamp - ts0) >>> 0) / 90000) * BEEP_FLASH.fps);
    const keys = aus.filter((a) => a.au.keyframe).map((a) => frameOf(a.au) / BEEP_FLASH.fps);
    const seconds = aus.length / BEEP_FLASH.fps;
    console.log(`${FAR_END_MEDIA.stubbornPcap}: ${packets.length} packets, ${aus.length} frames (${seconds} s), ` +
      `${pictureSize(aus)}, IDRs at ${keys.join(', ')} s`);
    assert.equal(pictureSize(aus), `${FAR_END_MEDIA.stubbornWidth}x${FAR_END_MEDIA.stubbornHeight}`);
    assert.ok(seconds >= 30, `${seconds} s: one call must see several GOPs`);
    // Every frame present, at 25 fps, in order.
    aus.forEach((a, i) => assert.equal(frameOf(a.au), i, `frame ${i}`));
    assert.deepEqual(keys, Array.from({ length: Math.ceil(seconds / 10) }, (_, i) => 10 * i));
    const luma = await decodeLuma(joinAnnexB(aus.flatMap((a) => a.au.nalus)));
    assert.equal(luma.length, aus.length, 'every frame decodes');
    luma.forEach((y, n) => assert.equal(y > 128, isFlashFrame(n), `frame ${n}: luma ${y}`));
  });

  test('called directly: no keyframe for SIP INFO picture_fast_update (200 OK), RTCP PLI or FIR; a re-INVITE keeps the media', async () => {
    const { audio, video, uac, got } = await directCall(stubbornPort, 'stubborn');
    let asked = 0;
    try {
      const answer = await uac.invite(offer(audio.address().port, video.address().port));
      assert.match(answer, /^m=audio \d+ RTP\/AVP 0/m);
      const vport = Number(/^m=video (\d+) RTP\/AVP 99\r?$/m.exec(answer)?.[1]);
      assert.ok(vport > 0, 'video answered with PT 99');
      await sleep(1500);
      asked = performance.now();
      assert.match(await uac.request('INFO', FAST_UPDATE, 'application/media_control+xml'), /^SIP\/2\.0 200 /);
      const ssrc = got.video.at(-1)!.buf.readUInt32BE(8);
      // RTCP to where RTCP for its video would go (its RTP port + 1): RR+SDES+PLI, then RR+SDES+FIR (RFC 5104).
      const fir = Buffer.alloc(20);
      fir[0] = 0x80 | 4;
      fir[1] = 206;
      fir.writeUInt16BE(4, 2);
      fir.writeUInt32BE(0x1234, 4);
      fir.writeUInt32BE(ssrc, 12);
      video.send(buildKeyframeRequest(0x1234, ssrc, 'test'), vport + 1, '127.0.0.1');
      video.send(Buffer.concat([buildReceiverReport(0x1234, [], 'test'), fir]), vport + 1, '127.0.0.1');
      const reanswer = await uac.invite(offer(audio.address().port, video.address().port));
      assert.match(reanswer, /^m=video \d+ RTP\/AVP 99\r?$/m);
      await sleep(2000);
      assert.match(await uac.request('BYE'), /^SIP\/2\.0 200 /);
    } finally {
      uac.close();
      audio.close();
      video.close();
    }
    for (const [kind, list] of Object.entries(got)) {
      assert.equal(new Set(list.map((a) => a.buf.readUInt32BE(8))).size, 1, `${kind}: one SSRC`);
    }
    const aus = accessUnits(got.video);
    const keys = aus.filter((a) => a.au.keyframe);
    console.log(`stubborn, called directly: ${aus.length} frames in ${((aus.at(-1)!.at - aus[0]!.at) / 1000).toFixed(1)} s, ` +
      `${pictureSize(aus)}, keyframes at ${keys.map((k) => ((k.at - aus[0]!.at) / 1000).toFixed(2)).join(', ')} s; requests at ` +
      `${((asked - aus[0]!.at) / 1000).toFixed(2)} s`);
    assert.ok(aus.length >= 75, `frames: ${aus.length}`);
    assert.equal(keys.length, 1, 'only the first frame is a keyframe');
    assert.equal(keys[0]!.au, aus[0]!.au);
  });
});

describe('baresip-video far end, called directly', () => {
  test('answers PCMU + H.264 (352x288, 25 fps, keyframes rare); sends the beep with the flash', async () => {
    const { audio, video, uac, got } = await directCall(phonePort, 'videophone');
    let answer: string;
    try {
      // As Asterisk offers H.264: no fmtp (packetization-mode 0).
      answer = await uac.invite(offer(audio.address().port, video.address().port, null));
      await sleep(3300); // its flashes/beeps at 0.48 s and 2.48 s of its sources, which start as the call does
      assert.match(await uac.request('BYE'), /^SIP\/2\.0 200 /);
    } finally {
      uac.close();
      audio.close();
      video.close();
    }
    assert.match(answer, /^m=audio \d+ RTP\/AVP 0[ \r]/m);
    assert.match(answer, /^m=video \d+ RTP\/AVP 99\r?$/m);
    assert.match(answer, /^a=rtpmap:99 H264\/90000/m);
    const aus = accessUnits(got.video);
    assert.ok(aus.length >= 70, `frames: ${aus.length}`);
    const span = ((aus.at(-1)!.au.timestamp - aus[0]!.au.timestamp) >>> 0) / 90000;
    const fps = (aus.length - 1) / span;
    const keys = aus.filter((a) => a.au.keyframe);
    const luma = await decodeLuma(joinAnnexB(aus.flatMap((a) => a.au.nalus)));
    assert.equal(luma.length, aus.length, 'every frame decodes');
    const flashes = aus.filter((_, i) => luma[i]! > 128 && !(luma[i - 1]! > 128)).map((a) => a.at);
    const beeps = beepOnsets(got.audio);
    const offsets = flashes.map((f, i) => beeps[i]! - f);
    console.log(`baresip-video: ${answer.match(/^a=fmtp:99 .*$/m)?.[0] ?? 'no fmtp'}; ${aus.length} frames, ${fps.toFixed(2)} fps, ` +
      `${pictureSize(aus)}, ${keys.length} keyframe(s) in ${span.toFixed(1)} s; beep minus flash ${offsets.map((o) => o.toFixed(1)).join(', ')} ms`);
    assert.equal(pictureSize(aus), `${FAR_END_MEDIA.softphoneWidth}x${FAR_END_MEDIA.softphoneHeight}`);
    assert.ok(Math.abs(fps - BEEP_FLASH.fps) < 1, `${fps} fps`);
    // Its own encoder's GOP is 10 s: one keyframe at the start, none in the next 3 s.
    assert.equal(keys.length, 1, `keyframes: ${keys.length}`);
    assert.equal(keys[0]!.au, aus[0]!.au);
    assert.equal(flashes.length, 2, `flashes seen: ${flashes.length}`);
    assert.equal(beeps.length, 2, `beeps heard: ${beeps.length}`);
    // Measured 0-38 ms (its WAV and its video file start as the call's media start; the offset varies from
    // call to call and between runs of the phone).
    for (const o of offsets) assert.ok(o >= -20 && o <= 60, `beep minus flash ${o.toFixed(1)} ms`);
  });
});
