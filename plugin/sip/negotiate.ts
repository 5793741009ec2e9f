/**
 * The media leg's offer/answer: Asterisk offers, the app answers (RFC 3264). Pure, so every rule has a
 * test: take the first audio m-line with a codec we prefer (keeping the offer's payload types), add
 * telephone-event at its clock rate; when video is wanted, the first video m-line's H.264 (its fmtp as
 * offered: the depacketizer takes packetization-mode 0 and 1); reject every other m-line with port 0.
 */
import { answerDirection, buildSdp, chooseFormats, type CodecPreference, type SdpFormat, type SdpSession } from './sdp.js';

export interface LegMedia {
  audio: SdpFormat;
  dtmf?: SdpFormat;
  /** Where Asterisk will send from (symmetric RTP): its offer's address and port. */
  source: { address: string; port: number };
  video?: { format: SdpFormat; source: { address: string; port: number } };
}

export interface LegAnswerOptions {
  audioPrefs: CodecPreference[];
  /** Our RTP port for audio. */
  audioPort: number;
  /** Our RTP port for video; without it video is declined. */
  videoPort?: number;
  address: string;
  sessionId: number;
  /** o= version: bump it for every new answer in the dialog. */
  version: number;
}

const H264: CodecPreference = { encoding: 'H264', clockRate: 90000 };

export type LegAnswer = { sdp: string; media: LegMedia } | { status: number; reason: string };

export function answerLegOffer(offer: SdpSession, o: LegAnswerOptions): LegAnswer {
  let audio: Omit<LegMedia, 'video'> | undefined;
  let video: LegMedia['video'];
  const answer = offer.media.map((m) => {
    const source = { address: m.address, port: m.port };
    if (!audio && m.kind === 'audio' && m.port !== 0) {
      const formats = chooseFormats(m, o.audioPrefs);
      if (formats.length) {
        audio = { audio: formats[0]!, ...(formats[1] ? { dtmf: formats[1] } : {}), source };
        return { kind: m.kind, protocol: m.protocol, port: o.audioPort, formats, direction: answerDirection(m.direction) };
      }
    }
    if (!video && o.videoPort && m.kind === 'video' && m.port !== 0) {
      const formats = chooseFormats(m, [H264]);
      if (formats.length) {
        video = { format: formats[0]!, source };
        return { kind: m.kind, protocol: m.protocol, port: o.videoPort, formats: formats.slice(0, 1), direction: answerDirection(m.direction) };
      }
    }
    return { kind: m.kind, protocol: m.protocol, port: 0, formats: m.formats.slice(0, 1), direction: m.direction };
  });
  if (!audio) return { status: 488, reason: 'Not Acceptable Here' };
  return { sdp: buildSdp({ address: o.address, sessionId: o.sessionId, version: o.version, media: answer }), media: { ...audio, ...(video ? { video } : {}) } };
}
