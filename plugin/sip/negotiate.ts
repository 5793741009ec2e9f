/**
 * The media leg's offer/answer: Asterisk offers, the app answers (RFC 3264). Pure, so every rule has a
 * test: take the first audio m-line with a codec we prefer (keeping the offer's payload types), add
 * telephone-event at its clock rate, and reject every other m-line with port 0, in order.
 */
import { answerDirection, buildSdp, chooseFormats, type CodecPreference, type SdpFormat, type SdpSession } from './sdp.js';

export interface LegMedia {
  audio: SdpFormat;
  dtmf?: SdpFormat;
  /** Where Asterisk will send from (symmetric RTP): its offer's address and port. */
  source: { address: string; port: number };
}

export interface LegAnswerOptions {
  audioPrefs: CodecPreference[];
  /** Our RTP port for audio. */
  audioPort: number;
  address: string;
  sessionId: number;
  /** o= version: bump it for every new answer in the dialog. */
  version: number;
}

export type LegAnswer = { sdp: string; media: LegMedia } | { status: number; reason: string };

export function answerLegOffer(offer: SdpSession, o: LegAnswerOptions): LegAnswer {
  let media: LegMedia | undefined;
  const answer = offer.media.map((m) => {
    const formats = !media && m.kind === 'audio' && m.port !== 0 ? chooseFormats(m, o.audioPrefs) : [];
    if (formats.length) {
      media = { audio: formats[0]!, ...(formats[1] ? { dtmf: formats[1] } : {}), source: { address: m.address, port: m.port } };
      return { kind: m.kind, protocol: m.protocol, port: o.audioPort, formats, direction: answerDirection(m.direction) };
    }
    return { kind: m.kind, protocol: m.protocol, port: 0, formats: m.formats.slice(0, 1), direction: m.direction };
  });
  if (!media) return { status: 488, reason: 'Not Acceptable Here' };
  return { sdp: buildSdp({ address: o.address, sessionId: o.sessionId, version: o.version, media: answer }), media };
}
