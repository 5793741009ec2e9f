/**
 * Prometheus metrics (prom-client, on the app's own registry). Call-level numbers are read from the
 * calls at scrape time, so the media path pays nothing per packet. Counters must never go down, though
 * calls come and go: a call's (or a removed push's) final counts move into `retired` when it is released,
 * and from then on only that total carries them; live ones are summed fresh at each scrape.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Call } from '../calls/call.js';
import type { CallService } from '../calls/call-service.js';
import type { CallPush } from '../calls/pushes.js';
import type { CallRecord, ClusterRegistry, NodeInfo } from '../cluster/registry.js';
import { CALL_STATUSES, LIVE_PUSH_STATES, PUSH_STATES, type PushStatus } from '../calls/states.js';
import { cpuSeconds } from '../lib/proc.js';
import { nativeEncoderTime } from '../media/encode/aac/audio-encoder.js';
import type { MediaHealth } from '../media/ingest/health.js';
import { MsHistogram } from '../media/timeline/latency.js';

const P = 'sip_as_rtmp_';
const LIVE_PUSH: ReadonlySet<PushStatus> = new Set(LIVE_PUSH_STATES);
const MEDIA = ['audio', 'video'] as const;
type Media = (typeof MEDIA)[number];
type RtpTotals = Record<Media, { received: number; lost: number; rejected: number }>;

const zeroRtp = (): RtpTotals => ({ audio: { received: 0, lost: 0, rejected: 0 }, video: { received: 0, lost: 0, rejected: 0 } });

export class AppMetrics {
  readonly registry = new Registry();
  private readonly retiredCalls = new WeakSet<Call>();
  private readonly retired = { rtp: zeroRtp(), reconnects: 0, latency: new MsHistogram() };
  private readonly encoderCpu = new ChildCpu();
  private readonly transcoderCpu = new ChildCpu();
  private readonly restLatency: Histogram<'method' | 'route' | 'code'>;
  private readonly authFailures: Counter;
  /** The live calls and their health, read once at the start of a scrape. */
  private scraping: { calls: Call[]; health: Map<Call, MediaHealth | undefined> } | undefined;
  private cluster: { registry: ClusterRegistry; view?: { nodes: NodeInfo[]; calls: CallRecord[] } } | undefined;

  constructor(private readonly calls: CallService, opts: { jitterDepthMs: number }) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: P });
    const started = new Counter({ name: `${P}calls_started_total`, help: 'Calls accepted, by direction', labelNames: ['direction'], registers: [r] });
    const ended = new Counter({ name: `${P}calls_ended_total`, help: 'Calls ended, by final status and reason', labelNames: ['status', 'reason'], registers: [r] });
    const seen = new WeakSet<Call>();
    calls.changes.on('changed', (call) => {
      if (seen.has(call)) return;
      seen.add(call);
      started.inc({ direction: call.incoming ? 'inbound' : 'outbound' });
    });
    calls.changes.on('released', (call) => {
      ended.inc({ status: call.status, reason: call.reason ?? 'NONE' });
      this.retire(call);
    });
    calls.changes.on('pushClosed', (cp) => (this.retired.reconnects += reconnects(cp)));

    const live = () => this.scraping?.calls ?? this.liveCalls();
    const track = (c: Call, m: Media) => this.healthOf(c)?.[m] ?? null;
    gauge(r, 'calls', 'Calls in the list by status (ended ones stay ENDED_TTL_SEC)', ['status'], (g) => {
      for (const s of CALL_STATUSES) g.set({ status: s }, 0);
      for (const c of this.calls.list()) g.inc({ status: c.status });
    });
    gauge(r, 'pushes', 'RTMP outputs of live calls, by state', ['state'], (g) => {
      for (const s of PUSH_STATES) g.set({ state: s }, 0);
      for (const c of live()) for (const p of c.pushes) g.inc({ state: p.view().status });
    });
    gauge(r, 'pushes_active', 'RTMP outputs connecting, publishing or reconnecting', [], (g) => {
      g.set(live().reduce((n, c) => n + c.pushes.filter((p) => LIVE_PUSH.has(p.view().status)).length, 0));
    });
    gauge(r, 'outputs_active', 'Outputs connecting, publishing or reconnecting, by kind (rtmp: RTMP and RTMPS; srt)', ['kind'], (g) => {
      for (const k of ['rtmp', 'srt']) g.set({ kind: k }, 0);
      for (const c of live()) for (const p of c.pushes) if (LIVE_PUSH.has(p.view().status)) g.inc({ kind: p.target.kind });
    });
    gauge(r, 'recordings', 'Recordings by state (finished ones stay listed in /recorder/find_all)', ['state'], (g) => {
      for (const [state, n] of Object.entries(calls.recordingStats().byState)) g.set({ state }, n);
    });
    counter(r, 'recordings_total', 'Recordings started', [], (set) => set({}, calls.recordingStats().started));
    counter(r, 'recordings_failed_total', 'Recordings that failed (disk full, unwritable, the MP4 not made)', [], (set) => set({}, calls.recordingStats().failed));
    counter(r, 'recording_bytes_total', 'Bytes written to recordings (FLV, as recorded)', [], (set) => set({}, calls.recordingStats().writtenBytes));
    counter(r, 'recording_seconds_total', 'Seconds of media recorded', [], (set) => set({}, calls.recordingStats().seconds));
    counter(r, 'rtmp_reconnects_total', 'RTMP reconnections, all outputs', [], (set) => {
      set({}, this.retired.reconnects + live().reduce((n, c) => n + c.pushes.reduce((m, p) => m + reconnects(p), 0), 0));
    });
    for (const [key, help] of [['received', 'RTP packets accepted'], ['lost', 'RTP packets never received (sequence gaps)'], ['rejected', 'RTP packets dropped: garbage, wrong source or payload type']] as const) {
      counter(r, `rtp_packets_${key}_total`, help, ['media'], (set) => {
        const t = this.liveRtp(live());
        for (const m of MEDIA) set({ media: m }, this.retired.rtp[m][key] + t[m][key]);
      });
    }
    gauge(r, 'jitter_buffer_packets', 'Packets held in jitter buffers now, all calls', ['media'], (g) => {
      for (const m of MEDIA) g.set({ media: m }, live().reduce((n, c) => n + (track(c, m)?.buffered ?? 0), 0));
    });
    gauge(r, 'jitter_buffer_delay_seconds', 'Jitter buffer playout delay (JITTER_DEPTH_MS)', [], (g) => g.set(opts.jitterDepthMs / 1000));
    gauge(r, 'rtp_jitter_max_seconds', 'Largest RFC 3550 interarrival jitter among live calls', ['media'], (g) => {
      for (const m of MEDIA) g.set({ media: m }, live().reduce((x, c) => Math.max(x, track(c, m)?.jitterMs ?? 0), 0) / 1000);
    });
    gauge(r, 'encoder_processes', 'Encoder child processes (AAC_ENCODER=ffmpeg: one per call; 0 with the native encoder)', [], (g) => {
      g.set(live().filter((c) => c.media?.encoderPid !== undefined).length);
    });
    counter(r, 'encoder_cpu_seconds_total', 'CPU time spent encoding audio: in-process (native) or in encoder children (ffmpeg, sampled at scrape)', ['encoder'], (set) => {
      set({ encoder: 'native' }, nativeEncoderTime.seconds);
      set({ encoder: 'ffmpeg' }, this.encoderCpu.total(live().map((c) => c.media?.encoderPid)));
    });
    gauge(r, 'video_calls', 'Live calls with a video track, by how the caller\'s video goes out: passthrough (as sent) or transcode (re-encoded: fixed GOP, one size)', ['mode'], (g) => {
      g.set({ mode: 'passthrough' }, 0);
      g.set({ mode: 'transcode' }, 0);
      for (const c of live()) {
        const v = c.media?.videoState;
        if (v) g.inc({ mode: v.mode });
      }
    });
    counter(r, 'video_transcoder_cpu_seconds_total', 'CPU time of the video transcoder children (sampled at scrape)', [], (set) => {
      set({}, this.transcoderCpu.total(live().map((c) => c.media?.transcoderPid)));
    });
    // Each output against the platforms' rules (media/output/health.ts): what a platform would refuse.
    gauge(r, 'output_keyframe_interval_max_seconds', 'Largest keyframe interval any live output has sent (platforms want 2 s, never over 4)', [], (g) => {
      g.set(live().reduce((x, c) => Math.max(x, ...c.pushes.map((p) => p.push?.health.view().maxKeyframeIntervalMs ?? 0)), 0) / 1000);
    });
    gauge(r, 'outputs_breaking_rules', 'Live outputs that broke a platform rule: a size change, or publishing without one of the tracks', ['rule'], (g) => {
      let size = 0;
      let tracks = 0;
      for (const c of live()) {
        for (const p of c.pushes) {
          if (!p.push) continue;
          const h = p.push.health.view();
          if (h.sizeChanges > 0) size++;
          // A call's first second may carry one track only (the fill's first frame is on its way).
          if (!h.bothTracks && h.audioFrames + h.videoFrames > 100) tracks++;
        }
      }
      g.set({ rule: 'one-size' }, size);
      g.set({ rule: 'both-tracks' }, tracks);
    });
    // Callers' clocks (media/timeline/clock-rate.ts): absorbed by resampling, shown so a bad phone stands out.
    gauge(r, 'audio_sender_clock_ppm_max_abs', 'Largest |clock error| of a live caller against ours, ppm (absorbed by resampling up to 20 000)', [], (g) => {
      g.set(live().reduce((x, c) => Math.max(x, Math.abs(this.healthOf(c)?.clock.senderPpm ?? 0)), 0));
    });
    gauge(r, 'audio_delay_error_max_abs_seconds', 'Largest |playout delay - its target| over live calls (held within a few ms)', [], (g) => {
      g.set(live().reduce((x, c) => Math.max(x, Math.abs(this.healthOf(c)?.clock.delayErrorMs ?? 0)), 0) / 1000);
    });
    registerMsHistogram(r, `${P}audio_latency_seconds`, 'Added audio latency: RTP arrival to the FLV tag carrying its first sample, all calls since start', LATENCY_BUCKETS_MS, () => {
      const h = new MsHistogram();
      const add = (x: MsHistogram | undefined) => x && h.merge(x.sparse(), x.max);
      add(this.retired.latency);
      for (const c of live()) add(c.media?.latencyHistogram);
      return h;
    });
    // The one output clock every call's audio leaves on (media/timeline/ticker.ts): late ticks are late media.
    registerMsHistogram(r, `${P}media_tick_late_seconds`, 'How late each output clock tick ran after its grid point (a loaded event loop shows here first)', TICK_BUCKETS_MS, () => calls.ticker.late);
    registerMsHistogram(r, `${P}media_tick_work_seconds`, 'How long each output clock tick took: every live call\'s audio and video for one AAC frame', TICK_BUCKETS_MS, () => calls.ticker.work);
    this.restLatency = new Histogram({
      name: `${P}rest_request_duration_seconds`,
      help: 'REST requests, from arrival to the answer sent',
      labelNames: ['method', 'route', 'code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    this.authFailures = new Counter({ name: `${P}rest_auth_failures_total`, help: 'Requests refused for a missing or wrong API token (401; API, live feed, preview and /metrics)', registers: [r] });
  }

  /**
   * The exposition text. Each call's health is read once per scrape here: the collectors (a dozen of
   * them, run one after another by the registry) all read this snapshot instead of asking every call again.
   */
  async scrape(): Promise<string> {
    if (this.cluster) {
      // The cluster's view, read once per scrape (two Redis round trips); unreachable: no cluster gauges.
      const { registry } = this.cluster;
      this.cluster.view = await Promise.all([registry.nodes(), registry.calls()])
        .then(([nodes, calls]) => ({ nodes, calls }), () => undefined);
    }
    const calls = this.liveCalls();
    this.scraping = { calls, health: new Map(calls.map((c) => [c, c.media?.health()])) };
    try {
      return await this.registry.metrics();
    } finally {
      this.scraping = undefined;
    }
  }

  private liveCalls(): Call[] {
    return this.calls.list().filter((c) => !this.retiredCalls.has(c));
  }

  private healthOf(c: Call): MediaHealth | undefined {
    return this.scraping?.health.get(c) ?? c.media?.health();
  }

  /**
   * This node's CPU headroom (what placement compares), and in a cluster the fleet as the registry sees
   * it: live nodes, each one's calls and headroom, the calls by status, and how often nodes were lost or
   * this one fenced itself.
   */
  watchCluster(registry: ClusterRegistry, headroom: () => number): void {
    const r = this.registry;
    gauge(r, 'node_cpu_headroom_cores', 'Spare CPU of this node in cores (its cgroup quota less its use, else the machine\'s idle cores), as placement compares nodes', [], (g) => g.set(headroom()));
    if (!registry.shared) return;
    this.cluster = { registry };
    const view = () => this.cluster?.view;
    gauge(r, 'cluster_nodes', 'Nodes with a live lease in the cluster', [], (g) => {
      const v = view();
      if (v) g.set(v.nodes.length);
      else g.reset();
    });
    // Reset first: the labels of a node that left go with it.
    gauge(r, 'cluster_node_calls', 'Live calls of each node, as it last reported them', ['node'], (g) => {
      g.reset();
      for (const n of view()?.nodes ?? []) g.set({ node: n.name }, n.calls);
    });
    gauge(r, 'cluster_node_headroom_cores', 'Spare CPU of each node in cores, as it last reported it', ['node'], (g) => {
      g.reset();
      for (const n of view()?.nodes ?? []) g.set({ node: n.name }, n.headroom);
    });
    gauge(r, 'cluster_calls', 'Calls recorded in the cluster (every node\'s), by status', ['status'], (g) => {
      const v = view();
      if (!v) return g.reset();
      for (const st of CALL_STATUSES) g.set({ status: st }, 0);
      for (const c of v.calls) g.inc({ status: c.status });
    });
    const lost = new Counter({ name: `${P}cluster_nodes_lost_total`, help: 'Nodes whose lease ran out, reaped by this node (their live calls reported FAILED)', registers: [r] });
    const lostCalls = new Counter({ name: `${P}cluster_lost_calls_total`, help: 'Calls of lost nodes that this node reported FAILED', registers: [r] });
    const fenced = new Counter({ name: `${P}cluster_fenced_total`, help: 'Times this node lost its lease (cut off from Redis), ended its calls and joined again', registers: [r] });
    registry.on('lost', (l) => {
      lost.inc();
      lostCalls.inc(l.calls.length);
    });
    registry.on('fenced', () => fenced.inc());
  }

  observeRest(method: string, route: string, code: number, seconds: number): void {
    this.restLatency.observe({ method, route, code: String(code) }, seconds);
  }

  /** A 401: a missing or wrong API token (rest/access.ts). */
  countAuthFailure(): void {
    this.authFailures.inc();
  }

  private retire(call: Call): void {
    if (this.retiredCalls.has(call)) return;
    this.retiredCalls.add(call);
    const t = this.liveRtp([call]);
    for (const m of MEDIA) for (const k of ['received', 'lost', 'rejected'] as const) this.retired.rtp[m][k] += t[m][k];
    this.retired.reconnects += call.pushes.reduce((n, p) => n + reconnects(p), 0);
    const l = call.media?.latencyHistogram;
    if (l) this.retired.latency.merge(l.sparse(), l.max);
  }

  private liveRtp(calls: Call[]): RtpTotals {
    const t = zeroRtp();
    for (const c of calls) {
      const health = this.healthOf(c);
      for (const m of MEDIA) {
        const h = health?.[m];
        if (!h) continue;
        t[m].received += h.received;
        t[m].lost += h.lost;
        t[m].rejected += h.rejected;
      }
    }
    return t;
  }
}

function reconnects(p: CallPush): number {
  return p.push?.stats.reconnects ?? 0;
}

function gauge<L extends string>(r: Registry, name: string, help: string, labelNames: L[], collect: (g: Gauge<L>) => void): void {
  new Gauge<L>({ name: `${P}${name}`, help, labelNames, registers: [r], collect() { collect(this); } });
}

/** A counter whose value is computed at scrape: reset, then set to the (monotonic) total. */
function counter<L extends string>(r: Registry, name: string, help: string, labelNames: L[], collect: (set: (labels: Partial<Record<L, string>>, v: number) => void) => void): void {
  new Counter<L>({
    name: `${P}${name}`, help, labelNames, registers: [r],
    collect() {
      this.reset();
      collect((labels, v) => this.inc(labels as never, v));
    },
  });
}

/** Bucket bounds (s) for the audio latency: around the jitter depth + one AAC frame, where it lives. */
const LATENCY_BUCKETS_MS = [20, 40, 60, 70, 80, 90, 100, 120, 150, 200, 300, 500, 1000];
/** Bucket bounds for the output clock's ticks: on time is a few ms, a stall is a hundred. */
const TICK_BUCKETS_MS = [1, 2, 3, 5, 10, 15, 20, 30, 50, 100, 200, 500, 1000];

/**
 * A Prometheus histogram (seconds) built at scrape from a 1 ms MsHistogram that the media path keeps anyway
 * (the calls' latency, the ticker's): no observe() per frame. prom-client's Histogram can only be fed
 * observations, so this registers a collector of its own shape.
 */
function registerMsHistogram(r: Registry, name: string, help: string, bucketsMs: readonly number[], read: () => MsHistogram): void {
  const metric = {
    name, help, type: 'histogram', aggregator: 'sum',
    reset() {},
    async get() {
      const h = read();
      const bins = h.sparse();
      const values = bucketsMs.map((le) => ({
        metricName: `${name}_bucket`,
        labels: { le: le / 1000 },
        value: bins.reduce((n, [ms, c]) => (ms <= le ? n + c : n), 0),
      }));
      values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' as unknown as number }, value: h.count });
      const sum = bins.reduce((s, [ms, c]) => s + ms * c, 0) / 1000;
      return {
        name, help, type: 'histogram', aggregator: 'sum',
        values: [...values, { metricName: `${name}_sum`, labels: {}, value: sum }, { metricName: `${name}_count`, labels: {}, value: h.count }],
      };
    },
  };
  r.registerMetric(metric as never);
}

/**
 * CPU seconds of child processes (encoders, transcoders) that come and go: each one's last reading while
 * alive, and the sum of those gone, so the total never goes down.
 */
class ChildCpu {
  private readonly last = new Map<number, number>();
  private gone = 0;

  total(pids: (number | undefined)[]): number {
    const alive = new Set<number>();
    for (const pid of pids) {
      if (pid === undefined) continue;
      const s = cpuSeconds(pid);
      if (s > 0) this.last.set(pid, s);
      alive.add(pid);
    }
    let sum = this.gone;
    for (const [pid, s] of this.last) {
      if (alive.has(pid)) sum += s;
      else {
        this.gone += s;
        sum += s;
        this.last.delete(pid);
      }
    }
    return sum;
  }
}
