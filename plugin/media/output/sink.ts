/**
 * What an output (push.ts) needs of one connection to its destination, in neutral frames: the sink muxes
 * and writes them (adapters/rtmp/rtmp-sink.ts: FLV over RTMP; adapters/srt/srt-sink.ts: MPEG-TS over SRT). One sink is one connection; reconnecting
 * is the output's business (it asks for a new sink).
 */
import type { FrameSink } from '../frame.js';

/** A connection's failure, with the server's own words where it gave any (`code`, `description`). */
export type OutputError = Error & { description?: string; code?: string };

export interface OutputSink extends FrameSink {
  /** Resolves once publishing; rejects with an OutputError. */
  start(): Promise<void>;
  /**
   * It connects only once media flows (an ffmpeg child reads its input before it opens its output): the
   * output feeds it config and frames while start() is pending, instead of holding them back.
   */
  readonly needsMediaToConnect?: boolean;
  close(): Promise<void>;
  /** Once, after a successful start(): the connection ended (error set unless close() ended it). */
  on(event: 'close', listener: (e: { error?: OutputError }) => void): unknown;
}

/** The server's own words where it gave any ("NetStream.Publish.BadName: Already publishing"), else the error's message. */
export function describeRtmpError(err: OutputError & { stage?: string }): string {
  return err.description ? [err.code, err.description].filter(Boolean).join(': ') : err.message;
}

/** What an admin acts on, for the certificate codes Node's own verification gives most. */
const TLS_WORDS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate (trust it with RTMP_TLS_CA_FILE)',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in the chain (trust it with RTMP_TLS_CA_FILE)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate from an unknown authority (RTMP_TLS_CA_FILE)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate from an unknown authority (RTMP_TLS_CA_FILE)',
  CERT_HAS_EXPIRED: 'the certificate has expired',
  CERT_NOT_YET_VALID: 'the certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the certificate is for another host name',
};

/** How a connection attempt failed, by class only: never the peer's own bytes (a refused, silent or non-RTMP port tells nothing more). */
export function connectFailureClass(err: { code?: string | undefined; stage?: string | undefined }): string {
  const c = err.code ?? '';
  if (c === 'EFORBIDDEN') return 'not allowed (a link-local or cloud metadata address, or this server itself)';
  if (c === 'ECONNREFUSED') return 'refused';
  if (c === 'ETIMEDOUT') return 'timed out';
  if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'ENODATA', 'ETIMEOUT', 'ESERVFAIL', 'EDNS'].includes(c)) return 'DNS failure';
  if (['EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EHOSTDOWN', 'ENETDOWN'].includes(c)) return 'unreachable';
  // Certificate codes are a fixed list (CERT_HAS_EXPIRED, ...): worth showing, and not the peer's words.
  if (/^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_)/.test(c)) return `TLS failure: ${TLS_WORDS[c] ?? 'certificate not accepted'} (${c})`;
  if (err.stage === 'tls') return 'TLS failure';
  if (err.stage === 'handshake' && c === 'EPROTO') return 'not an RTMP server';
  return 'connection closed';
}

/** "could not connect to host:port: <class>", for an attempt that failed before the protocol started. */
export function connectFailure(host: string, port: number, err: { code?: string | undefined; stage?: string | undefined }): string {
  return `could not connect to ${host.includes(':') ? `[${host}]` : host}:${port}: ${connectFailureClass(err)}`;
}
