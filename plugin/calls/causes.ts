/**
 * How a call that ended before (or after) being answered is reported: status, WCS reason, SIP code and a
 * sentence for a human. Asterisk gives Q.850 causes, and the SIP code when the far end sent one.
 */
import type { CallReason, CallStatus } from './types.js';

/** Asterisk's own Q.850 → SIP mapping (res_pjsip_session hangup_cause2sip), for when no SIP code came back. */
const CAUSE_TO_SIP: Record<number, number> = {
  1: 404, 2: 404, 3: 404, 17: 486, 18: 408, 19: 480, 20: 480, 21: 403, 22: 410, 26: 404, 27: 502, 28: 484,
  29: 501, 31: 480, 34: 503, 38: 503, 41: 503, 42: 503, 47: 503, 55: 403, 57: 403, 58: 503, 65: 488,
  69: 501, 79: 501, 88: 488, 102: 504, 127: 500,
};

const SIP_TEXT: Record<number, string> = {
  403: 'Forbidden (wrong SIP login or password?)', 404: 'Not Found (no such callee)', 407: 'Proxy Authentication Required',
  401: 'Unauthorized', 408: 'Request Timeout (no answer from the SIP server)', 410: 'Gone', 480: 'Temporarily Unavailable',
  484: 'Address Incomplete', 486: 'Busy Here', 487: 'Request Terminated', 488: 'Not Acceptable Here (no common codec)',
  500: 'Server Internal Error', 502: 'Bad Gateway', 503: 'Service Unavailable (SIP server unreachable?)',
  504: 'Server Time-out', 600: 'Busy Everywhere', 603: 'Decline',
};

export interface Outcome {
  status: CallStatus;
  reason: CallReason;
  sipStatus: number | null;
  info: string;
}

/** A call that ended without being answered. */
export function unansweredOutcome(cause: number, causeText: string, sipStatus?: number): Outcome {
  const sip = sipStatus ?? CAUSE_TO_SIP[cause] ?? null;
  const sipPart = sip ? `SIP ${sip} ${SIP_TEXT[sip] ?? ''}`.trim() : '';
  const info = [sipPart, `(Q.850 ${cause} ${causeText})`].filter(Boolean).join(' ');
  if (cause === 17 || sip === 486 || sip === 600) return { status: 'BUSY', reason: 'NORMAL_CALL_CLEARING', sipStatus: sip ?? 486, info };
  let reason: CallReason = 'FAILED_BY_SESSION_CREATION';
  if (cause === 18 || cause === 19 || sip === 408 || sip === 480) reason = 'FAILED_BY_REQUEST_TIMEOUT';
  else if (cause === 58 || cause === 65 || cause === 88 || sip === 488) reason = 'NO_COMMON_CODECS';
  return { status: 'FAILED', reason, sipStatus: sip, info };
}

/** An answered call that hung up. */
export function answeredOutcome(byUs: boolean, cause: number, causeText: string): Outcome {
  return {
    status: 'FINISH',
    reason: 'NORMAL_CALL_CLEARING',
    sipStatus: 200,
    info: byUs ? 'Terminated' : `Hung up by the callee (Q.850 ${cause} ${causeText})`,
  };
}
