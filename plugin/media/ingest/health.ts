/**
 * What an operator watches of a call's media, typed, in one place: the console's per-call stats and the
 * Prometheus counters both read it (CallMedia.health()), never the free-form toJSON() debug view.
 */
import type { InterarrivalJitter } from './interarrival.js';
import type { JitterBuffer } from './jitter-buffer.js';
import type { RtpGate } from './rtp-gate.js';

export interface TrackHealth {
  /** Packets that passed the gate (right source, parseable, negotiated payload type). */
  received: number;
  /** Sequence numbers never received (counted by the jitter buffer when it gives up on them). */
  lost: number;
  /** Dropped at the gate: garbage, another source, an unnegotiated payload type. */
  rejected: number;
  /** RFC 3550 interarrival jitter (ms). */
  jitterMs: number;
  /** Packets the jitter buffer holds now. */
  buffered: number;
}

export interface MediaHealth {
  audio: TrackHealth;
  /** The caller's video, when it sends some. */
  video: TrackHealth | null;
  /** Codec payload bytes (raw AAC, AVCC access units) and frames produced, once for every output. */
  output: { audioBytes: number; videoBytes: number; keyframeIntervalMs: number | null };
  /** Video placement minus its audio-following target (ms); null without caller video. */
  avOffsetMs: number | null;
  /** Packet arrival → its first sample leaving in an FLV tag (ms), over the call so far. */
  latencyMs: { p50: number; p99: number } | null;
  /** The jitter buffer's playout delay (ms). */
  jitterDepthMs: number;
  /**
   * The caller's audio clock against ours (timeline/clock-rate.ts): its rate in ppm (null before an
   * estimate), how far the playout delay is off its target now (ms), and re-anchors (timestamp jumps).
   */
  clock: { senderPpm: number | null; delayErrorMs: number; reanchors: number };
}

export function trackHealth(gate: RtpGate, jitter: JitterBuffer, arrival: InterarrivalJitter): TrackHealth {
  const g = gate.counters;
  return {
    received: g.accepted,
    lost: jitter.stats.lost,
    rejected: g.rejected + g.rejectedSource + g.wrongPayloadType,
    jitterMs: arrival.ms,
    buffered: jitter.stats.depth,
  };
}
