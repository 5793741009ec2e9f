/**
 * The receive side of a call's video, in packet order:
 *   UDP socket → parseRtp → JitterBuffer → H264Depacketizer (access units, drop until IDR after loss)
 *   → AvcConfigTracker (sequence header, again when SPS/PPS change) → LiveStream (FLV video bodies).
 * H.264 passes through untouched: no decode, no encode.
 *
 * Timestamps: an access unit goes on the call's timeline where its audio would: arrival (of its first
 * access unit, then RTP-timestamp spacing) minus call start plus the playout delay, re-anchored when the
 * sender's clock wanders too far from arrival times.
 *
 * Keyframes: asked for (RTCP PLI toward Asterisk) at start, after loss, and when the last one is older
 * than maxKeyframeIntervalMs; rate-limited; requests that go unanswered are counted.
 */
import type { RemoteInfo } from 'node:dgram';
import type { RtpSocketPair } from '../calls/ports.js';
import { AvcConfigTracker, H264Depacketizer, toAvcc, type AccessUnit } from './h264/index.js';
import { JitterBuffer } from './jitter-buffer.js';
import type { LiveStream } from './live-stream.js';
import { buildPli } from './rtcp.js';
import { parseRtp } from './rtp.js';
import { tsDiff } from './seq.js';

export interface VideoIngestOptions {
  payloadType: number;
  expectedSource?: { address: string; port: number };
  jitterDepthMs: number;
  /** Call time zero, on the `now` clock. */
  startMs: number;
  now: () => number;
  maxKeyframeIntervalMs: number;
  /** Added to every video timestamp (ms): the audio path's fixed delay that video must match. */
  offsetMs?: number;
  /** Not more than one keyframe request per this many ms. */
  keyframeRequestGapMs?: number;
}

const RTP_CLOCK = 90_000;
/** Beyond this difference between RTP-timestamp time and arrival time, re-anchor (ms). */
const MAX_DRIFT_MS = 300;

export class VideoIngest {
  private readonly jitter: JitterBuffer;
  private readonly depacketizer = new H264Depacketizer();
  private readonly config = new AvcConfigTracker();
  private anchor: { rtp: number; ms: number } | undefined;
  private lastTs = -1;
  private lastKeyframeAt: number | undefined;
  private lastRequestAt = -Infinity;
  private pendingRequest = false;
  private mediaSsrc = 0;
  private readonly ourSsrc = (Math.random() * 2 ** 32) >>> 0;
  private closed = false;
  readonly counters = {
    packets: 0, rejected: 0, rejectedSource: 0, wrongPayloadType: 0, accessUnits: 0, keyframes: 0,
    skippedNoConfig: 0, reanchors: 0, keyframeRequests: 0, keyframeRequestsUnanswered: 0, maxKeyframeIntervalMs: 0,
  };

  constructor(private readonly sockets: RtpSocketPair, private readonly stream: LiveStream, private readonly opts: VideoIngestOptions) {
    this.jitter = new JitterBuffer({ depthMs: opts.jitterDepthMs });
  }

  start(): void {
    this.sockets.rtp.on('message', this.onRtp);
  }

  private readonly onRtp = (buf: Buffer, from: RemoteInfo): void => {
    if (this.closed) return;
    const now = this.opts.now();
    const src = this.opts.expectedSource;
    if (src && (from.address !== src.address || from.port !== src.port)) {
      this.counters.rejectedSource++;
      return;
    }
    const r = parseRtp(buf);
    if (!r.ok) {
      this.counters.rejected++;
      return;
    }
    if (r.packet.payloadType !== this.opts.payloadType) {
      this.counters.wrongPayloadType++;
      return;
    }
    this.counters.packets++;
    this.mediaSsrc = r.packet.ssrc;
    this.jitter.push(r.packet, now);
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
    if (cfg) {
      this.stream.setVideoFormat({
        avcConfig: cfg,
        ...(this.config.width ? { width: this.config.width } : {}),
        ...(this.config.height ? { height: this.config.height } : {}),
      });
    }
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
    this.stream.videoFrame(this.timestampOf(au.timestamp, now), toAvcc(au.nalus), au.keyframe);
  }

  /** Call-time ms of an access unit: RTP spacing from an arrival-based anchor; never going backwards. */
  private timestampOf(rtp: number, now: number): number {
    const byArrival = now - this.opts.startMs + this.opts.jitterDepthMs + (this.opts.offsetMs ?? 0);
    let ms = this.anchor ? this.anchor.ms + (tsDiff(rtp, this.anchor.rtp) * 1000) / RTP_CLOCK : byArrival;
    if (!this.anchor || Math.abs(ms - byArrival) > MAX_DRIFT_MS) {
      if (this.anchor) this.counters.reanchors++;
      this.anchor = { rtp, ms: byArrival };
      ms = byArrival;
    }
    const ts = Math.max(Math.round(ms), this.lastTs + 1);
    this.lastTs = ts;
    return ts;
  }

  /** Called by the call's clock: jitter timeouts, and keyframe requests when due. */
  tick(): void {
    if (this.closed) return;
    const now = this.opts.now();
    this.release(now);
    const stale = this.lastKeyframeAt === undefined || now - this.lastKeyframeAt > this.opts.maxKeyframeIntervalMs;
    if ((this.depacketizer.waitingForKeyframe || stale) && now - this.lastRequestAt >= (this.opts.keyframeRequestGapMs ?? 500)) {
      this.requestKeyframe(now);
    }
  }

  private requestKeyframe(now: number): void {
    const src = this.opts.expectedSource;
    if (!src || !this.mediaSsrc) return; // nothing received yet: nobody to ask
    if (this.pendingRequest) this.counters.keyframeRequestsUnanswered++;
    this.pendingRequest = true;
    this.lastRequestAt = now;
    this.counters.keyframeRequests++;
    // RTCP goes to the port above Asterisk's RTP port (no rtcp-mux on the leg).
    this.sockets.rtcp.send(buildPli(this.ourSsrc, this.mediaSsrc), src.port + 1, src.address);
  }

  toJSON(): Record<string, unknown> {
    return {
      rtp: this.counters,
      jitter: this.jitter.toJSON(),
      depacketizer: this.depacketizer.toJSON(),
      width: this.config.width,
      height: this.config.height,
    };
  }

  close(): void {
    this.closed = true;
    this.sockets.rtp.off('message', this.onRtp);
  }
}
