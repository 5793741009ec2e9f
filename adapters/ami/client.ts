/**
 * A minimal read-only AMI (Asterisk Manager Interface) event client. ARI has no event for outbound
 * registration results; AMI's "Registry" event has them. Logs in, then only listens; reconnects with
 * backoff like the ARI socket.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { backoffDelay, DEFAULT_BACKOFF } from '../../plugin/lib/backoff.js';

export type AmiMessage = Record<string, string>;

export interface AmiEvents {
  event: [AmiMessage];
  open: [];
  close: [{ reason: string; retryInMs: number | undefined }];
}

const MAX_BUFFER = 256 * 1024;

/** Split an AMI byte stream into messages (CRLF lines, blank line between messages). Pure. */
export class AmiParser {
  private buf = '';

  push(chunk: string): AmiMessage[] {
    this.buf += chunk;
    if (this.buf.length > MAX_BUFFER) throw new Error('AMI message too large');
    const out: AmiMessage[] = [];
    let end: number;
    while ((end = this.buf.indexOf('\r\n\r\n')) >= 0) {
      const block = this.buf.slice(0, end);
      this.buf = this.buf.slice(end + 4);
      const msg: AmiMessage = {};
      for (const line of block.split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) msg[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
      }
      if (Object.keys(msg).length) out.push(msg);
    }
    return out;
  }
}

export class AmiClient extends EventEmitter<AmiEvents> {
  private socket: Socket | undefined;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private _loggedIn = false;

  constructor(private readonly opts: { host: string; port: number; user: string; password: string }) {
    super();
  }

  get loggedIn(): boolean {
    return this._loggedIn;
  }

  /** Connect (and keep reconnecting until close()); resolves on the first successful login. */
  start(timeoutMs = 10_000): Promise<void> {
    this.open();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`AMI login to ${this.opts.host}:${this.opts.port} did not succeed within ${timeoutMs} ms`)), timeoutMs);
      this.once('open', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): void {
    const socket = connect({ host: this.opts.host, port: this.opts.port });
    this.socket = socket;
    const parser = new AmiParser();
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(`Action: Login\r\nUsername: ${this.opts.user}\r\nSecret: ${this.opts.password}\r\nEvents: system\r\n\r\n`);
    });
    socket.on('data', (chunk: string) => {
      // The banner line ("Asterisk Call Manager/x") has no blank line after it: drop it.
      if (chunk.startsWith('Asterisk Call Manager')) chunk = chunk.slice(chunk.indexOf('\r\n') + 2);
      let msgs: AmiMessage[];
      try {
        msgs = parser.push(chunk);
      } catch (err) {
        socket.destroy(err as Error);
        return;
      }
      for (const m of msgs) {
        if (m.Response) {
          if (m.Response === 'Success' && !this._loggedIn) {
            this._loggedIn = true;
            this.attempt = 0;
            this.emit('open');
          } else if (m.Response === 'Error') {
            socket.destroy(new Error(`AMI login refused: ${m.Message ?? 'error'}`));
          }
        } else if (m.Event) this.emit('event', m);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this._loggedIn = false;
      this.socket = undefined;
      if (this.closed) return;
      const retryInMs = backoffDelay(this.attempt++, DEFAULT_BACKOFF);
      this.emit('close', { reason: 'connection closed', retryInMs });
      this.timer = setTimeout(() => this.open(), retryInMs);
    });
  }
}
