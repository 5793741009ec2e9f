/**
 * Every status, state and reason a client can see, declared once. The types, the OpenAPI enums, the
 * /metrics labels and the console (which loads this file as is: no Node imports here) all come from these.
 */
import { OUTPUT_STATES } from '../media/output/states.js';

/** A call's status, as WCS names it (../shared/wcs-api.md). */
export const CALL_STATUSES = ['TRYING', 'RING', 'SESSION_PROGRESS', 'ESTABLISHED', 'HOLD', 'BUSY', 'FINISH', 'FAILED'] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

/** Statuses a call never leaves. */
export const FINAL_CALL_STATUSES = ['BUSY', 'FINISH', 'FAILED'] as const satisfies readonly CallStatus[];
export const FINAL_STATUSES: ReadonlySet<CallStatus> = new Set(FINAL_CALL_STATUSES);

/** Why a call ended: WCS's reasons where they fit. */
export const CALL_REASONS = [
  'NORMAL_CALL_CLEARING',
  'FAILED_BY_SESSION_CREATION',
  'FAILED_BY_RTP_ACTIVITY',
  'FAILED_BY_RTMP_WRITER_ERROR',
  'FAILED_BY_REQUEST_TIMEOUT',
  'NO_COMMON_CODECS',
  'FAILED_BY_ERROR',
  'AUTHENTICATION_FAIL',
] as const;
export type CallReason = (typeof CALL_REASONS)[number];

/** The call's primary output (rtmpUrl), as `rtmpStreamStatus`. */
export const STREAM_STATUSES = ['NEW', 'CONNECTING', 'PUBLISHING', 'RECONNECTING', 'FAILED', 'UNPUBLISHED'] as const;
export type StreamStatus = (typeof STREAM_STATUSES)[number];

/** One output's connection (media/output/push.ts). */

/** A push as the API shows it: PENDING until the call's media is up, then its output's state. */
export const PUSH_STATES = ['PENDING', ...OUTPUT_STATES] as const;
export type PushStatus = (typeof PUSH_STATES)[number];

/** Push states that hold a connection (or are getting one). */
export const LIVE_PUSH_STATES = ['CONNECTING', 'PUBLISHING', 'RECONNECTING'] as const satisfies readonly PushStatus[];
/** Push states a push never leaves (its connection is gone for good). */
export const FINAL_PUSH_STATES = ['FAILED', 'CLOSED'] as const satisfies readonly PushStatus[];
