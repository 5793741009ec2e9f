// @ts-check
/**
 * What the page knows: the server's config, the API token, the calls and their latest stats (as the live
 * feed reports them) and which call is selected. The other modules read these bindings (live, as ES
 * module exports are) and change them only through the setters here.
 */
import { CALL_STATUSES, FINAL_CALL_STATUSES, FINAL_PUSH_STATES } from './lib/calls/states.js';

/**
 * @typedef {{ at: string, type: string, detail?: string }} CallEvent
 * @typedef {{ mediaSessionId: string, callId: string, streamName: string, rtmpUrl: string, status: string,
 *   reason: string|null, muted: boolean, soundEnabled: boolean, soundFile: string|null, primary: boolean,
 *   createdAt: string, stats?: { reconnects?: number }, platform?: string, sessionLimitSec?: number,
 *   sessionEndsAt?: string|null }} PushView
 * @typedef {{ callId: string, status: string, sipStatus: number|null, caller: string, callee: string,
 *   rtmpUrl: string, rtmpStream: string, streamName: string, rtmpStreamStatus: string, hasAudio: boolean,
 *   hasVideo: boolean, incoming: boolean, visibleName: string, info: string|null, reason: string|null,
 *   createdAt: string, establishedAt: string|null, endedAt: string|null, maxDuration?: number|null,
 *   endsAt?: string|null, events: CallEvent[], recordings?: RecordingView[],
 *   pushes: PushView[], previewUrl: string|null }} ConsoleCall
 * @typedef {{ recordingId: string, mediaSessionId: string, source: string, status: string, reason: string|null,
 *   fileName: string, downloadUrl: string|null, bytes: number, durationMs: number }} RecordingView
 * @typedef {{ received: number, lost: number, lossPct: number, rejected: number, jitterMs: number }} TrackStats
 * @typedef {{ bitrateKbps: number, audioKbps: number, videoKbps: number, audio: TrackStats|null,
 *   video: TrackStats|null, jitterBufferMs: number, avOffsetMs: number|null, keyframeIntervalMs: number|null,
 *   videoOut: { mode: string, source: string, size: string|null }|null,
 *   latencyMs: { p50: number, p99: number }|null,
 *   pushes: { mediaSessionId: string, status: string, reconnects: number }[] }} CallStats
 * @typedef {{ restPrefix: string, tokenRequired: boolean, streamPrefix: string }} ConsoleConfig
 */

// The states come from the server's own declarations (calls/states.ts, served compiled): string sets, as the
// page reads them from JSON.
/** @type {ReadonlySet<string>} */
const ENDED = new Set(FINAL_CALL_STATUSES);
/** @type {ReadonlySet<string>} */
export const STATUSES = new Set(CALL_STATUSES);
/** @type {ReadonlySet<string>} */
export const ENDED_PUSH = new Set(FINAL_PUSH_STATES);
const TOKEN_KEY = 'sip-as-rtmp-console:api-token';

/** @type {ConsoleConfig} */
export let config = { restPrefix: '/rest-api', tokenRequired: false, streamPrefix: 'rtmp_' };
export let token = sessionStorage.getItem(TOKEN_KEY) ?? '';
/** @type {Map<string, ConsoleCall>} */
export const calls = new Map();
/** @type {Map<string, CallStats>} */
export const stats = new Map();
/** @type {string|null} */
export let selectedId = null;

/** config.json's answer over the defaults. @param {Partial<ConsoleConfig>} loaded */
export function setConfig(loaded) {
  config = { ...config, ...loaded };
}

/** The token typed in, kept for this tab's session. @param {string} value */
export function setToken(value) {
  token = value;
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** @param {string|null} callId */
export function setSelectedId(callId) {
  selectedId = callId;
}

export const isEnded = (/** @type {ConsoleCall|undefined} */ call) => !!call && ENDED.has(call.status);
export const selectedCall = () => (selectedId ? calls.get(selectedId) : undefined);
