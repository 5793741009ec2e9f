/**
 * Media toward the SIP party, through the media leg:
 * - WCS generate_av_for_ua (`alwaysOn`): silence in the leg's audio codec, and the generated black GOP
 *   as H.264 when the leg has video, for far ends that hang up on a silent line;
 * - for a while on demand (`keepAudioUntil`): Asterisk times the end of DTMF it sends by the frames it
 *   relays to that channel, so with no audio flowing the last digit never ends (measured: baresip saw
 *   "1 2 #" begin but "#" never end) and SIP INFO digits are not sent at all;
 * - a sound (`/call/inject_sound`): PCM at the leg's rate, encoded into the leg codec, instead of silence.
 *
 * Driven by the call's clock: each tick sends what is due since the last one, 20 ms per audio packet
 * and one frame per 1/fps s, so a coarse tick (TICK_MS=100) sends small bursts at the same rates. After a
 * stall of over a second it skips ahead instead of bursting.
 */
import type { Socket } from 'node:dgram';
import { packetizeH264, splitAvcc, type H264Payload } from '../encode/h264/index.js';
import { pcmToAlaw, pcmToUlaw } from '../encode/g711.js';
import { serializeRtp } from '../ingest/rtp.js';
import type { GeneratedVideo } from '../timeline/generated-video.js';

export interface FeedTarget {
  address: string;
  port: number;
}

export interface CallerFeedOptions {
  audio: { socket: Socket; target: FeedTarget; payloadType: number; encoding: string; clockRate: number };
  video?: { socket: Socket; target: FeedTarget; payloadType: number; generated: GeneratedVideo; ssrc: number };
  /** Call time zero, on the clock `tick` is given. */
  startMs: number;
  /** Send all the time (generate_av_for_ua); otherwise only on demand. */
  alwaysOn: boolean;
}

const PTIME_MS = 20;
const MAX_CATCH_UP_MS = 1000;
const VIDEO_CLOCK = 90_000;

type Encode = (pcm: Int16Array) => Buffer;

/** PCM → the leg codec's payload; undefined for a codec we don't send. */
function encoder(encoding: string): Encode | undefined {
  switch (encoding) {
    case 'L16':
      return (pcm) => {
        const out = Buffer.alloc(pcm.length * 2);
        for (let i = 0; i < pcm.length; i++) out.writeInt16BE(pcm[i]!, i * 2); // network byte order
        return out;
      };
    case 'PCMU':
      return (pcm) => pcmToUlaw(pcm);
    case 'PCMA':
      return (pcm) => pcmToAlaw(pcm);
    default:
      return undefined;
  }
}

const random32 = () => (Math.random() * 2 ** 32) >>> 0;

class RtpStream {
  private seq = Math.floor(Math.random() * 0x10000);
  private readonly tsBase = random32();
  packets = 0;
  constructor(private readonly socket: Socket, private readonly target: FeedTarget, private readonly payloadType: number, private readonly ssrc: number) {}
  send(payload: Buffer, ticks: number, marker: boolean): void {
    const buf = serializeRtp({
      payloadType: this.payloadType, sequenceNumber: this.seq, timestamp: (this.tsBase + ticks) >>> 0,
      ssrc: this.ssrc, marker, csrcs: [], payload,
    });
    this.seq = (this.seq + 1) & 0xffff;
    this.packets++;
    // Best effort: a send error (the leg just went away) is not worth failing the call for.
    this.socket.send(buf, this.target.port, this.target.address, () => {});
  }
}

export class CallerFeed {
  private readonly audio: RtpStream | undefined;
  private readonly encode: Encode | undefined;
  private readonly silence: Buffer | undefined;
  private readonly samplesPerPacket: number;
  private audioSent = 0;
  private audioOn = false;
  private keepUntil = -Infinity;
  private sound: { pcm: Int16Array; at: number; done: () => void } | undefined;
  private readonly video: RtpStream | undefined;
  private readonly frames: H264Payload[][] = [];
  private readonly frameMs: number;
  private framesSent = 0;

  constructor(private readonly opts: CallerFeedOptions) {
    const a = opts.audio;
    this.samplesPerPacket = (a.clockRate * PTIME_MS) / 1000;
    this.encode = encoder(a.encoding);
    this.silence = this.encode?.(new Int16Array(this.samplesPerPacket));
    if (this.encode) this.audio = new RtpStream(a.socket, a.target, a.payloadType, random32());
    const v = opts.video;
    this.frameMs = v ? 1000 / v.generated.fps : Infinity;
    if (v) {
      this.video = new RtpStream(v.socket, v.target, v.payloadType, v.ssrc);
      for (const f of v.generated.frames) this.frames.push(packetizeH264(splitAvcc(f.avcc)));
    }
  }

  /** Can it send audio at all (a codec it encodes)? */
  get canSendAudio(): boolean {
    return this.audio !== undefined;
  }

  /** Keep audio (silence, or a sound) flowing until `untilMs` at least. */
  keepAudioUntil(untilMs: number): void {
    this.keepUntil = Math.max(this.keepUntil, untilMs);
  }

  /** Play PCM (mono, at the leg's clock rate) instead of silence; `done` when it has all been sent or is stopped. */
  play(pcm: Int16Array, done: () => void): void {
    this.stopSound();
    this.sound = { pcm, at: 0, done };
  }

  stopSound(): void {
    const s = this.sound;
    this.sound = undefined;
    s?.done();
  }

  /** Send what is due at `now`. */
  tick(now: number): void {
    const elapsed = now - this.opts.startMs;
    if (elapsed < 0) return;
    if (this.audio) {
      const due = Math.floor(elapsed / PTIME_MS);
      const on = this.opts.alwaysOn || now < this.keepUntil || this.sound !== undefined;
      if (!on || (due - this.audioSent) * PTIME_MS > MAX_CATCH_UP_MS) this.audioSent = Math.max(this.audioSent, due - (on ? 1 : 0));
      for (; this.audioSent < due; this.audioSent++) {
        // The first packet after a pause starts a talkspurt: marker bit.
        this.audio.send(this.nextAudio(), this.audioSent * this.samplesPerPacket, !this.audioOn);
        this.audioOn = true;
      }
      if (!on) this.audioOn = false;
    }
    if (this.video && this.opts.alwaysOn) {
      const due = Math.floor(elapsed / this.frameMs) + 1;
      if ((due - this.framesSent) * this.frameMs > MAX_CATCH_UP_MS) this.framesSent = due - 1;
      for (; this.framesSent < due; this.framesSent++) {
        const ticks = Math.round((this.framesSent * this.frameMs * VIDEO_CLOCK) / 1000);
        for (const p of this.frames[this.framesSent % this.frames.length]!) this.video.send(p.payload, ticks, p.marker);
      }
    }
  }

  private nextAudio(): Buffer {
    const s = this.sound;
    if (!s) return this.silence!;
    const n = this.samplesPerPacket;
    const chunk = new Int16Array(n); // zero-padded past the end of the sound
    chunk.set(s.pcm.subarray(s.at, Math.min(s.pcm.length, s.at + n)));
    s.at += n;
    if (s.at >= s.pcm.length) {
      this.sound = undefined;
      s.done();
    }
    return this.encode!(chunk);
  }

  get stats(): { audioPackets: number; videoPackets: number; videoFrames: number } {
    return { audioPackets: this.audio?.packets ?? 0, videoPackets: this.video?.packets ?? 0, videoFrames: this.framesSent };
  }
}
