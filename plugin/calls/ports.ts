/**
 * The small interfaces the call core speaks to. Adapters implement them:
 * Pbx → adapters/asterisk/pbx.ts (ARI), MediaLegServer → adapters/sip/uas.ts,
 * RtpPortSource → adapters/rtp/port-pool.ts, AudioEncoderFactory → adapters/ffmpeg/aac-encoder.ts.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:dgram';
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
// Media leg and RTP

export type InviteAnswer = { sdp: string } | { status: number; reason: string };

export interface MediaLegServer {
  /** The SIP URI the PBX should dial for this token. */
  uriFor(token: string): string;
  /** Expect one INVITE for `token`; the handler answers it. Returns "forget it". */
  expect(token: string, handler: (offer: SdpSession, info: { reinvite: boolean }) => InviteAnswer | Promise<InviteAnswer>): () => void;
}

export interface RtpSocketPair {
  rtpPort: number;
  rtp: Socket;
  rtcp: Socket;
  release(): Promise<void>;
}

export interface RtpPortSource {
  allocate(): Promise<RtpSocketPair>;
}

// ---------------------------------------------------------------------------------------------------------
// Audio encoder (AAC)

export interface EncodedAudioFrame {
  /** Raw AAC access unit (no ADTS header). */
  raw: Buffer;
  /** 0, 1, 2, ... in encoder output order: its timestamp is index × 1024 / outputRate. */
  index: number;
}

export interface AudioEncoderEvents {
  frame: [EncodedAudioFrame];
  /** The encoder died or misbehaved; the stream can't go on without a new one. */
  error: [Error];
}

export interface AudioEncoder extends EventEmitter<AudioEncoderEvents> {
  /** AudioSpecificConfig of the output (for the FLV sequence header). */
  readonly audioSpecificConfig: Buffer;
  readonly outputRate: number;
  /** Mono s16 samples at the input rate. The encoder takes the array over: don't reuse it. */
  write(pcm: Int16Array): void;
  /** No more input: encode what was written, emit the last frames, then stop (at most timeoutMs). */
  finish(timeoutMs: number): Promise<void>;
  /** Stop now, dropping what is still inside. */
  close(): Promise<void>;
  readonly pid: number | undefined;
}

export interface AudioEncoderOptions {
  inputRate: number;
  outputRate: number;
  channels: number;
  bitrate: number;
}

export type AudioEncoderFactory = (o: AudioEncoderOptions) => AudioEncoder;

// ---------------------------------------------------------------------------------------------------------
// Pre-encoded audio (per-push mute and sounds) and decoded sounds (injected toward the SIP side)

/** A sound (or silence) encoded once as raw AAC frames (no ADTS headers), 1024 samples each. */
export interface AacClip {
  audioSpecificConfig: Buffer;
  frames: Buffer[];
}

export interface AacClipFormat {
  sampleRate: number;
  channels: number;
  bitrate: number;
}

/** Encode a file (any format ffmpeg reads), or `silenceMs` of silence, the way the live encoder does. */
export type AacClipEncoder = (input: { file: string } | { silenceMs: number }, format: AacClipFormat) => Promise<AacClip>;

/** Decode a file to mono s16 PCM at `sampleRate` (for sounds played toward the SIP side). */
export type PcmDecoder = (file: string, sampleRate: number) => Promise<Int16Array>;

/** Sound files by name, inside the configured directory (plugin/media/sounds.ts). Rejects with a SoundError. */
export interface SoundSource {
  clip(name: string, format: AacClipFormat): Promise<AacClip>;
  /** One raw AAC frame of silence in that format. */
  silence(format: AacClipFormat): Promise<Buffer>;
  pcm(name: string, sampleRate: number): Promise<Int16Array>;
}
