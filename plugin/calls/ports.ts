/**
 * The small interfaces the call core speaks to, in call terms. Adapters implement them:
 * Pbx → adapters/asterisk/pbx.ts (ARI), MediaLegServer → adapters/sip/uas.ts.
 * The media ports (RTP sockets, encoders, clips) are media's own: media/ports.ts.
 */
import type { EventEmitter } from 'node:events';
import type { CodecPreference, SdpSession } from '../sip/sdp.js';

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
  /** A channel we dialled (a call or a media leg) was answered. */
  | { kind: 'answered'; channelId: string }
  /**
   * An inbound call the PBX hands over to us (already in our hands, not answered yet). `fields()` reads
   * what the PBX configuration asked for, as /call/startup fields (rtmpUrl, rtmpStream, hasVideo, ...);
   * it rejects with a message for the admin when that configuration is malformed.
   */
  | { kind: 'incoming'; channelId: string; caller: string; callerName: string; exten: string; fields(): Promise<Record<string, string>> }
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
  /**
   * Place a call into the app. `target`: a SIP URI dialled through the account `accountId` (created with
   * createAccount), or through the PBX's own shared account when none is given. `video`: offer H.264 too.
   */
  dial(p: { channelId: string; accountId?: string; target: string; callerId?: string; video?: boolean; timeoutSec: number }): Promise<void>;
  /** Dial the media leg: the app's own UAS at `uri`, offering these audio codecs (in order) and H.264 when `video`. */
  dialMediaLeg(p: { channelId: string; uri: string; codecs: CodecPreference[]; video: boolean }): Promise<void>;
  /** Idempotent: a channel already gone is fine. */
  hangup(channelId: string, reason?: 'normal' | 'busy' | 'congestion' | 'no_answer'): Promise<void>;
  createBridge(bridgeId: string): Promise<void>;
  addToBridge(bridgeId: string, channelIds: string[]): Promise<void>;
  /** Idempotent. */
  destroyBridge(bridgeId: string): Promise<void>;
  /**
   * Digits travel the media leg as RFC 4733 events, relayed by the PBX without a report (Asterisk's native
   * bridge): the app reads the SIP party's digits there (beside any the PBX reports) and sends its
   * RFC 4733 digits there. Otherwise the PBX reports and sends them.
   */
  readonly dtmfOnLeg?: boolean;
  /** Send digits to the channel's far end, as RFC 4733 events or SIP INFO (application/dtmf-relay). */
  sendDtmf?(channelId: string, digits: string, mode: 'rfc4733' | 'info'): Promise<void>;
  /** Does the channel still exist? (After a lost connection: events may have been missed.) */
  channelExists?(channelId: string): Promise<boolean>;
  /** Answer an inbound channel. */
  answer?(channelId: string): Promise<void>;
  /** The audio codec the channel's far end speaks, when the PBX can tell (the leg then offers it first). */
  nativeAudioCodec?(channelId: string): Promise<CodecPreference | undefined>;
  /** Put the channel's far end on hold (a sendonly re-INVITE, with moh_passthrough) or take it off. */
  hold?(channelId: string, on: boolean): Promise<void>;
  /** The answered callee's User-Agent (or Server) header, if it sent one. */
  remoteUserAgent?(channelId: string): Promise<string | undefined>;
  /**
   * Release what a previous run of this app left in the PBX (it crashed or was killed): every channel,
   * bridge and account whose id `isLeftover` accepts, and every inbound call still handed to this app that
   * this run was never told about. Idempotent (objects already gone are fine). Counts what it released.
   */
  releaseLeftovers?(isLeftover: (id: string) => boolean): Promise<LeftoversReleased>;
  /**
   * Which of the PBX's own PJSIP objects (endpoint, aor, auth) are named `id`: a sipLogin equal to one
   * could be taken for that identity by the PBX. Empty when none is.
   */
  sipObjectsNamed?(id: string): Promise<string[]>;
}

// ---------------------------------------------------------------------------------------------------------
// Name resolution, for checking outbound targets (calls/targets.ts)

export interface HostResolver {
  /** Every address `host` resolves to; rejects with the resolver's reason (or a timeout). */
  resolveAll(host: string): Promise<string[]>;
  /** This host's own interface addresses. */
  localAddresses(): string[];
}

export interface LeftoversReleased {
  channels: number;
  bridges: number;
  accounts: number;
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
