/** The call as the WCS contract sees it (../shared/wcs-api.md), plus our additions. */

export type CallStatus =
  | 'TRYING' | 'RING' | 'SESSION_PROGRESS' | 'ESTABLISHED' | 'HOLD' | 'BUSY' | 'FINISH' | 'FAILED';

export const FINAL_STATUSES: ReadonlySet<CallStatus> = new Set(['BUSY', 'FINISH', 'FAILED']);

/** WCS failure reasons where they fit. */
export type CallReason =
  | 'NORMAL_CALL_CLEARING'
  | 'FAILED_BY_SESSION_CREATION'
  | 'FAILED_BY_RTP_ACTIVITY'
  | 'FAILED_BY_RTMP_WRITER_ERROR'
  | 'FAILED_BY_REQUEST_TIMEOUT'
  | 'NO_COMMON_CODECS'
  | 'FAILED_BY_ERROR'
  | 'AUTHENTICATION_FAIL';

/** State of the call's RTMP output. */
export type StreamStatus = 'NEW' | 'CONNECTING' | 'PUBLISHING' | 'RECONNECTING' | 'FAILED' | 'UNPUBLISHED';

/** A validated /call/startup request. */
export interface StartupRequest {
  callId: string;
  callee: string;
  sipLogin: string;
  sipAuthenticationName: string;
  sipPassword: string;
  sipDomain: string;
  sipOutboundProxy: string;
  sipPort: number | undefined;
  sipRegisterRequired: boolean;
  appKey: string;
  hasAudio: boolean;
  hasVideo: boolean;
  visibleName: string;
  toStream: string;
  rtmpUrl: string;
  rtmpStream: string;
  /** true: publish to rtmpUrl(/rtmpStream) exactly as given, without the server's stream-name prefix. */
  rtmpTransponderFullUrl: boolean;
}

/** One entry of a call's recent history, as shown in the Call object. */
export interface CallEvent {
  at: string;
  type: string;
  detail?: string;
}

/** The Call object answered by /call/find (never the password; stream keys masked). */
export interface CallView {
  callId: string;
  status: CallStatus;
  sipStatus: number | null;
  caller: string;
  callee: string;
  rtmpUrl: string;
  rtmpStream: string;
  streamName: string;
  rtmpStreamStatus: StreamStatus;
  hasAudio: boolean;
  hasVideo: boolean;
  incoming: boolean;
  visibleName: string;
  appKey: string;
  info: string;
  reason: CallReason | null;
  createdAt: string;
  establishedAt: string | null;
  endedAt: string | null;
  events: CallEvent[];
  media?: Record<string, unknown>;
}
