/**
 * Where an output goes, parsed once from the URL a client gave: the sink that publishes there
 * (adapters/) takes it, and the API shows `display` and compares `key`. RTMP(S) and SRT so far.
 */
import { describeTarget, parseRtmpUrl, RtmpUrlError, type RtmpTarget } from '../../rtmp/url.js';
import { describeSrtTarget, parseSrtUrl, type SrtTarget } from './srt-url.js';

interface TargetBase {
  host: string;
  port: number;
  /** One stream per destination: a second live output to the same key is refused. */
  key: string;
  /** For logs and answers: no credentials, no query, the stream key masked. */
  display: string;
}

export interface RtmpOutputTarget extends TargetBase {
  kind: 'rtmp';
  rtmp: RtmpTarget;
}

export interface SrtOutputTarget extends TargetBase {
  kind: 'srt';
  srt: SrtTarget;
}

export type OutputTarget = RtmpOutputTarget | SrtOutputTarget;

/** The URL schemes an output accepts, for error messages. */
export const OUTPUT_SCHEMES = 'rtmp://, rtmps:// or srt://';

/**
 * `streamName`, when given, is appended to an RTMP URL's path (for SRT it becomes the streamid);
 * otherwise the URL ends with it. Throws RtmpUrlError (its message names rtmpUrl, the API's field).
 */
export function parseOutputTarget(url: string, streamName?: string): OutputTarget {
  if (/^srt:\/\//i.test(url.trim())) {
    const srt = parseSrtUrl(url, streamName);
    return { kind: 'srt', srt, host: srt.host, port: srt.port, key: `srt:${srt.host}:${srt.port}/${srt.streamId ?? ''}`, display: describeSrtTarget(srt) };
  }
  if (!/^rtmps?:\/\//i.test(url.trim())) throw new RtmpUrlError(`rtmpUrl must start with ${OUTPUT_SCHEMES}`);
  const rtmp = parseRtmpUrl(url, streamName);
  return { kind: 'rtmp', rtmp, host: rtmp.host, port: rtmp.port, key: `${rtmp.host}:${rtmp.port}/${rtmp.app}/${rtmp.streamName}`, display: describeTarget(rtmp) };
}
