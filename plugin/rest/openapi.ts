/**
 * The OpenAPI 3.0.3 description of the REST API: the WCS-compatible POST methods of server.ts
 * (../shared/wcs-api.md), the live feed and preview of the console, and /metrics.
 *
 * Built as plain data, from one table of methods and a few helpers, so it reads like the API. Every
 * request example is exported (EXAMPLES) and works as given against the project's sandbox: the unit test
 * checks each against the validators, and that every route server.ts registers is documented here.
 */

import { CALL_REASONS, CALL_STATUSES, PUSH_STATES, STREAM_STATUSES } from '../calls/states.js';
import { MAX_DURATION_SEC } from '../calls/validate.js';

export interface OpenApiOptions {
  prefix: string;
  /** e.g. "http://127.0.0.1:8081" */
  serverUrl?: string;
  tokenRequired: boolean;
}

type Json = Record<string, unknown>;

// ---- examples (the sandbox: baresip "softphone" on 127.0.0.1:5080, nginx-rtmp on rtmp://127.0.0.1:1935) ----

const CALL_ID = 'docs-example-1';
/** No toStream in the startup example: the call's stream name (what /push/startup names) is its rtmpStream. */
const STREAM = CALL_ID;
/** A placeholder: the real one comes from /push/startup's answer (or /push/find). */
const MEDIA_SESSION_ID = '00000000-0000-4000-8000-000000000000';
/** A file that must exist in SOUNDS_DIR for the sound examples to answer 200 (else 400 naming the field). */
export const EXAMPLE_SOUND_FILE = 'hello.wav';

const byCallId = { callId: CALL_ID };
const bySession = { mediaSessionId: MEDIA_SESSION_ID };

/** Every method's request example, keyed by path without prefix ("/call/startup"): the test posts them. */
export const EXAMPLES: Record<string, Record<string, unknown>> = {
  '/call/startup': {
    callId: CALL_ID, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: '5080', hasAudio: 'true', hasVideo: 'false',
    rtmpUrl: 'rtmp://127.0.0.1:1935/live', rtmpStream: STREAM, visibleName: 'Docs example',
  },
  '/call/terminate': byCallId,
  '/call/hold': byCallId,
  '/call/unhold': byCallId,
  '/call/send_dtmf': { callId: CALL_ID, dtmf: '1234#', type: 'RFC2833' },
  '/call/inject_sound': { callId: CALL_ID, fileName: EXAMPLE_SOUND_FILE },
  '/call/inject_stream/startup': { callId: CALL_ID, streamName: 'rtmp://127.0.0.1:1935/live/announcement' },
  '/call/inject_stream/terminate': byCallId,
  '/call/inject_stream': { callId: CALL_ID, streamName: 'rtmp://127.0.0.1:1935/live/announcement' },
  '/call/find': byCallId,
  '/call/find_all': {},
  // Another app than the call's own output (rtmp://127.0.0.1:1935/live/rtmp_docs-example-1): the same
  // destination twice would be a 409. nginx records what reaches /recorded.
  '/push/startup': { streamName: STREAM, rtmpUrl: 'rtmp://127.0.0.1:1935/recorded' },
  '/push/find': { streamName: STREAM },
  '/push/find_all': {},
  '/push/terminate': bySession,
  '/push/mute': bySession,
  '/push/unmute': bySession,
  '/push/sound_on': { mediaSessionId: MEDIA_SESSION_ID, soundFile: EXAMPLE_SOUND_FILE, loop: 'false' },
  '/push/sound_off': bySession,
  '/recorder/startup': { mediaSessionId: CALL_ID, config: { fileTemplate: '{streamName}-{startTime}-{endTime}' } },
  '/stream/startRecording': { mediaSessionId: CALL_ID },
  '/recorder/terminate': { mediaSessionId: CALL_ID },
  '/stream/stopRecording': { mediaSessionId: CALL_ID },
  '/recorder/find_all': {},
};

// ---- schema helpers ----

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const EXT = '**Extension** (not in WCS):';
const str = (description: string, extra: Json = {}): Json => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Json = {}): Json => ({ type: 'integer', description, ...extra });
const nullable = (schema: Json): Json => ({ ...schema, nullable: true });
const arrayOf = (items: Json, description?: string): Json => ({ type: 'array', items, ...(description ? { description } : {}) });
const object = (properties: Record<string, Json>, required: string[] = [], extra: Json = {}): Json => ({
  type: 'object', ...(required.length ? { required } : {}), properties, ...extra,
});

/** WCS clients send booleans as "true"/"false"; real booleans work too. */
function wcsBool(description: string, def: boolean): Json {
  return {
    description: `${description} A boolean or its string form (\`"true"\`/\`"false"\`, as WCS clients send).`,
    default: def,
    oneOf: [{ type: 'boolean' }, { type: 'string', enum: ['true', 'false', 'TRUE', 'FALSE', 'True', 'False'] }],
  };
}

/** A whole number min..max, or its string form (`"5060"`), as validate.ts reads it. */
function wcsInt(description: string, minimum: number, maximum: number): Json {
  return { description: `${description} A number or its string form, as WCS clients send.`, oneOf: [{ type: 'integer', minimum, maximum }, { type: 'string', pattern: '^\\s*\\d+\\s*$' }] };
}

/** Same patterns as validate.ts (SIP_TOKEN, HOST). */
const SIP_TOKEN = "^[A-Za-z0-9\\-_.!~*'()&=+$,;?/%#]+$";
const HOST = '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+)(:\\d{1,5})?$';
/** A SIP user, or a full sip:/sips: URI (its user part then gets the SIP_TOKEN check). */
const CALLEE = `^([Ss][Ii][Pp][Ss]?:[^@]+@.+|${SIP_TOKEN.slice(1, -1)})$`;
const RTMP_URL = '^([Rr][Tt][Mm][Pp][Ss]?|[Ss][Rr][Tt])://';

const callIdField = (description = 'The call, as named in /call/startup.'): Json => str(description, { maxLength: 128 });
const mediaSessionIdField = str('The push, from the `mediaSessionId` of /push/startup\'s answer (or /push/find).', { maxLength: 64, format: 'uuid' });
const SRT_URL_DOC = '`srt://host:port?streamid=…&passphrase=…&latency=ms` (extension: MPEG-TS over SRT in caller mode, AAC and H.264 passed through; a separate stream name becomes the streamid)';
const rtmpUrlField = (description: string): Json => str(description, { maxLength: 1024, pattern: RTMP_URL });
const soundFileField = (description: string): Json => str(`${description} A file name relative to SOUNDS_DIR (any format ffmpeg reads, up to 10 min); names outside it are refused.`, { maxLength: 256 });
const transponderField = wcsBool(
  `true: publish to \`rtmpUrl\` exactly as given (it ends with the stream name or key); false: to \`rtmpUrl/RTMP_STREAM_PREFIX+stream\` (prefix \`rtmp_\` by default, as WCS). ${EXT} WCS has this as a server setting; here it is per request.`,
  false,
);

// ---- example answers ----

const T0 = '2025-01-01T12:00:00.000Z';
const at = (sec: number): string => new Date(Date.parse(T0) + sec * 1000).toISOString();

const CALL_EXAMPLE: Json = {
  callId: CALL_ID, status: 'ESTABLISHED', sipStatus: 200, caller: '', callee: 'softphone',
  rtmpUrl: 'rtmp://127.0.0.1:1935/live', rtmpStream: 'docs***', streamName: '', rtmpStreamStatus: 'PUBLISHING',
  hasAudio: true, hasVideo: false, incoming: false, visibleName: 'Docs example', appKey: '', info: 'Answered', reason: null,
  createdAt: at(0), establishedAt: at(1.2), endedAt: null, maxDuration: 7200, endsAt: at(7201.2),
  events: [
    { at: at(0), type: 'ACCOUNT_CREATED' },
    { at: at(0.1), type: 'INVITE' },
    { at: at(0.3), type: 'RING', detail: 'Ringing' },
    { at: at(1.2), type: 'ESTABLISHED', detail: 'Answered' },
    { at: at(1.3), type: 'MEDIA_LEG_UP', detail: 'PCMU/8000' },
    { at: at(1.3), type: 'STREAM_CONNECTING', detail: 'rtmp://127.0.0.1:1935/live' },
    { at: at(1.4), type: 'STREAM_PUBLISHING' },
  ],
  video: { mode: 'passthrough', source: 'generated', size: '640x360' },
  media: {
    codec: 'PCMU/8000',
    rtp: { accepted: 2500, bytes: 430000, rejected: 0, rejectedSource: 0, wrongPayloadType: 0, rejectReasons: {}, dtmfPackets: 0, heldPackets: 0, interarrivalJitterMs: 0.4 },
    jitter: { received: 2500, released: 2498, duplicates: 0, late: 0, lost: 0, reordered: 0, resyncs: 0, strays: 0, overflow: 0, depth: 2, maxDepth: 4, depthMs: 60 },
    timeline: { samplesOut: 2400000, silenceSamples: 960, lateSamplesDropped: 0, overflowSamples: 0, reanchors: 0, startRebases: 0, lastJumpMs: 0, startSkippedMs: 0, lastReanchor: null, packets: 2498, driftMs: 0.2, maxAbsDriftMs: 1.1 },
    stream: { audioFrames: 2343, audioBytes: 390000, videoFrames: 0, videoBytes: 0, keyframes: 0, videoConfigs: 0, keyframeIntervalMs: 0 },
  },
};

const RECORDING_EXAMPLE: Json = {
  recordingId: '7d3c1c2e-2f7a-4d55-9a55-3b8e2f0f6b11', mediaSessionId: CALL_ID, callId: CALL_ID, source: 'call', status: 'DONE', reason: null,
  fileName: `${CALL_ID}-20250101-120000.mp4`, path: `/var/lib/sip-as-rtmp/recordings/${CALL_ID}-20250101-120000.mp4`,
  downloadUrl: `/rest-api/recordings/${CALL_ID}-20250101-120000.mp4`, bytes: 2456789, durationMs: 61230, startedAt: T0, endedAt: at(61),
};

const PUSH_EXAMPLE: Json = {
  mediaSessionId: MEDIA_SESSION_ID, callId: CALL_ID, streamName: `rtmp_${STREAM}`, rtmpUrl: 'rtmp://127.0.0.1:1935/recorded/rtmp***',
  status: 'CONNECTING', reason: null, muted: false, soundEnabled: false, soundFile: null, options: {}, primary: false,
  createdAt: at(60), stats: { queuedDropped: 0, framesOut: 0, startedAfterMs: 0, reconnects: 0, droppedWhileDown: 0 },
};

const PRIMARY_PUSH_EXAMPLE: Json = {
  ...PUSH_EXAMPLE, mediaSessionId: '11111111-1111-4111-8111-111111111111', rtmpUrl: 'rtmp://127.0.0.1:1935/live/rtmp***',
  status: 'PUBLISHING', primary: true, createdAt: at(0), stats: { queuedDropped: 0, framesOut: 2930, startedAfterMs: 85, reconnects: 0, droppedWhileDown: 0 },
  health: { audioFrames: 2343, videoFrames: 1500, bothTracks: true, keyframeIntervalMs: 2000, maxKeyframeIntervalMs: 2000, size: '640x360', sizeChanges: 0 },
};

/** A push to a platform with a session limit (media/output/platform-limits.ts). */
const YOUTUBE_PUSH_EXAMPLE: Json = {
  ...PRIMARY_PUSH_EXAMPLE, mediaSessionId: '22222222-2222-4222-8222-222222222222', rtmpUrl: 'rtmps://a.rtmps.youtube.com:443/live2/xxxx***',
  primary: false, createdAt: at(60), platform: 'youtube', sessionLimitSec: 43200, sessionEndsAt: at(60.4 + 43200),
};

// ---- components ----

function schemas(): Record<string, Json> {
  const lossStats = nullable(object({
    received: int('Packets received.'), lost: int('Packets lost.'), lossPct: { type: 'number', description: 'Loss, %.' },
    rejected: int('Packets refused (wrong source or payload type).'), jitterMs: { type: 'number', description: 'Interarrival jitter (RFC 3550), ms.' },
  }));
  return {
    StartupRequest: object({
      callId: str('Yours: names the call in every later request. Must be unique among live and recently ended calls (409).', { maxLength: 128, pattern: '^[^\\s"<>\\\\]+$' }),
      callee: str('Who to call: a SIP user (`1000`, `softphone`), or a full `sip:user@host[:port]` URI (then `sipDomain` may be left out).', { maxLength: 256, pattern: CALLEE }),
      sipDomain: str('The SIP server or host to call, optionally `host:port`. Required unless `callee` is a full sip: URI.', { maxLength: 256, pattern: HOST }),
      sipPort: wcsInt('Port of `sipDomain` (or of `sipOutboundProxy` when given), 1-65535.', 1, 65535),
      sipLogin: str('SIP user to authenticate or register as. Required with `sipRegisterRequired`, and with `sipPassword` unless `sipAuthenticationName` is given.', { maxLength: 256, pattern: SIP_TOKEN }),
      sipAuthenticationName: str('Digest user name, when it differs from `sipLogin`.', { maxLength: 256, pattern: SIP_TOKEN }),
      sipPassword: str('Digest password. Never shown in any answer, hook or log.', { maxLength: 256, format: 'password', writeOnly: true }),
      sipOutboundProxy: str('Send the INVITE through this proxy (host or IP); `sipPort` is then its port.', { maxLength: 256, pattern: HOST }),
      sipRegisterRequired: wcsBool('Register `sipLogin` first; the call is placed once registered (AUTHENTICATION_FAIL if refused).', false),
      hasAudio: wcsBool('Relay the audio. `hasAudio` and `hasVideo` must not both be false.', true),
      hasVideo: wcsBool('Offer H.264; the stream then always has a video track: the callee\'s video, or black while it sends none.', false),
      visibleName: str('Caller display name.', { maxLength: 128 }),
      appKey: str('Free text echoed in the Call object and hooks (WCS application key).', { maxLength: 256 }),
      toStream: str('The call\'s stream name, for publishing later with /push/startup (WCS "SIP as RTMP" variant 4). Required when `rtmpUrl` is not given.', { maxLength: 256 }),
      rtmpUrl: rtmpUrlField(`Publish here as soon as the call is answered: \`rtmp://\` or \`rtmps://\`, credentials allowed (\`rtmp://user:pass@host/app\`); ${EXT} or ${SRT_URL_DOC}. Required unless \`toStream\` is given.`),
      rtmpStream: str('Stream name (or key) appended to `rtmpUrl`. Required with `rtmpUrl` unless `rtmpTransponderFullUrl` is true. Masked in answers.', { maxLength: 512 }),
      rtmpTransponderFullUrl: transponderField,
      record: wcsBool('Record the call from its answer to an MP4 in RECORDINGS_DIR (see /recorder/startup; its status in the Call\'s `recordings`).', false),
      maxDuration: wcsInt(`${EXT} hang the call up (FINISH, NORMAL_CALL_CLEARING) this many seconds after the answer; MAX_CALL_DURATION stays the ceiling (a shorter maxDuration wins); 0: MAX_CALL_DURATION alone. A CallLimitWarningEvent hook comes LIMIT_WARNING_SEC before.`, 0, MAX_DURATION_SEC),
    }, ['callId', 'callee'], {
      description: 'Unknown fields are ignored (WCS clients send more). String fields may also be sent as numbers; no field may contain control characters. Conditional rules: `sipDomain` unless `callee` is a sip: URI; `rtmpUrl` or `toStream`; `rtmpStream` with `rtmpUrl` unless `rtmpTransponderFullUrl`.',
      example: EXAMPLES['/call/startup'],
    }),
    CallIdRequest: object({ callId: callIdField() }, ['callId'], { example: byCallId }),
    SendDtmfRequest: object({
      callId: callIdField(),
      dtmf: str('Digits to send, one after the other.', { maxLength: 64, pattern: '^[0-9A-Da-d*#]+$' }),
      type: str('RFC2833 (RFC 4733 telephone-event, the default) or INFO (SIP INFO); case-insensitive.', { enum: ['RFC2833', 'INFO'], default: 'RFC2833' }),
    }, ['callId', 'dtmf'], { example: EXAMPLES['/call/send_dtmf'] }),
    InjectSoundRequest: object({
      callId: callIdField(),
      fileName: soundFileField('Sound to play to the SIP party.'),
    }, ['callId', 'fileName'], { example: EXAMPLES['/call/inject_sound'] }),
    InjectStreamRequest: object({
      callId: callIdField(),
      streamName: str('What to play to the SIP party: another live call\'s stream by its name (its toStream, or rtmpStream; the RTMP_STREAM_PREFIX form too), an rtmp://, rtmps://, http:// or https:// URL (a live stream or a file ffmpeg reads), or a file in SOUNDS_DIR.', { maxLength: 2048 }),
    }, ['callId', 'streamName'], { example: EXAMPLES['/call/inject_stream/startup'] }),
    FindRequest: object({
      callId: callIdField('Exact callId.'),
      callee: str('Exact callee (the user part, as stored).', { maxLength: 256 }),
      rtmpUrl: str('Exact rtmpUrl, as given in /call/startup.', { maxLength: 1024 }),
      status: str('Call status (case-insensitive).', { maxLength: 32, enum: [...CALL_STATUSES] }),
    }, [], { description: 'At least one filter; every one given must match.', example: byCallId }),
    EmptyRequest: object({}, [], { description: 'Nothing is read: `{}` or an empty body.', example: {} }),
    RecorderStartupRequest: object({
      mediaSessionId: str('What to record: a callId (the whole call, as encoded) or a push\'s mediaSessionId (what that output plays: its mute and sound applied).', { maxLength: 128 }),
      config: object({
        fileTemplate: str(`File name, without extension. WCS fields: {streamName} (the call's toStream, else its callId; never a stream key), {startTime}/{startTimeMillis}, {endTime}/{endTimeMillis} (ms since 1970), {mediaSessionId}, {audioCodec}, {videoCodec}; ${EXT} {callId}, {date} (UTC, 20261204-150102). Other characters than letters, digits, . - _ become _. Default RECORD_FILE_TEMPLATE.`, { maxLength: 200 }),
        rotation: str('WCS splits records by size or time; not supported here (one recording, one file): only absent or "disabled".'),
      }),
    }, ['mediaSessionId'], { example: EXAMPLES['/recorder/startup'] }),
    RecorderTerminateRequest: object({
      mediaSessionId: str('The recorded callId or push mediaSessionId (its live recording ends).', { maxLength: 128 }),
      recordingId: str(`${EXT} or the recording's own id.`, { maxLength: 64 }),
    }, [], { description: 'One of the two.', example: EXAMPLES['/recorder/terminate'] }),
    RecorderFindRequest: object({
      callId: str(`${EXT} only this call's recordings.`, { maxLength: 128 }),
      mediaSessionId: str(`${EXT} only recordings of this callId or push.`, { maxLength: 128 }),
    }, [], { description: 'Optional filters; none lists every recording (live, and finished ones since the start, the last 1000).', example: {} }),
    Recording: object({
      recordingId: str(`${EXT} this recording.`, { format: 'uuid' }),
      mediaSessionId: str('What is recorded: a callId, or a push\'s mediaSessionId.'),
      callId: { type: 'string' },
      source: str(`${EXT} call (the whole call) or push (one output).`, { enum: ['call', 'push'] }),
      status: str(`${EXT} RECORDING; FINALIZING (the call or recording ended: the MP4 is being made); DONE; FAILED (see reason: disk full, unwritable RECORDINGS_DIR; the call goes on).`, { enum: ['RECORDING', 'FINALIZING', 'DONE', 'FAILED'] }),
      reason: nullable(str('Why it FAILED.')),
      fileName: str('The file in RECORDINGS_DIR: `<name>.recording.flv` while recording (it plays as it is, even after a crash), `<name>.mp4` once DONE (moov up front).'),
      path: str(`${EXT} the file's full path on the server.`),
      downloadUrl: nullable(str(`${EXT} once DONE: GET it (with the API token).`)),
      bytes: int('The file\'s size.'),
      durationMs: int('Media recorded, ms.'),
      startedAt: str('', { format: 'date-time' }),
      endedAt: nullable(str('', { format: 'date-time' })),
    }, ['recordingId', 'mediaSessionId', 'callId', 'status', 'fileName', 'bytes', 'durationMs'], { example: RECORDING_EXAMPLE }),
    PushStartupRequest: object({
      streamName: str('The call\'s stream: its `toStream`, or its `rtmpStream` when it has no `toStream`. The call must be live (404 otherwise).', { maxLength: 256 }),
      rtmpUrl: rtmpUrlField(`Where to publish: RTMP(S), credentials allowed, or ${SRT_URL_DOC}. Must differ from every live output\'s destination (409).`),
      rtmpTransponderFullUrl: transponderField,
      options: object({
        action: str('Start muted, or playing `soundFile` instead of the call\'s audio (case-insensitive).', { maxLength: 32, enum: ['mute', 'sound_on'] }),
        soundFile: soundFileField('Required with action `sound_on`.'),
        loop: wcsBool(`${EXT} loop \`soundFile\`.`, false),
      }),
    }, ['streamName', 'rtmpUrl'], { example: EXAMPLES['/push/startup'] }),
    PushFindRequest: object({
      streamName: str('Exact stream name.', { maxLength: 256 }),
      rtmpUrl: str('Exact rtmpUrl, as given in /push/startup (or /call/startup for the primary output).', { maxLength: 1024 }),
    }, [], { description: 'At least one filter; every one given must match.', example: EXAMPLES['/push/find'] }),
    MediaSessionIdRequest: object({ mediaSessionId: mediaSessionIdField }, ['mediaSessionId'], { example: bySession }),
    SoundOnRequest: object({
      mediaSessionId: mediaSessionIdField,
      soundFile: soundFileField('Replaces this output\'s audio (other outputs unchanged).'),
      loop: wcsBool('Play it over and over until /push/sound_off.', false),
    }, ['mediaSessionId', 'soundFile'], { example: EXAMPLES['/push/sound_on'] }),

    CallEvent: object({
      at: str('When.', { format: 'date-time' }),
      type: str('ACCOUNT_CREATED, REGISTERED, INVITE, INCOMING, a status (RING, SESSION_PROGRESS, ESTABLISHED, HOLD, FINISH, FAILED, BUSY), MEDIA_LEG_UP, STREAM_<rtmpStreamStatus>, DTMF (a digit the SIP party sent), DTMF_SENT, SOUND, GENERATE_AV_FOR_UA.'),
      detail: str('Words or value, when there is one.'),
    }, ['at', 'type']),
    Call: object({
      callId: str('As given in /call/startup (an inbound call\'s is the Asterisk channel id unless the dialplan names one).'),
      status: str('TRYING → RING (180) / SESSION_PROGRESS (183) → ESTABLISHED (200) [↔ HOLD] → FINISH; or BUSY (486/600), or FAILED: the server-side statuses WCS documents (REST Hooks, Event statuses), each also sent as a CallStatusEvent. The WCS Web SDK\'s NEW and PENDING are its own client-side states (set before any request), never a server\'s; its RING_MEDIA (a constant of the SDK that no WCS document describes) is not produced: a 183 with early media is SESSION_PROGRESS, as WCS\'s docs say.', { enum: [...CALL_STATUSES] }),
      sipStatus: nullable(int('The last SIP response code.')),
      caller: str('sipLogin (inbound: the caller\'s number).'),
      callee: str('The SIP user called (inbound: the extension).'),
      rtmpUrl: str('Where the primary output publishes, without credentials or query; with rtmpTransponderFullUrl the stream key at its end is masked.'),
      rtmpStream: str('Masked: its first characters only (`docs***`), as it is often a stream key.'),
      streamName: str('The call\'s toStream.'),
      rtmpStreamStatus: str('The primary (rtmpUrl) output: RECONNECTING when the server dropped it after publishing; FAILED when refused at connect (the call then fails with FAILED_BY_RTMP_WRITER_ERROR).', { enum: [...STREAM_STATUSES] }),
      hasAudio: { type: 'boolean' },
      hasVideo: { type: 'boolean' },
      incoming: { type: 'boolean', description: 'An inbound call the dialplan handed over.' },
      visibleName: { type: 'string' },
      appKey: { type: 'string' },
      info: str(`${EXT} why, in words (e.g. \`SIP 403 Forbidden (wrong SIP login or password?)\`).`),
      reason: nullable(str(`${EXT} the WCS failure reason, once final.`, { enum: [...CALL_REASONS] })),
      createdAt: str(`${EXT} accepted at.`, { format: 'date-time' }),
      establishedAt: nullable(str(`${EXT} answered at.`, { format: 'date-time' })),
      endedAt: nullable(str(`${EXT} ended at.`, { format: 'date-time' })),
      maxDuration: nullable(int(`${EXT} its duration limit, s: \`maxDuration\` of /call/startup, else MAX_CALL_DURATION; null: none.`)),
      endsAt: nullable(str(`${EXT} when that limit hangs it up (once answered).`, { format: 'date-time' })),
      nodeId: str(`${EXT} in a cluster (CLUSTER_REDIS_URL): the node (NODE_ID) that holds the call; absent on a single node.`),
      events: arrayOf(ref('CallEvent'), `${EXT} the call's recent history (last 50), DTMF received included.`),
      recordings: arrayOf(ref('Recording'), `${EXT} its recordings (record: true, /recorder/startup): status, file, size.`),
      video: nullable(object({
        mode: str('passthrough: the caller\'s H.264 as sent; transcode: re-encoded (2 s GOP, the stream\'s size) because its keyframes were overdue despite requests or its size differed.', { enum: ['passthrough', 'transcode'] }),
        source: str('What the video track shows now: caller, generated (the slate or black fill), none (not yet).', { enum: ['none', 'generated', 'caller'] }),
        size: nullable(str('The stream\'s one video size, e.g. 640x360 (null until decided).')),
      }, ['mode', 'source', 'size'], { description: `${EXT} the stream's video track; null when it has none (VIDEO_FILL=none on an audio-only call, or no media yet).` })),
      media: object({
        codec: str('Media leg audio codec/clock rate.'),
        rtp: { type: 'object', description: 'RTP counters (accepted, rejected by reason, DTMF, interarrival jitter).' },
        rtcp: { type: 'object', description: 'RTCP sender report checks.' },
        jitter: { type: 'object', description: 'Jitter buffer (received, lost, late, reordered, depth).' },
        timeline: { type: 'object', description: 'Audio timeline (silence inserted, drift).' },
        stream: { type: 'object', description: 'What was published (frames, bytes, keyframes).' },
        latencyMs: { type: 'object', description: 'RTP arrival to RTMP send (p50, p99, max, histogram).' },
        video: { type: 'object', description: 'Video input and output counters (hasVideo calls).' },
      }, [], { additionalProperties: true, description: `${EXT} media pipeline counters, while the call has media (for diagnosis; the shape may grow).` }),
    }, [
      'callId', 'status', 'sipStatus', 'caller', 'callee', 'rtmpUrl', 'rtmpStream', 'streamName', 'rtmpStreamStatus', 'hasAudio',
      'hasVideo', 'incoming', 'visibleName', 'appKey', 'info', 'reason', 'createdAt', 'establishedAt', 'endedAt', 'maxDuration', 'endsAt', 'events',
    ], { description: 'A call, as /call/find answers it. Never the SIP password; stream keys masked.', example: CALL_EXAMPLE }),
    Push: object({
      mediaSessionId: str('Names this output in /push/terminate, mute, unmute, sound_on, sound_off.', { format: 'uuid' }),
      callId: str(`${EXT} the call it publishes.`),
      streamName: str('WCS\'s name for this output: RTMP_STREAM_PREFIX + the call\'s stream name (`rtmp_show`), or the stream name as is when the URL was given in full (rtmpTransponderFullUrl). /push/find takes it, or the bare name.'),
      width: int('The video width it sends, once known.'),
      height: int('The video height it sends, once known.'),
      rtmpUrl: str('Where, without credentials or query, the stream name masked.'),
      status: str(`${EXT} PENDING (asked for before the answer), CONNECTING, PUBLISHING, RECONNECTING (dropped by the server: reconnects with backoff), FAILED (refused at connect: see reason), CLOSED.`, { enum: [...PUSH_STATES] }),
      reason: nullable(str(`${EXT} the RTMP server's reason for a failure.`)),
      muted: { type: 'boolean' },
      soundEnabled: { type: 'boolean' },
      soundFile: nullable(str(`${EXT} the sound playing.`)),
      options: object({ action: { type: 'string' }, soundFile: { type: 'string' } }),
      primary: { type: 'boolean', description: `${EXT} the output named in /call/startup (its refusal fails the call).` },
      createdAt: str(`${EXT} created at.`, { format: 'date-time' }),
      stats: object({
        queuedDropped: int('Frames dropped from a full send queue.'), framesOut: int('Frames sent.'),
        startedAfterMs: int('Connect to publishing, ms.'), reconnects: int('Reconnections.'), droppedWhileDown: int('Frames lost while reconnecting.'),
      }, [], { description: `${EXT} once the call has media.` }),
      health: object({
        audioFrames: int('Audio frames sent.'), videoFrames: int('Video frames sent.'),
        bothTracks: { type: 'boolean', description: 'Audio and video both sent (YouTube and Facebook refuse a stream without video).' },
        keyframeIntervalMs: nullable(int('Between the last two keyframes sent.')), maxKeyframeIntervalMs: nullable(int('The largest so far (platforms: 2 s, never over 4).')),
        size: nullable(str('Video size sent, e.g. 640x360.')), sizeChanges: int('Size changes after the first (platforms want none).'),
      }, [], { description: `${EXT} this output against the platforms' rules, once the call has media.` }),
      platform: str(`${EXT} only for a platform's RTMP host: facebook (*.facebook.com), youtube (*.youtube.com).`, { enum: ['facebook', 'youtube'] }),
      sessionLimitSec: int(`${EXT} with \`platform\`: its session limit, s (Facebook Live 8 h: the stream may be ended; YouTube 12 h: no archive beyond). Warned of by a CallLimitWarningEvent hook; the push is not ended by us.`),
      sessionEndsAt: nullable(str(`${EXT} with \`platform\`: when that limit is reached, counted from the push's first publish (reconnects go on in the same session); null until it publishes.`, { format: 'date-time' })),
    }, ['mediaSessionId', 'callId', 'streamName', 'rtmpUrl', 'status', 'reason', 'muted', 'soundEnabled', 'soundFile', 'options', 'primary', 'createdAt'], {
      description: 'One RTMP output of a call (WCS push). The call\'s own rtmpUrl output is one too (`primary`).', example: PUSH_EXAMPLE,
    }),
    Error: object({
      status: int('The HTTP status again.'),
      error: str('What is wrong, readable: the field name first for a bad field.'),
      field: str(`${EXT} the request field at fault (\`options.action\` for nested ones, \`body\` for the body itself).`),
    }, ['status', 'error'], { example: { status: 400, error: 'callee is required', field: 'callee' } }),

    ConsoleCall: {
      description: `${EXT} a Call with its outputs and preview link, as the live feed sends it.`,
      allOf: [ref('Call'), object({
        pushes: arrayOf(ref('Push')),
        previewUrl: nullable(str('Its HTTP-FLV preview (GET {prefix}/preview/{callId}.flv), null while it has no media.')),
      }, ['pushes', 'previewUrl'])],
    },
    CallStats: object({
      bitrateKbps: { type: 'number' }, audioKbps: { type: 'number' }, videoKbps: { type: 'number' },
      audio: lossStats, video: lossStats,
      jitterBufferMs: { type: 'number' },
      avOffsetMs: nullable({ type: 'number', description: 'Audio minus video presentation offset, ms.' }),
      keyframeIntervalMs: nullable({ type: 'number' }),
      videoOut: nullable(object({ mode: { type: 'string', enum: ['passthrough', 'transcode'] }, source: { type: 'string' }, size: nullable({ type: 'string' }) })),
      latencyMs: nullable(object({ p50: { type: 'number' }, p99: { type: 'number' } })),
      pushes: arrayOf(object({ mediaSessionId: { type: 'string' }, status: { type: 'string' }, reconnects: { type: 'integer' } })),
    }, ['bitrateKbps', 'audioKbps', 'videoKbps', 'audio', 'video', 'jitterBufferMs', 'avOffsetMs', 'keyframeIntervalMs', 'videoOut', 'latencyMs', 'pushes'], {
      description: `${EXT} a call's live media figures, once a second.`,
    }),
    SnapshotEvent: object({ calls: arrayOf(ref('ConsoleCall')) }, ['calls'], { description: 'event `snapshot`: every call, first thing on connect.' }),
    StatsEvent: object({
      at: str('When.', { format: 'date-time' }),
      calls: { type: 'object', additionalProperties: ref('CallStats'), description: 'By callId.' },
    }, ['at', 'calls'], { description: 'event `stats`.' }),
    RemovedEvent: object({ callId: { type: 'string' } }, ['callId'], { description: 'event `removed`: the call is gone (its final status lingered ENDED_CALL_TTL_SEC).' }),
  };
}

// ---- responses ----

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad request: a field is missing or invalid; `field` names it.',
  401: 'Missing or wrong API token (only when API_TOKEN is set), answered after 300 ms. Carries `WWW-Authenticate: Bearer`.',
  404: 'Not found.',
  409: 'Conflict.',
  413: 'Request body too large (64 KiB by default).',
  415: 'Content-Type is not application/json.',
  422: 'The sound file exists but could not be decoded.',
  429: 'Too many startups: STARTUP_RATE_PER_SEC (calls and pushes together), or a call at MAX_PUSHES_PER_CALL live outputs. Retry later.',
  503: 'Unavailable: Asterisk not connected, at MAX_CALLS or MAX_OUTPUTS, or the call\'s media not up within 5 s.',
};

interface ErrorDoc {
  status: number;
  error: string;
  field?: string;
}

const e = (status: number, error: string, field?: string): ErrorDoc => ({ status, error, ...(field ? { field } : {}) });

/** Responses for errors, grouped by status, each example a real message of server.ts or validate.ts. */
function errorResponses(errors: ErrorDoc[]): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const status of [...new Set(errors.map((x) => x.status))].sort((a, b) => a - b)) {
    const examples: Record<string, Json> = {};
    for (const x of errors.filter((y) => y.status === status)) {
      const name = x.field ?? 'error';
      let key = name;
      for (let n = 2; key in examples; n++) key = `${name}-${n}`;
      examples[key] = { summary: x.error, value: x };
    }
    out[String(status)] = { description: STATUS_TEXT[status] ?? 'Error.', content: { 'application/json': { schema: ref('Error'), examples } } };
  }
  return out;
}

const EMPTY_OK: Json = {
  description: 'Done. **Empty body** (no JSON at all): the WCS demo pages read `response[0].status` from any JSON they get, so even `{}` would break them.',
};
const listOk = (schema: string, example: Json[], what: string): Json => ({
  description: `An array of ${what}; never empty (none found is a 404).`,
  content: { 'application/json': { schema: arrayOf(ref(schema)), example } },
});

// ---- the POST methods (server.ts) ----

interface PostMethod {
  path: string;
  id: string;
  tag: 'Calls' | 'Pushes' | 'Recordings';
  summary: string;
  description: string;
  body: string;
  ok?: Json;
  errors: ErrorDoc[];
}

const NO_CALL = e(404, `no active call with callId ${CALL_ID}`, 'callId');
const NOT_ESTABLISHED = e(409, `call ${CALL_ID} is not established (status RING)`, 'callId');
const MEDIA_NOT_UP = e(503, `call ${CALL_ID}: media not up`, 'callId');
const CALL_ID_REQUIRED = e(400, 'callId is required', 'callId');
const NO_PUSH = e(404, `no push with mediaSessionId ${MEDIA_SESSION_ID}`, 'mediaSessionId');
const SESSION_REQUIRED = e(400, 'mediaSessionId is required', 'mediaSessionId');
const RATE_LIMITED = e(429, 'too many call or push startups (STARTUP_RATE_PER_SEC=20); retry in 50 ms');
const soundMissing = (field: string) => e(400, `soundFile "missing.wav" does not exist in the sound directory`, field);
const soundUndecodable = (field: string) => e(422, `${field} could not be decoded: Invalid data found when processing input`, field);
/** Hold, DTMF, sound: only on an answered call. */
const ANSWERED_ONLY = [NO_CALL, NOT_ESTABLISHED, MEDIA_NOT_UP];
/** The same on the routes that answer with WCS's documented codes only, 404 and 500 (rest/errors.ts). */
const ANSWERED_ONLY_WCS = [NO_CALL, { ...NOT_ESTABLISHED, status: 404 }, { ...MEDIA_NOT_UP, status: 500 }];
const WCS_CODES_NOTE = 'Error codes as WCS documents them for this method: 404 (no such call, not answered yet, nothing to find) and 500 (cannot do it now); the message says which. 400 names a malformed field.';

const POST_METHODS: PostMethod[] = [
  {
    path: '/call/startup', id: 'callStartup', tag: 'Calls', summary: 'Place a call and relay it to RTMP',
    description: 'Accepted for processing: the call then proceeds on its own (poll /call/find, or use hooks or the live feed). With `rtmpUrl`, the call is published there once answered, as `rtmpUrl/rtmp_<rtmpStream>` (RTMP_STREAM_PREFIX) unless `rtmpTransponderFullUrl`; with only `toStream`, it waits for /push/startup.',
    body: 'StartupRequest',
    errors: [
      e(400, 'callee is required', 'callee'),
      e(400, 'sipDomain is required (the SIP server or host to call), unless callee is a full sip: URI', 'sipDomain'),
      e(400, 'rtmpUrl must start with rtmp://, rtmps:// or srt://', 'rtmpUrl'),
      e(400, 'hasAudio and hasVideo are both false: nothing to relay', 'hasAudio'),
      e(400, `maxDuration must be a whole number of seconds 0-${MAX_DURATION_SEC} (0: no limit)`, 'maxDuration'),
      e(403, 'refused by the backend\'s call hook (HTTP 403): callee 1000 is not on the allow list'),
      e(409, `callId ${CALL_ID} already exists (status ESTABLISHED)`, 'callId'),
      e(409, 'call other-call already publishes to this rtmpUrl and stream', 'rtmpStream'),
      RATE_LIMITED,
      e(503, 'Asterisk (ARI) is not connected; try again shortly'),
      e(503, 'at capacity (200 calls)'),
      e(503, 'at capacity (1000 live outputs, MAX_OUTPUTS=1000)'),
      e(503, 'the backend\'s call hook did not answer (no answer in 5000 ms); try again'),
    ],
  },
  {
    path: '/call/terminate', id: 'callTerminate', tag: 'Calls', summary: 'Hang up a call',
    description: 'The call ends with FINISH (NORMAL_CALL_CLEARING); its stream gets its last moments, then is unpublished.',
    body: 'CallIdRequest', errors: [CALL_ID_REQUIRED, NO_CALL],
  },
  {
    path: '/call/hold', id: 'callHold', tag: 'Calls', summary: 'Put the SIP party on hold',
    description: `${EXT} the SIP party gets a \`sendonly\` re-INVITE and the status becomes HOLD; the RTMP output goes on (silence, and generated video for video calls) until /call/unhold. Holding a held call does nothing.`,
    body: 'CallIdRequest', errors: [CALL_ID_REQUIRED, ...ANSWERED_ONLY],
  },
  {
    path: '/call/unhold', id: 'callUnhold', tag: 'Calls', summary: 'Resume a held call',
    description: `${EXT} a \`sendrecv\` re-INVITE; the status is ESTABLISHED again.`,
    body: 'CallIdRequest', errors: [CALL_ID_REQUIRED, ...ANSWERED_ONLY],
  },
  {
    path: '/call/send_dtmf', id: 'callSendDtmf', tag: 'Calls', summary: 'Send DTMF digits to the SIP party',
    description: 'Answers once the digits are sent. Requests of one call go out one after the other. Digits the SIP party sends show in the Call\'s `events` (type DTMF) and as a DtmfEvent hook. ' + WCS_CODES_NOTE,
    body: 'SendDtmfRequest',
    errors: [CALL_ID_REQUIRED, e(400, 'dtmf must be DTMF digits: 0-9, *, #, A-D', 'dtmf'), e(400, 'type must be RFC2833 or INFO', 'type'), ...ANSWERED_ONLY_WCS],
  },
  {
    path: '/call/inject_sound', id: 'callInjectSound', tag: 'Calls', summary: 'Play a sound file to the SIP party',
    description: `The sound goes toward the SIP side. ${EXT} any format ffmpeg reads from SOUNDS_DIR (the file needs to be there, not on the Asterisk host); a new sound replaces one playing. ${WCS_CODES_NOTE} The example needs \`${EXAMPLE_SOUND_FILE}\` in SOUNDS_DIR.`,
    body: 'InjectSoundRequest',
    errors: [CALL_ID_REQUIRED, e(400, 'fileName is required', 'fileName'), { ...soundMissing('fileName'), status: 404 }, ...ANSWERED_ONLY_WCS, { ...soundUndecodable('fileName'), status: 500 }],
  },
  {
    path: '/call/inject_stream/startup', id: 'callInjectStreamStartup', tag: 'Calls', summary: 'Play another stream to the SIP party',
    description: `WCS injects a stream published on the server into the call. Here: another live call's stream by its name, an RTMP(S) or HTTP(S) URL, or a file in SOUNDS_DIR. Its audio (and, when the call's leg has video, its video, scaled to the caller's size) goes toward the SIP party instead of silence until /call/inject_stream/terminate, the stream's end, or the call's end; the call's own published stream stays the caller's. A new injection replaces the last. The Call object's media.toCaller.injected shows it (underruns, droppedMs), and its events INJECT and INJECT_END (with the reason when the stream failed: no such stream, no audio, refused connection). ${EXT} the URL and file forms; ${WCS_CODES_NOTE}`,
    body: 'InjectStreamRequest',
    errors: [CALL_ID_REQUIRED, e(400, 'streamName is required', 'streamName'), e(400, 'streamName: a URL must be rtmp://, rtmps://, http:// or https://', 'streamName'), e(400, 'streamName is this call\'s own stream (the caller would hear itself)', 'streamName'), e(404, 'no live stream or sound file named …', 'streamName'), ...ANSWERED_ONLY_WCS],
  },
  {
    path: '/call/inject_stream', id: 'callInjectStream', tag: 'Calls', summary: 'Play another stream to the SIP party (WCS 5.0 name)',
    description: 'The same as /call/inject_stream/startup, under the name WCS 5.0 gave it, which WCS\'s sip-as-rtmp-4 demo page still posts.',
    body: 'InjectStreamRequest',
    errors: [CALL_ID_REQUIRED, e(400, 'streamName is required', 'streamName'), e(404, 'no live stream or sound file named …', 'streamName'), ...ANSWERED_ONLY_WCS],
  },
  {
    path: '/call/inject_stream/terminate', id: 'callInjectStreamTerminate', tag: 'Calls', summary: 'Stop playing the injected stream',
    description: 'Back to silence (or the generated video) toward the SIP party.',
    body: 'CallIdRequest',
    errors: [CALL_ID_REQUIRED, NO_CALL, e(404, 'call … has no injected stream', 'callId')],
  },
  {
    path: '/call/find', id: 'callFind', tag: 'Calls', summary: 'Find calls',
    description: 'Live calls, and ended ones for ENDED_CALL_TTL_SEC (10 s by default: a poller every 3-5 s, as the WCS pages, sees the final status, and the pages reset on the 404 soon after a hang-up) with their final status and reason; then 404 (the WCS demo pages stop polling on an error answer).',
    body: 'FindRequest', ok: listOk('Call', [CALL_EXAMPLE], 'Call objects'),
    errors: [e(400, 'callId or callee, rtmpUrl or status is required to find calls (find_all lists them all)', 'callId'), e(404, 'no calls found')],
  },
  {
    path: '/call/find_all', id: 'callFindAll', tag: 'Calls', summary: 'List every call',
    description: 'As /call/find without a filter. The body is not read.',
    body: 'EmptyRequest', ok: listOk('Call', [CALL_EXAMPLE], 'Call objects'), errors: [e(404, 'no calls found')],
  },
  {
    path: '/push/startup', id: 'pushStartup', tag: 'Pushes', summary: 'Publish a call\'s stream to one more RTMP destination',
    description: 'The call is encoded once; each push is one more connection with its own status, mute and sound. Asked before the answer, it is PENDING and starts with the media. Keep the answer\'s `mediaSessionId`: the other /push methods need it.',
    body: 'PushStartupRequest',
    ok: { description: 'The new push.', content: { 'application/json': { schema: ref('Push'), example: PUSH_EXAMPLE } } },
    errors: [
      e(400, 'streamName is required', 'streamName'),
      e(400, 'rtmpUrl must start with rtmp://, rtmps:// or srt://', 'rtmpUrl'),
      e(400, 'rtmpUrl host nowhere.invalid does not resolve (getaddrinfo ENOTFOUND nowhere.invalid)', 'rtmpUrl'),
      e(400, 'options.action must be "mute" or "sound_on"', 'options.action'),
      soundMissing('soundFile'),
      e(404, `no active call with stream ${STREAM} (the toStream of /call/startup)`, 'streamName'),
      e(409, `stream ${STREAM} is already pushed to this rtmpUrl (mediaSessionId ${MEDIA_SESSION_ID})`, 'rtmpUrl'),
      soundUndecodable('soundFile'),
      RATE_LIMITED,
      e(429, `call ${CALL_ID} already has 10 live outputs (MAX_PUSHES_PER_CALL=10); terminate one first`, 'streamName'),
      e(503, 'at capacity (1000 live outputs, MAX_OUTPUTS=1000)'),
    ],
  },
  {
    path: '/push/find', id: 'pushFind', tag: 'Pushes', summary: 'Find pushes',
    description: 'Every live output matching the filter, the calls\' primary outputs included.',
    body: 'PushFindRequest', ok: listOk('Push', [PRIMARY_PUSH_EXAMPLE, YOUTUBE_PUSH_EXAMPLE, PUSH_EXAMPLE], 'pushes'),
    errors: [e(400, 'streamName or rtmpUrl is required (find_all lists them all)', 'streamName'), e(404, 'no pushes found')],
  },
  {
    path: '/push/find_all', id: 'pushFindAll', tag: 'Pushes', summary: 'List every push',
    description: 'As /push/find without a filter. The body is not read.',
    body: 'EmptyRequest', ok: listOk('Push', [PRIMARY_PUSH_EXAMPLE, YOUTUBE_PUSH_EXAMPLE, PUSH_EXAMPLE], 'pushes'), errors: [e(404, 'no pushes found')],
  },
  {
    path: '/push/terminate', id: 'pushTerminate', tag: 'Pushes', summary: 'Stop one output',
    description: 'The call goes on. Stopping the primary output sets the call\'s rtmpStreamStatus to UNPUBLISHED.',
    body: 'MediaSessionIdRequest', errors: [SESSION_REQUIRED, NO_PUSH],
  },
  {
    path: '/push/mute', id: 'pushMute', tag: 'Pushes', summary: 'Mute one output\'s audio',
    description: 'That output sends silence; the others are unchanged.', body: 'MediaSessionIdRequest', errors: [SESSION_REQUIRED, NO_PUSH],
  },
  {
    path: '/push/unmute', id: 'pushUnmute', tag: 'Pushes', summary: 'Unmute one output\'s audio',
    description: 'The call\'s audio is back on that output.', body: 'MediaSessionIdRequest', errors: [SESSION_REQUIRED, NO_PUSH],
  },
  {
    path: '/push/sound_on', id: 'pushSoundOn', tag: 'Pushes', summary: 'Replace one output\'s audio with a sound file',
    description: `Once, or looped. The example needs \`${EXAMPLE_SOUND_FILE}\` in SOUNDS_DIR.`,
    body: 'SoundOnRequest', errors: [SESSION_REQUIRED, e(400, 'soundFile is required', 'soundFile'), soundMissing('soundFile'), NO_PUSH, soundUndecodable('soundFile')],
  },
  {
    path: '/push/sound_off', id: 'pushSoundOff', tag: 'Pushes', summary: 'Stop the sound on one output',
    description: 'The call\'s audio (or silence, if muted) is back.', body: 'MediaSessionIdRequest', errors: [SESSION_REQUIRED, NO_PUSH],
  },
  ...recorderMethods(),
];

/** /recorder/* (WCS) and their older WCS names, /stream/startRecording and /stream/stopRecording. */
function recorderMethods(): PostMethod[] {
  const ok = (description: string): Json => ({ description, content: { 'application/json': { schema: ref('Recording'), example: { ...RECORDING_EXAMPLE, status: 'RECORDING', fileName: `${CALL_ID}-20250101-120000.recording.flv`, downloadUrl: null, endedAt: null } } } });
  const notLive = e(404, `no live call or push with mediaSessionId ${CALL_ID}`, 'mediaSessionId');
  const startup = (path: string, id: string, also: string): PostMethod => ({
    path, id, tag: 'Recordings', summary: `Record a call, or one of its outputs${also}`,
    description: 'Writes what the call publishes (callId) or what one output plays (a push\'s mediaSessionId) to RECORDINGS_DIR: FLV while it records (a crash leaves a playable file, made an MP4 at the next start), an MP4 with moov up front when it ends (with the call, the output, or /recorder/terminate). Nothing is encoded again. An unwritable directory answers a FAILED recording with the reason; the call goes on. Or record a call from its answer: `record: true` on /call/startup.',
    body: 'RecorderStartupRequest', ok: ok('The recording (status RECORDING, or FAILED with the reason).'),
    errors: [e(400, 'mediaSessionId is required', 'mediaSessionId'), e(400, 'config.fileTemplate has an unknown field {nope} (known: {streamName} {callId} {mediaSessionId} {startTime} {startTimeMillis} {endTime} {endTimeMillis} {date} {audioCodec} {videoCodec})', 'config.fileTemplate'),
      notLive, e(409, `mediaSessionId ${CALL_ID} is being recorded already (recordingId 7d3c1c2e-2f7a-4d55-9a55-3b8e2f0f6b11)`, 'mediaSessionId'),
      e(409, `call ${CALL_ID} has no media yet (not answered): record it with record: true on /call/startup`, 'mediaSessionId')],
  });
  const terminate = (path: string, id: string, also: string): PostMethod => ({
    path, id, tag: 'Recordings', summary: `Stop a recording${also}`,
    description: 'The file is closed at once and made an MP4 (status FINALIZING, then DONE; poll /recorder/find_all or use the RecordingStatusEvent hook). The call goes on.',
    body: 'RecorderTerminateRequest', ok: ok('The recording, FINALIZING.'),
    errors: [e(400, 'mediaSessionId is required (or recordingId)', 'mediaSessionId'), e(404, `no recording with mediaSessionId or recordingId ${CALL_ID}`, 'mediaSessionId')],
  });
  return [
    startup('/recorder/startup', 'recorderStartup', ''),
    startup('/stream/startRecording', 'streamStartRecording', ' (WCS\'s older name of /recorder/startup)'),
    terminate('/recorder/terminate', 'recorderTerminate', ''),
    terminate('/stream/stopRecording', 'streamStopRecording', ' (WCS\'s older name of /recorder/terminate)'),
    {
      path: '/recorder/find_all', id: 'recorderFindAll', tag: 'Recordings', summary: 'List recordings',
      description: 'Live and finished recordings, oldest first. WCS answers `fileName` and `mediaSessionId`; the other fields are extensions.',
      body: 'RecorderFindRequest', ok: listOk('Recording', [RECORDING_EXAMPLE], 'recordings'), errors: [e(404, 'no recordings found')],
    },
  ];
}

/** Errors any request may get, whatever the method. */
function commonErrors(o: OpenApiOptions, post: boolean): ErrorDoc[] {
  return [
    ...(post ? [e(400, 'body is not valid JSON', 'body'), e(413, 'request body too large'), e(415, 'Content-Type must be application/json')] : []),
    ...(o.tokenRequired ? [e(401, 'missing or wrong API token (X-Api-Token header)')] : []),
  ];
}

function postOperation(m: PostMethod, o: OpenApiOptions): Json {
  const example = EXAMPLES[m.path];
  return {
    post: {
      operationId: m.id,
      tags: [m.tag],
      summary: m.summary,
      description: m.description,
      requestBody: {
        required: m.body !== 'EmptyRequest',
        content: { 'application/json': { schema: ref(m.body), example } },
      },
      responses: { '200': m.ok ?? EMPTY_OK, ...errorResponses([...m.errors, ...commonErrors(o, true)]) },
    },
  };
}

// ---- the GET endpoints (live console, operations) ----

/** A text/event-stream sample: one of each event, built from the example objects above. */
function sseExample(p: string): string {
  const { media: _media, ...call } = CALL_EXAMPLE;
  const consoleCall = { ...call, pushes: [PRIMARY_PUSH_EXAMPLE], previewUrl: `${p}/preview/${CALL_ID}.flv` };
  const stats = {
    bitrateKbps: 66.1, audioKbps: 64.2, videoKbps: 0,
    audio: { received: 50, lost: 0, lossPct: 0, rejected: 0, jitterMs: 0.4 }, video: null,
    jitterBufferMs: 60, avOffsetMs: null, keyframeIntervalMs: null, latencyMs: { p50: 82, p99: 95 },
    pushes: [{ mediaSessionId: PRIMARY_PUSH_EXAMPLE.mediaSessionId, status: 'PUBLISHING', reconnects: 0 }],
  };
  const events: [string, unknown][] = [
    ['snapshot', { calls: [consoleCall] }],
    ['call', { ...consoleCall, status: 'HOLD', info: 'On hold' }],
    ['stats', { at: at(10), calls: { [CALL_ID]: stats } }],
    ['removed', { callId: CALL_ID }],
  ];
  return events.map(([name, data]) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`).join('');
}

/** Error answers described by their cause only (endpoints whose messages are not fixed here). */
function describedErrors(causes: Record<number, string>): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const [status, why] of Object.entries(causes)) out[status] = { description: why, content: { 'application/json': { schema: ref('Error') } } };
  return out;
}

function getOperations(o: OpenApiOptions, p: string): Record<string, Json> {
  const get = (op: Json, ok: Json, errors: Record<string, Json> = {}): Json => ({
    get: { ...op, responses: { '200': ok, ...errors, ...errorResponses(commonErrors(o, false)) } },
  });
  return {
    [`${p}/events`]: get({
      operationId: 'liveEvents', tags: ['Live'], summary: 'Live feed of every call (Server-Sent Events)',
      description: [
        `${EXT} what the console page shows, pushed as it happens (\`new EventSource('${p}/events')\`). Events:`,
        '- `snapshot` (first, on connect): SnapshotEvent `{calls: ConsoleCall[]}`;',
        '- `call`: a ConsoleCall, whenever a call changes (status, events, pushes);',
        '- `stats`: StatsEvent `{at, calls: {[callId]: CallStats}}`, once a second;',
        '- `removed`: RemovedEvent `{callId}`, when an ended call is forgotten.',
        'Each `data:` line is one JSON object (schemas under components).',
      ].join('\n'),
    }, {
      description: 'An endless `text/event-stream`.',
      content: { 'text/event-stream': { schema: { type: 'string' }, example: sseExample(p) } },
      'x-events': { snapshot: ref('SnapshotEvent'), call: ref('ConsoleCall'), stats: ref('StatsEvent'), removed: ref('RemovedEvent') },
    }, describedErrors({ 429: 'Too many listeners at once (32).' })),
    [`${p}/preview/{callId}.flv`]: get({
      operationId: 'livePreview', tags: ['Live'], summary: 'Live HTTP-FLV preview of a call',
      description: `${EXT} exactly what the call publishes (the same FLV tags as its RTMP outputs, no re-encode), as an endless FLV file (mpegts.js, ffplay, VLC). A viewer joins at the next keyframe; one too slow to keep up is cut off.`,
      parameters: [{ name: 'callId', in: 'path', required: true, schema: { type: 'string' }, example: CALL_ID }],
    }, {
      description: 'An endless FLV stream.',
      content: { 'video/x-flv': { schema: { type: 'string', format: 'binary' } } },
    }, describedErrors({ 404: 'No such call.', 409: 'The call has no media yet (not answered, or its media is not up).', 429: 'Too many viewers (4 per call).' })),
    [`${p}/recordings/{name}`]: get({
      operationId: 'recordingFile', tags: ['Recordings'], summary: 'Download a recording',
      description: `${EXT} a file of RECORDINGS_DIR by its name (\`downloadUrl\` of a DONE recording): an MP4, or the FLV of one still recording. Range requests are answered (206), so a browser's video element seeks in it.`,
      parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' }, example: `${CALL_ID}-20250101-120000.mp4` }],
    }, {
      description: 'The file.',
      content: { 'video/mp4': { schema: { type: 'string', format: 'binary' } } },
    }, describedErrors({ 404: 'No such file.', 416: 'The range asked for is beyond the file.' })),
    '/metrics': get({
      operationId: 'metrics', tags: ['Operations'], summary: 'Prometheus metrics',
      description: `${EXT} process, call, media and push metrics in the Prometheus text format. Not under the prefix; needs the token when API_TOKEN is set.`,
    }, {
      description: 'Prometheus text exposition format.',
      content: { 'text/plain; version=0.0.4': { schema: { type: 'string' }, example: '# HELP process_cpu_user_seconds_total Total user CPU time spent in seconds.\n# TYPE process_cpu_user_seconds_total counter\nprocess_cpu_user_seconds_total 0.52\n' } },
    }),
  };
}

// ---- the document ----

function description(o: OpenApiOptions): string {
  return `Relays SIP calls, placed or received through Asterisk, live to RTMP/RTMPS: an open equivalent of
Flashphoner WCS "SIP as RTMP", with the same REST methods so that WCS clients (the "SIP as RTMP" demo
pages among them) work unchanged.

### WCS compatibility
- Every method is \`POST\` with a JSON body (\`Content-Type: application/json\`); an empty body counts as \`{}\`.
- Booleans may be sent as \`"true"\`/\`"false"\` and ports as strings (\`"5060"\`), as WCS clients do; ids may be numbers. Unknown fields are ignored.
- Methods that do something answer \`200\` with an **empty body**: the WCS demo pages read \`response[0].status\` from any JSON they get, so even \`{}\` breaks them.
- \`find\` answers an array, or \`404\` when there is none. An ended call keeps its final status (FINISH, FAILED or BUSY, with \`reason\`) for ENDED_CALL_TTL_SEC (10 s by default), then \`find\` answers \`404\`: the demo pages stop polling on an error answer.
- The stream is published as \`rtmpUrl/rtmp_<rtmpStream>\` (RTMP_STREAM_PREFIX), as WCS does; \`rtmpTransponderFullUrl: true\` publishes to \`rtmpUrl\` as given (a YouTube key at its end).
- Errors are JSON \`{"status":400,"error":"callee is required","field":"callee"}\`. **Extension**: \`field\`, and a readable reason.
- Descriptions marked **Extension** are ours, not WCS's: /call/hold, /call/unhold, the live feed, the preview, /metrics, and fields such as \`info\`, \`reason\`, \`events\`, \`media\`.

### Secrets
\`sipPassword\` never appears in an answer, hook, feed or log. Stream names and keys are masked (\`docs***\`),
and URLs are shown without credentials or query string.

### Access
- Token: with API_TOKEN set, every request needs \`X-Api-Token: <token>\` or \`Authorization: Bearer <token>\`, else \`401\`. It is **off on loopback without API_TOKEN** (the default, REST_HOST 127.0.0.1); API_TOKEN is required when REST_HOST is not loopback. ${o.tokenRequired ? 'This server requires it.' : 'This server does not require it.'}
- CORS: browser pages on another origin need it in CORS_ORIGINS. Preflights (\`OPTIONS\`) from those get \`204\` with the Access-Control headers (others \`403\`), and every answer to them, errors included, carries \`Access-Control-Allow-Origin\`.
- Host: without API_TOKEN, only requests addressed to loopback (127.0.0.1, localhost, [::1]), REST_HOST or a REST_HOSTNAMES name are served, any port; others get \`403\` (DNS rebinding).
- Origin: a POST carrying an \`Origin\` that is neither in CORS_ORIGINS nor the server's own gets \`403\` before anything runs, token or not. Requests without \`Origin\` (curl, backends) are not affected.
- A wrong or missing token is answered \`401\` after 300 ms. A body with \`__proto__\` or \`constructor.prototype\` keys is \`400\` (\`field\`: \`body\`).
- STARTUP_RATE_PER_SEC limits call and push startups (\`429\`); MAX_PUSHES_PER_CALL the live outputs of one call (\`429\`), MAX_OUTPUTS those of all calls (\`503\`). Of a call's FAILED outputs, /push/find keeps the newest 5.`;
}

export function buildOpenApi(o: OpenApiOptions): Record<string, unknown> {
  const p = o.prefix.replace(/\/+$/, '');
  const paths: Record<string, Json> = {};
  for (const m of POST_METHODS) paths[`${p}${m.path}`] = postOperation(m, o);
  Object.assign(paths, getOperations(o, p));
  return {
    openapi: '3.0.3',
    info: { title: 'sip-as-rtmp REST API', version: '0.1.0', description: description(o) },
    servers: [{ url: o.serverUrl ?? '/' }],
    tags: [
      { name: 'Calls', description: 'WCS "SIP as RTMP" call methods (/call/*).' },
      { name: 'Pushes', description: 'WCS push API: more outputs of a call\'s stream, RTMP(S) or SRT (/push/*).' },
      { name: 'Recordings', description: 'WCS stream recording (/recorder/*): a call, or one output, to an MP4 file.' },
      { name: 'Live', description: `${EXT} the console's live feed and preview.` },
      { name: 'Operations', description: `${EXT} monitoring.` },
    ],
    ...(o.tokenRequired ? { security: [{ apiToken: [] }, { bearer: [] }] } : {}),
    paths,
    components: {
      schemas: schemas(),
      securitySchemes: {
        apiToken: { type: 'apiKey', in: 'header', name: 'X-Api-Token', description: 'API_TOKEN.' },
        bearer: { type: 'http', scheme: 'bearer', description: 'API_TOKEN as `Authorization: Bearer <token>`.' },
      },
    },
  };
}
