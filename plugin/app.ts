/**
 * The composition root: builds every adapter from the config and wires them to the core.
 * `createApp(config)` → start() / stop(); main.ts and the tests both use it.
 */
import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { AmiClient } from '../adapters/ami/client.js';
import { AriClient } from '../adapters/ari/client.js';
import type { AriEventSocket } from '../adapters/ari/events.js';
import { AacEncoderPool } from '../adapters/encoder-threads/aac-pool.js';
import { AsteriskPbx, DEFAULT_ENDPOINTS } from '../adapters/asterisk/pbx.js';
import { FfmpegAacEncoder } from '../adapters/ffmpeg/aac-encoder.js';
import { encodeAacClip } from '../adapters/ffmpeg/aac-clip.js';
import { ffmpegFillVideo } from '../adapters/ffmpeg/fill-video.js';
import { ffmpegVideoTranscoder } from '../adapters/ffmpeg/video-transcoder.js';
import { streamInjector } from '../adapters/ffmpeg/stream-injector.js';
import { decodePcm } from '../adapters/ffmpeg/pcm-decode.js';
import { NativeAacEncoder } from './media/encode/aac/audio-encoder.js';
import { SoundLibrary } from './media/sounds.js';
import { RestHooks } from '../adapters/hooks/rest-hooks.js';
import { NoHooks, type Hooks } from './hooks/hooks.js';
import { FillLibrary } from './media/timeline/fill-library.js';
import { RtpPortPool } from '../adapters/rtp/port-pool.js';
import { DnsResolver } from '../adapters/net/resolve.js';
import { OutboundTargets } from './calls/targets.js';
import { isLocalName, isLoopback } from './lib/forbidden-address.js';
import { LoopbackSipUas } from '../adapters/sip/uas.js';
import { CallService, type CallServiceDeps } from './calls/call-service.js';
import { parseSize, type Config } from './config.js';
import { createLogger, type Logger } from './lib/log.js';
import { descendants, procStat } from './lib/proc.js';
import type { Held } from './lib/shutdown.js';
import { buildRestServer, nodeHttpOptions } from './rest/server.js';
import { HttpsListener } from '../adapters/net/https-listener.js';
import { registerOperations } from './rest/operations.js';
import { registerConsole } from './console/routes.js';
import type { LiveFeed } from './console/live-feed.js';
import { AppMetrics } from './metrics/metrics.js';
import { RtmpPublisher } from '../adapters/rtmp/publisher.js';
import { RtmpSink } from '../adapters/rtmp/rtmp-sink.js';
import { SrtSink } from '../adapters/srt/srt-sink.js';
import { FileRecordingStore } from '../adapters/recording/store.js';
import { RoutedHooks } from './hooks/routed.js';
import { HttpApproval } from '../adapters/hooks/approval.js';
import { RedisRegistry } from '../adapters/redis/redis-registry.js';
import { HttpForwarder } from '../adapters/cluster/http-forwarder.js';
import { InMemoryRegistry, type ClusterRegistry } from './cluster/registry.js';
import { ClusterMember } from './cluster/member.js';
import { ClusterFront } from './cluster/front.js';
import { CpuHeadroom } from './cluster/headroom.js';

export interface App extends Pick<WebFront, 'rest' | 'feed' | 'restUrl' | 'httpsUrl'> {
  config: Config;
  /** This node's view of the cluster (an in-memory one when it is alone). */
  registry: ClusterRegistry;
  hooks: Hooks;
  log: Logger;
  calls: CallService;
  uas: LoopbackSipUas;
  ports: RtpPortPool;
  events: AriEventSocket;
  metrics: AppMetrics;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** What is not released yet, by kind: for the shutdown report (plugin/lib/shutdown.ts). */
  held(): Held;
}

export function createApp(
  config: Config,
  opts: { log?: Logger; mediaRelay?: CallServiceDeps['mediaRelay']; streamTimeOriginMs?: number } = {},
): App {
  const log = opts.log ?? createLogger({ level: config.logLevel });
  const ari = new AriClient({ ...config.ari });
  const events = ari.eventSocket();
  const ami = config.ami.url
    ? new AmiClient({ host: new URL(config.ami.url).hostname, port: Number(new URL(config.ami.url).port), user: config.ami.user, password: config.ami.password })
    : undefined;
  const pbx = new AsteriskPbx(ari, events, log.child({ component: 'pbx' }), { ...DEFAULT_ENDPOINTS, nativeBridge: config.ari.bridge === 'native' }, ami);
  const uas = new LoopbackSipUas({ host: config.sipUas.host, port: config.sipUas.port });
  const ports = new RtpPortPool({ host: config.sipUas.host, portMin: config.rtp.portMin, portMax: config.rtp.portMax });
  const ca = config.rtmp.tlsCaFile ? readFileSync(config.rtmp.tlsCaFile) : undefined;
  const fills = new FillLibrary({
    encode: ffmpegFillVideo(),
    kind: config.media.videoFill,
    fps: config.media.fillFps,
    gopSeconds: config.media.maxKeyframeIntervalMs / 1000,
    ...(config.media.slateImage ? { image: config.media.slateImage } : {}),
    onError: (err, spec) => log.error({ err: err.message, kind: spec.kind, size: `${spec.width}x${spec.height}` }, 'cannot make the fill video (a slate falls back to black)'),
  });
  // Where the server may be sent (calls/targets.ts): checked when asked, and again at each connect.
  const targets = new OutboundTargets({ config, resolver: new DnsResolver(), pbx, ownPort: (port) => isOwnPort(port) });
  const isOwnPort = (port: number): boolean => {
    if (port >= config.rtp.portMin && port <= config.rtp.portMax) return true;
    // The web front's listeners (HTTP and HTTPS) as bound: a port 0 setting is known only then.
    const listening = [web.restUrl, web.httpsUrl].filter(Boolean).map((u) => Number(new URL(u).port));
    const ports = [...listening, config.rest.port, config.rest.httpsPort, uas.port].filter((p): p is number => typeof p === 'number' && p > 0);
    // The PBX's control ports, when the PBX runs here.
    const ari = new URL(config.ari.url);
    if (isLoopback(ari.hostname.replace(/^\[(.*)\]$/, '$1')) || isLocalName(ari.hostname)) ports.push(Number(ari.port || (ari.protocol === 'https:' ? 443 : 80)));
    if (ami) ports.push(Number(new URL(config.ami.url).port));
    return ports.includes(port);
  };
  const sounds = new SoundLibrary({ dir: config.media.soundsDir, encodeClip: encodeAacClip, decodePcm });
  // One sender per backend app URL (WCS: the call's appKey picks the app); HOOK_URL for the other appKeys.
  const checkHookUrl = (url: string) => targets.checkUrlNow('HOOK_URL', url);
  const hooksTo = (url: string) => new RestHooks({ url, timeoutMs: config.hooks.timeoutMs, queueMax: config.hooks.queueMax, log: log.child({ component: 'hooks' }), checkTarget: checkHookUrl });
  const defaultHooks: Hooks = config.hooks.url ? hooksTo(config.hooks.url) : NoHooks;
  const hooks: Hooks = config.hooks.apps.size > 0
    ? new RoutedHooks(new Map([...config.hooks.apps].map(([key, url]) => [key, hooksTo(url)])), defaultHooks)
    : defaultHooks;
  const recordings = new FileRecordingStore({ dir: resolvePath(config.recordings.dir) });
  // The cluster (CLUSTER_REDIS_URL), or this node alone. What it tells the others about itself:
  const headroom = new CpuHeadroom();
  const self = () => ({
    url: config.cluster.nodeUrl || web.restUrl, headroom: headroom.sample(calls.activeCount), max: config.cluster.nodeMaxCalls,
    calls: calls.activeCount, covered: headroom.coveredCalls(),
  });
  const registry: ClusterRegistry = config.cluster.redisUrl
    ? new RedisRegistry({
      url: config.cluster.redisUrl, cluster: config.cluster.name, name: config.hooks.nodeId, self, leaseMs: config.cluster.leaseMs,
      maxCalls: config.calls.maxCalls, startupRatePerSec: config.calls.startupRatePerSec, log: log.child({ component: 'cluster' }),
    })
    : new InMemoryRegistry(config.hooks.nodeId, { maxCalls: config.calls.maxCalls, self: () => ({ name: config.hooks.nodeId, ...self() }) });
  let recoverTimer: NodeJS.Timeout | undefined;
  const outputAddress = (host: string, port: number) => targets.connectAddress('rtmpUrl', host, port);
  // AAC_ENCODER_THREADS ≥ 1: our encoder in worker threads, off the event loop that times the media.
  const encoderPool = config.media.aacEncoder === 'native' && config.media.aacEncoderThreads > 0 ? new AacEncoderPool(config.media.aacEncoderThreads) : undefined;
  const calls = new CallService({
    config,
    sounds,
    hooks,
    log: log.child({ component: 'calls' }),
    pbx,
    uas,
    ports,
    encoderFactory: config.media.aacEncoder === 'ffmpeg' ? (o) => new FfmpegAacEncoder(o) : encoderPool?.factory ?? ((o) => new NativeAacEncoder(o)),
    fills,
    transcoder: ffmpegVideoTranscoder,
    injector: streamInjector(),
    ...(opts.mediaRelay ? { mediaRelay: opts.mediaRelay } : {}),
    ...(opts.streamTimeOriginMs ? { streamTimeOriginMs: opts.streamTimeOriginMs } : {}),
    targets,
    recordings,
    registry,
    // One connection to an output's target: RTMP(S) in-process, SRT through an ffmpeg child.
    openOutput: (target) => target.kind === 'srt'
      ? new SrtSink({ target: target.srt, connectAddress: outputAddress })
      : new RtmpSink(new RtmpPublisher({
        target: target.rtmp,
        connectAddress: outputAddress,
        tls: { rejectUnauthorized: !config.rtmp.tlsInsecure, ...(ca ? { ca } : {}) },
      })),
  });
  // A call counts as held from its start until its release steps have all run.
  const released = new WeakSet<object>();
  calls.changes.on('released', (call) => released.add(call));
  const metrics = new AppMetrics(calls, { jitterDepthMs: config.media.jitterDepthMs });
  metrics.watchCluster(registry, () => headroom.sample(calls.activeCount));
  const approval = config.hooks.approve
    ? new HttpApproval({ appUrl: (key) => config.hooks.apps.get(key) ?? (config.hooks.url || undefined), timeoutMs: config.hooks.timeoutMs, nodeId: config.hooks.nodeId, checkTarget: checkHookUrl })
    : undefined;
  const forwarder = registry.shared ? new HttpForwarder({ timeoutMs: 10_000, tls: { rejectUnauthorized: !config.rtmp.tlsInsecure } }) : undefined;
  const member = registry.shared ? new ClusterMember({ registry, calls, hooks, log: log.child({ component: 'cluster' }), endedTtlSec: config.calls.endedTtlSec }) : undefined;
  const cluster = forwarder ? new ClusterFront({ registry, forwarder, calls, log: log.child({ component: 'cluster' }) }) : undefined;
  const web = createWebFront(config, { log, calls, metrics, ...(approval ? { approval } : {}), ...(cluster ? { cluster } : {}) });
  const { rest, feed } = web;

  events.on('close', ({ code, retryInMs }) => log.warn({ code, retryInMs }, 'ARI event socket closed'));
  events.on('open', ({ reconnect }) => log.info({ reconnect }, 'ARI event socket open'));
  uas.on('protocolError', ({ reason }) => log.warn({ reason }, 'media-leg SIP protocol error'));

  const app: App = {
    config, log, calls, uas, ports, rest, events, hooks, metrics, feed, registry,
    restUrl: '',
    httpsUrl: '',
    async start() {
      await uas.listen();
      // The default picture, ready before the first call can come: every call's video starts with it at
      // once, and its own slate (made per name, while it rings) takes over at a GOP start.
      const { width, height } = parseSize(config.media.generatedVideoSize);
      await fills.get(width, height);
      await events.connect();
      // What a killed earlier run left in Asterisk goes before any call of ours can start (REST listens below).
      await calls.leftoversReleased;
      if (ami) {
        ami.on('close', ({ retryInMs }) => log.warn({ retryInMs }, 'AMI connection lost'));
        // AMI only serves registrations: without it, everything else still works.
        await ami.start().catch((err: Error) => log.warn({ err: err.message }, 'AMI unavailable: sipRegisterRequired calls will fail'));
      }
      // Recordings a killed run left as FLV become MP4s, in the background (they play as they are meanwhile).
      // A few seconds after the start, only files idle for 2 s: one being written (by another app on a shared
      // directory) changes every few ms.
      recoverTimer = setTimeout(() => {
        void recordings.recover(2000).then((done) => {
          for (const r of done) {
            if (r.mp4) log.info({ flv: r.flv, mp4: r.mp4 }, 'recording left by an earlier run made an MP4');
            else log.warn({ flv: r.flv, err: r.error }, 'recording left by an earlier run could not be made an MP4 (the FLV is kept)');
          }
        });
      }, 3000).unref();
      await web.listen();
      app.restUrl = web.restUrl;
      app.httpsUrl = web.httpsUrl;
      // Joined once the API listens: the others forward to it from then on.
      await registry.start();
      member?.start();
      log.info({ rest: app.restUrl, https: app.httpsUrl || undefined, sipUas: uas.uriFor('media') }, 'sip-as-rtmp started');
    },
    async stop() {
      clearTimeout(recoverTimer);
      await calls.close();
      await encoderPool?.close();
      member?.stop();
      await registry.stop();
      await web.close();
      await forwarder?.close();
      await hooks.close();
      events.close();
      ami?.close();
      await uas.close();
      await ari.close();
    },
    held() {
      return {
        calls: calls.list().filter((c) => !released.has(c)).length,
        ...ari.ledger.counts(),
        children: liveChildren(),
      };
    },
  };
  return app;
}

/** Child processes (ffmpeg encoders, SRT sinks...) still running; exited ones awaiting their reaping don't count. */
function liveChildren(): number {
  try {
    return descendants(process.pid).filter((pid) => { const st = procStat(pid); return st !== undefined && st.state !== 'Z'; }).length;
  } catch {
    return 0; // no /proc (not Linux)
  }
}

/** The HTTP side: the REST API, console, docs, live feed, preview and /metrics, on HTTP and/or HTTPS. */
export interface WebFront {
  rest: FastifyInstance;
  feed: LiveFeed;
  /** The REST base URL once listening, e.g. http://127.0.0.1:8081/rest-api (the HTTPS one when REST_PORT=off). */
  restUrl: string;
  /** The HTTPS base URL once listening (HTTPS_PORT), e.g. https://127.0.0.1:8444/rest-api; '' without it. */
  httpsUrl: string;
  listen(): Promise<void>;
  close(): Promise<void>;
}

/** Built apart from the calls' adapters so the hostile-client tests run the very same server. */
export function createWebFront(config: Config, d: { log: Logger; calls: CallService; metrics: AppMetrics; approval?: HttpApproval; cluster?: ClusterFront }): WebFront {
  const { log, calls, metrics } = d;
  const onAuthFailure = () => metrics.countAuthFailure();
  const rest = buildRestServer({
    prefix: config.rest.prefix, streamPrefix: config.calls.streamPrefix, log, calls, corsOrigins: config.rest.corsOrigins, apiToken: config.rest.apiToken,
    hostnames: [config.rest.host, ...config.rest.hostnames], limits: config.http, onAuthFailure,
    onAnswered: (m, route, code, s) => metrics.observeRest(m, route, code, s),
    ...(d.approval ? { approval: d.approval } : {}),
    ...(d.cluster ? { cluster: d.cluster } : {}),
  });
  // HTTPS_PORT: the same app over TLS; the listener hands its requests to the app's server.
  const https = config.rest.httpsPort !== null
    ? new HttpsListener({
      host: config.rest.host, port: config.rest.httpsPort, certFile: config.rest.tlsCertFile, keyFile: config.rest.tlsKeyFile,
      serverOptions: nodeHttpOptions(config.http), maxConnections: config.http.maxConnections, app: rest.server,
    })
    : undefined;
  const feed = registerConsole(rest, { prefix: config.rest.prefix, calls, log: log.child({ component: 'console' }), tokenRequired: config.rest.apiToken !== '', streamPrefix: config.calls.streamPrefix });
  registerOperations(rest, { prefix: config.rest.prefix, apiToken: config.rest.apiToken, metrics, tokenFailure: { onAuthFailure } });
  const hostInUrl = config.rest.host.includes(':') ? `[${config.rest.host}]` : config.rest.host;
  const web: WebFront = {
    rest, feed, restUrl: '', httpsUrl: '',
    async listen() {
      if (config.rest.port !== null) {
        await rest.listen({ host: config.rest.host, port: config.rest.port });
        const addr = rest.server.address();
        const port = addr && typeof addr === 'object' ? addr.port : config.rest.port;
        web.restUrl = `http://${hostInUrl}:${port}${config.rest.prefix}`;
      }
      if (https) {
        // The routes must be ready before the first request reaches them (listen() does this for HTTP).
        await rest.ready();
        web.httpsUrl = `https://${hostInUrl}:${await https.listen()}${config.rest.prefix}`;
        web.restUrl ||= web.httpsUrl;
      }
    },
    async close() {
      feed.close();
      await https?.close();
      await rest.close();
    },
  };
  return web;
}
