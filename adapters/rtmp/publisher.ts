/**
 * One live RTMP(S) publish: TCP (+TLS) → handshake → connect → releaseStream/FCPublish/createStream →
 * publish, then audio/video/data messages until close() or until the connection dies. No reconnects here:
 * a publisher is one connection (plus Adobe-auth reconnects during start); the owner decides whether to
 * start another, and keeps timestamps continuous across them.
 *
 * Every outgoing message is chunked into one buffer and written with one socket.write. The server's
 * protocol control (chunk size, window acks, peer bandwidth, pings) is answered here.
 * Nothing secret reaches an error message: targets are shown with describeTarget(), and the server's own
 * text is scrubbed of the user, password and stream name before it is kept.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ChunkReader, ChunkWriter } from '../../plugin/rtmp/chunk.js';
import { ClientFlowControl, type ControlReply } from '../../plugin/rtmp/flow-control.js';
import { ClientHandshake } from '../../plugin/rtmp/handshake.js';
import {
  adobeAuthStep,
  buildCommand,
  buildConnect,
  buildSetChunkSize,
  Csid,
  MessageType,
  parseMessage,
  statusInfo,
  type RtmpMessage,
  type StatusInfo,
} from '../../plugin/rtmp/messages.js';
import { describeTarget, type RtmpTarget } from '../../plugin/rtmp/url.js';

export type RtmpStage = 'tcp' | 'tls' | 'handshake' | 'connect' | 'createStream' | 'publish' | 'stream';

export class RtmpError extends Error {
  override readonly name = 'RtmpError';
  /** e.g. NetStream.Publish.BadName, NetConnection.Connect.Rejected, or a Node code (ECONNREFUSED, ETIMEDOUT). */
  readonly code?: string;
  /** The server's own reason text (scrubbed of credentials and the stream name), if it sent one. */
  readonly description?: string;

  constructor(
    readonly stage: RtmpStage,
    message: string,
    opts: { code?: string | undefined; description?: string | undefined; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    if (opts.code !== undefined) this.code = opts.code;
    if (opts.description !== undefined) this.description = opts.description;
  }
}

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

const DEFAULT_FLASHVER = 'FMLE/3.0 (compatible; sip-as-rtmp)';
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
  private stage: RtmpStage = 'tcp';
  private socket: Socket | undefined;
  private reader = new ChunkReader({ maxMessageSize: 1 << 20 });
  private writer = new ChunkWriter();
  private handshake: ClientHandshake | undefined;
  private pending: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private onSocketGone: (() => void) | undefined;
  /** A failure that arrived between two connections of start() (Adobe auth), for run() to throw. */
  private abortError: RtmpError | undefined;

  private streamId = 0;
  private nextTransaction = 1;
  private readonly transactions = new Map<number, 'connect' | 'releaseStream' | 'FCPublish' | 'createStream'>();
  private authParams: string | undefined;
  private authAnswered = false;

  /** Chunk-stream bytes received (the count acknowledgements report), and where we last acked. */
  private flow = new ClientFlowControl(this.stats);
  private peerChunkSize = 128;

  private readonly chunkSize: number;
  private readonly timeoutMs: number;
  private readonly described: string;

  constructor(private readonly opts: RtmpPublisherOptions) {
    super();
    this.chunkSize = opts.chunkSize ?? 4096;
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 128 || this.chunkSize > 0xffffff) {
      throw new RangeError(`chunkSize must be an integer in 128..16777215, got ${this.chunkSize}`);
    }
    this.timeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.described = describeTarget(opts.target);
  }

  get state(): RtmpPublisherState {
    return this._state;
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
      for (let connects = 1; ; connects++) {
        const result = await this.attempt();
        if (result.kind === 'published') return; // onCommand already switched to 'publishing'
        if (this.abortError) throw this.abortError;
        if (connects >= MAX_AUTH_CONNECTS) throw new RtmpError('connect', 'authentication did not complete', { code: 'NetConnection.Connect.Rejected' });
        this.authParams = result.authParams;
      }
    } catch (err) {
      this.clearTimer();
      this.dropSocket();
      this._state = 'closed';
      throw err;
    }
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
    this.stage = 'tcp';
    this.reader = new ChunkReader({ maxMessageSize: 1 << 20 });
    this.writer = new ChunkWriter();
    this.handshake = new ClientHandshake();
    this.transactions.clear();
    this.nextTransaction = 1;
    this.flow = new ClientFlowControl(this.stats);
    this.stats.connections++;

    let socket: Socket;
    if (this.opts.createSocket) {
      socket = this.opts.createSocket(t);
    } else if (t.secure) {
      socket = tlsConnect({
        host: t.host,
        port: t.port,
        // SNI must be a name, never an IP literal.
        ...(isIP(t.host) ? {} : { servername: t.host }),
        rejectUnauthorized: this.opts.tls?.rejectUnauthorized ?? true,
        ...(this.opts.tls?.ca !== undefined ? { ca: this.opts.tls.ca } : {}),
      });
    } else {
      socket = netConnect({ host: t.host, port: t.port });
    }
    this.socket = socket;
    socket.setNoDelay(true); // messages are written whole; Nagle would only add latency to small audio ones
    const secure = t.secure && !this.opts.createSocket;
    socket.once('connect', () => {
      socket.setKeepAlive(true, 10_000);
      if (secure) {
        this.stage = 'tls';
      } else {
        this.stage = 'handshake';
        this.send(this.handshake!.hello(), 0);
      }
    });
    if (secure) {
      socket.once('secureConnect', () => {
        this.stage = 'handshake';
        this.send(this.handshake!.hello(), 0);
      });
    }
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.fail(new RtmpError(this.stage, `${this.stage === 'tls' ? 'TLS' : 'connection'} error: ${this.scrub(err.message)}`, { code: err.code, cause: err }));
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

  // ------------------------------------------------------------------------------------------ inbound

  private onData(data: Buffer): void {
    if (this._state === 'closed') return;
    this.stats.bytesIn += data.length;
    try {
      if (this.handshake) {
        const done = this.handshake.push(data);
        if (!done) return;
        this.handshake = undefined;
        this.stage = 'connect';
        // C2, Set Chunk Size and connect leave together: the server reads them in one go.
        const setChunk = this.writer.encode(Csid.Control, MessageType.SetChunkSize, 0, 0, buildSetChunkSize(this.chunkSize));
        this.writer.chunkSize = this.chunkSize;
        this.transactions.set(this.nextTransaction++, 'connect');
        const connect = this.writer.encode(
          Csid.Command,
          MessageType.CommandAmf0,
          0,
          0,
          buildConnect({
            app: this.opts.target.app,
            tcUrl: this.opts.target.tcUrl,
            flashVer: this.opts.flashVer ?? DEFAULT_FLASHVER,
            ...(this.authParams ? { authParams: this.authParams } : {}),
          }),
        );
        this.send(Buffer.concat([done.c2, setChunk, connect]), 2);
        if (done.rest.length === 0) return;
        data = done.rest;
      }
      for (const m of this.reader.push(data)) {
        this.stats.messagesIn++;
        this.onMessage(parseMessage(m));
        if (!this.socket) return; // a message ended the connection
      }
      this.sendControl(this.flow.received(data.length));
    } catch (err) {
      const e = err as Error;
      this.fail(new RtmpError(this.stage, `protocol error from the server: ${this.scrub(e.message)}`, { code: 'EPROTO', cause: err }));
    }
  }

  private onMessage(m: RtmpMessage): void {
    this.sendControl(this.flow.onMessage(m)); // acks, windows, pings
    switch (m.kind) {
      case 'setChunkSize':
        this.peerChunkSize = m.size; // the reader already applied it
        return;
      case 'command':
        this.onCommand(m);
        return;
      default:
        return; // user control (Stream Begin / EOF...: informational for a publisher), abort (applied by the reader), data, media: nothing to do
    }
  }

  private onCommand(c: Extract<RtmpMessage, { kind: 'command' }>): void {
    const info = statusInfo(c);
    switch (c.name) {
      case '_result':
      case '_error': {
        const what = this.transactions.get(c.transactionId);
        this.transactions.delete(c.transactionId);
        const failed = c.name === '_error' || info.level === 'error';
        if (what === 'connect') return failed ? this.connectRejected(info) : this.afterConnect();
        if (what === 'createStream') {
          if (failed) return this.fail(this.serverError('createStream', info, 'createStream was refused'));
          const id = c.args[0];
          if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
            return this.fail(new RtmpError('createStream', 'createStream answered without a stream id', { code: 'EPROTO' }));
          }
          return this.publish(id);
        }
        return; // releaseStream / FCPublish: many servers answer _error ("no such method"); harmless
      }
      case 'onStatus':
        if (info.code === 'NetStream.Publish.Start' && this._state === 'connecting') {
          const p = this.pending;
          this.pending = undefined;
          this.stage = 'stream';
          // Switch now, not when start() resumes: a failure in the same read must be reported as 'close'.
          this._state = 'publishing';
          this.clearTimer();
          p?.resolve({ kind: 'published' });
          return;
        }
        if (info.level === 'error') {
          const stage: RtmpStage = this._state === 'connecting' ? 'publish' : 'stream';
          this.fail(this.serverError(stage, info, `the server refused ${stage === 'publish' ? 'the publish' : 'the stream'}`));
        }
        return;
      case 'close':
        this.fail(this.serverError(this.stage, { code: 'NetConnection.Connect.Closed', ...info }, 'the server closed the NetConnection'));
        return;
      default:
        return; // onBWDone, onFCPublish, |RtmpSampleAccess...: nothing a publisher needs to answer
    }
  }

  private connectRejected(info: StatusInfo): void {
    const t = this.opts.target;
    const desc = info.description ?? '';
    if (desc.includes('authmod=')) {
      if (t.user === undefined) {
        return this.fail(this.serverError('connect', info, 'the server requires authentication; put user:password@ in the RTMP URL'));
      }
      const step = adobeAuthStep(desc, t.user, t.password ?? '', this.authAnswered);
      if (step?.kind === 'retry') {
        this.authAnswered = step.authParams.includes('&response=');
        // The server hangs up after a rejected connect: drop this connection quietly and dial again.
        const p = this.pending;
        this.pending = undefined;
        this.dropSocket();
        p?.resolve({ kind: 'auth', authParams: step.authParams });
        return;
      }
      if (step?.kind === 'fail') return this.fail(this.serverError('connect', info, `authentication failed: ${step.reason}`));
    }
    this.fail(this.serverError('connect', info, 'the server rejected connect'));
  }

  private afterConnect(): void {
    this.stage = 'createStream';
    const name = this.opts.target.streamName;
    const release = this.nextTransaction++;
    const fcPublish = this.nextTransaction++;
    const create = this.nextTransaction++;
    this.transactions.set(release, 'releaseStream').set(fcPublish, 'FCPublish').set(create, 'createStream');
    // FFmpeg and OBS send these three together; servers that stream to CDNs expect the FC* calls.
    this.send(
      Buffer.concat([
        this.writer.encode(Csid.Command, MessageType.CommandAmf0, 0, 0, buildCommand('releaseStream', release, null, name)),
        this.writer.encode(Csid.Command, MessageType.CommandAmf0, 0, 0, buildCommand('FCPublish', fcPublish, null, name)),
        this.writer.encode(Csid.Command, MessageType.CommandAmf0, 0, 0, buildCommand('createStream', create, null)),
      ]),
      3,
    );
  }

  private publish(streamId: number): void {
    this.stage = 'publish';
    this.streamId = streamId;
    this.sendMessage(Csid.Stream, MessageType.CommandAmf0, streamId, buildCommand('publish', 0, null, this.opts.target.streamName, 'live'));
  }

  // ----------------------------------------------------------------------------------------- outbound

  /** A data message (type 18), e.g. flv.onMetaData(...): "@setDataFrame", "onMetaData", {...}. */
  writeMetadata(body: Buffer): void {
    if (!this.canWrite()) return;
    this.sendMessage(Csid.Stream, MessageType.DataAmf0, this.streamId, body);
  }

  /** An FLV audio tag body (type 8) at an absolute timestamp in ms (wraps at 2^32). */
  writeAudio(timestampMs: number, body: Buffer): void {
    if (!this.canWrite()) return;
    this.stats.audioMessages++;
    this.sendMessage(Csid.Audio, MessageType.Audio, this.streamId, body, timestampMs);
  }

  /** An FLV video tag body (type 9) at an absolute timestamp in ms (the decode time; cts is in the body). */
  writeVideo(timestampMs: number, body: Buffer): void {
    if (!this.canWrite()) return;
    this.stats.videoMessages++;
    this.sendMessage(Csid.Video, MessageType.Video, this.streamId, body, timestampMs);
  }

  private canWrite(): boolean {
    if (this._state === 'publishing' && this.socket) return true;
    this.stats.droppedMessages++;
    return false;
  }

  private sendControl(r: ControlReply | undefined): void {
    if (r) this.sendMessage(Csid.Control, r.typeId, 0, r.body);
  }

  private sendMessage(csid: number, typeId: number, streamId: number, payload: Buffer, timestamp = 0): void {
    this.send(this.writer.encode(csid, typeId, streamId, timestamp, payload), 1);
  }

  private send(bytes: Buffer, messages: number): void {
    const s = this.socket;
    if (!s || s.destroyed) return;
    s.write(bytes);
    this.stats.bytesOut += bytes.length;
    this.stats.messagesOut += messages;
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
      const name = this.opts.target.streamName;
      const unpublish = this.nextTransaction++;
      const del = this.nextTransaction++;
      this.send(
        Buffer.concat([
          this.writer.encode(Csid.Command, MessageType.CommandAmf0, 0, 0, buildCommand('FCUnpublish', unpublish, null, name)),
          this.writer.encode(Csid.Command, MessageType.CommandAmf0, 0, 0, buildCommand('deleteStream', del, null, this.streamId)),
        ]),
        2,
      );
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

  private serverError(stage: RtmpStage, info: StatusInfo, fallback: string): RtmpError {
    const description = info.description !== undefined ? this.scrub(info.description) : undefined;
    const reason = [info.code, description].filter(Boolean).join(': ');
    return new RtmpError(stage, reason ? `${fallback} (${reason})` : fallback, { code: info.code, description });
  }

  /** Remove secrets from text that came from the server or the OS before it goes into an error. */
  private scrub(text: string): string {
    const t = this.opts.target;
    const secrets = [t.password, t.streamName, t.streamName.split('?')[0], t.user].filter((s): s is string => !!s && s.length >= 3);
    let out = text;
    for (const s of secrets) out = out.split(s).join('***');
    return out;
  }

  toJSON(): Record<string, unknown> {
    return {
      target: this.described,
      state: this._state,
      stage: this.stage,
      streamId: this.streamId,
      peerChunkSize: this.peerChunkSize,
      peerWindow: this.flow.peerWindow,
      bufferedBytes: this.bufferedBytes,
      stats: { ...this.stats },
    };
  }
}

function errorOpts(e: RtmpError): { code?: string; description?: string; cause?: unknown } {
  return { code: e.code, description: e.description, cause: e.cause };
}
