/** RTMP's protocol pieces (AMF0, chunk stream, handshake, messages, URLs, the publishing client session): pure, no sockets. The publisher that drives the session over TCP/TLS is adapters/rtmp/publisher.ts. */
export { describeTarget, parseRtmpUrl, RtmpUrlError, type RtmpTarget } from './url.js';
export { Amf0EcmaArray, Amf0Error, asObject, decodeAmf0, encodeAmf0, type Amf0Object, type Amf0Value } from './amf0.js';
export { ChunkError, ChunkReader, ChunkWriter, DEFAULT_CHUNK_SIZE, type ChunkMessage } from './chunk.js';
export { ClientHandshake, HandshakeError, HANDSHAKE_SIZE, RTMP_VERSION } from './handshake.js';
export { adobeAuthStep, Csid, MessageError, MessageType, parseMessage, statusInfo, UserControlEvent, type RtmpMessage, type StatusInfo } from './messages.js';
export { RtmpError, scrubSecrets, type RtmpStage } from './errors.js';
export {
  DEFAULT_OUT_CHUNK_SIZE,
  RtmpClientSession,
  type ClientSessionHandlers,
  type ClientSessionOptions,
  type SessionCounters,
  type SessionStage,
} from './client-session.js';
