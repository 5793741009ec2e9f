/** The call as the WCS contract sees it (../shared/wcs-api.md), plus our additions. */

import type { OutputTarget } from '../media/output/target.js';
import type { RecordingState } from '../media/output/states.js';
import type { CallReason, CallStatus, StreamStatus } from './states.js';

export { FINAL_STATUSES, type CallReason, type CallStatus, type StreamStatus } from './states.js';

/** A validated /call/startup request. */
export interface StartupRequest {
  callId: string;
  callee: string;
  sipLogin: string;
  sipAuthenticationName: string;
  sipPassword: string;
  sipDomain: string;
  /** sipDomain came from the callee's full sip: URI (errors about it then name callee). */
  sipDomainFromCallee?: boolean;
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
  /** Where the primary output publishes (parsed once, from rtmpUrl): none when only toStream is given. */
  target: OutputTarget | undefined;
  /** The call's own duration limit in seconds (0: none); undefined: MAX_CALL_DURATION. */
  maxDuration: number | undefined;
  /** Record the whole call from its answer (RECORDINGS_DIR, RECORD_FILE_TEMPLATE). */
  record: boolean;
}

/**
 * Is the call's stream name its stream key? It is without a toStream (the name is then rtmpStream), and when
 * toStream is rtmpStream, as for an inbound call (the dialplan's stream argument is both). Answers, hooks,
 * logs and the live feed then mask it, as they mask rtmpStream; finding by it still takes the real name.
 */
export function streamNameIsKey(r: Pick<StartupRequest, 'toStream' | 'rtmpStream'>): boolean {
  return !r.toStream || r.toStream === r.rtmpStream;
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
  /** Its duration limit in seconds (maxDuration, else MAX_CALL_DURATION); null: none. */
  maxDuration: number | null;
  /** When that limit hangs it up: known once answered. */
  endsAt: string | null;
  events: CallEvent[];
  /** The stream's video track: passthrough or transcode, what it shows now, its one size; null without one. */
  video: { mode: string; source: string; size: string | null } | null;
  /** Its recordings (of the call, or of one of its outputs): status, file, size. */
  recordings: RecordingView[];
  media?: Record<string, unknown>;
  /** In a cluster: the node (NODE_ID) that holds the call. */
  nodeId?: string;
}

export interface RecordingView {
  recordingId: string;
  /** What is recorded: the callId (the whole call) or a push's mediaSessionId (that output, its mute and sound applied). */
  mediaSessionId: string;
  callId: string;
  source: 'call' | 'push';
  status: RecordingState;
  reason: string | null;
  /** The file's name: `.recording.flv` while recording, `.mp4` once DONE. */
  fileName: string;
  path: string;
  /** GET it (with the API token) once DONE: an MP4 that browsers play. */
  downloadUrl: string | null;
  bytes: number;
  durationMs: number;
  startedAt: string;
  endedAt: string | null;
}
