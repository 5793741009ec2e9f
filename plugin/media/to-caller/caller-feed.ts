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
import { dtmfEventCode, telephoneEventPayload } from '../dtmf.js';
import { serializeRtp } from '../ingest/rtp.js';
import type { GeneratedVideo } from '../timeline/generated-video.js';

export interface FeedTarget {
  address: string;
  port: number;
}

export interface CallerFeedOptions {
  audio: { socket: Socket; target: FeedTarget; payloadType: number; encoding: string; clockRate: number };
  /**
   * A video leg: `generated` is sent all the time with alwaysOn; an injected stream's frames replace it
   * (or, without it, are the only video sent), made at `size`.
   */
  video?: { socket: Socket; target: FeedTarget; payloadType: number; generated?: GeneratedVideo; ssrc: number; size: { width: number; height: number; fps: number } };
  /** Call time zero, on the clock `tick` is given. */
  startMs: number;
  /** Send all the time (generate_av_for_ua); otherwise only on demand. */
  alwaysOn: boolean;
}

const PTIME_MS = 20;
/**
 * Injected audio: held until this much is there, and at most this much (the oldest goes). A live input
 * comes at real time after a first burst (an RTMP server sends what it buffered: ~1 s from nginx), so
 * whatever is queued beyond the cap would be delay for the rest of the call.
 */
const INJECT_PREBUFFER_MS = 60;
const INJECT_MAX_QUEUE_MS = 250;
/** Injected video frames waiting for a tick beyond this: start again from a keyframe. */
const INJECT_MAX_FRAMES = 50;

interface Injected {
  /** Chunks as decoded; `head`: samples of the first already sent; `queued`: samples in all chunks. */
  pcm: Int16Array[];
  head: number;
  queued: number;
  /** Past the prebuffer (false again after an underrun). */
  playing: boolean;
  /** Frames as they came (`at`: the tick they came after), sent once the audio queued with them has played. */
  frames: { packets: H264Payload[]; at: number }[];
  /** The injected video has begun (it replaces the generated video from then on). */
  keyframeSeen: boolean;
  needKeyframe: boolean;
  underruns: number;
  droppedMs: number;
}
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
  send(payload: Buffer, ticks: number, marker: boolean, payloadType = this.payloadType): void {
    const buf = serializeRtp({
      payloadType, sequenceNumber: this.seq, timestamp: (this.tsBase + ticks) >>> 0,
      ssrc: this.ssrc, marker, csrcs: [], payload,
    });
    this.seq = (this.seq + 1) & 0xffff;
    this.packets++;
    // Best effort: a send error (the leg just went away) is not worth failing the call for.
    this.socket.send(buf, this.target.port, this.target.address, () => {});
  }
}

/** Digits being sent as RFC 4733 events, in packet slots (20 ms each) of the audio stream. */
interface DigitQueue {
  codes: number[];
  payloadType: number;
  toneSlots: number;
  gapSlots: number;
  /** The digit on the wire: its first slot. */
  current: { code: number; startSlot: number } | undefined;
  /** No new digit before this slot (the gap after the last one). */
  nextSlot: number;
  done: () => void;
}

/** The end packet of an event goes out this many times (RFC 4733 §2.5.1.4). */
const END_REPEATS = 3;

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
  /** Where the generated GOP is read from (framesSent - gopStart): it restarts at its keyframe after an injected stream. */
  private gopStart = 0;
  private injected: Injected | undefined;
  private digits: DigitQueue | undefined;
  private lastTick = -Infinity;

  constructor(private readonly opts: CallerFeedOptions) {
    const a = opts.audio;
    this.samplesPerPacket = (a.clockRate * PTIME_MS) / 1000;
    this.encode = encoder(a.encoding);
    this.silence = this.encode?.(new Int16Array(this.samplesPerPacket));
    if (this.encode) this.audio = new RtpStream(a.socket, a.target, a.payloadType, random32());
    const v = opts.video;
    this.frameMs = v ? 1000 / (v.generated?.fps ?? v.size.fps) : Infinity;
    if (v) {
      this.video = new RtpStream(v.socket, v.target, v.payloadType, v.ssrc);
      for (const f of v.generated?.frames ?? []) this.frames.push(packetizeH264(splitAvcc(f.avcc)));
    }
  }

  /** The size and rate injected video is made at, on a video leg. */
  get videoSize(): { width: number; height: number; fps: number } | undefined {
    return this.opts.video?.size;
  }

  /** Can it send audio at all (a codec it encodes)? */
  get canSendAudio(): boolean {
    return this.audio !== undefined;
  }

  /** Keep audio (silence, or a sound) flowing until `untilMs` at least. */
  keepAudioUntil(untilMs: number): void {
    this.keepUntil = Math.max(this.keepUntil, untilMs);
  }

  /**
   * Send `digits` as RFC 4733 events with `payloadType` (the leg's telephone-event): each `toneMs`, then
   * `gapMs` of audio, in the audio stream's own sequence and timestamps; resolves once the last is sent.
   * A request during another waits for it (call-controls sends one request at a time anyway).
   */
  sendDigits(digits: string, payloadType: number, toneMs: number, gapMs: number): Promise<void> {
    if (!this.audio) return Promise.reject(new Error(`cannot send DTMF beside ${this.opts.audio.encoding}`));
    const codes = [...digits].map((d) => dtmfEventCode(d));
    if (codes.some((c) => c === undefined)) return Promise.reject(new Error(`not DTMF digits: ${digits}`));
    const previous = this.digits;
    return new Promise((resolve) => {
      const start = (): void => {
        this.digits = {
          codes: codes as number[], payloadType, toneSlots: Math.max(1, Math.round(toneMs / PTIME_MS)), gapSlots: Math.max(1, Math.round(gapMs / PTIME_MS)),
          current: undefined, nextSlot: 0, done: () => { this.digits = undefined; resolve(); },
        };
      };
      if (previous) {
        const done = previous.done;
        previous.done = () => { done(); start(); };
      } else start();
    });
  }

  /** Drops the digits not sent yet (the call ends): every sendDigits() resolves. */
  cancelDigits(): void {
    for (let q = this.digits; q; q = this.digits) {
      q.codes.length = 0;
      q.current = undefined;
      q.done();
    }
  }

  /** Play PCM (mono, at the leg's clock rate) instead of silence; `done` when it has all been sent or is stopped. */
  play(pcm: Int16Array, done: () => void): void {
    this.stopSound();
    this.sound = { pcm, at: 0, done };
  }

  /**
   * /call/inject_stream: a live stream's audio (and, on a video leg, its video) instead of silence and
   * generated video, until stopInject(). Its decoder hands chunks over as they come: audio is held until
   * INJECT_PREBUFFER_MS is there (then after every underrun) so a bursty pipe does not stutter.
   */
  startInject(): void {
    this.injected = { pcm: [], head: 0, queued: 0, playing: false, frames: [], keyframeSeen: false, needKeyframe: true, underruns: 0, droppedMs: 0 };
  }

  injectAudio(pcm: Int16Array): void {
    const j = this.injected;
    if (!j) return;
    j.pcm.push(pcm);
    j.queued += pcm.length;
    // Behind by more than a second (the decoder burst, or we stalled): the oldest goes.
    const rate = this.opts.audio.clockRate;
    let excess = j.queued - j.head - (rate * INJECT_MAX_QUEUE_MS) / 1000;
    while (excess > 0) {
      const first = j.pcm[0]!;
      const take = Math.min(first.length - j.head, excess);
      j.head += take;
      excess -= take;
      j.droppedMs += (take * 1000) / rate;
      if (j.head === first.length) {
        j.pcm.shift();
        j.queued -= first.length;
        j.head = 0;
      }
    }
  }

  injectVideo(nalus: Buffer[], keyframe: boolean): void {
    const j = this.injected;
    if (!j || !this.video) return;
    // Far behind (no tick for a while): start again at the next keyframe.
    if (j.frames.length >= INJECT_MAX_FRAMES) {
      j.frames.length = 0;
      j.needKeyframe = true;
    }
    // A phone can't decode from a P-frame: from a keyframe on.
    if (!keyframe && j.needKeyframe) return;
    j.needKeyframe = false;
    j.keyframeSeen = true;
    j.frames.push({ packets: packetizeH264(nalus), at: this.lastTick });
  }

  stopInject(): void {
    if (!this.injected) return;
    this.injected = undefined;
    this.gopStart = this.framesSent; // the generated video (if any) resumes at its keyframe
  }

  get injecting(): boolean {
    return this.injected !== undefined;
  }

  stopSound(): void {
    const s = this.sound;
    this.sound = undefined;
    s?.done();
  }

  /** Send what is due at `now`. */
  tick(now: number): void {
    this.lastTick = now;
    const elapsed = now - this.opts.startMs;
    if (elapsed < 0) return;
    if (this.audio) {
      const due = Math.floor(elapsed / PTIME_MS);
      const on = this.opts.alwaysOn || now < this.keepUntil || this.sound !== undefined || this.injected !== undefined || this.digits !== undefined;
      if (!on || (due - this.audioSent) * PTIME_MS > MAX_CATCH_UP_MS) this.audioSent = Math.max(this.audioSent, due - (on ? 1 : 0));
      for (; this.audioSent < due; this.audioSent++) {
        if (this.digits && this.sendDigitSlot(this.audio, this.digits, this.audioSent)) continue;
        // The first packet after a pause starts a talkspurt: marker bit.
        this.audio.send(this.nextAudio(), this.audioSent * this.samplesPerPacket, !this.audioOn);
        this.audioOn = true;
      }
      if (!on) this.audioOn = false;
    }
    const j = this.injected;
    if (this.video && j?.keyframeSeen) {
      // The injected stream's frames, held as long as the audio that came with them waits in its queue
      // (lip sync toward the phone), stamped with our clock (the same RTP stream as the generated video).
      const audioDelayMs = ((j.queued - j.head) * 1000) / this.opts.audio.clockRate;
      const ticks = Math.round((elapsed * VIDEO_CLOCK) / 1000);
      let sent = 0;
      for (const f of j.frames) {
        if (f.at + audioDelayMs > now) break;
        for (const p of f.packets) this.video.send(p.payload, ticks, p.marker);
        sent++;
      }
      j.frames.splice(0, sent);
      this.framesSent = Math.floor(elapsed / this.frameMs) + 1;
    } else if (this.video && this.opts.alwaysOn && this.frames.length > 0) {
      const due = Math.floor(elapsed / this.frameMs) + 1;
      if ((due - this.framesSent) * this.frameMs > MAX_CATCH_UP_MS) this.framesSent = due - 1;
      for (; this.framesSent < due; this.framesSent++) {
        const ticks = Math.round((this.framesSent * this.frameMs * VIDEO_CLOCK) / 1000);
        for (const p of this.frames[(this.framesSent - this.gopStart) % this.frames.length]!) this.video.send(p.payload, ticks, p.marker);
      }
    }
  }

  /**
   * Packet slot `slot` while digits are queued: an event packet (true), or audio (false: in the gap after a
   * digit). Each event's packets carry its first slot's timestamp and a growing duration; its end packet
   * goes out END_REPEATS times.
   */
  private sendDigitSlot(audio: RtpStream, q: DigitQueue, slot: number): boolean {
    if (!q.current) {
      if (slot < q.nextSlot) return false;
      const code = q.codes.shift();
      if (code === undefined) {
        q.done();
        return false;
      }
      q.current = { code, startSlot: slot };
    }
    const { code, startSlot } = q.current;
    const k = slot - startSlot;
    const ticks = startSlot * this.samplesPerPacket;
    const end = k >= q.toneSlots - 1;
    const duration = (k + 1) * this.samplesPerPacket;
    for (let i = 0; i < (end ? END_REPEATS : 1); i++) audio.send(telephoneEventPayload(code, end, duration), ticks, k === 0 && i === 0, q.payloadType);
    if (end) {
      q.current = undefined;
      q.nextSlot = slot + 1 + q.gapSlots;
    }
    return true;
  }

  /** The next packet's worth of the injected audio, or silence while it is buffering. */
  private injectedAudio(j: Injected, n: number): Int16Array | undefined {
    const prebuffer = (this.opts.audio.clockRate * INJECT_PREBUFFER_MS) / 1000;
    if (!j.playing && j.queued - j.head < prebuffer) return undefined;
    if (j.queued - j.head < n) {
      if (j.playing) j.underruns++;
      j.playing = false;
      return undefined;
    }
    j.playing = true;
    const out = new Int16Array(n);
    let filled = 0;
    while (filled < n) {
      const first = j.pcm[0]!;
      const take = Math.min(n - filled, first.length - j.head);
      out.set(first.subarray(j.head, j.head + take), filled);
      filled += take;
      j.head += take;
      if (j.head === first.length) {
        j.pcm.shift();
        j.queued -= first.length;
        j.head = 0;
      }
    }
    return out;
  }

  private nextAudio(): Buffer {
    const s = this.sound;
    if (!s) {
      // A sound (inject_sound) plays over an injected stream; the stream goes on under it.
      const pcm = this.injected ? this.injectedAudio(this.injected, this.samplesPerPacket) : undefined;
      return pcm ? this.encode!(pcm) : this.silence!;
    }
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

  get stats(): { audioPackets: number; videoPackets: number; videoFrames: number; injected?: { underruns: number; droppedMs: number; queuedMs: number } } {
    const j = this.injected;
    return {
      audioPackets: this.audio?.packets ?? 0, videoPackets: this.video?.packets ?? 0, videoFrames: this.framesSent,
      ...(j ? { injected: { underruns: j.underruns, droppedMs: Math.round(j.droppedMs), queuedMs: Math.round(((j.queued - j.head) * 1000) / this.opts.audio.clockRate) } } : {}),
    };
  }
}
