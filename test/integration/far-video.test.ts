/**
 * The sipp-video far end (test/sipp/uas-video.xml): it answers audio + H.264, Asterisk receives both
 * (RTP counts from CHANNEL(rtcp,rxcount,<type>)), and, called directly, it sends the beep and the
 * flash at the same instant: the baseline a later A/V sync test at the RTMP server compares against.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { ulawToPcm } from '../../plugin/media/encode/g711.js';
import { BEEP_FLASH } from '../../scripts/make-test-media.js';
import { ariSession, sandboxEnv, uniqueId } from '../helpers/sandbox.js';

const env = sandboxEnv();
const port = Number(env.SIPP_VIDEO_PORT);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sipp-video far end against the sandbox Asterisk', () => {
  const session = ariSession();
  const { ari, log } = session;
  before(() => session.open());
  after(() => session.close());

  test('answers ulaw + H.264; Asterisk receives audio and video RTP; hangup is clean', async () => {
    const channelId = uniqueId('video');
    const started = log.wait('StasisStart', (e) => e.channel.id === channelId);
    const destroyed = log.wait('ChannelDestroyed', (e) => e.channel.id === channelId, 20_000);
    await ari.channels.originate({
      endpoint: `PJSIP/sip-as-rtmp-outbound/sip:video@127.0.0.1:${port}`, channelId, timeout: 10, formats: 'ulaw,h264',
    });
    const start = await Promise.race([started, destroyed.then((d) => assert.fail(`call failed: ${d.cause} ${d.cause_txt}`))]);
    assert.equal(start.channel.state, 'Up');
    try {
      // The Stasis control loop reads the channel, so every RTP stream is consumed and counted.
      await sleep(2500);
      const count = async (type: 'audio' | 'video') => Number(await ari.channels.getVariable(channelId, `CHANNEL(rtcp,rxcount,${type})`));
      const audio = await count('audio');
      const video = await count('video');
      const videoDest = await ari.channels.getVariable(channelId, 'CHANNEL(rtp,dest,video)');
      console.log(`after 2.5 s Asterisk received ${audio} audio and ${video} video RTP packets (video from sipp at ${videoDest})`);
      // 50 audio packets/s; 25 frames/s, more packets on IDRs.
      assert.ok(audio >= 100, `audio packets: ${audio}`);
      assert.ok(video >= 50, `video packets: ${video}`);
      assert.match(videoDest, /^127\.0\.0\.1:\d+$/, 'sipp answered the video m-line');
    } finally {
      await ari.channels.hangup(channelId).catch(() => {});
    }
    const d = await destroyed;
    assert.equal(d.cause, 16, `normal clearing, got ${d.cause} ${d.cause_txt}`);
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

  constructor(private readonly target: number) {
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
      `${method} sip:video@127.0.0.1:${this.target} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70',
      `From: <sip:test@127.0.0.1>;tag=${this.fromTag}`,
      `To: <sip:video@127.0.0.1:${this.target}>${this.toTag ? `;tag=${this.toTag}` : ''}`,
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

function offer(audioPort: number, videoPort?: number): string {
  return [
    'v=0', 'o=test 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=audio ${audioPort} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000',
    ...(videoPort ? [`m=video ${videoPort} RTP/AVP 99`, 'a=rtpmap:99 H264/90000', 'a=fmtp:99 packetization-mode=1'] : []),
    '',
  ].join('\r\n');
}

const FAST_UPDATE = '<?xml version="1.0" encoding="utf-8" ?>\r\n<media_control><vc_primitive><to_encoder>' +
  '<picture_fast_update/></to_encoder></vc_primitive></media_control>\r\n';

interface Arrival {
  at: number;
  buf: Buffer;
}

describe('sipp-video far end, called directly', () => {
  test('sends the beep and the white frames together (audio 0-20 ms after video); INFO and re-INVITE answered', async () => {
    const audio = dgram.createSocket('udp4');
    const video = dgram.createSocket('udp4');
    const uac = new MiniUac(port);
    const got = { audio: [] as Arrival[], video: [] as Arrival[] };
    audio.on('message', (buf) => got.audio.push({ at: performance.now(), buf }));
    video.on('message', (buf) => got.video.push({ at: performance.now(), buf }));
    audio.bind(0, '127.0.0.1');
    video.bind(0, '127.0.0.1');
    await Promise.all([once(audio, 'listening'), once(video, 'listening'), uac.open()]);
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

    // Audio onsets: the first loud packet of each beep (the beep starts on a packet boundary).
    const loud = got.audio.map((a) => {
      const pcm = ulawToPcm(a.buf.subarray(12));
      return pcm.reduce((m, s) => Math.max(m, Math.abs(s)), 0) > 4000;
    });
    const audioOnsets = got.audio.filter((_, i) => loud[i] && !loud[i - 1]).map((a) => a.at);
    // One stream each, never restarted (the re-INVITE): a single SSRC and a contiguous sequence.
    for (const [kind, list] of Object.entries(got)) {
      assert.equal(new Set(list.map((a) => a.buf.readUInt32BE(8))).size, 1, `${kind}: one SSRC`);
      list.forEach((a, i) => i === 0 || assert.equal(a.buf.readUInt16BE(2), (list[i - 1]!.buf.readUInt16BE(2) + 1) & 0xffff, `${kind} seq`));
    }
    // Video onsets: the first packet of each flash frame, by RTP timestamp from the first frame.
    const ts0 = got.video[0]!.buf.readUInt32BE(4);
    const frame = (v: Arrival) => Math.round(((v.buf.readUInt32BE(4) - ts0) >>> 0) / (90000 / BEEP_FLASH.fps));
    const first = Math.round(BEEP_FLASH.firstOnsetSec * BEEP_FLASH.fps);
    const period = BEEP_FLASH.periodSec * BEEP_FLASH.fps;
    const videoOnsets: number[] = [];
    let last = -1;
    for (const v of got.video) {
      const n = frame(v);
      if (n !== last && n % period === first) videoOnsets.push(v.at);
      last = n;
    }
    assert.equal(frame(got.video[0]!), 0);
    assert.equal(audioOnsets.length, 2, `beeps heard: ${audioOnsets.length}`);
    assert.equal(videoOnsets.length, 2, `flashes seen: ${videoOnsets.length}`);
    const offsets = audioOnsets.map((a, i) => a - videoOnsets[i]!);
    const firstAudio = got.audio[0]!.at;
    const firstVideo = got.video[0]!.at;
    console.log(`far end: first audio minus first video packet ${(firstAudio - firstVideo).toFixed(1)} ms; ` +
      `beep minus flash ${offsets.map((o) => o.toFixed(1)).join(', ')} ms`);
    // sipp's rtp_stream sends on its own 20 ms tick (of a 4 ms coarse clock), after the video has started:
    // 0-20 ms late, plus scheduling jitter.
    for (const o of offsets) assert.ok(o >= -5 && o <= 30, `beep minus flash ${o.toFixed(1)} ms`);
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
