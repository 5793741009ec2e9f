/**
 * Generated media toward the SIP party (WCS generate_av_for_ua): silence in the leg's audio codec, and
 * the generated black GOP as H.264 when the leg has video. Some far ends hang up on a silent line, or
 * ignore DTMF until media flows; nothing else is ever sent their way, since the stream is one-way.
 *
 * Driven by the call's clock: each tick sends what is due since the last one, 20 ms per audio packet
 * and one frame per 1/fps s, so a coarse tick (TICK_MS=100) sends small bursts at the same rates. After a
 * stall of over a second it skips ahead instead of bursting.
 */
import type { Socket } from 'node:dgram';
import { packetizeH264, splitAvcc, type H264Payload } from './h264/index.js';
import { serializeRtp } from './rtp.js';
import type { GeneratedVideo } from './video-output.js';

export interface FeedTarget {
  address: string;
  port: number;
}

export interface CallerFeedOptions {
  audio: { socket: Socket; target: FeedTarget; payloadType: number; encoding: string; clockRate: number };
  video?: { socket: Socket; target: FeedTarget; payloadType: number; generated: GeneratedVideo; ssrc: number };
  /** Call time zero, on the clock `tick` is given. */
  startMs: number;
}

const PTIME_MS = 20;
const MAX_CATCH_UP_MS = 1000;
const VIDEO_CLOCK = 90_000;

/** 20 ms of silence in the leg's codec; undefined if we can't make it. */
function silence(encoding: string, clockRate: number): Buffer | undefined {
  const samples = (clockRate * PTIME_MS) / 1000;
  switch (encoding) {
    case 'L16':
      return Buffer.alloc(samples * 2);
    case 'PCMU':
      return Buffer.alloc(samples, 0xff); // μ-law zero
    case 'PCMA':
      return Buffer.alloc(samples, 0xd5); // A-law zero
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
  private readonly silence: Buffer | undefined;
  private readonly samplesPerPacket: number;
  private audioSent = 0;
  private readonly video: RtpStream | undefined;
  private readonly frames: H264Payload[][] = [];
  private readonly frameMs: number;
  private framesSent = 0;

  constructor(private readonly opts: CallerFeedOptions) {
    const a = opts.audio;
    this.silence = silence(a.encoding, a.clockRate);
    this.samplesPerPacket = (a.clockRate * PTIME_MS) / 1000;
    if (this.silence) this.audio = new RtpStream(a.socket, a.target, a.payloadType, random32());
    const v = opts.video;
    this.frameMs = v ? 1000 / v.generated.fps : Infinity;
    if (v) {
      this.video = new RtpStream(v.socket, v.target, v.payloadType, v.ssrc);
      for (const f of v.generated.frames) this.frames.push(packetizeH264(splitAvcc(f.avcc)));
    }
  }

  /** Send what is due at `now`. */
  tick(now: number): void {
    const elapsed = now - this.opts.startMs;
    if (elapsed < 0) return;
    if (this.audio && this.silence) {
      const due = Math.floor(elapsed / PTIME_MS);
      if ((due - this.audioSent) * PTIME_MS > MAX_CATCH_UP_MS) this.audioSent = due - 1;
      for (; this.audioSent < due; this.audioSent++) {
        this.audio.send(this.silence, this.audioSent * this.samplesPerPacket, this.audioSent === 0);
      }
    }
    if (this.video) {
      const due = Math.floor(elapsed / this.frameMs) + 1;
      if ((due - this.framesSent) * this.frameMs > MAX_CATCH_UP_MS) this.framesSent = due - 1;
      for (; this.framesSent < due; this.framesSent++) {
        const ticks = Math.round((this.framesSent * this.frameMs * VIDEO_CLOCK) / 1000);
        for (const p of this.frames[this.framesSent % this.frames.length]!) this.video.send(p.payload, ticks, p.marker);
      }
    }
  }

  get stats(): { audioPackets: number; videoPackets: number; videoFrames: number } {
    return { audioPackets: this.audio?.packets ?? 0, videoPackets: this.video?.packets ?? 0, videoFrames: this.framesSent };
  }
}
