/**
 * One live RTMP(S) publish over TCP (+TLS): the socket side of plugin/rtmp/client-session.ts, which does
 * the protocol (handshake, connect, createStream, publish, media, protocol control). Here: dialing, TLS,
 * the connect timeout, the Adobe-auth reconnects during start, and ending the connection. No reconnects
 * after start: a publisher is one connection; the owner decides whether to start another, and keeps
 * timestamps continuous across them.
 *
 * Each buffer the session hands over is one socket.write, and the writes of one task (a tick of the media
 * clock: a call's audio frame and its video frame) leave together in one writev: the socket is corked at
 * the first and uncorked on process.nextTick. At 200 calls the RTMP writes were the app's largest cost (37 %
 * of its CPU samples, nearly all the write syscall itself), one per message. Nothing secret reaches an error message:
 * targets are shown with describeTarget(), and OS and server text is scrubbed before it is kept.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { DEFAULT_OUT_CHUNK_SIZE, RtmpClientSession, type ClientSessionHandlers } from '../../plugin/rtmp/client-session.js';
import { RtmpError, scrubSecrets, type RtmpStage } from '../../plugin/rtmp/errors.js';
import { describeTarget, type RtmpTarget } from '../../plugin/rtmp/url.js';
import { connectFailure } from '../../plugin/media/output/sink.js';

// Importers take the error type from here, beside the publisher that raises it.
export { RtmpError, type RtmpStage } from '../../plugin/rtmp/errors.js';

export interface RtmpPublisherOptions {
  target: RtmpTarget;
  /** TCP + TLS + handshake + connect + publish, default 10000. */
  connectTimeoutMs?: number;
  /** Outgoing chunk size, default 4096 (announced with Set Chunk Size before connect). */
  chunkSize?: number;
  /** rtmps: the server certificate is verified unless rejectUnauthorized is false. */
  tls?: { rejectUnauthorized?: boolean; ca?: string | Buffer };
  flashVer?: string;
  /** How long close() waits for the server to hang up after our FIN before destroying the socket. */
  closeTimeoutMs?: number;
  /** The transport (tests, proxies). Default: net.connect / tls.connect to target.host:port. */
  createSocket?: (target: RtmpTarget) => Socket;
  /**
   * The address to connect to, checked (plugin/calls/targets.ts): asked at each start, so a name that now
   * resolves somewhere forbidden is refused, and the connection goes to the address that was checked.
   * Rejects with a code (EFORBIDDEN, ENOTFOUND, ...). Default: the OS resolves target.host.
   */
  connectAddress?: (host: string, port: number) => Promise<string>;
}

export interface RtmpPublisherStats {
  bytesOut: number;
  messagesOut: number;
  bytesIn: number;
  messagesIn: number;
  acksSent: number;
  acksReceived: number;
  pingsAnswered: number;
  audioMessages: number;
  videoMessages: number;
  /** Media written while not publishing (before start resolved, or after the connection ended). */
  droppedMessages: number;
  /** TCP connections opened (more than one when Adobe authentication reconnects). */
  connections: number;
}

export type RtmpPublisherState = 'idle' | 'connecting' | 'publishing' | 'closing' | 'closed';

export interface RtmpPublisherEvents {
  /** Once, after a successful start(): the connection ended (error set unless close() ended it). */
  close: [{ error?: RtmpError }];
}

/** The end of a task's writes: they go out in one writev. */
const uncork = (s: Socket): void => {
  if (!s.destroyed) s.uncork();
};

/** Adobe authentication needs three connections: plain, "need auth", challenge response. */
const MAX_AUTH_CONNECTS = 3;

type Pending = { resolve: (r: AttemptResult) => void; reject: (e: RtmpError) => void };
type AttemptResult = { kind: 'published' } | { kind: 'auth'; authParams: string };

export class RtmpPublisher extends EventEmitter<RtmpPublisherEvents> {
  readonly stats: RtmpPublisherStats = {
    bytesOut: 0,
    messagesOut: 0,
    bytesIn: 0,
    messagesIn: 0,
    acksSent: 0,
    acksReceived: 0,
    pingsAnswered: 0,
    audioMessages: 0,
    videoMessages: 0,
    droppedMessages: 0,
    connections: 0,
  };

  private _state: RtmpPublisherState = 'idle';
  /** The stage until the session starts (then it is the session's). */
  private transportStage: 'tcp' | 'tls' = 'tcp';
  private socket: Socket | undefined;
  /** The current connection's protocol, from the moment the transport is up; kept after it ends, for toJSON. */
  private session: RtmpClientSession | undefined;
  private pending: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private onSocketGone: (() => void) | undefined;
  /** A failure that arrived between two connections of start() (Adobe auth), for run() to throw. */
  private abortError: RtmpError | undefined;
  /** What the last Adobe challenge asked the next connect to carry. */
  private authParams: string | undefined;
  /** Where the transport connects (connectAddress's answer), else target.host. */
  private address: string | undefined;

  private readonly chunkSize: number;
  private readonly timeoutMs: number;
  private readonly described: string;
  private readonly handlers: ClientSessionHandlers = {
    send: (bytes, messages) => this.send(bytes, messages),
    published: () => this.published(),
    reconnect: (authParams) => this.authChallenge(authParams),
    failed: (error) => this.fail(error),
  };

  constructor(private readonly opts: RtmpPublisherOptions) {
    super();
    this.chunkSize = opts.chunkSize ?? DEFAULT_OUT_CHUNK_SIZE;
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 128 || this.chunkSize > 0xffffff) {
      throw new RangeError(`chunkSize must be an integer in 128..16777215, got ${this.chunkSize}`);
    }
    this.timeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.described = describeTarget(opts.target);
  }

  get state(): RtmpPublisherState {
    return this._state;
  }

  private get stage(): RtmpStage {
    return this.session?.stage ?? this.transportStage;
  }

  /** Bytes queued in the socket (user space) not yet handed to the kernel: the backpressure signal. */
  get bufferedBytes(): number {
    return this.socket?.writableLength ?? 0;
  }

  /** Resolves on onStatus NetStream.Publish.Start; rejects with an RtmpError. Calling it again returns the same promise. */
  start(): Promise<void> {
    this.startPromise ??= this.run();
    return this.startPromise;
  }

  private async run(): Promise<void> {
    if (this._state !== 'idle') throw new RtmpError('tcp', 'publisher was closed before start()', { code: 'ECANCELED' });
    this._state = 'connecting';
    this.timer = setTimeout(() => {
      this.fail(new RtmpError(this.stage, `no answer within ${this.timeoutMs} ms during ${this.stage}`, { code: 'ETIMEDOUT' }));
    }, this.timeoutMs);
    try {
      if (this.opts.connectAddress) {
        const t = this.opts.target;
        this.address = await this.opts.connectAddress(t.host, t.port).catch((err: NodeJS.ErrnoException) => {
          throw new RtmpError('tcp', err.message, { code: err.code ?? 'EDNS' });
        });
        if (this._state !== 'connecting') throw new RtmpError('tcp', 'closed during tcp', { code: 'ECANCELED' });
      }
      for (let connects = 1; ; connects++) {
        const result = await this.attempt();
        if (result.kind === 'published') return; // published() already switched to 'publishing'
        if (this.abortError) throw this.abortError;
        if (connects >= MAX_AUTH_CONNECTS) throw new RtmpError('connect', 'authentication did not complete', { code: 'NetConnection.Connect.Rejected' });
        this.authParams = result.authParams;
      }
    } catch (err) {
      this.clearTimer();
      this.dropSocket();
      this._state = 'closed';
      throw this.asConnectFailure(err as RtmpError);
    }
  }

  /**
   * Before the RTMP protocol has started (TCP, TLS, handshake), the user sees "could not connect to
   * host:port: <class>" and nothing the peer sent: otherwise refused, silent and non-RTMP ports would be
   * told apart in detail, which makes a port scanner. A refusal of ours keeps its own sentence.
   */
  private asConnectFailure(err: RtmpError): RtmpError {
    if (!(err instanceof RtmpError) || !['tcp', 'tls', 'handshake'].includes(err.stage) || err.code === 'ECANCELED') return err;
    const t = this.opts.target;
    const msg = err.code === 'EFORBIDDEN' ? err.message : connectFailure(t.host, t.port, err);
    return new RtmpError(err.stage, msg, { code: err.code, cause: err });
  }

  /** One TCP connection up to publish start (or to an Adobe-auth challenge that needs a new connection). */
  private attempt(): Promise<AttemptResult> {
    return new Promise<AttemptResult>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.open();
    });
  }

  private open(): void {
    const t = this.opts.target;
    this.transportStage = 'tcp';
    this.session = undefined;
    this.stats.connections++;

    let socket: Socket;
    if (this.opts.createSocket) {
      socket = this.opts.createSocket(t);
    } else if (t.secure) {
      socket = tlsConnect({
        host: this.address ?? t.host,
        port: t.port,
        // SNI must be a name, never an IP literal.
        ...(isIP(t.host) ? {} : { servername: t.host }),
        rejectUnauthorized: this.opts.tls?.rejectUnauthorized ?? true,
        ...(this.opts.tls?.ca !== undefined ? { ca: this.opts.tls.ca } : {}),
      });
    } else {
      socket = netConnect({ host: this.address ?? t.host, port: t.port });
    }
    this.socket = socket;
    socket.setNoDelay(true); // messages are written whole; Nagle would only add latency to small audio ones
    const secure = t.secure && !this.opts.createSocket;
    socket.once('connect', () => {
      socket.setKeepAlive(true, 10_000);
      if (secure) this.transportStage = 'tls';
      else this.beginSession();
    });
    if (secure) socket.once('secureConnect', () => this.beginSession());
    socket.on('data', (d: Buffer) => {
      if (this._state === 'closed') return;
      this.stats.bytesIn += d.length;
      this.session?.receive(d);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const what = this.stage === 'tls' ? 'TLS' : 'connection';
      this.fail(new RtmpError(this.stage, `${what} error: ${scrubSecrets(t, err.message)}`, { code: err.code, cause: err }));
    });
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      if (this.onSocketGone) {
        this.onSocketGone();
        return;
      }
      // No code: a clean FIN is not a reset, and callers show the message when there is no code.
      this.fail(new RtmpError(this.stage, `server closed the connection during ${this.stage}`));
    });
  }

  /** The transport is up: the protocol starts with the handshake. */
  private beginSession(): void {
    this.session = new RtmpClientSession(
      {
        target: this.opts.target,
        chunkSize: this.chunkSize,
        ...(this.opts.flashVer !== undefined ? { flashVer: this.opts.flashVer } : {}),
        ...(this.authParams !== undefined ? { authParams: this.authParams } : {}),
        counters: this.stats,
      },
      this.handlers,
    );
    this.session.hello();
  }

  // ------------------------------------------------------------------------------ what the session says

  private published(): void {
    if (this._state !== 'connecting') return;
    const p = this.pending;
    this.pending = undefined;
    // Switch now, not when start() resumes: a failure in the same read must be reported as 'close'.
    this._state = 'publishing';
    this.clearTimer();
    p?.resolve({ kind: 'published' });
  }

  /** Adobe auth: the server hangs up after a rejected connect, so drop this connection quietly and dial again. */
  private authChallenge(authParams: string): void {
    const p = this.pending;
    this.pending = undefined;
    this.dropSocket();
    p?.resolve({ kind: 'auth', authParams });
  }

  private send(bytes: Buffer, messages: number): void {
    const s = this.socket;
    if (!s || s.destroyed) return;
    if (s.writableCorked === 0) {
      s.cork();
      process.nextTick(uncork, s);
    }
    s.write(bytes);
    this.stats.bytesOut += bytes.length;
    this.stats.messagesOut += messages;
  }

  // -------------------------------------------------------------------------------------------- media

  /** A data message (type 18), e.g. flv.onMetaData(...): "@setDataFrame", "onMetaData", {...}. */
  writeMetadata(body: Buffer): void {
    this.writable()?.writeMetadata(body);
  }

  /** An FLV audio tag body (type 8) at an absolute timestamp in ms (wraps at 2^32). */
  writeAudio(timestampMs: number, body: Buffer): void {
    const s = this.writable();
    if (!s) return;
    this.stats.audioMessages++;
    s.writeAudio(timestampMs, body);
  }

  /** An FLV video tag body (type 9) at an absolute timestamp in ms (the decode time; cts is in the body). */
  writeVideo(timestampMs: number, body: Buffer): void {
    const s = this.writable();
    if (!s) return;
    this.stats.videoMessages++;
    s.writeVideo(timestampMs, body);
  }

  /** The session to write media on, or undefined (and the message counted as dropped) when not publishing. */
  private writable(): RtmpClientSession | undefined {
    if (this._state === 'publishing' && this.socket && this.session) return this.session;
    this.stats.droppedMessages++;
    return undefined;
  }

  // ------------------------------------------------------------------------------------------- ending

  /** FCUnpublish + deleteStream, then end the connection. Idempotent; releases the socket and every timer. */
  close(): Promise<void> {
    this.closePromise ??= this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    if (this._state === 'idle' || this._state === 'closed') {
      this._state = 'closed';
      return;
    }
    if (this._state === 'connecting') {
      this.fail(new RtmpError(this.stage, `closed during ${this.stage}`, { code: 'ECANCELED' }));
      return;
    }
    this._state = 'closing';
    const socket = this.socket;
    if (socket && !socket.destroyed) {
      this.session?.unpublish();
      // Let those reach the server: end() flushes, and the server answers our FIN by closing.
      await new Promise<void>((resolve) => {
        const grace = setTimeout(() => socket.destroy(), this.opts.closeTimeoutMs ?? 2000);
        this.onSocketGone = () => {
          clearTimeout(grace);
          resolve();
        };
        socket.end();
      });
    }
    this.dropSocket();
    this._state = 'closed';
    this.emit('close', {});
  }

  /** The end of a connection that wasn't asked for: reject start(), or report the broken stream. */
  private fail(error: RtmpError): void {
    if (this._state === 'connecting') {
      const p = this.pending;
      this.pending = undefined;
      this.dropSocket();
      this.clearTimer();
      if (p) p.reject(error);
      else this.abortError ??= error;
    } else if (this._state === 'publishing') {
      this._state = 'closed';
      this.dropSocket();
      this.emit('close', { error: error.stage === 'stream' ? error : new RtmpError('stream', error.message, errorOpts(error)) });
    }
  }

  private dropSocket(): void {
    this.session?.detach(); // stop reading what is left of the current read
    const s = this.socket;
    this.socket = undefined;
    this.onSocketGone = undefined;
    if (!s) return;
    s.removeAllListeners('data');
    s.removeAllListeners('close');
    s.removeAllListeners('error');
    s.on('error', () => {}); // late errors from a socket we already gave up on
    s.destroy();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  toJSON(): Record<string, unknown> {
    return {
      target: this.described,
      state: this._state,
      stage: this.stage,
      streamId: this.session?.streamId ?? 0,
      peerChunkSize: this.session?.peerChunkSize ?? 128,
      peerWindow: this.session?.peerWindow ?? 0,
      bufferedBytes: this.bufferedBytes,
      stats: { ...this.stats },
    };
  }
}

function errorOpts(e: RtmpError): { code?: string; description?: string; cause?: unknown } {
  return { code: e.code, description: e.description, cause: e.cause };
}
