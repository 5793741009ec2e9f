/**
 * The per-call numbers the console shows once a second, from a call's MediaHealth and its pushes.
 * Bitrates need two samples, so the sampler keeps each call's previous byte counts (forget() drops them).
 */
import type { MediaHealth, TrackHealth } from '../media/ingest/health.js';
import type { Call } from '../calls/call.js';
import type { PushView } from '../calls/pushes.js';

export interface TrackStats {
  received: number;
  lost: number;
  /** lost / (received + lost), in %. */
  lossPct: number;
  rejected: number;
  jitterMs: number;
}

export interface CallStats {
  /** What the call publishes (FLV payload, once for all outputs), over the last interval. */
  bitrateKbps: number;
  audioKbps: number;
  videoKbps: number;
  audio: TrackStats | null;
  video: TrackStats | null;
  /** The jitter buffer's playout delay. */
  jitterBufferMs: number;
  avOffsetMs: number | null;
  keyframeIntervalMs: number | null;
  /** The stream's video: passthrough or transcode, what it shows (caller, generated fill), its size. */
  videoOut: { mode: string; source: string; size: string | null } | null;
  latencyMs: { p50: number; p99: number } | null;
  pushes: { mediaSessionId: string; status: string; reconnects: number }[];
}

const round1 = (x: number) => Math.round(x * 10) / 10;

function track(t: TrackHealth | null): TrackStats | null {
  if (!t) return null;
  const total = t.received + t.lost;
  return { received: t.received, lost: t.lost, lossPct: total ? round1((100 * t.lost) / total) : 0, rejected: t.rejected, jitterMs: round1(t.jitterMs) };
}

export class CallStatsSampler {
  private readonly prev = new Map<string, { atMs: number; audioBytes: number; videoBytes: number }>();

  sample(key: string, health: MediaHealth | undefined, pushes: PushView[], nowMs: number, videoOut: CallStats['videoOut'] = null): CallStats {
    const out = health?.output ?? { audioBytes: 0, videoBytes: 0, keyframeIntervalMs: null };
    const p = this.prev.get(key);
    this.prev.set(key, { atMs: nowMs, audioBytes: out.audioBytes, videoBytes: out.videoBytes });
    const secs = p ? (nowMs - p.atMs) / 1000 : 0;
    const kbps = (bytes: number) => (secs > 0 ? round1((bytes * 8) / 1000 / secs) : 0);
    const audioKbps = kbps(out.audioBytes - (p?.audioBytes ?? 0));
    const videoKbps = kbps(out.videoBytes - (p?.videoBytes ?? 0));
    return {
      bitrateKbps: round1(audioKbps + videoKbps),
      audioKbps,
      videoKbps,
      audio: track(health?.audio ?? null),
      video: track(health?.video ?? null),
      jitterBufferMs: health?.jitterDepthMs ?? 0,
      avOffsetMs: health?.avOffsetMs ?? null,
      keyframeIntervalMs: out.keyframeIntervalMs === null ? null : Math.round(out.keyframeIntervalMs),
      videoOut,
      latencyMs: health?.latencyMs ?? null,
      pushes: pushes.map((v) => ({ mediaSessionId: v.mediaSessionId, status: v.status, reconnects: v.stats?.reconnects ?? 0 })),
    };
  }

  /** A live call's stats now (the console feed and the demo view). */
  sampleCall(call: Call, nowMs: number): CallStats {
    return this.sample(call.key, call.media?.health(), call.pushes.map((p) => p.view()), nowMs, call.media?.videoState ?? null);
  }

  forget(key: string): void {
    this.prev.delete(key);
  }
}
