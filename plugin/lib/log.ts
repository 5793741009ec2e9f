/**
 * The app's logger: pino (NDJSON, cheap per line), with secrets redacted by key wherever they sit in a
 * logged object, and a helper that strips credentials and stream keys from URLs before they are logged.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Object keys whose values never reach a log line. */
export const SECRET_KEYS = ['password', 'sipPassword', 'ariPassword', 'authorization', 'api_key', 'secret', 'streamKey', 'rtmpStream'];

export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options = {
    name: opts.name ?? 'sip-as-rtmp',
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: {
      paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
      censor: '[redacted]',
    },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/**
 * A URL as it may be logged: no user:password, no query string (where keys and tokens travel), and for
 * RTMP the last path segment (the stream name/key) masked.
 */
export function redactUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return '[unparseable url]';
  }
  if (u.username || u.password) {
    u.username = '***';
    u.password = '';
  }
  if (u.search) u.search = '?***';
  return u.toString();
}

/**
 * A secret shown only by its first characters, so a person can tell which one it was: "abcdefgh" →
 * "abcd***". Its length is not revealed; a short one shows nothing.
 */
export function maskSecret(s: string, keep = 4): string {
  return s.length <= keep * 2 ? '***' : `${s.slice(0, keep)}***`;
}
