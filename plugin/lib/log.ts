/**
 * The app's logger: pino (NDJSON, cheap per line), with secrets redacted by key wherever they sit in a
 * logged object. The URL and secret masks are in redact.ts (no Node imports: the console page uses them).
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

// URL and secret masking live apart from pino so browser code (the console) can import them too.
export { maskSecret, redactUrl } from './redact.js';
