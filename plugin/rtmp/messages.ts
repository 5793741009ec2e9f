/**
 * RTMP messages above the chunk layer (Adobe RTMP spec, sections 5.4, 6.2 and 7): builders for the
 * payloads a publisher sends, and one parser that turns a received ChunkMessage into a typed value, so the
 * publisher never does byte arithmetic itself. Also the connect-time `authmod=adobe` challenge, which
 * lives in the connect command's app / tcUrl.
 */
import { createHash, randomBytes } from 'node:crypto';
import { asObject, decodeAmf0, encodeAmf0, type Amf0Object, type Amf0Value } from './amf0.js';
import type { ChunkMessage } from './chunk.js';

export const MessageType = {
  SetChunkSize: 1,
  Abort: 2,
  Acknowledgement: 3,
  UserControl: 4,
  WindowAckSize: 5,
  SetPeerBandwidth: 6,
  Audio: 8,
  Video: 9,
  DataAmf3: 15,
  CommandAmf3: 17,
  DataAmf0: 18,
  CommandAmf0: 20,
} as const;

export const UserControlEvent = {
  StreamBegin: 0,
  StreamEof: 1,
  StreamDry: 2,
  SetBufferLength: 3,
  StreamIsRecorded: 4,
  PingRequest: 6,
  PingResponse: 7,
} as const;

/** Chunk stream ids we send on. Audio and video apart, so each keeps its own header compression. */
export const Csid = { Control: 2, Command: 3, Audio: 4, Stream: 5, Video: 6 } as const;

export class MessageError extends Error {
  override readonly name = 'MessageError';
}

// -------------------------------------------------------------------------------------------- builders

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export const buildSetChunkSize = (size: number): Buffer => u32(size & 0x7fffffff);
export const buildAcknowledgement = (sequence: number): Buffer => u32(sequence);
export const buildWindowAckSize = (size: number): Buffer => u32(size);

export function buildSetPeerBandwidth(size: number, limitType: 0 | 1 | 2): Buffer {
  const b = Buffer.allocUnsafe(5);
  b.writeUInt32BE(size >>> 0, 0);
  b[4] = limitType;
  return b;
}

/** User Control event with its 4-byte value (stream id, or the ping timestamp). */
export function buildUserControl(event: number, value: number): Buffer {
  const b = Buffer.allocUnsafe(6);
  b.writeUInt16BE(event, 0);
  b.writeUInt32BE(value >>> 0, 2);
  return b;
}

export function buildCommand(name: string, transactionId: number, commandObject: Amf0Value, ...args: Amf0Value[]): Buffer {
  return encodeAmf0(name, transactionId, commandObject, ...args);
}

export interface ConnectParams {
  app: string;
  tcUrl: string;
  flashVer: string;
  /** "?authmod=adobe&user=..." appended to app and tcUrl during Adobe authentication. */
  authParams?: string;
}

/** The connect command object, as FFmpeg's rtmpproto.c fills it (plus the codec fields it sends when playing). */
export function buildConnect(p: ConnectParams): Buffer {
  const withAuth = (s: string) => (p.authParams ? s + (s.includes('?') ? p.authParams.replace(/^\?/, '&') : p.authParams) : s);
  return buildCommand('connect', 1, {
    app: withAuth(p.app),
    type: 'nonprivate',
    flashVer: p.flashVer,
    tcUrl: withAuth(p.tcUrl),
    fpad: false,
    capabilities: 15,
    audioCodecs: 4071,
    videoCodecs: 252,
    videoFunction: 1,
  });
}

// ------------------------------------------------------------------------------------------------ parse

export interface StatusInfo {
  level?: string;
  code?: string;
  description?: string;
}

export type RtmpMessage =
  | { kind: 'setChunkSize'; size: number }
  | { kind: 'abort'; csid: number }
  | { kind: 'ack'; sequence: number }
  | { kind: 'windowAckSize'; size: number }
  | { kind: 'setPeerBandwidth'; size: number; limitType: number }
  | { kind: 'userControl'; event: number; value: number }
  | {
      kind: 'command';
      streamId: number;
      name: string;
      transactionId: number;
      commandObject: Amf0Value;
      args: Amf0Value[];
    }
  | { kind: 'data'; streamId: number; values: Amf0Value[] }
  | { kind: 'audio' | 'video'; streamId: number; timestamp: number; payload: Buffer }
  | { kind: 'other'; typeId: number };

function need(m: ChunkMessage, n: number, what: string): void {
  if (m.payload.length < n) throw new MessageError(`${what} message too short (${m.payload.length} bytes)`);
}

/** Typed view of one received message. Throws MessageError (or Amf0Error) on malformed payloads. */
export function parseMessage(m: ChunkMessage): RtmpMessage {
  const p = m.payload;
  switch (m.typeId) {
    case MessageType.SetChunkSize:
      need(m, 4, 'Set Chunk Size');
      return { kind: 'setChunkSize', size: p.readUInt32BE(0) & 0x7fffffff };
    case MessageType.Abort:
      need(m, 4, 'Abort');
      return { kind: 'abort', csid: p.readUInt32BE(0) };
    case MessageType.Acknowledgement:
      need(m, 4, 'Acknowledgement');
      return { kind: 'ack', sequence: p.readUInt32BE(0) };
    case MessageType.WindowAckSize:
      need(m, 4, 'Window Acknowledgement Size');
      return { kind: 'windowAckSize', size: p.readUInt32BE(0) };
    case MessageType.SetPeerBandwidth:
      need(m, 5, 'Set Peer Bandwidth');
      return { kind: 'setPeerBandwidth', size: p.readUInt32BE(0), limitType: p[4]! };
    case MessageType.UserControl:
      need(m, 2, 'User Control');
      // Every event we act on carries a 4-byte value; SetBufferLength's second field is not needed.
      return { kind: 'userControl', event: p.readUInt16BE(0), value: p.length >= 6 ? p.readUInt32BE(2) : 0 };
    case MessageType.CommandAmf0:
    case MessageType.CommandAmf3: {
      // An AMF3 command starts with one format byte and continues in AMF0 for the header values.
      const values = decodeAmf0(m.typeId === MessageType.CommandAmf3 ? p.subarray(1) : p);
      const [name, transactionId, commandObject, ...args] = values;
      if (typeof name !== 'string') throw new MessageError('command without a name');
      return {
        kind: 'command',
        streamId: m.streamId,
        name,
        transactionId: typeof transactionId === 'number' ? transactionId : 0,
        commandObject: commandObject ?? null,
        args,
      };
    }
    case MessageType.DataAmf0:
      return { kind: 'data', streamId: m.streamId, values: decodeAmf0(p) };
    case MessageType.Audio:
    case MessageType.Video:
      return { kind: m.typeId === MessageType.Audio ? 'audio' : 'video', streamId: m.streamId, timestamp: m.timestamp, payload: p };
    default:
      return { kind: 'other', typeId: m.typeId };
  }
}

/** The info object of _result/_error/onStatus: the first argument (after the command object), else the command object. */
export function statusInfo(cmd: { commandObject: Amf0Value; args: Amf0Value[] }): StatusInfo {
  const o: Amf0Object | undefined = asObject(cmd.args[0] ?? null) ?? asObject(cmd.commandObject);
  const str = (v: Amf0Value) => (typeof v === 'string' ? v : undefined);
  const info: StatusInfo = {};
  if (!o) return info;
  const level = str(o.level);
  const code = str(o.code);
  const description = str(o.description);
  if (level !== undefined) info.level = level;
  if (code !== undefined) info.code = code;
  if (description !== undefined) info.description = description;
  return info;
}

// ------------------------------------------------------------------------------- authmod=adobe (connect)

export type AdobeAuthStep =
  /** Reconnect and connect again with these parameters appended to app and tcUrl. */
  | { kind: 'retry'; authParams: string }
  /** Authentication failed for good; `reason` is safe to show (no secrets). */
  | { kind: 'fail'; reason: string };

/**
 * The next step of Adobe's connect-time authentication, given the description of a rejected connect
 * (the exchange FFmpeg's rtmpproto.c implements, used by Wowza, Red5 and some CDNs):
 *  1. "... code=403 need auth; authmod=adobe ..."   → retry with ?authmod=adobe&user=U
 *  2. "... ?reason=needauth&user=U&salt=S&challenge=C&opaque=O" → retry with the response
 *     base64(md5(base64(md5(U + S + password)) + (O or C) + C2)), C2 being our own random challenge
 *  3. "?reason=authfailed" / "?reason=nosuchuser" → fail.
 * Returns undefined if the description isn't about Adobe authentication at all.
 */
export function adobeAuthStep(
  description: string,
  user: string,
  password: string,
  alreadyAnswered: boolean,
  clientChallenge: string = randomBytes(4).toString('hex'),
): AdobeAuthStep | undefined {
  if (description.includes('?reason=authfailed')) return { kind: 'fail', reason: 'wrong user name or password' };
  if (description.includes('?reason=nosuchuser')) return { kind: 'fail', reason: 'unknown user name' };
  if (description.includes('code=403 need auth')) {
    if (!description.includes('authmod=adobe')) return { kind: 'fail', reason: 'the server asks for an authentication method other than authmod=adobe' };
    if (alreadyAnswered) return { kind: 'fail', reason: 'authentication failed' };
    return { kind: 'retry', authParams: `?authmod=adobe&user=${encodeURIComponent(user)}` };
  }
  const at = description.indexOf('?reason=needauth');
  if (at < 0) return undefined;
  if (alreadyAnswered) return { kind: 'fail', reason: 'authentication failed' };
  const params = new Map<string, string>();
  for (const pair of description.slice(at + 1).split('&')) {
    const eq = pair.indexOf('=');
    if (eq > 0) params.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const salt = params.get('salt');
  const challenge = params.get('challenge');
  const opaque = params.get('opaque');
  if (salt === undefined) return { kind: 'fail', reason: 'the server sent an Adobe challenge without a salt' };
  const serverUser = params.get('user') ?? user;
  const md5b64 = (s: string) => createHash('md5').update(s, 'utf8').digest('base64');
  const response = md5b64(md5b64(serverUser + salt + password) + (opaque ?? challenge ?? '') + clientChallenge);
  let authParams = `?authmod=adobe&user=${encodeURIComponent(serverUser)}&challenge=${clientChallenge}&response=${response}`;
  if (opaque !== undefined) authParams += `&opaque=${opaque}`;
  return { kind: 'retry', authParams };
}
