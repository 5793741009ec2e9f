/**
 * SIP messages (RFC 3261) as the loopback UAS needs them: framing on a TCP stream (Content-Length),
 * parsing requests and responses, and building responses that echo the request's dialog headers.
 * Bounded: a message over MAX_MESSAGE bytes or with a malformed head is an error, never a hang.
 */

export const MAX_MESSAGE = 64 * 1024;

export interface SipRequest {
  kind: 'request';
  method: string;
  uri: string;
  headers: SipHeaders;
  body: string;
}

export interface SipResponse {
  kind: 'response';
  status: number;
  reason: string;
  headers: SipHeaders;
  body: string;
}

export type SipMessage = SipRequest | SipResponse;

export class SipParseError extends Error {
  override readonly name = 'SipParseError';
}

/** Compact header forms (RFC 3261 §7.3.3) mapped to their full lower-case names. */
const COMPACT: Record<string, string> = {
  i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length', c: 'content-type',
  f: 'from', s: 'subject', k: 'supported', t: 'to', v: 'via',
};

/** Headers in order, names lower-cased; a header may repeat (Via, Record-Route). */
export class SipHeaders {
  readonly list: [name: string, value: string][] = [];

  add(name: string, value: string): void {
    const n = name.trim().toLowerCase();
    // Own keys only: a header named "constructor" or "__proto__" must not pick up Object.prototype's.
    this.list.push([Object.hasOwn(COMPACT, n) ? COMPACT[n]! : n, value.trim()]);
  }
  get(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.list.find(([k]) => k === n)?.[1];
  }
  getAll(name: string): string[] {
    const n = name.toLowerCase();
    return this.list.filter(([k]) => k === n).map(([, v]) => v);
  }
}

/** Parse one complete message (head + body). */
export function parseSipMessage(head: string, body: string): SipMessage {
  const lines = head.split('\r\n');
  const start = lines.shift() ?? '';
  const headers = new SipHeaders();
  for (const line of lines) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && headers.list.length > 0) {
      // Folded continuation line (obsolete but legal).
      const last = headers.list[headers.list.length - 1]!;
      last[1] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new SipParseError('header line without a name');
    headers.add(line.slice(0, colon), line.slice(colon + 1));
  }
  const resp = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(start);
  if (resp) return { kind: 'response', status: Number(resp[1]), reason: resp[2] ?? '', headers, body };
  const req = /^([A-Z]+) (\S+) SIP\/2\.0$/.exec(start);
  if (!req) throw new SipParseError('bad start line');
  for (const h of ['via', 'from', 'to', 'call-id', 'cseq']) {
    if (!headers.get(h)) throw new SipParseError(`request without ${h}`);
  }
  return { kind: 'request', method: req[1]!, uri: req[2]!, headers, body };
}

/**
 * Splits a TCP byte stream into SIP messages. Skips CRLF keep-alives (RFC 5626) between messages.
 * `push` returns the complete messages; a framing error throws (the connection should then be closed).
 */
export class SipStreamFramer {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): SipMessage[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: SipMessage[] = [];
    for (;;) {
      // Keep-alive CRLFs before a message.
      let skip = 0;
      while (skip < this.buf.length && (this.buf[skip] === 0x0d || this.buf[skip] === 0x0a)) skip++;
      if (skip) this.buf = this.buf.subarray(skip);
      if (this.buf.length === 0) break;
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buf.length > MAX_MESSAGE) throw new SipParseError('SIP head too large');
        break;
      }
      const head = this.buf.subarray(0, end).toString('utf8');
      const lenMatch = contentLength(head);
      // On a stream transport Content-Length is mandatory (RFC 3261 §18.3).
      if (!lenMatch) throw new SipParseError('no Content-Length on a stream transport');
      const len = Number(lenMatch[1]);
      if (end + 4 + len > MAX_MESSAGE) throw new SipParseError('SIP message too large');
      if (this.buf.length < end + 4 + len) break;
      const body = this.buf.subarray(end + 4, end + 4 + len).toString('utf8');
      this.buf = this.buf.subarray(end + 4 + len);
      out.push(parseSipMessage(head, body));
    }
    return out;
  }
}

const CONTENT_LENGTH = /^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$/i;

/**
 * The Content-Length header of a head, looked up line by line. SIP lines end with CRLF only; a multiline
 * regex would also start a "line" at a lone CR or LF, U+2028 or U+2029 inside a header value, so a value
 * like "x\u2028l: 0" would frame the message wrong and turn its body into a bogus next message.
 */
function contentLength(head: string): RegExpExecArray | null {
  for (const line of head.split('\r\n')) {
    const m = CONTENT_LENGTH.exec(line);
    if (m) return m;
  }
  return null;
}

/** The user part of a SIP URI: sip:USER@host;params → USER. */
/**
 * A display name as an RFC 3261 quoted-string: `"` and `\` backslash-escaped (so a trailing backslash can't
 * escape the closing quote), control characters (CR, LF, tab...) dropped, since they would end the header.
 * Asterisk unescapes it when it parses a caller id and escapes it again for the From header.
 */
export function quotedDisplayName(name: string): string {
  return `"${name.replace(/[\u0000-\u001f\u007f]/g, '').replace(/["\\]/g, '\\$&')}"`;
}

export function uriUser(uri: string): string | undefined {
  const m = /^sips?:([^@;>]+)@/i.exec(uri.trim().replace(/^<|>$/g, ''));
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return undefined; // a bad %-escape ("sip:%E0@..."): no such user, not an exception in the UAS
  }
}

/** The tag parameter of a From/To header value. */
export function headerTag(value: string | undefined): string | undefined {
  if (!value) return undefined;
  return /;\s*tag=([^;\s]+)/i.exec(value)?.[1];
}

/**
 * Build a response to a request: Via(s), From, To (+ our tag if it has none), Call-ID and CSeq echoed.
 */
export function buildResponse(
  req: SipRequest,
  status: number,
  reason: string,
  opts: { toTag?: string; contact?: string; body?: string; contentType?: string; extra?: [string, string][] } = {},
): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const v of req.headers.getAll('via')) lines.push(`Via: ${v}`);
  lines.push(`From: ${req.headers.get('from')}`);
  const to = req.headers.get('to') ?? '';
  lines.push(`To: ${opts.toTag && !headerTag(to) ? `${to};tag=${opts.toTag}` : to}`);
  lines.push(`Call-ID: ${req.headers.get('call-id')}`);
  lines.push(`CSeq: ${req.headers.get('cseq')}`);
  if (opts.contact) lines.push(`Contact: ${opts.contact}`);
  for (const [k, v] of opts.extra ?? []) lines.push(`${k}: ${v}`);
  lines.push('Server: sip-as-rtmp');
  const body = opts.body ?? '';
  if (body) lines.push(`Content-Type: ${opts.contentType ?? 'application/sdp'}`);
  lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return lines.join('\r\n') + '\r\n\r\n' + body;
}
