/**
 * The receive side of a call's video, in packet order:
 *   UDP socket → parseRtp → JitterBuffer → H264Depacketizer (access units, drop until IDR after loss)
 *   → AvcConfigTracker (sequence header, again when SPS/PPS change) → VideoOutput (→ LiveStream).
 * H.264 passes through untouched: no decode, no encode.
 *
 * Timestamps: an access unit goes on the call's timeline where its audio would (`callTimeMs(arrival)`,
 * which adds the playout delay and follows the audio's own skew), spaced by RTP timestamps from there.
 * The skew between RTP-timestamp time and that target is tracked (windowed maximum: arrivals are only
 * ever late); past MAX_SKEW_MS the anchor moves by it, so a drifting sender clock costs a few ms of
 * retiming per correction instead of an ever-growing A/V offset. RTP durations are scaled by the sender's
 * clock rate as the audio estimates it (same phone, same crystal), so on a drifting phone those
 * corrections stay rare. A jump over MAX_JUMP_MS (new SSRC,
 * timestamp reset) re-anchors on the arrival time at once.
 *
 * Keyframes: asked for (RTCP PLI toward Asterisk) at start, after loss, and ahead of the stream's keyframe
 * goal (VideoOutput decides: not while transcoding); rate-limited; requests that go unanswered are counted.
 * Every form (PLI, FIR, SIP INFO on the leg) reaches an H.264 phone through Asterisk 22 as RTCP FIR
 * (asterisk-facts.md): phones that only honour PLI or INFO get the transcode path.
 */
import type { RemoteInfo } from 'node:dgram';
import type { RtpSocketPair } from '../ports.js';
import { AvcConfigTracker, toAvcc } from '../encode/h264/index.js';
import { H264Depacketizer, type AccessUnit } from './h264-depacketizer.js';
import { JitterBuffer } from './jitter-buffer.js';
import { buildKeyframeRequest } from './rtcp.js';
import { RtpGate } from './rtp-gate.js';
import { trackHealth, type TrackHealth } from './health.js';
import { InterarrivalJitter } from './interarrival.js';
import { SenderReportCheck, SkewTracker } from '../timeline/sync.js';
import { tsDiff } from './seq.js';
import type { VideoOutput } from '../timeline/video-output.js';

export interface VideoIngestOptions {
  payloadType: number;
  expectedSource?: { address: string; port: number };
  /** Where keyframe requests go: Asterisk's RTCP port for this stream (its RTP port + 1, no rtcp-mux). */
  rtcpTarget?: { address: string; port: number };
  jitterDepthMs: number;
  now: () => number;
  /** Where a frame arriving at `now` belongs on the call's timeline (ms): the same place as its audio. */
  callTimeMs: (now: number) => number;
  /**
   * The sender's clock rate over ours, as the audio measures it (1.001: 1000 ppm fast). RTP durations are
   * divided by it, so a drifting phone's video keeps pace with its audio instead of being retimed in steps.
   */
  senderClockRatio?: () => number;
  /** Not more than one keyframe request per this many ms. */
  keyframeRequestGapMs?: number;
  /** Our SSRC in keyframe requests: the one we send video with, if we do (Asterisk skips RTCP from another). */
  ssrc?: number;
}

const RTP_CLOCK = 90_000;
/** Beyond this difference between RTP-timestamp time and arrival time, re-anchor at once (ms). */
const MAX_JUMP_MS = 300;
/** Beyond this settled skew, move the anchor by it (ms). */
const MAX_SKEW_MS = 10;
const SKEW_WINDOW_MS = 1000;

export class VideoIngest {
  private readonly jitter: JitterBuffer;
  private readonly depacketizer = new H264Depacketizer();
  private readonly config = new AvcConfigTracker();
  private anchor: { rtp: number; ms: number } | undefined;
  private readonly skew = new SkewTracker(SKEW_WINDOW_MS);
  readonly senderReports = new SenderReportCheck(RTP_CLOCK);
  private readonly arrivalJitter = new InterarrivalJitter(RTP_CLOCK);
  private lastKeyframeAt: number | undefined;
  private lastRequestAt = -Infinity;
  private pendingRequest = false;
  private mediaSsrc = 0;
  private readonly ourSsrc: number;
  private closed = false;
  private held = false;
  /** When the last accepted packet arrived (undefined: none yet). */
  lastPacketAt: number | undefined;
  private readonly gate: RtpGate;
  readonly counters = {
    accessUnits: 0, keyframes: 0,
    skippedNoConfig: 0, heldPackets: 0, reanchors: 0, skewCorrections: 0, keyframeRequests: 0, keyframeRequestsUnanswered: 0, maxKeyframeIntervalMs: 0,
  };

  constructor(private readonly sockets: RtpSocketPair, private readonly output: VideoOutput, private readonly opts: VideoIngestOptions) {
    this.jitter = new JitterBuffer({ depthMs: opts.jitterDepthMs });
    this.ourSsrc = opts.ssrc ?? (Math.random() * 2 ** 32) >>> 0;
    this.gate = new RtpGate({ payloadTypes: [opts.payloadType], ...(opts.expectedSource ? { expectedSource: opts.expectedSource } : {}) });
  }

  start(): void {
    this.sockets.rtp.on('message', this.onRtp);
    this.sockets.rtcp.on('message', this.onRtcp);
  }

  private readonly onRtcp = (buf: Buffer): void => {
    this.senderReports.rtcp(buf);
  };

  /**
   * The audio's placement moved by `deltaMs` (it re-anchored): move with it, so the offset stays. The
   * arrival target moves by the same amount (it follows the audio's skew), so the measured skew stands.
   */
  shift(deltaMs: number): void {
    if (this.anchor) this.anchor.ms += deltaMs;
  }

  private readonly onRtp = (buf: Buffer, from: RemoteInfo): void => {
    if (this.closed) return;
    const p = this.gate.accept(buf, from);
    if (!p) return;
    if (this.held) {
      this.counters.heldPackets++;
      return;
    }
    const now = this.opts.now();
    this.lastPacketAt = now;
    this.output.callerActive(now);
    this.mediaSsrc = p.ssrc;
    this.senderReports.rtp(p.timestamp, now);
    this.arrivalJitter.add(p.timestamp, now);
    this.jitter.push(p, now);
    this.release(now);
  };

  private release(now: number): void {
    for (const p of this.jitter.pop(now)) {
      for (const au of this.depacketizer.push(p)) this.onAccessUnit(au, now);
    }
  }

  private onAccessUnit(au: AccessUnit, now: number): void {
    this.counters.accessUnits++;
    const cfg = this.config.update(au);
    if (cfg) this.output.callerFormat(cfg, this.config.width, this.config.height);
    if (!this.config.current) {
      this.counters.skippedNoConfig++;
      return;
    }
    if (au.keyframe) {
      this.counters.keyframes++;
      if (this.lastKeyframeAt !== undefined) {
        this.counters.maxKeyframeIntervalMs = Math.max(this.counters.maxKeyframeIntervalMs, now - this.lastKeyframeAt);
      }
      this.lastKeyframeAt = now;
      this.pendingRequest = false;
    }
    this.output.callerFrame(this.timestampOf(au.timestamp, now), toAvcc(au.nalus), au.keyframe, now);
  }

  /** Call-time ms of an access unit: RTP spacing from an arrival-based anchor that follows the skew. */
  private timestampOf(rtp: number, now: number): number {
    const byArrival = this.opts.callTimeMs(now);
    if (!this.anchor) {
      this.anchor = { rtp, ms: byArrival };
      return byArrival;
    }
    let ms = this.anchor.ms + (tsDiff(rtp, this.anchor.rtp) * 1000) / (RTP_CLOCK * (this.opts.senderClockRatio?.() ?? 1));
    if (Math.abs(ms - byArrival) > MAX_JUMP_MS) {
      this.counters.reanchors++;
      this.skew.reset();
      ms = byArrival;
    } else {
      this.skew.add(ms - byArrival, now);
      const lead = this.skew.max(now)!;
      if (this.skew.settled(now) && Math.abs(lead) > MAX_SKEW_MS) {
        this.counters.skewCorrections++;
        this.skew.reset();
        ms -= lead;
      }
    }
    // The anchor moves along, so timestamp differences stay small (no wrap trouble on long calls).
    this.anchor = { rtp, ms };
    return ms;
  }

  /** While held, nothing is taken in (and no keyframes are asked for); after, it starts again at a keyframe. */
  setHeld(held: boolean): void {
    this.held = held;
  }

  /** Called by the call's clock: jitter timeouts, and keyframe requests when due. */
  tick(): void {
    if (this.closed || this.held) return;
    const now = this.opts.now();
    this.release(now);
    // Asked for ahead of the goal, so a phone that obeys keeps the stream in passthrough; in transcode, only after loss.
    const stale = this.output.asksKeyframes && (this.lastKeyframeAt === undefined || now - this.lastKeyframeAt > this.output.requestKeyframeAfterMs);
    if ((this.depacketizer.waitingForKeyframe || this.output.wantsKeyframe || stale) && now - this.lastRequestAt >= (this.opts.keyframeRequestGapMs ?? 500)) {
      this.requestKeyframe(now);
    }
  }

  private requestKeyframe(now: number): void {
    const to = this.opts.rtcpTarget;
    if (!to || !this.mediaSsrc) return; // nothing received yet: nobody to ask
    if (this.pendingRequest) this.counters.keyframeRequestsUnanswered++;
    this.pendingRequest = true;
    this.lastRequestAt = now;
    this.counters.keyframeRequests++;
    this.sockets.rtcp.send(buildKeyframeRequest(this.ourSsrc, this.mediaSsrc, 'sip-as-rtmp'), to.port, to.address);
  }

  toJSON(): Record<string, unknown> {
    return {
      rtp: { ...this.gate.toJSON(), ...this.counters, interarrivalJitterMs: this.arrivalJitter.ms },
      rtcp: this.senderReports.stats,
      jitter: this.jitter.toJSON(),
      depacketizer: this.depacketizer.toJSON(),
      width: this.config.width,
      height: this.config.height,
    };
  }

  /** Counters an operator watches (console, /metrics). */
  health(): TrackHealth {
    return trackHealth(this.gate, this.jitter, this.arrivalJitter);
  }

  /** How far the video's placement is from the audio-following target now (ms; corrected past ±MAX_SKEW_MS). */
  get avOffsetMs(): number | null {
    const lead = this.skew.max(this.opts.now());
    return lead === undefined ? null : Math.round(lead);
  }

  close(): void {
    this.closed = true;
    this.sockets.rtp.off('message', this.onRtp);
    this.sockets.rtcp.off('message', this.onRtcp);
  }
}
