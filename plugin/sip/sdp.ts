/**
 * Just enough SDP (RFC 4566/3264) for the media leg: read Asterisk's offer, write our answer.
 *
 * Rules learned on Asterisk (asterisk-facts.md):
 * - answer with the payload-type numbers from the offer: Asterisk silently drops RTP sent with others;
 * - answer every m-line, in order; a stream we don't take gets port 0.
 */

export interface SdpFormat {
  payloadType: number;
  /** Encoding name as in a=rtpmap, upper-cased: L16, PCMU, PCMA, G722, H264, TELEPHONE-EVENT. */
  encoding: string;
  clockRate: number;
  channels: number;
  fmtp?: string;
}

export interface SdpMedia {
  kind: string; // audio | video | ...
  port: number;
  protocol: string;
  formats: SdpFormat[];
  /** Connection address for this m-line (its own c= or the session's). */
  address: string;
  direction: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  rtcpPort?: number;
}

export interface SdpSession {
  origin: string;
  address: string;
  media: SdpMedia[];
}

export class SdpError extends Error {
  override readonly name = 'SdpError';
}

/** Static payload types (RFC 3551) that may come without a=rtpmap. */
const STATIC_PT: Record<number, [string, number]> = { 0: ['PCMU', 8000], 8: ['PCMA', 8000], 9: ['G722', 8000] };

const MAX_SDP = 16 * 1024;

export function parseSdp(text: string): SdpSession {
  if (text.length > MAX_SDP) throw new SdpError('SDP too large');
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines[0] !== 'v=0') throw new SdpError('SDP must start with v=0');
  let origin = '';
  let sessionAddress = '';
  const media: SdpMedia[] = [];
  let cur: (SdpMedia & { rtpmap: Map<number, SdpFormat>; order: number[] }) | undefined;
  const finish = () => {
    if (!cur) return;
    cur.formats = cur.order.map((pt) => {
      const f = cur!.rtpmap.get(pt);
      if (f) return f;
      const st = STATIC_PT[pt];
      return { payloadType: pt, encoding: st?.[0] ?? `PT${pt}`, clockRate: st?.[1] ?? 0, channels: 1 };
    });
    const { rtpmap: _r, order: _o, ...m } = cur;
    media.push(m);
  };
  for (const line of lines) {
    const type = line[0];
    const value = line.slice(2);
    if (line[1] !== '=') throw new SdpError(`bad SDP line "${line.slice(0, 40)}"`);
    if (type === 'o') origin = value;
    else if (type === 'c') {
      const addr = value.split(' ')[2] ?? '';
      if (cur) cur.address = addr;
      else sessionAddress = addr;
    } else if (type === 'm') {
      finish();
      const [kind, port, protocol, ...fmts] = value.split(' ');
      const portNum = Number(port?.split('/')[0]);
      if (!kind || !Number.isInteger(portNum) || portNum < 0 || portNum > 65535 || !protocol) {
        throw new SdpError(`bad m= line "${line.slice(0, 60)}"`);
      }
      // Decimal tokens only: Number('') is 0, so a trailing or doubled space would add PCMU (PT 0) to the offer.
      const order = fmts.filter((f) => /^\d+$/.test(f)).map(Number).filter((n) => n <= 127);
      cur = { kind, port: portNum, protocol, formats: [], address: sessionAddress, direction: 'sendrecv', rtpmap: new Map(), order };
    } else if (type === 'a' && cur) {
      const colon = value.indexOf(':');
      const name = colon < 0 ? value : value.slice(0, colon);
      const arg = colon < 0 ? '' : value.slice(colon + 1);
      if (name === 'rtpmap') {
        const m = /^(\d+) ([^/]+)\/(\d+)(?:\/(\d+))?$/.exec(arg.trim());
        if (m) {
          const pt = Number(m[1]);
          cur.rtpmap.set(pt, { payloadType: pt, encoding: m[2]!.toUpperCase(), clockRate: Number(m[3]), channels: m[4] ? Number(m[4]) : 1 });
        }
      } else if (name === 'fmtp') {
        const sp = arg.indexOf(' ');
        const pt = Number(arg.slice(0, sp));
        const f = cur.rtpmap.get(pt);
        if (f && sp > 0) f.fmtp = arg.slice(sp + 1);
      } else if (name === 'rtcp') {
        const p = Number(arg.split(' ')[0]);
        if (Number.isInteger(p)) cur.rtcpPort = p;
      } else if (name === 'sendrecv' || name === 'sendonly' || name === 'recvonly' || name === 'inactive') {
        cur.direction = name;
      }
    }
  }
  finish();
  if (media.length === 0) throw new SdpError('SDP has no m= line');
  return { origin, address: sessionAddress, media };
}

/** What the app accepts for each kind, in order of preference (encoding/clock rate). */
export interface CodecPreference {
  encoding: string;
  clockRate: number;
}

export interface AnswerMedia {
  /** Our RTP port for this m-line, or 0 to reject it. */
  port: number;
  /** The chosen formats (first = the codec), taken from the offer with its payload types. */
  formats: SdpFormat[];
  direction: SdpMedia['direction'];
}

/**
 * Choose, for one offered m-line, the first preferred codec the offer has, plus telephone-event at the
 * same clock rate (for DTMF). Returns [] when nothing fits.
 */
export function chooseFormats(offer: SdpMedia, prefs: CodecPreference[]): SdpFormat[] {
  for (const p of prefs) {
    const f = offer.formats.find((o) => o.encoding === p.encoding.toUpperCase() && o.clockRate === p.clockRate);
    if (!f) continue;
    const dtmf = offer.formats.find((o) => o.encoding === 'TELEPHONE-EVENT' && o.clockRate === f.clockRate);
    return dtmf ? [f, dtmf] : [f];
  }
  return [];
}

export function buildSdp(opts: { address: string; sessionId: number; version: number; media: (AnswerMedia & { kind: string; protocol: string })[] }): string {
  const out = [
    'v=0',
    `o=sip-as-rtmp ${opts.sessionId} ${opts.version} IN IP4 ${opts.address}`,
    's=sip-as-rtmp',
    `c=IN IP4 ${opts.address}`,
    't=0 0',
  ];
  for (const m of opts.media) {
    const pts = m.formats.length ? m.formats.map((f) => f.payloadType) : [0];
    out.push(`m=${m.kind} ${m.port} ${m.protocol} ${pts.join(' ')}`);
    if (m.port === 0) continue;
    for (const f of m.formats) {
      out.push(`a=rtpmap:${f.payloadType} ${rtpmapName(f.encoding)}/${f.clockRate}${f.channels > 1 ? `/${f.channels}` : ''}`);
      if (f.fmtp) out.push(`a=fmtp:${f.payloadType} ${f.fmtp}`);
    }
    out.push(`a=${m.direction}`);
  }
  return out.join('\r\n') + '\r\n';
}

function rtpmapName(enc: string): string {
  return enc === 'TELEPHONE-EVENT' ? 'telephone-event' : enc;
}

/** Our direction for an offered one: we receive (and may send generated media), so mirror it. */
export function answerDirection(offered: SdpMedia['direction']): SdpMedia['direction'] {
  switch (offered) {
    case 'sendonly':
      return 'recvonly';
    case 'recvonly':
      return 'sendonly';
    default:
      return offered;
  }
}
