/**
 * The app's settings: defaults, then an optional JSON file (CONFIG_FILE), then environment variables.
 * Every value is checked once at start; a bad one stops the app with a message naming the variable.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseHookApps } from './hooks/routed.js';
import { isLoopback } from './lib/forbidden-address.js';
import { redactUrl } from './lib/redact.js';
import { templateProblem } from './lib/file-template.js';
import type { CodecPreference } from './sip/sdp.js';

/** MEDIA_LEG_CODECS's names (Asterisk's, as PBX admins know them) and what each is on the leg's SDP. */
export const LEG_CODECS: Record<string, CodecPreference> = {
  slin16: { encoding: 'L16', clockRate: 16000 },
  ulaw: { encoding: 'PCMU', clockRate: 8000 },
  alaw: { encoding: 'PCMA', clockRate: 8000 },
};

export interface Config {
  ari: {
    url: string;
    user: string;
    password: string;
    app: string;
    /**
     * Most HTTP connections to Asterisk at once (requests beyond wait for one). Asterisk's HTTP server
     * closes every connection past http.conf's `sessionlimit` (we ship 200) at once, and the event WebSocket
     * and any other ARI/AMI-over-HTTP user count against that limit too, hence well below it.
     */
    maxConnections: number;
    /**
     * MEDIA_BRIDGE: `native` lets Asterisk relay a call whose legs share a codec without its core
     * (native_rtp; DTMF then goes over the media leg), `core` passes every frame through it (dtmf_events).
     */
    bridge: 'native' | 'core';
  };
  /** AMI, only for registration results (sipRegisterRequired). Empty url: not used. */
  ami: { url: string; user: string; password: string };
  rest: {
    host: string;
    /** Plain HTTP port (0: any free port, tests); null: no plain HTTP listener (REST_PORT=off, HTTPS only). */
    port: number | null;
    prefix: string;
    /**
     * Host names (lower case, no port) the API answers to besides loopback and REST_HOST when no API_TOKEN
     * is set: any other Host header is refused (DNS rebinding).
     */
    hostnames: string[];
    /** Origins allowed to call the API from a browser (CORS); "*" for any; empty: none. */
    corsOrigins: string[];
    /** Required in the X-Api-Token header (or Authorization: Bearer) when set; must be set beyond loopback. */
    apiToken: string;
    /** The same app over TLS on this port (WCS uses 8444); null: none (HTTPS_PORT=off, the default); 0: any free port (tests). */
    httpsPort: number | null;
    /** PEM certificate chain and key for HTTPS_PORT (paths; read at start). */
    tlsCertFile: string;
    tlsKeyFile: string;
  };
  /** Both listeners: slow or idle clients may not hold sockets (slowloris), and the sockets are capped. */
  http: {
    /** The request line and headers must arrive within this (ms). */
    headersTimeoutMs: number;
    /** The whole request (headers and body) must arrive within this (ms); responses may last longer. */
    requestTimeoutMs: number;
    /** An idle keep-alive connection is closed after this (ms). */
    keepAliveTimeoutMs: number;
    /** Open connections per listener; more are closed at once. */
    maxConnections: number;
  };
  /** WCS REST hooks: call, registration and stream events POSTed to this URL. Empty: off. */
  hooks: {
    url: string;
    timeoutMs: number;
    queueMax: number;
    /** appKey → app URL (HOOK_APPS): that appKey's events go there instead of `url`. */
    apps: Map<string, string>;
    /** Names this server in every event (WCS `nodeId`). */
    nodeId: string;
    /** WCS's approval hook: /call/startup is POSTed to `<app URL>/call` first; non-2xx refuses it (403). */
    approve: boolean;
  };
  /** The loopback SIP UAS that receives the media leg from Asterisk. */
  sipUas: { host: string; port: number };
  /** UDP ports for the media leg's RTP/RTCP (even = RTP, odd = RTCP). */
  rtp: { portMin: number; portMax: number };
  media: {
    /** Playout delay and jitter-buffer depth (WCS rtp_in_buffer), ms. */
    jitterDepthMs: number;
    /** Output clock period: PCM goes to the encoder this often, ms; 0 = one AAC frame. */
    tickMs: number;
    /** Codecs accepted on the media leg, in order of preference (MEDIA_LEG_CODECS: slin16, ulaw, alaw). */
    legCodecs: CodecPreference[];
    aacBitrate: number;
    /** Ask the caller for a keyframe when the last one is older than this (YouTube/Facebook want <= 4 s). */
    maxKeyframeIntervalMs: number;
    /** Without the caller's video for this long, the stream shows the fill video (ms). */
    videoIdleMs: number;
    /**
     * The stream's one video size when the caller's is not known within VIDEO_SIZE_WAIT_MS (audio-only
     * calls: always), e.g. 640x360. A caller of another size is scaled to it (transcode path).
     */
    generatedVideoSize: string;
    /** What the stream's video shows while the caller sends none: a slate (name, image), black, or none (no video track for audio-only calls). */
    videoFill: 'slate' | 'black' | 'none';
    /** An image (PNG/JPEG) on the slate, e.g. the operator's logo; empty: text only. */
    slateImage: string;
    /** Frame rate of the slate and black video. */
    fillFps: number;
    /**
     * How long a video call waits for the caller's first SPS to take its size for the stream (ms); 0: the
     * default size at once. The video track starts after it at the latest (under 1 s keeps the platforms'
     * first-keyframe rule). Off by default: a video track that starts late and switches from the fill to the
     * caller's video soon after stalls mpegts.js (the console preview) in Chromium (measured).
     */
    videoSizeWaitMs: number;
    /**
     * auto: re-encode a caller's video (fixed GOP, the stream's size) when its keyframes stay apart despite
     * requests or its size differs from the stream's; always: every video call; never: passthrough only.
     */
    videoTranscode: 'auto' | 'always' | 'never';
    aacChannels: number;
    aacSampleRate: number;
    /** native: the in-process AAC-LC encoder (plugin/media/aac); ffmpeg: one ffmpeg child per call. */
    aacEncoder: 'native' | 'ffmpeg';
    /** AAC_ENCODER_THREADS: worker threads for the native encoder; 0 encodes on the main thread. */
    aacEncoderThreads: number;
    /**
     * WCS generate_av_for_ua: send silence and black video toward callees whose User-Agent (or Server)
     * header in the 200 OK contains one of these (lower case); "all" for every callee; empty: none.
     */
    generateAvForUa: string[];
    /** Sound files for /call/inject_sound and /push/sound_on; names outside it are refused. */
    soundsDir: string;
  };
  calls: {
    /** WCS prefixes published stream names with this unless rtmpTransponderFullUrl is true. */
    streamPrefix: string;
    answerTimeoutSec: number;
    /** No RTP from the call for this long: FAILED, FAILED_BY_RTP_ACTIVITY (0: never). */
    rtpTimeoutSec: number;
    /** MAX_CALL_DURATION: an answered call is hung up (FINISH) this long after the answer; 0: no limit. A call's maxDuration may shorten it, not lift it. */
    maxDurationSec: number;
    /** A CallLimitWarningEvent hook this long before a call's or a push's platform session limit; 0: none. */
    limitWarningSec: number;
    /** How long /call/find still shows an ended call. */
    endedTtlSec: number;
    maxCalls: number;
    /** /call/startup and /push/startup accepted per second (bursts of twice that); more get 429. */
    startupRatePerSec: number;
    /** Live outputs one call may have, its primary (rtmpUrl) included; /push/startup beyond it gets 429. FAILED/closed ones don't count. */
    maxPushesPerCall: number;
    /** Live outputs across all calls; a push or a /call/startup with rtmpUrl beyond it gets 503. */
    maxOutputs: number;
  };
  rtmp: {
    /** Extra CA certificate (PEM file) trusted for rtmps://, e.g. a self-signed test server's. */
    tlsCaFile: string;
    /** Accept any RTMPS certificate (self-signed servers). Off by default. */
    tlsInsecure: boolean;
    /** Only these RTMP hosts may be published to (lower case); empty: any. */
    allowedHosts: string[];
    /** After a drop, reconnect attempts before the output is FAILED (0: never retry). */
    reconnectAttempts: number;
    /** Largest wait between reconnect attempts (ms); the first is a quarter of it. */
    reconnectMaxMs: number;
    /** When the call's own output (rtmpUrl) is FAILED for good: hang the call up, or keep it (republish with /push/startup). */
    failureAction: 'hangup' | 'continue';
  };
  sip: {
    /** SIP_ALLOWED_DOMAINS: the only SIP hosts a call may go to (exact, or `*.example.com`); empty: any. */
    allowedDomains: string[];
    /** PBX_SIP_ADDRESSES: the PBX's own SIP host:port list (a call there would land in its own dialplan). */
    pbxAddresses: string[];
    /** ALLOW_SELF_SIP_TARGETS: allow calls to the PBX's own SIP address and the app's media-leg UAS. */
    allowSelfTargets: boolean;
  };
  recordings: {
    /** Where recordings are written (created on demand); relative to the working directory unless absolute. */
    dir: string;
    /** File name template (WCS fields: {streamName} {startTime} {endTime} {mediaSessionId}…; plus {callId} {date}). */
    fileTemplate: string;
  };
  /** More than one node (README "Running more than one node"): off unless redisUrl is set. */
  cluster: {
    /** CLUSTER_REDIS_URL: the shared Redis 7 (redis://[:password@]host:port/db); empty: a single node, nothing shared. */
    redisUrl: string;
    /** CLUSTER_NAME: the key prefix, so clusters may share one Redis. */
    name: string;
    /** NODE_URL: where the other nodes reach this node's REST API (its base URL, prefix included); default from REST_HOST/REST_PORT. */
    nodeUrl: string;
    /** NODE_MAX_CALLS: this node's own cap (MAX_CALLS is then the whole cluster's); default MAX_CALLS. */
    nodeMaxCalls: number;
    /** CLUSTER_LEASE_MS: a node not heard from for this long is lost (its calls FAILED); it fences itself as well. */
    leaseMs: number;
  };
  logLevel: string;
  /** SIGTERM/SIGINT: how long ending every call and releasing everything may take before the app exits anyway (non-zero). */
  shutdownTimeoutMs: number;
}

/** Name of each setting in the environment and in the JSON file (same names, file keys in camelCase). */
const SPEC = {
  ARI_URL: { path: ['ari', 'url'], kind: 'url', def: 'http://127.0.0.1:8088' },
  ARI_USER: { path: ['ari', 'user'], kind: 'string', def: 'sip-as-rtmp' },
  ARI_PASSWORD: { path: ['ari', 'password'], kind: 'string', def: undefined },
  ARI_APP: { path: ['ari', 'app'], kind: 'string', def: 'sip-as-rtmp' },
  // 32: four apps sharing one Asterisk (32 + 1 event WebSocket each) still fit under the shipped
  // sessionlimit of 200 with room for other HTTP users; requests beyond 32 wait in line, they do not fail.
  ARI_MAX_CONNECTIONS: { path: ['ari', 'maxConnections'], kind: 'int:1:1000', def: '32' },
  MEDIA_BRIDGE: { path: ['ari', 'bridge'], kind: 'enum:native:core', def: 'native' },
  AMI_URL: { path: ['ami', 'url'], kind: 'any', def: '' },
  AMI_USER: { path: ['ami', 'user'], kind: 'string', def: 'sip-as-rtmp' },
  AMI_PASSWORD: { path: ['ami', 'password'], kind: 'any', def: '' },
  REST_HOST: { path: ['rest', 'host'], kind: 'string', def: '127.0.0.1' },
  REST_PORT: { path: ['rest', 'port'], kind: 'portoff', def: '8081' },
  REST_PREFIX: { path: ['rest', 'prefix'], kind: 'prefix', def: '/rest-api' },
  REST_HOSTNAMES: { path: ['rest', 'hostnames'], kind: 'hostnames', def: '' },
  CORS_ORIGINS: { path: ['rest', 'corsOrigins'], kind: 'list', def: '' },
  API_TOKEN: { path: ['rest', 'apiToken'], kind: 'any', def: '' },
  HTTPS_PORT: { path: ['rest', 'httpsPort'], kind: 'portoff', def: 'off' },
  TLS_CERT_FILE: { path: ['rest', 'tlsCertFile'], kind: 'any', def: '' },
  TLS_KEY_FILE: { path: ['rest', 'tlsKeyFile'], kind: 'any', def: '' },
  HTTP_HEADERS_TIMEOUT_MS: { path: ['http', 'headersTimeoutMs'], kind: 'int:500:600000', def: '10000' },
  HTTP_REQUEST_TIMEOUT_MS: { path: ['http', 'requestTimeoutMs'], kind: 'int:500:600000', def: '30000' },
  HTTP_KEEPALIVE_TIMEOUT_MS: { path: ['http', 'keepAliveTimeoutMs'], kind: 'int:100:600000', def: '5000' },
  HTTP_MAX_CONNECTIONS: { path: ['http', 'maxConnections'], kind: 'int:1:1000000', def: '1000' },
  HOOK_URL: { path: ['hooks', 'url'], kind: 'any', def: '' },
  HOOK_TIMEOUT_MS: { path: ['hooks', 'timeoutMs'], kind: 'int:100:60000', def: '5000' },
  HOOK_QUEUE_MAX: { path: ['hooks', 'queueMax'], kind: 'int:1:100000', def: '1000' },
  HOOK_APPS: { path: ['hooks', 'apps'], kind: 'hookapps', def: '' },
  NODE_ID: { path: ['hooks', 'nodeId'], kind: 'string', def: hostname() },
  HOOK_APPROVE: { path: ['hooks', 'approve'], kind: 'bool', def: 'false' },
  SIP_UAS_HOST: { path: ['sipUas', 'host'], kind: 'string', def: '127.0.0.1' },
  SIP_UAS_PORT: { path: ['sipUas', 'port'], kind: 'port', def: '5090' },
  RTP_PORT_MIN: { path: ['rtp', 'portMin'], kind: 'port', def: '20000' },
  RTP_PORT_MAX: { path: ['rtp', 'portMax'], kind: 'port', def: '20999' },
  JITTER_DEPTH_MS: { path: ['media', 'jitterDepthMs'], kind: 'int:0:2000', def: '60' },
  TICK_MS: { path: ['media', 'tickMs'], kind: 'int:0:200', def: '0' },
  MEDIA_LEG_CODECS: { path: ['media', 'legCodecs'], kind: 'codecs', def: 'slin16,ulaw,alaw' },
  MAX_KEYFRAME_INTERVAL_MS: { path: ['media', 'maxKeyframeIntervalMs'], kind: 'int:500:10000', def: '2000' },
  VIDEO_IDLE_MS: { path: ['media', 'videoIdleMs'], kind: 'int:100:10000', def: '1000' },
  GENERATED_VIDEO_SIZE: { path: ['media', 'generatedVideoSize'], kind: 'size', def: '640x360' },
  VIDEO_FILL: { path: ['media', 'videoFill'], kind: 'enum:slate:black:none', def: 'slate' },
  SLATE_IMAGE: { path: ['media', 'slateImage'], kind: 'any', def: '' },
  FILL_FPS: { path: ['media', 'fillFps'], kind: 'int:1:60', def: '25' },
  VIDEO_SIZE_WAIT_MS: { path: ['media', 'videoSizeWaitMs'], kind: 'int:0:10000', def: '0' },
  VIDEO_TRANSCODE: { path: ['media', 'videoTranscode'], kind: 'enum:auto:always:never', def: 'auto' },
  AAC_BITRATE: { path: ['media', 'aacBitrate'], kind: 'int:16000:320000', def: '64000' },
  AAC_CHANNELS: { path: ['media', 'aacChannels'], kind: 'int:1:2', def: '1' },
  AAC_SAMPLE_RATE: { path: ['media', 'aacSampleRate'], kind: 'aacrate', def: '48000' },
  AAC_ENCODER: { path: ['media', 'aacEncoder'], kind: 'enum:native:ffmpeg', def: 'native' },
  AAC_ENCODER_THREADS: { path: ['media', 'aacEncoderThreads'], kind: 'int:0:16', def: '0' },
  GENERATE_AV_FOR_UA: { path: ['media', 'generateAvForUa'], kind: 'list', def: '' },
  SOUNDS_DIR: { path: ['media', 'soundsDir'], kind: 'any', def: '/var/lib/sip-as-rtmp/sounds' },
  RTMP_STREAM_PREFIX: { path: ['calls', 'streamPrefix'], kind: 'any', def: 'rtmp_' },
  CALL_ANSWER_TIMEOUT_SEC: { path: ['calls', 'answerTimeoutSec'], kind: 'int:1:600', def: '60' },
  RTP_TIMEOUT_SEC: { path: ['calls', 'rtpTimeoutSec'], kind: 'int:0:3600', def: '30' },
  MAX_CALL_DURATION: { path: ['calls', 'maxDurationSec'], kind: 'int:0:604800', def: '0' },
  LIMIT_WARNING_SEC: { path: ['calls', 'limitWarningSec'], kind: 'int:0:86400', def: '300' },
  ENDED_CALL_TTL_SEC: { path: ['calls', 'endedTtlSec'], kind: 'int:0:86400', def: '10' },
  MAX_CALLS: { path: ['calls', 'maxCalls'], kind: 'int:1:10000', def: '200' },
  STARTUP_RATE_PER_SEC: { path: ['calls', 'startupRatePerSec'], kind: 'int:1:10000', def: '20' },
  MAX_PUSHES_PER_CALL: { path: ['calls', 'maxPushesPerCall'], kind: 'int:1:1000', def: '10' },
  MAX_OUTPUTS: { path: ['calls', 'maxOutputs'], kind: 'int:1:100000', def: '1000' },
  RTMP_TLS_CA_FILE: { path: ['rtmp', 'tlsCaFile'], kind: 'any', def: '' },
  RTMP_TLS_INSECURE: { path: ['rtmp', 'tlsInsecure'], kind: 'bool', def: 'false' },
  RTMP_ALLOWED_HOSTS: { path: ['rtmp', 'allowedHosts'], kind: 'list', def: '' },
  RTMP_RECONNECT_ATTEMPTS: { path: ['rtmp', 'reconnectAttempts'], kind: 'int:0:100000', def: '30' },
  RTMP_RECONNECT_MAX_MS: { path: ['rtmp', 'reconnectMaxMs'], kind: 'int:200:600000', def: '2000' },
  RTMP_FAILURE_ACTION: { path: ['rtmp', 'failureAction'], kind: 'enum:hangup:continue', def: 'hangup' },
  CLUSTER_REDIS_URL: { path: ['cluster', 'redisUrl'], kind: 'any', def: '' },
  CLUSTER_NAME: { path: ['cluster', 'name'], kind: 'string', def: 'sip-as-rtmp' },
  NODE_URL: { path: ['cluster', 'nodeUrl'], kind: 'any', def: '' },
  NODE_MAX_CALLS: { path: ['cluster', 'nodeMaxCalls'], kind: 'int:0:10000', def: '0' },
  CLUSTER_LEASE_MS: { path: ['cluster', 'leaseMs'], kind: 'int:500:60000', def: '3000' },
  SIP_ALLOWED_DOMAINS: { path: ['sip', 'allowedDomains'], kind: 'list', def: '' },
  PBX_SIP_ADDRESSES: { path: ['sip', 'pbxAddresses'], kind: 'hostports', def: '127.0.0.1:5060' },
  ALLOW_SELF_SIP_TARGETS: { path: ['sip', 'allowSelfTargets'], kind: 'bool', def: 'false' },
  RECORDINGS_DIR: { path: ['recordings', 'dir'], kind: 'string', def: 'recordings' },
  RECORD_FILE_TEMPLATE: { path: ['recordings', 'fileTemplate'], kind: 'template', def: '{streamName}-{date}' },
  LOG_LEVEL: { path: ['logLevel'], kind: 'level', def: 'info' },
  SHUTDOWN_TIMEOUT_MS: { path: ['shutdownTimeoutMs'], kind: 'int:1000:600000', def: '10000' },
} as const satisfies Record<string, { path: readonly string[]; kind: string; def: string | undefined }>;

export type SettingName = keyof typeof SPEC;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Build the config. `env` wins over the file named by env.CONFIG_FILE, which wins over defaults.
 * File keys are the setting names too (e.g. {"ARI_URL": "...", "REST_PORT": 8081}).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let file: Record<string, unknown> = {};
  if (env.CONFIG_FILE) {
    try {
      file = JSON.parse(readFileSync(env.CONFIG_FILE, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`CONFIG_FILE ${env.CONFIG_FILE}: ${(err as Error).message}`);
    }
    if (!file || typeof file !== 'object' || Array.isArray(file)) throw new ConfigError(`CONFIG_FILE ${env.CONFIG_FILE}: not a JSON object`);
    for (const key of Object.keys(file)) {
      if (!(key in SPEC)) throw new ConfigError(`CONFIG_FILE ${env.CONFIG_FILE}: unknown setting ${key}`);
    }
  }
  const out: Record<string, Record<string, unknown>> = { ari: {}, ami: {}, rest: {}, http: {}, hooks: {}, sipUas: {}, rtp: {}, media: {}, calls: {}, rtmp: {}, sip: {}, recordings: {}, cluster: {} };
  const top: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(SPEC) as [SettingName, (typeof SPEC)[SettingName]][]) {
    const fromFile = file[name];
    const raw = env[name] ?? (fromFile === undefined ? undefined : String(fromFile)) ?? spec.def;
    if (raw === undefined) throw new ConfigError(`${name} is required (set it in the environment or in CONFIG_FILE)`);
    const value = parseValue(name, spec.kind, raw);
    const [group, key] = spec.path;
    if (key === undefined) top[group] = value;
    else out[group]![key] = value;
  }
  const config = { ...out, ...top } as unknown as Config;
  if (config.ami.url && !/^tcp:\/\/[^:/]+:\d+$/.test(config.ami.url)) {
    throw new ConfigError(`AMI_URL must look like tcp://127.0.0.1:5038, got "${config.ami.url}"`);
  }
  checkRest(config);
  if (config.hooks.url && !/^https?:\/\/[^\s]+$/.test(config.hooks.url)) {
    throw new ConfigError(`HOOK_URL must be an http:// or https:// URL, got "${config.hooks.url}"`);
  }
  checkCluster(config);
  if (config.rtp.portMin >= config.rtp.portMax) {
    throw new ConfigError(`RTP_PORT_MIN (${config.rtp.portMin}) must be below RTP_PORT_MAX (${config.rtp.portMax})`);
  }
  return config;
}

function checkCluster(config: Config): void {
  const c = config.cluster;
  // Single node: MAX_CALLS is the node's cap; in a cluster, NODE_MAX_CALLS is (MAX_CALLS is everybody's).
  if (c.nodeMaxCalls === 0) c.nodeMaxCalls = config.calls.maxCalls;
  if (c.redisUrl && !/^rediss?:\/\/\S+$/.test(c.redisUrl)) throw new ConfigError(`CLUSTER_REDIS_URL must be a redis:// or rediss:// URL, got "${redactUrl(c.redisUrl)}"`);
  if (c.nodeUrl && !/^https?:\/\/\S+$/.test(c.nodeUrl)) throw new ConfigError(`NODE_URL must be an http:// or https:// URL, got "${c.nodeUrl}"`);
  if (c.redisUrl && !c.nodeUrl && ['0.0.0.0', '::'].includes(config.rest.host)) {
    throw new ConfigError(`NODE_URL is required in a cluster when REST_HOST is ${config.rest.host} (the other nodes need an address to reach this one)`);
  }
}

/** Shortest API_TOKEN: guessing one of 16 random characters at the answer rate a 401 allows takes ages. */
export const MIN_API_TOKEN_LENGTH = 16;

function checkRest(config: Config): void {
  const { rest, http } = config;
  // The token's value is never part of a message (it would land in logs and terminals).
  if (rest.apiToken && rest.apiToken.length < MIN_API_TOKEN_LENGTH) {
    throw new ConfigError(`API_TOKEN must be at least ${MIN_API_TOKEN_LENGTH} characters long (it has ${rest.apiToken.length})`);
  }
  if (!rest.apiToken && rest.host !== 'localhost' && !isLoopback(rest.host)) {
    throw new ConfigError(`API_TOKEN is required when REST_HOST (${rest.host}) is not loopback`);
  }
  // Any origin may then call the API from any visitor's browser: only a token stops it.
  if (!rest.apiToken && rest.corsOrigins.includes('*')) {
    throw new ConfigError('CORS_ORIGINS=* requires API_TOKEN (any web page could otherwise call the API from a visitor\'s browser)');
  }
  if (rest.port === null && rest.httpsPort === null) throw new ConfigError('REST_PORT=off needs HTTPS_PORT (no listener at all otherwise)');
  if (rest.httpsPort !== null || rest.tlsCertFile || rest.tlsKeyFile) {
    for (const [name, file] of [['TLS_CERT_FILE', rest.tlsCertFile], ['TLS_KEY_FILE', rest.tlsKeyFile]] as const) {
      if (!file) throw new ConfigError(`${name} is required with HTTPS_PORT`);
      try {
        readFileSync(file);
      } catch (err) {
        throw new ConfigError(`${name} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (cannot be read)`);
      }
    }
    if (rest.httpsPort === null) throw new ConfigError('TLS_CERT_FILE and TLS_KEY_FILE are used only with HTTPS_PORT: set it (WCS uses 8444)');
  }
  // Node refuses a headers timeout longer than the request timeout.
  if (http.headersTimeoutMs > http.requestTimeoutMs) {
    throw new ConfigError(`HTTP_HEADERS_TIMEOUT_MS (${http.headersTimeoutMs}) must not exceed HTTP_REQUEST_TIMEOUT_MS (${http.requestTimeoutMs})`);
  }
}

/** A checked size setting ("640x360", see the 'size' kind) as numbers. */
export function parseSize(size: string): { width: number; height: number } {
  const [width, height] = size.split('x').map(Number) as [number, number];
  return { width, height };
}

/** "A, b ,,c" → ["a", "b", "c"]. */
function parseList(v: string): string[] {
  return v.split(',').map((c) => c.trim().toLowerCase()).filter(Boolean);
}

function parseValue(name: string, kind: string, raw: string): string | number | boolean | null | string[] | CodecPreference[] | Map<string, string> {
  const v = raw.trim();
  if (kind.startsWith('enum:')) {
    const options = kind.split(':').slice(1);
    if (!options.includes(v)) throw new ConfigError(`${name} must be one of ${options.join(', ')}, got "${v}"`);
    return v;
  }
  if (kind.startsWith('int:')) {
    const [, min, max] = kind.split(':').map(Number) as [number, number, number];
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) throw new ConfigError(`${name} must be a whole number ${min}-${max}, got "${v}"`);
    return n;
  }
  switch (kind) {
    case 'any':
      return v;
    case 'bool':
      if (v === 'true' || v === '1' || v === 'yes') return true;
      if (v === 'false' || v === '0' || v === 'no' || v === '') return false;
      throw new ConfigError(`${name} must be true or false, got "${v}"`);
    case 'codecs': {
      const list = parseList(v);
      const bad = list.find((c) => !LEG_CODECS[c]);
      if (bad || list.length === 0) throw new ConfigError(`${name} must list slin16, ulaw and/or alaw, got "${v}"`);
      return list.map((c) => LEG_CODECS[c]!);
    }
    case 'list':
      return parseList(v);
    case 'hostports': {
      // host[:port] (IPv6 in brackets); a missing port means SIP's 5060.
      const list = parseList(v);
      const bad = list.find((hp) => !/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/.test(hp) || Number(/:(\d+)$/.exec(hp)?.[1] ?? 5060) > 65535);
      if (bad !== undefined) throw new ConfigError(`${name} must list host:port entries like 127.0.0.1:5060, got "${bad}"`);
      return list;
    }
    case 'size':
      if (!/^\d{2,4}x\d{2,4}$/.test(v) || v.split('x').some((n) => Number(n) % 2 !== 0)) {
        throw new ConfigError(`${name} must look like 640x360 (even numbers), got "${v}"`);
      }
      return v;
    case 'aacrate':
      if (v !== '44100' && v !== '48000') throw new ConfigError(`${name} must be 44100 or 48000 (what YouTube and Facebook take), got "${v}"`);
      return Number(v);
    case 'portoff':
      if (v === 'off') return null;
      return parseValue(name, 'port0', v);
    case 'hostnames': {
      const list = parseList(v);
      // Names only: a port or scheme here would never match a Host header's name.
      const bad = list.find((h) => !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$|^\[[0-9a-f:.]+\]$/.test(h));
      if (bad !== undefined) throw new ConfigError(`${name} must be host names or addresses without port or scheme (e.g. pbx.example.com,10.0.0.5,[fd00::5]), got "${bad}"`);
      return list;
    }
    case 'port':
    case 'port0': {
      // port0: 0 means "any free port" (tests).
      const n = Number(v);
      const min = kind === 'port0' ? 0 : 1;
      if (!/^\d+$/.test(v) || n < min || n > 65535) throw new ConfigError(`${name} must be a port number ${min}-65535, got "${v}"`);
      return n;
    }
    case 'url': {
      let u: URL;
      try {
        u = new URL(v);
      } catch {
        throw new ConfigError(`${name} must be a URL like http://127.0.0.1:8088, got "${v}"`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${name} must be http:// or https://`);
      if (u.username || u.password) throw new ConfigError(`${name} must not carry credentials; use ARI_USER/ARI_PASSWORD`);
      return v.replace(/\/+$/, '');
    }
    case 'prefix':
      if (!/^(\/[A-Za-z0-9._~-]+)*$/.test(v)) throw new ConfigError(`${name} must look like /rest-api (or be empty), got "${v}"`);
      return v;
    case 'hookapps':
      try {
        return parseHookApps(v);
      } catch (err) {
        throw new ConfigError((err as Error).message);
      }
    case 'template': {
      const problem = templateProblem(v);
      if (problem) throw new ConfigError(`${name} ${problem}`);
      return v;
    }
    case 'level':
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(v)) {
        throw new ConfigError(`${name} must be one of fatal, error, warn, info, debug, trace, silent`);
      }
      return v;
    default:
      if (!v) throw new ConfigError(`${name} must not be empty`);
      return v;
  }
}

/** The config as it may be shown or logged: secrets replaced. */
export function describeConfig(c: Config): Record<string, unknown> {
  return {
    ...c,
    ari: { ...c.ari, password: '[redacted]' },
    ami: { ...c.ami, password: c.ami.password ? '[redacted]' : '' },
    rest: { ...c.rest, apiToken: c.rest.apiToken ? '[redacted]' : '' },
    // Hook URLs may carry user:pass@ and tokens in the query.
    hooks: {
      ...c.hooks,
      url: c.hooks.url ? redactUrl(c.hooks.url) : '',
      apps: Object.fromEntries([...c.hooks.apps].map(([key, url]) => [key, redactUrl(url)])),
    },
    // A Redis URL may carry its password.
    cluster: { ...c.cluster, redisUrl: c.cluster.redisUrl ? redactUrl(c.cluster.redisUrl) : '' },
  };
}
