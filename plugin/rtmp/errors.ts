/**
 * How an RTMP publish fails, shared by the protocol session (client-session.ts) and the socket driver
 * (adapters/rtmp/publisher.ts), and the scrubbing that keeps secrets out of both.
 */
import type { RtmpTarget } from './url.js';

/** Where a publish was when it failed: the transport's steps, then the protocol's. */
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

/** Remove secrets (user, password, stream name) from text that came from the server or the OS before it goes into an error. */
export function scrubSecrets(target: RtmpTarget, text: string): string {
  const t = target;
  const secrets = [t.password, t.streamName, t.streamName.split('?')[0], t.user].filter((s): s is string => !!s && s.length >= 3);
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}
