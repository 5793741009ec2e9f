/**
 * A thin typed ARI client on Node's fetch: the REST calls sip-as-rtmp needs (channels, bridges, dynamic
 * config, DTMF, playback) with typed errors. Events come from AriEventSocket (events.ts).
 *
 * Why our own: `ari-client` is unmaintained since 2019 and drags in deprecated, vulnerable dependencies;
 * the surface we use is small and worth typing precisely.
 */
import { AriConnectionError, ariErrorFromResponse } from './errors.js';
import { AriEventSocket, type AriEventSocketOptions } from './events.js';
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
  /** Per-request timeout (ms). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

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
  private readonly doFetch: typeof fetch;

  constructor(private readonly opts: AriClientOptions) {
    this.app = opts.app;
    this.base = opts.url.replace(/\/+$/, '') + '/ari';
    this.authHeader = 'Basic ' + Buffer.from(`${opts.user}:${opts.password}`).toString('base64');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.doFetch = opts.fetch ?? fetch;
  }

  /** A new event socket for this client's app and credentials (not yet connected). */
  eventSocket(extra: Partial<AriEventSocketOptions> = {}): AriEventSocket {
    return new AriEventSocket({ url: this.opts.url, user: this.opts.user, password: this.opts.password, app: this.app, ...extra });
  }

  /**
   * One REST call. Resolves to the parsed JSON body (undefined for 204), throws AriError for an HTTP error
   * and AriConnectionError when Asterisk can't be reached.
   */
  async request<T>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    const url = this.base + path + toQueryString(opts.query);
    const headers: Record<string, string> = { authorization: this.authHeader, accept: 'application/json' };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await this.doFetch(url, { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new AriConnectionError(method, path, describeFetchError(err), { cause: err });
    }
    const text = await res.text();
    if (!res.ok) throw ariErrorFromResponse(res.status, text, method, path);
    if (!text) return undefined as T;
    return JSON.parse(text) as T;
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
      this.request<void>('DELETE', `/channels/${enc(id)}`, { query: { reason } }),
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
    destroy: (id: string) => this.request<void>('DELETE', `/bridges/${enc(id)}`),
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
    stop: (id: string) => this.request<void>('DELETE', `/playbacks/${enc(id)}`),
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
      this.request<void>('DELETE', `/asterisk/config/dynamic/${enc(configClass)}/${enc(objectType)}/${enc(id)}`),
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

function describeFetchError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code) return cause.code;
    return cause?.message ?? err.message;
  }
  return String(err);
}
