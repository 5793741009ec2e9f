/**
 * How the dialplan hands a call over, read into /call/startup fields (validated by the core's
 * validateInbound): Stasis(app, rtmpUrl, stream[, key=value...]), where the keys are /call/startup field
 * names (hasVideo, hasAudio, rtmpTransponderFullUrl, callId, visibleName, appKey), or, with no arguments,
 * the channel variables SIP_AS_RTMP_URL, SIP_AS_RTMP_STREAM and SIP_AS_RTMP_VIDEO.
 */
import { ValidationError } from '../../plugin/calls/validate.js';
import { maskSecret } from '../../plugin/lib/redact.js';

/** Channel variables an inbound call may carry instead of Stasis arguments. */
export const INBOUND_VARIABLES = { rtmpUrl: 'SIP_AS_RTMP_URL', rtmpStream: 'SIP_AS_RTMP_STREAM', hasVideo: 'SIP_AS_RTMP_VIDEO' } as const;


export function inboundFields(args: string[], vars: Record<string, string>): Record<string, string> {
  const [url, stream, ...rest] = args;
  const f: Record<string, string> = {};
  for (const kv of rest) {
    const i = kv.indexOf('=');
    // Masked: a misplaced argument is often the stream key, and this message is logged.
    if (i <= 0) throw new ValidationError('Stasis argument', `"${maskSecret(kv)}" must be key=value`);
    f[kv.slice(0, i).trim()] = kv.slice(i + 1).trim();
  }
  f.rtmpUrl = url || vars[INBOUND_VARIABLES.rtmpUrl] || '';
  f.rtmpStream = stream || vars[INBOUND_VARIABLES.rtmpStream] || '';
  const video = vars[INBOUND_VARIABLES.hasVideo];
  if (f.hasVideo === undefined && video) f.hasVideo = video;
  return f;
}
