/**
 * The app's loopback SIP UAS: the far end of each call's media leg.
 *
 * Asterisk dials PJSIP/sip-as-rtmp-media/sip:<token>@127.0.0.1:<port>;transport=tcp. We answer the INVITE
 * whose Request-URI user is a token some call registered with expect(), with the SDP the call's handler
 * builds (its own RTP ports). TCP: one connection from Asterisk, no retransmissions to absorb.
 * Asterisk ends the leg with BYE when the app deletes the leg's channel.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import {
  buildResponse, headerTag, SipStreamFramer, uriUser, type SipRequest,
} from '../../plugin/sip/message.js';
import { parseSdp, SdpError, type SdpSession } from '../../plugin/sip/sdp.js';
import type { InviteAnswer, MediaLegServer } from '../../plugin/calls/ports.js';

/** Called for the first INVITE of an expected leg, and for re-INVITEs (hold, codec change). */
export type InviteHandler = (offer: SdpSession, info: { reinvite: boolean }) => InviteAnswer | Promise<InviteAnswer>;

export interface UasEvents {
  /** The leg was hung up by Asterisk. */
  bye: [{ token: string }];
  /** SIP INFO on a leg (e.g. application/dtmf-relay). */
  info: [{ token: string; contentType: string; body: string }];
  /** A connection sent something unparseable and was closed. */
  protocolError: [{ reason: string }];
}

interface Leg {
  handler: InviteHandler;
  callId?: string;
  toTag: string;
}

export class LoopbackSipUas extends EventEmitter<UasEvents> implements MediaLegServer {
  private server: Server | undefined;
  private readonly legs = new Map<string, Leg>();
  private readonly sockets = new Set<Socket>();
  readonly stats = { requests: 0, invites: 0, unknownLeg: 0, protocolErrors: 0, badSdp: 0 };

  constructor(private readonly opts: { host: string; port: number }) {
    super();
  }

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : this.opts.port;
  }

  async listen(): Promise<void> {
    const server = createServer((s) => this.onConnection(s));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.legs.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /** The SIP URI Asterisk should dial for a leg with this token. */
  uriFor(token: string): string {
    return `sip:${token}@${this.opts.host}:${this.port};transport=tcp`;
  }

  /** Expect an INVITE for `token`; returns a function that forgets it. */
  expect(token: string, handler: InviteHandler): () => void {
    if (!/^[A-Za-z0-9._~-]{1,64}$/.test(token)) throw new Error('bad media-leg token');
    this.legs.set(token, { handler, toTag: randomBytes(6).toString('hex') });
    return () => {
      this.legs.delete(token);
    };
  }

  get activeLegs(): number {
    return this.legs.size;
  }

  private onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    const framer = new SipStreamFramer();
    socket.on('data', (chunk) => {
      let messages;
      try {
        messages = framer.push(chunk);
      } catch (err) {
        this.stats.protocolErrors++;
        this.emit('protocolError', { reason: (err as Error).message });
        socket.destroy();
        return;
      }
      for (const m of messages) {
        // Responses would only answer requests we send; we send none.
        if (m.kind === 'request') {
          // One bad request must never take the process (and every call) down: answer 500, count it.
          this.onRequest(socket, m).catch((err: Error) => {
            this.stats.protocolErrors++;
            this.emit('protocolError', { reason: `handling ${m.method}: ${err.message}` });
            this.send(socket, buildResponse(m, 500, 'Server Internal Error'));
          });
        }
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
  }

  private send(socket: Socket, text: string): void {
    if (!socket.destroyed) socket.write(text);
  }

  private async onRequest(socket: Socket, req: SipRequest): Promise<void> {
    this.stats.requests++;
    const token = uriUser(req.uri) ?? '';
    const leg = this.legs.get(token);
    const contact = `<${this.uriFor(token || 'media')}>`;
    switch (req.method) {
      case 'INVITE': {
        this.stats.invites++;
        if (!leg) {
          this.stats.unknownLeg++;
          this.send(socket, buildResponse(req, 404, 'Not Found', { toTag: randomBytes(4).toString('hex') }));
          return;
        }
        const reinvite = !!headerTag(req.headers.get('to'));
        this.send(socket, buildResponse(req, 100, 'Trying'));
        let offer: SdpSession;
        try {
          offer = parseSdp(req.body);
        } catch (err) {
          this.stats.badSdp++;
          const reason = err instanceof SdpError ? 'Not Acceptable Here' : 'Server Internal Error';
          this.send(socket, buildResponse(req, err instanceof SdpError ? 488 : 500, reason, { toTag: leg.toTag }));
          return;
        }
        leg.callId = req.headers.get('call-id');
        let answer: InviteAnswer;
        try {
          answer = await leg.handler(offer, { reinvite });
        } catch {
          answer = { status: 500, reason: 'Server Internal Error' };
        }
        if ('sdp' in answer) {
          this.send(socket, buildResponse(req, 200, 'OK', { toTag: leg.toTag, contact, body: answer.sdp }));
        } else {
          this.send(socket, buildResponse(req, answer.status, answer.reason, { toTag: leg.toTag }));
        }
        return;
      }
      case 'ACK':
        return;
      case 'BYE':
        this.send(socket, buildResponse(req, leg ? 200 : 481, leg ? 'OK' : 'Call/Transaction Does Not Exist'));
        if (leg) this.emit('bye', { token });
        return;
      case 'CANCEL':
        this.send(socket, buildResponse(req, 200, 'OK'));
        return;
      case 'INFO':
        this.send(socket, buildResponse(req, leg ? 200 : 481, leg ? 'OK' : 'Call/Transaction Does Not Exist'));
        if (leg) this.emit('info', { token, contentType: req.headers.get('content-type') ?? '', body: req.body });
        return;
      case 'OPTIONS':
      case 'UPDATE':
      case 'NOTIFY':
        this.send(socket, buildResponse(req, 200, 'OK', { contact, extra: [['Allow', 'INVITE, ACK, BYE, CANCEL, INFO, OPTIONS, UPDATE']] }));
        return;
      default:
        this.send(socket, buildResponse(req, 501, 'Not Implemented'));
    }
  }
}
