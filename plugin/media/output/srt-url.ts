/**
 * SRT destinations, as CDNs and production tools hand them out:
 *   srt://host:port[?streamid=…][&passphrase=…][&latency=ms][&pbkeylen=16|24|32][&mode=caller][&transtype=live]
 * We always call (caller mode) and send live MPEG-TS. Only the options above are accepted: anything else
 * would reach ffmpeg's libsrt as an option we never tested, so it is refused by name.
 *
 * `latency` is in milliseconds, as in SRT's own URI syntax (srt-live-transmit, the SRT cookbook); ffmpeg's
 * libsrt takes microseconds, and the sink converts. The passphrase and stream id are secrets (a stream id
 * often carries the publishing key, "#!::r=live/key,m=publish"): never shown, never logged.
 */
import { maskSecret } from '../../lib/redact.js';
import { parseHostPort, RtmpUrlError } from '../../rtmp/url.js';

export interface SrtTarget {
  host: string;
  port: number;
  streamId?: string;
  passphrase?: string;
  latencyMs?: number;
  pbkeylen?: 16 | 24 | 32;
}

const OPTIONS = ['streamid', 'passphrase', 'latency', 'pbkeylen', 'mode', 'transtype'] as const;

/** `streamName`, when given, becomes the stream id (the URL must not carry one too). Throws RtmpUrlError (field rtmpUrl). */
export function parseSrtUrl(url: string, streamName?: string): SrtTarget {
  const text = url.trim();
  if (!/^srt:\/\//i.test(text)) throw new RtmpUrlError('rtmpUrl must start with srt://');
  const rest = text.slice(6);
  const q = rest.indexOf('?');
  const authority = (q >= 0 ? rest.slice(0, q) : rest).replace(/\/+$/, '');
  if (authority.includes('@')) throw new RtmpUrlError('an SRT URL takes no user:password (use passphrase=…)');
  if (authority.includes('/')) throw new RtmpUrlError('an SRT URL has no path: the stream goes in ?streamid=…');
  const { host, port, portGiven } = parseHostPort(authority, 0);
  if (!portGiven) throw new RtmpUrlError('an SRT URL needs a port (srt://host:port)');

  const t: SrtTarget = { host, port };
  for (const pair of q >= 0 ? rest.slice(q + 1).split('&') : []) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = (eq >= 0 ? pair.slice(0, eq) : pair).toLowerCase();
    const value = decode(eq >= 0 ? pair.slice(eq + 1) : '', name);
    if (!(OPTIONS as readonly string[]).includes(name)) {
      throw new RtmpUrlError(`SRT option "${name.slice(0, 32)}" is not supported (${OPTIONS.join(', ')})`);
    }
    if (name === 'streamid') t.streamId = value;
    else if (name === 'passphrase') {
      // SRT's own bounds: shorter or longer is refused by libsrt, better said here.
      if (value.length < 10 || value.length > 79) throw new RtmpUrlError('the SRT passphrase must be 10 to 79 characters');
      t.passphrase = value;
    } else if (name === 'latency') {
      const ms = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
      if (!(ms >= 20 && ms <= 10000)) throw new RtmpUrlError('SRT latency must be 20 to 10000 (ms)');
      t.latencyMs = ms;
    } else if (name === 'pbkeylen') {
      if (!['16', '24', '32'].includes(value)) throw new RtmpUrlError('SRT pbkeylen must be 16, 24 or 32');
      t.pbkeylen = Number(value) as 16 | 24 | 32;
    } else if (name === 'mode' && value !== 'caller') {
      throw new RtmpUrlError('SRT mode must be caller: we connect to the receiver');
    } else if (name === 'transtype' && value !== 'live') {
      throw new RtmpUrlError('SRT transtype must be live');
    }
  }
  if (streamName !== undefined && streamName !== '') {
    if (t.streamId !== undefined) throw new RtmpUrlError('the SRT URL has a streamid already: leave the stream name out (rtmpTransponderFullUrl)');
    t.streamId = streamName.trim();
  }
  if (t.streamId !== undefined && (t.streamId.length > 512 || /[\0\r\n]/.test(t.streamId))) {
    throw new RtmpUrlError('the SRT streamid must be at most 512 characters, without control characters');
  }
  if (t.pbkeylen && !t.passphrase) throw new RtmpUrlError('SRT pbkeylen needs a passphrase');
  return t;
}

/** For logs and answers: host and port, the stream id masked, no passphrase. */
export function describeSrtTarget(t: SrtTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return `srt://${host}:${t.port}${t.streamId !== undefined ? `?streamid=${maskSecret(t.streamId)}` : ''}`;
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new RtmpUrlError(`the SRT ${what} has a bad %-escape`);
  }
}
