/**
 * The client side of one RTMP publish connection, without the connection: handshake → Set Chunk Size +
 * connect → releaseStream/FCPublish/createStream → publish, then media until unpublish(). It takes the
 * bytes received (receive) and reports through handlers: bytes to send, published, a failure, or an Adobe
 * auth challenge that needs a new connection. No sockets, no timers: the owner (adapters/rtmp/publisher.ts)
 * opens the connection, times it out and decides what a failure ends. One instance per connection.
 *
 * Every outgoing write is one buffer (a message chunked whole, or messages the server reads together),
 * so the owner can hand each to one socket.write. The server's protocol control (chunk size, window acks,
 * peer bandwidth, pings) is answered here. Server text is scrubbed of secrets before it reaches an error.
 */
import { ChunkReader, ChunkWriter } from './chunk.js';
import { RtmpError, scrubSecrets, type RtmpStage } from './errors.js';
import { ClientFlowControl, type ControlReply, type FlowControlCounters } from './flow-control.js';
import { ClientHandshake } from './handshake.js';
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
} from './messages.js';
import type { RtmpTarget } from './url.js';

/** The protocol's stages: 'tcp' and 'tls' belong to the transport, before a session starts. */
export type SessionStage = Exclude<RtmpStage, 'tcp' | 'tls'>;

export interface SessionCounters extends FlowControlCounters {
  messagesIn: number;
}

export interface ClientSessionOptions {
  target: RtmpTarget;
  /** Outgoing chunk size, announced with Set Chunk Size before connect; default 4096. */
  chunkSize?: number;
  flashVer?: string;
  /** Adobe auth: the parameters the previous connection's challenge asked for (ClientSessionHandlers.reconnect). */
  authParams?: string;
  /** Where to count (the owner's stats object), else its own. */
  counters?: SessionCounters;
}

export interface ClientSessionHandlers {
  /** Bytes for the connection, one write; `messages` is how many RTMP messages they hold (0 for handshake bytes). */
  send(bytes: Buffer, messages: number): void;
  /** onStatus NetStream.Publish.Start: media may flow. */
  published(streamId: number): void;
  /** Adobe auth: the server refused connect with a challenge and hangs up; connect again, on a new connection, with these. */
  reconnect(authParams: string): void;
  /** A refusal or a protocol error (the server's text scrubbed). The owner decides whether it ends anything. */
  failed(error: RtmpError): void;
}

export const DEFAULT_OUT_CHUNK_SIZE = 4096;
const DEFAULT_FLASHVER = 'FMLE/3.0 (compatible; sip-as-rtmp)';

export class RtmpClientSession {
  private _stage: SessionStage = 'handshake';
  private handshake: ClientHandshake | undefined = new ClientHandshake();
  private readonly reader = new ChunkReader({ maxMessageSize: 1 << 20 });
  private readonly writer = new ChunkWriter();
  private readonly flow: ClientFlowControl;
  private readonly counters: SessionCounters;
  private readonly chunkSize: number;
  private nextTransaction = 1;
  private readonly transactions = new Map<number, 'connect' | 'releaseStream' | 'FCPublish' | 'createStream'>();
  private _streamId = 0;
  private _peerChunkSize = 128;
  private detached = false;

  constructor(
    private readonly opts: ClientSessionOptions,
    private readonly on: ClientSessionHandlers,
  ) {
    this.chunkSize = opts.chunkSize ?? DEFAULT_OUT_CHUNK_SIZE;
    this.counters = opts.counters ?? { messagesIn: 0, acksSent: 0, acksReceived: 0, pingsAnswered: 0 };
    this.flow = new ClientFlowControl(this.counters);
  }

  get stage(): SessionStage {
    return this._stage;
  }
  get streamId(): number {
    return this._streamId;
  }
  get peerChunkSize(): number {
    return this._peerChunkSize;
  }
  /** The server's acknowledgement window (0 until it sets one). */
  get peerWindow(): number {
    return this.flow.peerWindow;
  }

  /** C0 + C1: as soon as the transport is up. */
  hello(): void {
    this.on.send(this.handshake!.hello(), 0);
  }

  /** The owner gave up on the connection: whatever is still being read, or arrives, is ignored. */
  detach(): void {
    this.detached = true;
  }

  // ------------------------------------------------------------------------------------------ inbound

  receive(data: Buffer): void {
    if (this.detached) return;
    try {
      if (this.handshake) {
        const done = this.handshake.push(data);
        if (!done) return;
        this.handshake = undefined;
        this._stage = 'connect';
        this.connect(done.c2);
        if (done.rest.length === 0) return;
        data = done.rest;
      }
      for (const m of this.reader.push(data)) {
        this.counters.messagesIn++;
        this.onMessage(parseMessage(m));
        if (this.detached) return; // a message ended the connection
      }
      this.sendControl(this.flow.received(data.length));
    } catch (err) {
      const e = err as Error;
      this.on.failed(new RtmpError(this._stage, `protocol error from the server: ${this.scrub(e.message)}`, { code: 'EPROTO', cause: err }));
    }
  }

  private onMessage(m: RtmpMessage): void {
    this.sendControl(this.flow.onMessage(m)); // acks, windows, pings
    switch (m.kind) {
      case 'setChunkSize':
        this._peerChunkSize = m.size; // the reader already applied it
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
          if (failed) return this.on.failed(this.serverError('createStream', info, 'createStream was refused'));
          const id = c.args[0];
          if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
            return this.on.failed(new RtmpError('createStream', 'createStream answered without a stream id', { code: 'EPROTO' }));
          }
          return this.publish(id);
        }
        return; // releaseStream / FCPublish: many servers answer _error ("no such method"); harmless
      }
      case 'onStatus':
        if (info.code === 'NetStream.Publish.Start' && this._stage !== 'stream') {
          this._stage = 'stream';
          this.on.published(this._streamId);
          return;
        }
        if (info.level === 'error') {
          const stage: RtmpStage = this._stage === 'stream' ? 'stream' : 'publish';
          this.on.failed(this.serverError(stage, info, `the server refused ${stage === 'publish' ? 'the publish' : 'the stream'}`));
        }
        return;
      case 'close':
        this.on.failed(this.serverError(this._stage, { code: 'NetConnection.Connect.Closed', ...info }, 'the server closed the NetConnection'));
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
        return this.on.failed(this.serverError('connect', info, 'the server requires authentication; put user:password@ in the RTMP URL'));
      }
      // Answered already if this connection carries a challenge response: a second challenge means it was wrong.
      const answered = this.opts.authParams?.includes('&response=') ?? false;
      const step = adobeAuthStep(desc, t.user, t.password ?? '', answered);
      if (step?.kind === 'retry') return this.on.reconnect(step.authParams); // the server hangs up after a rejected connect
      if (step?.kind === 'fail') return this.on.failed(this.serverError('connect', info, `authentication failed: ${step.reason}`));
    }
    this.on.failed(this.serverError('connect', info, 'the server rejected connect'));
  }

  // ------------------------------------------------------------------------------------ command steps

  private connect(c2: Buffer): void {
    // C2, Set Chunk Size and connect leave together: the server reads them in one go.
    const setChunk = this.writer.encode(Csid.Control, MessageType.SetChunkSize, 0, 0, buildSetChunkSize(this.chunkSize));
    this.writer.chunkSize = this.chunkSize;
    this.transactions.set(this.nextTransaction++, 'connect');
    const connect = this.command(
      buildConnect({
        app: this.opts.target.app,
        tcUrl: this.opts.target.tcUrl,
        flashVer: this.opts.flashVer ?? DEFAULT_FLASHVER,
        ...(this.opts.authParams ? { authParams: this.opts.authParams } : {}),
      }),
    );
    this.on.send(Buffer.concat([c2, setChunk, connect]), 2);
  }

  private afterConnect(): void {
    this._stage = 'createStream';
    const name = this.opts.target.streamName;
    const release = this.nextTransaction++;
    const fcPublish = this.nextTransaction++;
    const create = this.nextTransaction++;
    this.transactions.set(release, 'releaseStream').set(fcPublish, 'FCPublish').set(create, 'createStream');
    // FFmpeg and OBS send these three together; servers that stream to CDNs expect the FC* calls.
    this.on.send(
      Buffer.concat([
        this.command(buildCommand('releaseStream', release, null, name)),
        this.command(buildCommand('FCPublish', fcPublish, null, name)),
        this.command(buildCommand('createStream', create, null)),
      ]),
      3,
    );
  }

  private publish(streamId: number): void {
    this._stage = 'publish';
    this._streamId = streamId;
    this.sendMessage(Csid.Stream, MessageType.CommandAmf0, streamId, buildCommand('publish', 0, null, this.opts.target.streamName, 'live'));
  }

  /** FCUnpublish + deleteStream in one write: what a publisher says before it hangs up. */
  unpublish(): void {
    const unpublish = this.nextTransaction++;
    const del = this.nextTransaction++;
    this.on.send(
      Buffer.concat([
        this.command(buildCommand('FCUnpublish', unpublish, null, this.opts.target.streamName)),
        this.command(buildCommand('deleteStream', del, null, this._streamId)),
      ]),
      2,
    );
  }

  // -------------------------------------------------------------------------------------------- media

  /** A data message (type 18), e.g. flv.onMetaData(...): "@setDataFrame", "onMetaData", {...}. Once published. */
  writeMetadata(body: Buffer): void {
    this.sendMessage(Csid.Stream, MessageType.DataAmf0, this._streamId, body);
  }

  /** An FLV audio tag body (type 8) at an absolute timestamp in ms (wraps at 2^32). Once published. */
  writeAudio(timestampMs: number, body: Buffer): void {
    this.sendMessage(Csid.Audio, MessageType.Audio, this._streamId, body, timestampMs);
  }

  /** An FLV video tag body (type 9) at an absolute timestamp in ms (the decode time; cts is in the body). Once published. */
  writeVideo(timestampMs: number, body: Buffer): void {
    this.sendMessage(Csid.Video, MessageType.Video, this._streamId, body, timestampMs);
  }

  // ---------------------------------------------------------------------------------------------- out

  /** A command on the connection (stream 0), chunked, for the caller to batch. */
  private command(body: Buffer): Buffer {
    return this.writer.encode(Csid.Command, MessageType.CommandAmf0, 0, 0, body);
  }

  private sendControl(r: ControlReply | undefined): void {
    if (r) this.sendMessage(Csid.Control, r.typeId, 0, r.body);
  }

  private sendMessage(csid: number, typeId: number, streamId: number, payload: Buffer, timestamp = 0): void {
    this.on.send(this.writer.encode(csid, typeId, streamId, timestamp, payload), 1);
  }

  private serverError(stage: RtmpStage, info: StatusInfo, fallback: string): RtmpError {
    const description = info.description !== undefined ? this.scrub(info.description) : undefined;
    const reason = [info.code, description].filter(Boolean).join(': ');
    return new RtmpError(stage, reason ? `${fallback} (${reason})` : fallback, { code: info.code, description });
  }

  private scrub(text: string): string {
    return scrubSecrets(this.opts.target, text);
  }
}
