/**
 * The ARI event WebSocket (/ari/events), kept open: reconnects with exponential backoff and jitter when
 * Asterisk restarts or the socket drops, and pings to notice a half-dead TCP connection.
 * Events are parsed once here and emitted typed, by their ARI name, and all together as 'event'.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from '../../plugin/lib/backoff.js';
import { ARI_EVENT_TYPES, type AriEvent } from './types.js';

export interface AriEventSocketOptions {
  /** Asterisk's HTTP base, e.g. http://127.0.0.1:8088 */
  url: string;
  user: string;
  password: string;
  app: string;
  /** Also receive events for channels/bridges the app does not own. */
  subscribeAll?: boolean;
  backoff?: BackoffOptions;
  random?: () => number;
  /** Ping period; a connection that misses a pong for this long is dropped and reopened. */
  pingIntervalMs?: number;
}

type ByType = { [E in AriEvent as E['type']]: [E] };

export type AriEventSocketEvents = ByType & {
  /** Every known event, in arrival order. */
  event: [AriEvent];
  /** The socket is open (first time and after each reconnect). */
  open: [{ reconnect: boolean }];
  /** The socket closed; `retryInMs` is undefined once close() was called. */
  close: [{ code: number; reason: string; retryInMs: number | undefined }];
  /** A message that was not JSON or had no type, or an event type we don't model. */
  ignored: [{ reason: string }];
};

export type AriSocketState = 'idle' | 'connecting' | 'open' | 'waiting' | 'closed';

export class AriEventSocket extends EventEmitter<AriEventSocketEvents> {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private awaitingPong = false;
  private everOpened = false;
  private _state: AriSocketState = 'idle';

  /** Counters for stats and metrics. */
  readonly stats = { opens: 0, closes: 0, events: 0, ignored: 0 };

  constructor(private readonly opts: AriEventSocketOptions) {
    super();
  }

  get state(): AriSocketState {
    return this._state;
  }

  /** Start connecting (and keep reconnecting until close()). Resolves when first open. */
  connect(timeoutMs = 10_000): Promise<void> {
    if (this._state === 'closed') return Promise.reject(new Error('AriEventSocket was closed'));
    if (this._state === 'idle') this.open();
    return this.waitOpen(timeoutMs);
  }

  /** Resolves when the socket is (or next becomes) open. */
  waitOpen(timeoutMs = 10_000): Promise<void> {
    if (this._state === 'open') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('open', onOpen);
        reject(new Error(`ARI event socket not open after ${timeoutMs} ms (state ${this._state})`));
      }, timeoutMs);
      const onOpen = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once('open', onOpen);
    });
  }

  /** Stop for good: close the socket, cancel any retry and ping timer. */
  close(): void {
    this._state = 'closed';
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.retryTimer = this.pingTimer = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
    }
  }

  private open(): void {
    this._state = 'connecting';
    const wsUrl = new URL(this.opts.url.replace(/^http/, 'ws'));
    wsUrl.pathname = wsUrl.pathname.replace(/\/+$/, '') + '/ari/events';
    wsUrl.searchParams.set('app', this.opts.app);
    if (this.opts.subscribeAll) wsUrl.searchParams.set('subscribeAll', 'true');
    // Credentials in a header, never in the URL (URLs end up in logs).
    const ws = new WebSocket(wsUrl, {
      headers: { authorization: 'Basic ' + Buffer.from(`${this.opts.user}:${this.opts.password}`).toString('base64') },
      handshakeTimeout: 5_000,
    });
    this.ws = ws;
    ws.on('open', () => {
      this._state = 'open';
      this.attempt = 0;
      this.stats.opens++;
      const reconnect = this.everOpened;
      this.everOpened = true;
      this.startPing(ws);
      this.emit('open', { reconnect });
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => {
      this.awaitingPong = false;
    });
    // 'error' is always followed by 'close'; reconnect happens there.
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      // e.g. 401 for bad credentials: surface the status in the close reason.
      ws.emit('close', 4000 + (res.statusCode ?? 0), Buffer.from(`HTTP ${res.statusCode} from ARI`));
      ws.terminate();
    });
    let closed = false;
    ws.on('close', (code, reasonBuf) => {
      if (closed) return;
      closed = true;
      this.onClose(ws, code, reasonBuf.toString());
    });
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return; // an old socket
    this.ws = undefined;
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    this.stats.closes++;
    if (this._state === 'closed') return;
    const retryInMs = backoffDelay(this.attempt++, this.opts.backoff ?? DEFAULT_BACKOFF, this.opts.random);
    this._state = 'waiting';
    this.emit('close', { code, reason, retryInMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this._state === 'waiting') this.open();
    }, retryInMs);
  }

  private startPing(ws: WebSocket): void {
    const every = this.opts.pingIntervalMs ?? 15_000;
    this.awaitingPong = false;
    this.pingTimer = setInterval(() => {
      if (this.awaitingPong) {
        ws.terminate(); // → 'close' → reconnect
        return;
      }
      this.awaitingPong = true;
      ws.ping();
    }, every);
    this.pingTimer.unref();
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    const event = parseAriEvent(data, isBinary);
    if (typeof event === 'string') {
      this.stats.ignored++;
      this.emit('ignored', { reason: event });
      return;
    }
    this.stats.events++;
    this.emit('event', event);
    // The per-type channel: typed by ByType.
    (this.emit as (name: string, e: AriEvent) => boolean)(event.type, event);
  }
}

/** Parse one WebSocket message. Returns the event, or a string saying why it was ignored. */
export function parseAriEvent(data: WebSocket.RawData, isBinary = false): AriEvent | string {
  if (isBinary) return 'binary message';
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString());
  } catch {
    return 'not JSON';
  }
  if (!parsed || typeof parsed !== 'object' || typeof (parsed as { type?: unknown }).type !== 'string') {
    return 'no event type';
  }
  const type = (parsed as { type: string }).type;
  if (!ARI_EVENT_TYPES.has(type)) return `unmodelled event ${type.slice(0, 40)}`;
  return parsed as AriEvent;
}
