/**
 * RTMP URLs, as users paste them from YouTube, Facebook, Wowza or nginx-rtmp:
 *   rtmp[s]://[user:pass@]host[:port]/app[/instance]/streamName[?query]
 * Parsed by hand rather than with WHATWG URL: stream keys carry characters (`?`, `&`, `=`, `%`) and
 * queries (Facebook's `?s_bl=1&...`) that must reach the server byte for byte, not re-encoded.
 */
import { maskSecret } from '../lib/redact.js';

export interface RtmpTarget {
  /** rtmps:// (RTMP inside TLS). */
  secure: boolean;
  /** Without IPv6 brackets, ready for net.connect. */
  host: string;
  /** Defaults: 1935 for rtmp, 443 for rtmps. */
  port: number;
  /** e.g. "live" or "app/instance"; may carry a query ("app?token=x") that the server reads. */
  app: string;
  /** scheme://host[:port]/app, without credentials (sent to the server in connect). */
  tcUrl: string;
  /** Stream name / key; may carry a query string ("key?token=x"). A secret: never log it. */
  streamName: string;
  user?: string;
  password?: string;
}

/** A URL an API user got wrong; the message is meant for them and never echoes secrets. */
export class RtmpUrlError extends Error {
  override readonly name = 'RtmpUrlError';
}

const DEFAULT_PORT = { rtmp: 1935, rtmps: 443 } as const;

/**
 * If `streamName` is given, the whole URL path (and query) is the app; otherwise the last path segment
 * (plus the query) is the stream name and what precedes it is the app.
 */
export function parseRtmpUrl(url: string, streamName?: string): RtmpTarget {
  const text = url.trim();
  const scheme = /^(rtmps?):\/\//i.exec(text)?.[1]?.toLowerCase() as 'rtmp' | 'rtmps' | undefined;
  if (!scheme) throw new RtmpUrlError('rtmpUrl must start with rtmp:// or rtmps://');
  const rest = text.slice(scheme.length + 3);

  const authorityEnd = firstIndexOf(rest, '/?#');
  const authority = rest.slice(0, authorityEnd);
  let path = rest.slice(authorityEnd);
  if (path.startsWith('#')) path = '';

  // Userinfo: the last '@' ends it (a password may contain '@' if the user didn't percent-encode it).
  const at = authority.lastIndexOf('@');
  let user: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const info = authority.slice(0, at);
    const colon = info.indexOf(':');
    user = decode(colon >= 0 ? info.slice(0, colon) : info, 'user name');
    password = colon >= 0 ? decode(info.slice(colon + 1), 'password') : undefined;
  }
  const { host, port, portGiven } = parseHostPort(authority.slice(at + 1), DEFAULT_PORT[scheme]);

  // Path and query: the query (if any) belongs to the stream name, or to the app when the name is separate.
  const q = path.indexOf('?');
  const pathPart = (q >= 0 ? path.slice(0, q) : path).replace(/^\/+/, '');
  const query = q >= 0 ? path.slice(q) : '';

  let app: string;
  let name: string;
  if (streamName !== undefined) {
    app = pathPart.replace(/\/+$/, '') + query;
    name = streamName.trim().replace(/^\/+/, '');
  } else {
    const slash = pathPart.lastIndexOf('/');
    app = slash >= 0 ? pathPart.slice(0, slash) : '';
    name = (slash >= 0 ? pathPart.slice(slash + 1) : pathPart) + query;
    if (!app && name) throw new RtmpUrlError('rtmpUrl needs an application and a stream name (rtmp://host/app/stream)');
  }
  if (!app) throw new RtmpUrlError('rtmpUrl has no application name (rtmp://host/app)');
  if (!name) throw new RtmpUrlError('the RTMP stream name is empty');
  if (/[\s\0]/.test(app)) throw new RtmpUrlError('the RTMP application name contains spaces or control characters');

  const hostPart = host.includes(':') ? `[${host}]` : host;
  const target: RtmpTarget = {
    secure: scheme === 'rtmps',
    host,
    port,
    app,
    tcUrl: `${scheme}://${hostPart}${portGiven ? `:${port}` : ''}/${app}`,
    streamName: name,
  };
  if (user !== undefined && user !== '') target.user = user;
  if (password !== undefined) target.password = password;
  return target;
}

/** For logs and errors: no credentials, the app's query dropped, the stream name masked after 3 chars. */
export function describeTarget(t: RtmpTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  const app = t.app.split('?')[0];
  return `${t.secure ? 'rtmps' : 'rtmp'}://${host}:${t.port}/${app}/${maskSecret(t.streamName)}`;
}

function firstIndexOf(s: string, chars: string): number {
  for (let i = 0; i < s.length; i++) if (chars.includes(s[i]!)) return i;
  return s.length;
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RtmpUrlError(`the ${what} in rtmpUrl has a bad %-escape`);
  }
}

export function parseHostPort(hp: string, defaultPort: number): { host: string; port: number; portGiven: boolean } {
  let host: string;
  let portText: string | undefined;
  if (hp.startsWith('[')) {
    const close = hp.indexOf(']');
    if (close < 0) throw new RtmpUrlError('rtmpUrl has an unterminated IPv6 address');
    host = hp.slice(1, close);
    const after = hp.slice(close + 1);
    if (after && !after.startsWith(':')) throw new RtmpUrlError('rtmpUrl has garbage after the IPv6 address');
    portText = after ? after.slice(1) : undefined;
  } else {
    const colon = hp.lastIndexOf(':');
    host = colon >= 0 ? hp.slice(0, colon) : hp;
    portText = colon >= 0 ? hp.slice(colon + 1) : undefined;
  }
  if (!host) throw new RtmpUrlError('rtmpUrl has no host');
  if (!/^[A-Za-z0-9.\-_:%]+$/.test(host)) throw new RtmpUrlError('rtmpUrl has an invalid host name');
  if (portText === undefined || portText === '') return { host, port: defaultPort, portGiven: false };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new RtmpUrlError('rtmpUrl has an invalid port (1-65535)');
  return { host, port, portGiven: true };
}
