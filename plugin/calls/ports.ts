/**
 * The small interfaces the call core speaks to, in call terms. Adapters implement them:
 * Pbx → adapters/asterisk/pbx.ts (ARI), MediaLegServer → adapters/sip/uas.ts.
 * The media ports (RTP sockets, encoders, clips) are media's own: media/ports.ts.
 */
import type { EventEmitter } from 'node:events';
import type { SdpSession } from '../sip/sdp.js';

// ---------------------------------------------------------------------------------------------------------
// PBX (Asterisk over ARI), in call terms

export interface AccountSpec {
  /** Digest user name (sipAuthenticationName, else sipLogin). */
  authUser: string;
  password: string;
  fromUser: string;
  fromDomain: string;
  /** sip:host[:port] to send every request through, if any. */
  outboundProxy?: string;
  /** With a registration: the registrar URI and the AOR to register. */
  registration?: { serverUri: string; clientUri: string; expirationSec: number };
}

/** What happened on a channel, translated from ARI events. */
export type PbxEvent =
  | { kind: 'ringing'; channelId: string }
  | { kind: 'progress'; channelId: string }
  /**
   * The channel entered our Stasis app: one we dialled was answered, or (a channel id we don't know) an
   * inbound call the dialplan handed over with Stasis(app,args...).
   */
  | { kind: 'answered'; channelId: string; args: string[]; incoming?: boolean; caller?: string; callerName?: string; exten?: string }
  /** The channel is gone. `sipStatus`: the SIP code that ended it when known (486, 403, ...). */
  | { kind: 'hangup'; channelId: string; cause: number; causeText: string; sipStatus?: number }
  | { kind: 'dtmf'; channelId: string; digit: string; durationMs: number }
  | { kind: 'hold'; channelId: string }
  | { kind: 'unhold'; channelId: string };

export interface PbxEvents {
  event: [PbxEvent];
  /** Connection to the PBX lost / back (calls may have died meanwhile). */
  down: [{ reason: string }];
  up: [{ reconnect: boolean }];
}

export interface Pbx extends EventEmitter<PbxEvents> {
  readonly connected: boolean;
  createAccount(id: string, spec: AccountSpec): Promise<void>;
  /** Idempotent: objects already gone are fine. */
  deleteAccount(id: string): Promise<void>;
  /** Resolves once the account's registration is Registered; rejects with the registrar's reason. */
  waitRegistered?(id: string, timeoutMs: number): Promise<void>;
  /** Place a call into the app. `target`: a SIP URI dialled through the account `accountId`. */
  /** `video`: offer H.264 too (Asterisk offers video only when asked to). */
  dial(p: { channelId: string; accountId: string; target: string; callerId?: string; video?: boolean; timeoutSec: number }): Promise<void>;
  /** Dial the media leg: the app's own UAS at `uri`. */
  dialMediaLeg(p: { channelId: string; uri: string; formats: string }): Promise<void>;
  /** Idempotent: a channel already gone is fine. */
  hangup(channelId: string, reason?: 'normal' | 'busy' | 'congestion' | 'no_answer'): Promise<void>;
  createBridge(bridgeId: string): Promise<void>;
  addToBridge(bridgeId: string, channelIds: string[]): Promise<void>;
  /** Idempotent. */
  destroyBridge(bridgeId: string): Promise<void>;
  /** Send digits to the channel's far end, as RFC 4733 events or SIP INFO (application/dtmf-relay). */
  sendDtmf?(channelId: string, digits: string, mode: 'rfc4733' | 'info'): Promise<void>;
  /** Does the channel still exist? (After a lost connection: events may have been missed.) */
  channelExists?(channelId: string): Promise<boolean>;
  /** Answer an inbound channel. */
  answer?(channelId: string): Promise<void>;
  /** Channel variables (missing ones are left out). */
  getVariables?(channelId: string, names: string[]): Promise<Record<string, string>>;
  /** Put the channel's far end on hold (a sendonly re-INVITE, with moh_passthrough) or take it off. */
  hold?(channelId: string, on: boolean): Promise<void>;
  /** The answered callee's User-Agent (or Server) header, if it sent one. */
  remoteUserAgent?(channelId: string): Promise<string | undefined>;
}

// ---------------------------------------------------------------------------------------------------------
// Media leg

export type InviteAnswer = { sdp: string } | { status: number; reason: string };

export interface MediaLegServer {
  /** The SIP URI the PBX should dial for this token. */
  uriFor(token: string): string;
  /** Expect one INVITE for `token`; the handler answers it. Returns "forget it". */
  expect(token: string, handler: (offer: SdpSession, info: { reinvite: boolean }) => InviteAnswer | Promise<InviteAnswer>): () => void;
}
