/**
 * Where an output goes, parsed once from the URL a client gave: the sink that publishes there
 * (adapters/) takes it, and the API shows `display` and compares `key`. New kinds (SRT) add a case.
 */
import { describeTarget, parseRtmpUrl, type RtmpTarget } from '../../rtmp/url.js';

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

export type OutputTarget = RtmpOutputTarget;

/** `streamName`, when given, is appended to the URL's path; otherwise the URL ends with it. Throws RtmpUrlError. */
export function parseOutputTarget(url: string, streamName?: string): OutputTarget {
  const rtmp = parseRtmpUrl(url, streamName);
  return { kind: 'rtmp', rtmp, host: rtmp.host, port: rtmp.port, key: `${rtmp.host}:${rtmp.port}/${rtmp.app}/${rtmp.streamName}`, display: describeTarget(rtmp) };
}
