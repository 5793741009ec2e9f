/**
 * A thin typed ARI client: the REST calls sip-as-rtmp needs (channels, bridges, dynamic config, DTMF,
 * playback) with typed errors. Events come from AriEventSocket (events.ts).
 *
 * Why our own: `ari-client` is unmaintained since 2019 and drags in deprecated, vulnerable dependencies;
 * the surface we use is small and worth typing precisely.
 *
 * Every request goes through one bounded connection pool (undici, the fetch implementation Node itself
 * bundles): Asterisk's HTTP server takes at most `sessionlimit` connections (http.conf) and closes any
 * beyond at once, which a mass hang-up on unbounded fetch hit (issue 20: 94 of 150 bridge DELETEs failed
 * with UND_ERR_SOCKET). Idempotent requests are retried on transient socket errors.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { backoffDelay, type BackoffOptions } from '../../plugin/lib/backoff.js';
import { AriConnectionError, ariErrorFromResponse } from './errors.js';
import { AriEventSocket, type AriEventSocketOptions } from './events.js';
import { AriLedger } from './ledger.js';
import type { AsteriskInfo, Bridge, Channel, ConfigTuple, Endpoint, Playback, Variable } from './types.js';

export interface AriConnectionOptions {
  /** Asterisk's HTTP base, e.g. http://127.0.0.1:8088 (the /ari prefix is added). */
  url: string;
  user: string;
  password: string;
  /** The Stasis application name. */
  app: string;
}

export interface AriClientOptions extends AriConnectionOptions {
  /** Per-attempt timeout (ms), time waiting for a free connection included. */
  timeoutMs?: number;
  /**
   * Most HTTP connections to Asterisk at once (ARI_MAX_CONNECTIONS); more requests wait for a free one.
   * Keep it below http.conf's sessionlimit, less the event WebSocket and anyone else using that server.
   */
  maxConnections?: number;
  /** Attempts of an idempotent request that meets a transient socket error (default 3). */
  attempts?: number;
  /** A transport for tests; the pool is then not used. */
  fetch?: AriFetch;
}

/** The slice of fetch the client uses (the global fetch fits, for tests). */
export type AriFetch = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string | undefined; signal: AbortSignal },
) => Promise<{ ok: boolean; status: number; text(): Promise<string> }>;

/** What request() accepts besides the method and path. */
export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /**
   * A DELETE of the resource itself: a 404 after an earlier attempt may have reached Asterisk means that
   * attempt did the work (its answer was lost), so it resolves as done.
   */
  goneIsDone?: boolean;
}

export const DEFAULT_MAX_CONNECTIONS = 32;

/** Repeating these changes nothing on the server (PUT of dynamic config is create-or-replace). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);
/**
 * Socket errors worth another try: the connection closed or reset under the request (Asterisk over its
 * sessionlimit, or closing a keep-alive connection as we reused it), or refused (Asterisk restarting).
 * Not timeouts: a slow Asterisk gets no extra load, and the worst case stays one timeout.
 */
const TRANSIENT = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'ECONNREFUSED']);
/** Refused: no connection was made, so the request cannot have reached Asterisk, whatever its method. */
const NEVER_SENT = new Set(['ECONNREFUSED']);
/** 50-100 ms, then 200-400 ms: 3 attempts end within ~0.5 s plus the attempts themselves. */
const RETRY_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 400, factor: 4, minFraction: 0.5 };

type QueryValue = string | number | boolean | undefined | null | readonly string[];
export type Query = Record<string, QueryValue>;

export interface OriginateParams {
  /** e.g. PJSIP/softphone or PJSIP/endpoint-id/sip:user@host:port */
  endpoint: string;
  app?: string;
  appArgs?: string;
  extension?: string;
  context?: string;
  priority?: number;
  callerId?: string;
  /** Seconds to wait for an answer (Asterisk default 30; -1 = forever). */
  timeout?: number;
  /** Our own id, so events that arrive before the REST answer can be matched (see asterisk-facts.md). */
  channelId?: string;
  otherChannelId?: string;
  originator?: string;
  /** Comma list, e.g. "slin16,ulaw,h264". Without it the offer is audio only. */
  formats?: string;
  variables?: Record<string, string>;
}

export interface ExternalMediaParams {
  channelId?: string;
  app?: string;
  external_host: string;
  format: string;
  encapsulation?: 'rtp' | 'audiosocket' | 'none';
  transport?: 'udp' | 'tcp' | 'websocket';
  connection_type?: 'client' | 'server';
  direction?: 'both' | 'in' | 'out';
  data?: string;
  variables?: Record<string, string>;
}

/** A PJSIP object type that can be created in memory (see sorcery.conf). */
export type PjsipObjectType = 'endpoint' | 'aor' | 'auth' | 'registration' | 'identify' | 'contact';

export class AriClient {
  readonly app: string;
  private readonly base: string;
  private readonly authHeader: string;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly pool: Agent | undefined;
  private readonly doFetch: AriFetch;
  private closing: Promise<void> | undefined;
  /** What this client created (and the app's events brought) that is not gone yet: read at shutdown. */
  readonly ledger = new AriLedger();

  constructor(private readonly opts: AriClientOptions) {
    this.app = opts.app;
    this.base = opts.url.replace(/\/+$/, '') + '/ari';
    this.authHeader = 'Basic ' + Buffer.from(`${opts.user}:${opts.password}`).toString('base64');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.attempts = Math.max(1, opts.attempts ?? 3);
    if (opts.fetch) {
      this.doFetch = opts.fetch;
    } else {
      // undici's keep-alive default (4 s idle) stays under Asterisk's session_keep_alive (15 s), so a
      // connection is rarely reused just as Asterisk closes it.
      const pool = new Agent({ connections: opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS });
      this.pool = pool;
      this.doFetch = (url, init) => undiciFetch(url, { ...init, dispatcher: pool });
    }
  }

  /** A new event socket for this client's app and credentials (not yet connected); its events feed the ledger. */
  eventSocket(extra: Partial<AriEventSocketOptions> = {}): AriEventSocket {
    const socket = new AriEventSocket({ url: this.opts.url, user: this.opts.user, password: this.opts.password, app: this.app, ...extra });
    socket.on('event', (e) => this.ledger.onEvent(e));
    return socket;
  }

  /**
   * One REST call. Resolves to the parsed JSON body (undefined for 204), throws AriError for an HTTP error
   * and AriConnectionError when Asterisk can't be reached. Idempotent methods get up to `attempts` tries on
   * a transient socket error; other methods only when the connection was refused (never sent). HTTP error
   * statuses are answers, never retried. Each attempt has the full timeout.
   */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = this.base + path + toQueryString(opts.query);
    const headers: Record<string, string> = { authorization: this.authHeader, accept: 'application/json' };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let mayHaveLanded = false;
    for (let attempt = 1; ; attempt++) {
      let status: number;
      let text: string;
      try {
        const res = await this.doFetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
        status = res.status;
        text = await res.text();
      } catch (err) {
        const code = errorCode(err);
        const retry = attempt < this.attempts && code !== undefined && TRANSIENT.has(code) && (IDEMPOTENT.has(method) || NEVER_SENT.has(code));
        if (!retry) throw new AriConnectionError(method, path, describeFetchError(err), { cause: err, attempts: attempt });
        if (!NEVER_SENT.has(code)) mayHaveLanded = true;
        await new Promise((r) => setTimeout(r, backoffDelay(attempt - 1, RETRY_BACKOFF)));
        continue;
      }
      if (status === 404 && opts.goneIsDone && mayHaveLanded) {
        this.ledger.noteAnswer(method, path, status, undefined);
        return undefined as T;
      }
      if (status < 200 || status >= 300) {
        if (status === 404) this.ledger.noteAnswer(method, path, status, undefined);
        throw ariErrorFromResponse(status, text, method, path);
      }
      const parsed: unknown = text ? JSON.parse(text) : undefined;
      this.ledger.noteAnswer(method, path, status, parsed);
      return parsed as T;
    }
  }

  /** Close the pool's connections once its requests are answered; later requests fail. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.pool?.close() ?? Promise.resolve();
    return this.closing;
  }

  readonly asterisk = {
    info: () => this.request<AsteriskInfo>('GET', '/asterisk/info'),
    ping: () => this.request<{ ping: string; timestamp: string; asterisk_id: string }>('GET', '/asterisk/ping'),
    getGlobalVar: async (variable: string) =>
      (await this.request<Variable>('GET', '/asterisk/variable', { query: { variable } })).value,
  };

  readonly channels = {
    list: () => this.request<Channel[]>('GET', '/channels'),
    get: (id: string) => this.request<Channel>('GET', `/channels/${enc(id)}`),
    originate: (p: OriginateParams) => {
      const { variables, ...query } = p;
      return this.request<Channel>('POST', '/channels', {
        query: { ...query, app: p.app ?? (p.extension ? undefined : this.app) },
        body: variables ? { variables } : undefined,
      });
    },
    /** Hang up. `reason` is an ARI reason word (normal, busy, congestion, no_answer, ...). */
    hangup: (id: string, reason?: string) =>
      this.request<void>('DELETE', `/channels/${enc(id)}`, { query: { reason }, goneIsDone: true }),
    answer: (id: string) => this.request<void>('POST', `/channels/${enc(id)}/answer`),
    ring: (id: string) => this.request<void>('POST', `/channels/${enc(id)}/ring`),
    getVariable: async (id: string, variable: string) =>
      (await this.request<Variable>('GET', `/channels/${enc(id)}/variable`, { query: { variable } })).value,
    setVariable: (id: string, variable: string, value: string) =>
      this.request<void>('POST', `/channels/${enc(id)}/variable`, { query: { variable, value } }),
    /** Send DTMF toward the channel's far end (RFC 4733 or SIP INFO, per the endpoint's dtmf_mode). */
    sendDtmf: (id: string, dtmf: string, o: { before?: number; between?: number; duration?: number; after?: number } = {}) =>
      this.request<void>('POST', `/channels/${enc(id)}/dtmf`, { query: { dtmf, ...o } }),
    play: (id: string, media: string | string[], o: { playbackId?: string; lang?: string } = {}) =>
      this.request<Playback>('POST', `/channels/${enc(id)}/play`, {
        query: { media: Array.isArray(media) ? media.join(',') : media, playbackId: o.playbackId, lang: o.lang },
      }),
    hold: (id: string) => this.request<void>('POST', `/channels/${enc(id)}/hold`),
    unhold: (id: string) => this.request<void>('DELETE', `/channels/${enc(id)}/hold`),
    externalMedia: (p: ExternalMediaParams) => {
      const { variables, ...query } = p;
      return this.request<Channel>('POST', '/channels/externalMedia', {
        query: { ...query, app: p.app ?? this.app },
        body: variables ? { variables } : undefined,
      });
    },
  };

  readonly bridges = {
    list: () => this.request<Bridge[]>('GET', '/bridges'),
    get: (id: string) => this.request<Bridge>('GET', `/bridges/${enc(id)}`),
    /** `type` is a comma list: "mixing" (2-party: simple/native bridge), "mixing,video_single", "holding". */
    create: (p: { bridgeId?: string; type?: string; name?: string } = {}) =>
      this.request<Bridge>('POST', '/bridges', { query: p }),
    destroy: (id: string) => this.request<void>('DELETE', `/bridges/${enc(id)}`, { goneIsDone: true }),
    addChannel: (id: string, channel: string | string[], o: { role?: string; inhibitConnectedLineUpdates?: boolean } = {}) =>
      this.request<void>('POST', `/bridges/${enc(id)}/addChannel`, {
        query: { channel: Array.isArray(channel) ? channel.join(',') : channel, ...o },
      }),
    removeChannel: (id: string, channel: string | string[]) =>
      this.request<void>('POST', `/bridges/${enc(id)}/removeChannel`, {
        query: { channel: Array.isArray(channel) ? channel.join(',') : channel },
      }),
    play: (id: string, media: string, o: { playbackId?: string } = {}) =>
      this.request<Playback>('POST', `/bridges/${enc(id)}/play`, { query: { media, ...o } }),
  };

  readonly endpoints = {
    /** Every endpoint of one technology, e.g. "PJSIP" (static and dynamic objects alike). */
    list: (tech: string) => this.request<Endpoint[]>('GET', `/endpoints/${enc(tech)}`),
  };

  readonly playbacks = {
    get: (id: string) => this.request<Playback>('GET', `/playbacks/${enc(id)}`),
    stop: (id: string) => this.request<void>('DELETE', `/playbacks/${enc(id)}`, { goneIsDone: true }),
  };

  /**
   * Dynamic configuration (sorcery). For PJSIP: configClass "res_pjsip", types endpoint/aor/auth and
   * "registration" (its class is res_pjsip too, not res_pjsip_outbound_registration: asterisk-facts.md).
   */
  readonly config = {
    get: (configClass: string, objectType: string, id: string) =>
      this.request<ConfigTuple[]>('GET', `/asterisk/config/dynamic/${enc(configClass)}/${enc(objectType)}/${enc(id)}`),
    /** Create or update. Fields may be given as a record or as tuples (tuples allow repeated attributes). */
    put: (configClass: string, objectType: string, id: string, fields: Record<string, string> | ConfigTuple[]) =>
      this.request<ConfigTuple[]>('PUT', `/asterisk/config/dynamic/${enc(configClass)}/${enc(objectType)}/${enc(id)}`, {
        body: { fields: Array.isArray(fields) ? fields : Object.entries(fields).map(([attribute, value]) => ({ attribute, value })) },
      }),
    delete: (configClass: string, objectType: string, id: string) =>
      this.request<void>('DELETE', `/asterisk/config/dynamic/${enc(configClass)}/${enc(objectType)}/${enc(id)}`, { goneIsDone: true }),
  };

  /** Shorthands for the PJSIP objects the app creates per call. */
  readonly pjsip = {
    get: (type: PjsipObjectType, id: string) => this.config.get('res_pjsip', type, id),
    put: (type: PjsipObjectType, id: string, fields: Record<string, string> | ConfigTuple[]) =>
      this.config.put('res_pjsip', type, id, fields),
    delete: (type: PjsipObjectType, id: string) => this.config.delete('res_pjsip', type, id),
  };
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

export function toQueryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    params.append(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** fetch fails with TypeError("fetch failed") whose cause carries the socket error's code. */
function errorCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    const cause = (err as { cause?: { message?: string } }).cause;
    return errorCode(err) ?? cause?.message ?? err.message;
  }
  return String(err);
}
