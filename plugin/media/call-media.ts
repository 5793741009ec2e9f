/**
 * The receive side of one call's media, in packet order:
 *   UDP socket → parseRtp → JitterBuffer → decode (L16 / G.711) → AudioTimeline (silence fill)
 *   → AAC encoder → LiveStream (neutral frames, fanned out to the outputs, each muxing its own bytes).
 * The shared ticker drives the output clock, so the stream never stops even when the caller sends nothing.
 */
import type { RemoteInfo } from 'node:dgram';
import type { AudioEncoder, AudioEncoderFactory, InjectedStream, RtpSocketPair } from './ports.js';
import { monotonicNow } from '../lib/clock.js';
import type { SdpFormat } from '../sip/sdp.js';
import { AudioTimeline } from './timeline/audio-timeline.js';
import { DtmfDetector } from './dtmf.js';
import { CallerFeed } from './to-caller/caller-feed.js';

/** Video made toward the SIP party (an injected stream), frames a second: what phones expect. */
const TO_CALLER_FPS = 25;
import { alawToPcm, ulawToPcm } from './encode/g711.js';
import { JitterBuffer } from './ingest/jitter-buffer.js';
import type { RtpPacket } from './ingest/rtp.js';
import { AudioLatency, type MsHistogram } from './timeline/latency.js';
import { LiveStream } from './output/live-stream.js';
import { l16ToPcm } from './encode/pcm.js';
import { RtpGate } from './ingest/rtp-gate.js';
import { trackHealth, type MediaHealth } from './ingest/health.js';
import { InterarrivalJitter } from './ingest/interarrival.js';
import { SenderReportCheck } from './timeline/sync.js';
import type { MediaTicker } from './timeline/ticker.js';
import { VideoIngest } from './ingest/video-ingest.js';
import { VideoOutput, type VideoOutputOptions } from './timeline/video-output.js';
import type { GeneratedVideo } from './timeline/generated-video.js';

export interface CallMediaOptions {
  /** The negotiated audio codec (from the SDP answer). */
  audio: SdpFormat;
  /** telephone-event payload type, if negotiated. */
  dtmfPayloadType?: number;
  /**
   * The caller's digits as they reach the leg (RFC 4733), for a PBX that relays them there (Asterisk's
   * native bridge); without it these packets are only counted (the PBX reports DTMF itself).
   */
  onDtmf?: (digit: string, durationMs: number) => void;
  /** Where Asterisk sends from (its offer's address and port); RTP from elsewhere is counted and ignored. */
  expectedSource?: { address: string; port: number };
  jitterDepthMs: number;
  /** The shared output clock (one timer for all calls). */
  ticker: MediaTicker;
  encoder: { factory: AudioEncoderFactory; outputRate: number; channels: number; bitrate: number };
  now?: () => number;
  /** Call time zero (the answer), on the same clock as `now`: the stream starts there, silent until RTP flows. */
  startMs?: number;
  /** Where the stream's timestamps start (ms; default 0). Tests start it near 2^24 ms (RTMP's extended timestamps). */
  timeOriginMs?: number;
  /** false (hasAudio=false): the caller's sound is not published, but the AAC track stays, silent (YouTube needs one). */
  publishAudio?: boolean;
  /** WCS generate_av_for_ua: send silence (and black video, if the leg has video) toward the SIP party. */
  feedCaller?: boolean;
  /**
   * The stream's video track (every call, unless VIDEO_FILL=none on an audio-only call): the caller's H.264
   * when negotiated and flowing (passed through or transcoded), else the fill (timeline/video-output.ts).
   */
  video?: {
    caller?: { sockets: RtpSocketPair; payloadType: number; source: { address: string; port: number }; rtcpTarget: { address: string; port: number } };
    output: VideoOutputOptions;
    /** Black video toward the SIP party (feedCaller, with a video leg). */
    toCaller?: GeneratedVideo;
    /** What video toward the SIP party (an injected stream) is made at, until the caller's own size is known. */
    toCallerSize?: { width: number; height: number; fps: number };
  };
}

type Decoder = (payload: Buffer, dst: Int16Array) => Int16Array;

const DECODERS: Record<string, Decoder> = {
  L16: (p, d) => l16ToPcm(p, d),
  PCMU: (p, d) => ulawToPcm(p, d),
  PCMA: (p, d) => alawToPcm(p, d),
};

export class UnsupportedCodecError extends Error {}

/** Samples per AAC-LC frame; ffmpeg's AAC encoder also delays its output by one frame (priming). */
const AAC_FRAME = 1024;
/** A packet behind a gap is let go this long (ms) before the tick after next would find it late (timer lateness). */
const OVERDUE_MARGIN_MS = 5;

export class CallMedia {
  readonly stream: LiveStream;
  private readonly jitter: JitterBuffer;
  private readonly timeline: AudioTimeline;
  private readonly decode: Decoder;
  private readonly scratch = new Int16Array(4096);
  private readonly now: () => number;
  private readonly video: VideoIngest | undefined;
  private readonly videoOut: VideoOutput | undefined;
  private readonly startMs: number;
  private encoder: AudioEncoder | undefined;
  private unsubscribe: (() => void) | undefined;
  private lastPacketAt: number | undefined;
  private closed = false;
  private onError: ((err: Error) => void) | undefined;
  private readonly gate: RtpGate;
  readonly counters = { dtmfPackets: 0, heldPackets: 0 };
  private held = false;
  /** The start, or the last hold/unhold: no-RTP time counts from here at the earliest. */
  private activeSince: number;
  private readonly senderReports: SenderReportCheck;
  private readonly arrivalJitter: InterarrivalJitter;
  private readonly feed: CallerFeed | undefined;
  private latency: AudioLatency | undefined;
  private readonly dtmf: DtmfDetector | undefined;

  constructor(private readonly sockets: RtpSocketPair, private readonly opts: CallMediaOptions) {
    const decode = DECODERS[opts.audio.encoding];
    if (!decode) throw new UnsupportedCodecError(`no decoder for ${opts.audio.encoding}`);
    this.decode = decode;
    this.stream = new LiveStream(opts.timeOriginMs ? { timeOriginMs: opts.timeOriginMs } : {});
    this.gate = new RtpGate({
      payloadTypes: opts.dtmfPayloadType === undefined ? [opts.audio.payloadType] : [opts.audio.payloadType, opts.dtmfPayloadType],
      ...(opts.expectedSource ? { expectedSource: opts.expectedSource } : {}),
    });
    this.now = opts.now ?? monotonicNow;
    this.jitter = new JitterBuffer({ depthMs: opts.jitterDepthMs });
    this.startMs = opts.startMs ?? this.now();
    this.activeSince = this.now();
    this.timeline = new AudioTimeline({ sampleRate: opts.audio.clockRate, delayMs: opts.jitterDepthMs }, this.startMs);
    this.senderReports = new SenderReportCheck(opts.audio.clockRate);
    if (opts.onDtmf && opts.dtmfPayloadType !== undefined) this.dtmf = new DtmfDetector(opts.audio.clockRate, opts.onDtmf);
    this.arrivalJitter = new InterarrivalJitter(opts.audio.clockRate);
    const v = opts.video;
    // One SSRC for the video we send (feedCaller) and our keyframe requests about the caller's.
    const videoSsrc = (Math.random() * 2 ** 32) >>> 0;
    if (v) {
      this.videoOut = new VideoOutput(this.stream, v.output);
      if (v.caller) {
        this.video = new VideoIngest(v.caller.sockets, this.videoOut, {
          payloadType: v.caller.payloadType, expectedSource: v.caller.source, rtcpTarget: v.caller.rtcpTarget, jitterDepthMs: opts.jitterDepthMs,
          now: this.now, callTimeMs: (now) => this.videoCallTime(now), senderClockRatio: () => this.timeline.senderClockRatio, ssrc: videoSsrc,
        });
      }
    }
    if (opts.expectedSource) {
      const vc = v?.caller;
      this.feed = new CallerFeed({
        startMs: this.startMs,
        alwaysOn: opts.feedCaller === true,
        audio: { socket: sockets.rtp, target: opts.expectedSource, payloadType: opts.audio.payloadType, encoding: opts.audio.encoding, clockRate: opts.audio.clockRate },
        ...(vc
          ? { video: { socket: vc.sockets.rtp, target: vc.source, payloadType: vc.payloadType, ssrc: videoSsrc, size: v.toCallerSize ?? { ...v.output.defaultSize, fps: TO_CALLER_FPS }, ...(v.toCaller ? { generated: v.toCaller } : {}) } }
          : {}),
      });
    }
  }

  /**
   * Where video arriving at `now` belongs: where audio arriving at the same moment lands (arrival + playout
   * delay + where the audio sits against its arrival place now), plus one AAC frame, because a player's
   * decoded audio starts one frame (the encoder's priming) after its timestamp.
   */
  private videoCallTime(now: number): number {
    const aac = (AAC_FRAME * 1000) / this.opts.encoder.outputRate;
    return now - this.startMs + this.opts.jitterDepthMs + aac + this.timeline.placementOffsetMs(now);
  }

  /**
   * On hold, the caller's media is not published (whatever a phone sends while held: its own music,
   * comfort noise): the stream carries silence and, after VIDEO_IDLE_MS, generated video, and goes on.
   */
  setHeld(held: boolean): void {
    this.held = held;
    this.activeSince = this.now();
    this.video?.setHeld(held);
  }

  /** Keep audio flowing toward the SIP party for `ms` (DTMF needs it, see caller-feed.ts). */
  keepAudioToCaller(ms: number): void {
    this.feed?.keepAudioUntil(this.now() + ms);
  }

  /** Can digits go toward the SIP party as RFC 4733 events from here (a telephone-event on the leg)? */
  get canSendDtmf(): boolean {
    return this.opts.dtmfPayloadType !== undefined && this.feed?.canSendAudio === true;
  }

  /** Digits toward the SIP party as RFC 4733 events on the leg (canSendDtmf); resolves once sent. */
  sendDtmf(digits: string, toneMs: number, gapMs: number): Promise<void> {
    const pt = this.opts.dtmfPayloadType;
    if (pt === undefined || !this.feed) return Promise.reject(new Error('no telephone-event on the media leg'));
    return this.feed.sendDigits(digits, pt, toneMs, gapMs);
  }

  /** Play PCM (mono, at the leg's rate: `legClockRate`) toward the SIP party; resolves when it has been sent. */
  playToCaller(pcm: Int16Array): Promise<void> {
    const feed = this.feed;
    if (!feed?.canSendAudio) return Promise.reject(new Error(`cannot send ${this.opts.audio.encoding} toward the caller`));
    return new Promise((resolve) => feed.play(pcm, resolve));
  }

  /**
   * /call/inject_stream: `src`'s audio (and video, on a video leg) toward the SIP party instead of silence
   * or generated video, until stopInjecting(). A sound (inject_sound) still plays over it.
   */
  injectToCaller(src: InjectedStream): void {
    const feed = this.feed;
    if (!feed?.canSendAudio) throw new Error(`cannot send ${this.opts.audio.encoding} toward the caller`);
    feed.startInject();
    src.on('audio', (pcm) => feed.injectAudio(pcm));
    src.on('video', (nalus, keyframe) => feed.injectVideo(nalus, keyframe));
  }

  stopInjecting(): void {
    this.feed?.stopInject();
  }

  /** The size and rate video toward the SIP party is made at (the caller's own size once known); undefined without a video leg. */
  get injectVideoSize(): { width: number; height: number; fps: number } | undefined {
    const size = this.feed?.videoSize;
    if (!size) return undefined;
    const j = this.video?.toJSON() as { width?: number; height?: number } | undefined;
    return j?.width && j.height ? { ...size, width: j.width, height: j.height } : size;
  }

  stopPlayingToCaller(): void {
    this.feed?.stopSound();
  }

  get legClockRate(): number {
    return this.opts.audio.clockRate;
  }

  /** Start receiving and encoding. `onError`: the media can't go on (encoder died). */
  start(onError: (err: Error) => void): void {
    this.onError = onError;
    const e = this.opts.encoder;
    this.encoder = e.factory({ inputRate: this.opts.audio.clockRate, outputRate: e.outputRate, channels: e.channels, bitrate: e.bitrate });
    this.stream.setAudioFormat({ codec: 'aac', audioSpecificConfig: this.encoder.audioSpecificConfig, sampleRate: e.outputRate, channels: e.channels, bitrate: e.bitrate });
    const outRate = this.encoder.outputRate;
    const latency = (this.latency = new AudioLatency(this.opts.audio.clockRate, outRate, AAC_FRAME));
    this.encoder.on('frame', ({ raw, index }) => {
      // Timestamp from the sample count: 1024 samples per AAC frame.
      this.stream.audioFrame(Math.round((index * AAC_FRAME * 1000) / outRate), raw);
      latency.frameOut(index, this.now());
    });
    this.encoder.on('error', (err) => this.onError?.(err));
    this.sockets.rtp.on('message', this.onRtp);
    this.sockets.rtcp.on('message', this.onRtcp);
    this.video?.start();
    this.unsubscribe = this.opts.ticker.subscribe(() => this.tick());
  }

  private readonly onRtp = (buf: Buffer, from: RemoteInfo): void => {
    const p = this.gate.accept(buf, from);
    if (!p) return;
    if (this.held) {
      this.counters.heldPackets++;
      return;
    }
    const now = this.now();
    this.lastPacketAt = now;
    this.senderReports.rtp(p.timestamp, now);
    // An RFC 4733 event repeats its start timestamp: not a clock to measure jitter on.
    if (p.payloadType === this.opts.audio.payloadType) this.arrivalJitter.add(p.timestamp, now);
    // telephone-event packets share the audio's sequence numbers: they go through the jitter buffer too,
    // or each would look like a lost packet; they are dropped after it (DTMF is reported through ARI).
    this.jitter.push(p, now);
    // In-order packets are released at once: no added latency when nothing is missing.
    this.release(now);
  };

  private readonly onRtcp = (buf: Buffer): void => {
    this.senderReports.rtcp(buf);
  };

  private release(now: number): void {
    for (const p of this.jitter.pop(now, this.overdue)) {
      if (p.payloadType !== this.opts.audio.payloadType) {
        this.counters.dtmfPackets++;
        this.dtmf?.push(p.timestamp, p.payload);
        continue;
      }
      if (this.opts.publishAudio === false) continue;
      const samples = this.decode(p.payload, this.scratch);
      const jumps = this.timeline.jumps;
      const end = this.timeline.push(p.timestamp, samples, now);
      const tl = this.timeline;
      if (this.latency && tl.outputPositionOf(end) > tl.samplesOut) this.latency.placed(tl.outputPositionOf(end - samples.length), now);
      // When the audio jumps (a re-anchor, a late start moved), the video moves by the same amount at once.
      if (jumps !== tl.jumps) this.video?.shift(tl.stats.lastJumpMs);
    }
  }

  /**
   * A packet behind a gap waits for the missing one only while it would still play in time after the
   * next tick: waiting the jitter buffer's whole depth on top of the network's jitter made it late, and a
   * run of late packets is an underrun (the timeline re-anchors, and steers the surplus off for seconds).
   */
  private readonly overdue = (head: RtpPacket): boolean =>
    head.payloadType === this.opts.audio.payloadType && this.timeline.slackMs(head.timestamp, this.now()) < this.opts.ticker.periodMs + OVERDUE_MARGIN_MS;

  private tick(): void {
    if (this.closed) return;
    const now = this.now();
    this.release(now);
    const pcm = this.timeline.read(now);
    this.encoder?.write(pcm);
    this.video?.tick();
    this.feed?.tick(now);
    // Generated video on the same time basis as the caller's, so switching either way leaves no gap.
    this.videoOut?.tick(this.videoCallTime(now), now);
  }

  /**
   * How long no RTP (audio or video) has been accepted, counted from the start when none came yet
   * (FAILED_BY_RTP_ACTIVITY). Held calls count from the unhold.
   */
  idleMs(now = this.now()): number {
    const last = Math.max(this.lastPacketAt ?? -Infinity, this.video?.lastPacketAt ?? -Infinity, this.activeSince);
    return now - last;
  }

  health(): MediaHealth {
    const s = this.stream.stats;
    const tl = this.timeline.stats;
    const l = this.latency?.histogram;
    const p50 = l?.quantile(0.5);
    return {
      audio: trackHealth(this.gate, this.jitter, this.arrivalJitter),
      video: this.video ? this.video.health() : null,
      output: { audioBytes: s.audioBytes, videoBytes: s.videoBytes, keyframeIntervalMs: s.keyframeIntervalMs || null },
      avOffsetMs: this.video?.avOffsetMs ?? null,
      latencyMs: p50 === undefined ? null : { p50, p99: l!.quantile(0.99)! },
      jitterDepthMs: this.opts.jitterDepthMs,
      clock: { senderPpm: tl.senderClockPpm, delayErrorMs: tl.delayErrorMs, reanchors: tl.reanchors },
    };
  }

  /** The audio latency histogram (1 ms bins) so far; /metrics sums them over calls. */
  get latencyHistogram(): MsHistogram | undefined {
    return this.latency?.histogram;
  }

  /** The encoder's child process, when it runs in one (AAC_ENCODER=ffmpeg). */
  get encoderPid(): number | undefined {
    return this.encoder?.pid;
  }

  /** The video transcoder's child process, while the call's video goes through one. */
  get transcoderPid(): number | undefined {
    return this.videoOut?.transcoderPid;
  }

  /** passthrough / transcode, and what the video track shows now; null without a video track. */
  get videoState(): { mode: string; source: string; size: string | null } | null {
    if (!this.videoOut) return null;
    const s = this.videoOut.streamSize;
    return { mode: this.videoOut.mode, source: this.videoOut.current, size: s ? `${s.width}x${s.height}` : null };
  }

  toJSON(): Record<string, unknown> {
    return {
      codec: `${this.opts.audio.encoding}/${this.opts.audio.clockRate}`,
      rtp: { ...this.gate.toJSON(), ...this.counters, interarrivalJitterMs: this.arrivalJitter.ms },
      rtcp: this.senderReports.stats,
      jitter: this.jitter.toJSON(),
      timeline: this.timeline.stats,
      stream: this.stream.stats,
      ...(this.latency ? { latencyMs: this.latency.histogram.toJSON() } : {}),
      encoderPid: this.encoder?.pid,
      ...(this.feed ? { toCaller: this.feed.stats } : {}),
      ...(this.videoOut ? { video: { ...this.videoOut.toJSON(), ...(this.video ? this.video.toJSON() : {}) } } : {}),
    };
  }

  /**
   * End of call without losing its last words: stop receiving, hand the encoder everything up to now
   * (plus what the playout delay still holds), and wait for its last frames to reach the stream.
   */
  async drain(timeoutMs = 1000): Promise<void> {
    if (this.closed || !this.encoder) return this.close();
    this.closed = true;
    this.detach();
    const now = this.now();
    this.release(now);
    this.encoder.write(this.timeline.read(now + this.opts.jitterDepthMs));
    await this.encoder.finish(timeoutMs);
  }

  /** Stop the clock and the encoder at once; detach from the sockets (their owner releases them). */
  async close(): Promise<void> {
    this.closed = true;
    this.detach();
    await Promise.all([this.encoder?.close(), this.videoOut?.close()]);
  }

  private detach(): void {
    this.feed?.stopSound();
    this.feed?.cancelDigits();
    this.video?.close();
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.sockets.rtp.off('message', this.onRtp);
    this.sockets.rtcp.off('message', this.onRtcp);
  }
}
