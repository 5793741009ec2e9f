/**
 * Validation of /call/startup bodies, WCS style: booleans may arrive as "true"/"false" and ports as
 * "5060". Unknown fields are ignored (WCS clients send more than we use). A bad field is a
 * ValidationError naming the field and why, which REST answers with 400.
 */
import { templateProblem } from '../lib/file-template.js';
import { parseOutputTarget, type OutputTarget } from '../media/output/target.js';
import { RtmpUrlError } from '../rtmp/url.js';
import { InvalidError } from './errors.js';
import type { StartupRequest } from './types.js';

/** A bad field: its name and why. */
export class ValidationError extends InvalidError {
  override readonly name = 'ValidationError';
  declare readonly field: string;
  constructor(field: string, why: string) {
    super(`${field} ${why}`, field);
  }
}

/** What validation needs of the server's settings. */
export interface ValidateOptions {
  /** RTMP_STREAM_PREFIX: put before the stream name unless the URL is taken as it is (rtmpTransponderFullUrl). */
  streamPrefix?: string;
}

type Body = Record<string, unknown>;

export function asBody(body: unknown): Body {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('body', 'must be a JSON object');
  return body as Body;
}

/** A string field; numbers are accepted and turned into strings (some clients send ids as numbers). */
export function str(b: Body, field: string, o: { required?: boolean; max?: number; pattern?: RegExp; patternWhy?: string } = {}): string {
  const v = b[field];
  if (v === undefined || v === null || v === '') {
    if (o.required) throw new ValidationError(field, 'is required');
    return '';
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw new ValidationError(field, 'must be a string');
  const s = String(v).trim();
  if (o.required && !s) throw new ValidationError(field, 'is required');
  if (s.length > (o.max ?? 256)) throw new ValidationError(field, `must be at most ${o.max ?? 256} characters`);
  // Control characters would end up in SIP headers and logs.
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new ValidationError(field, 'must not contain control characters');
  if (o.pattern && s && !o.pattern.test(s)) throw new ValidationError(field, o.patternWhy ?? 'has an invalid format');
  return s;
}

export function bool(b: Body, field: string, def: boolean): boolean {
  const v = b[field];
  if (v === undefined || v === null || v === '') return def;
  if (v === true || v === 'true' || v === 'TRUE' || v === 'True') return true;
  if (v === false || v === 'false' || v === 'FALSE' || v === 'False') return false;
  throw new ValidationError(field, 'must be true or false');
}

/** A whole number min..max, or its string form ("5060", as WCS clients send); undefined when absent. */
function wholeNumber(b: Body, field: string, min: number, max: number, why: string): number | undefined {
  const v = b[field];
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ValidationError(field, why);
  return n;
}

export function port(b: Body, field: string): number | undefined {
  return wholeNumber(b, field, 1, 65535, 'must be a port number 1-65535');
}

/** The longest maxDuration (and MAX_CALL_DURATION, config.ts): a week. */
export const MAX_DURATION_SEC = 7 * 86400;

/** maxDuration: the call's own limit in seconds (0: none), instead of MAX_CALL_DURATION. */
function maxDuration(b: Body): number | undefined {
  return wholeNumber(b, 'maxDuration', 0, MAX_DURATION_SEC, `must be a whole number of seconds 0-${MAX_DURATION_SEC} (0: no limit)`);
}

/** SIP user part or host: no spaces, quotes, angle brackets, or header-breaking characters. */
const SIP_TOKEN = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/%#]+$/;
const HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

export function validateStartup(raw: unknown, opts: ValidateOptions = {}): StartupRequest {
  const b = asBody(raw);
  const callId = str(b, 'callId', { required: true, max: 128, pattern: /^[^\s"<>\\]+$/, patternWhy: 'must not contain spaces, quotes, <, > or \\' });
  let callee = str(b, 'callee', { required: true });
  // A full URI is allowed: sip:user@host[:port]
  const uri = /^sips?:([^@]+)@(.+)$/i.exec(callee);
  let fromUri = false;
  let sipDomain = str(b, 'sipDomain', { pattern: HOST, patternWhy: 'must be a host name or IP address (optionally :port)' });
  if (uri) {
    callee = uri[1]!;
    if (!sipDomain) {
      // The host of a full URI gets the same check as sipDomain: it goes into dial strings too.
      if (!HOST.test(uri[2]!)) throw new ValidationError('callee', 'must be a SIP URI sip:user@host[:port] with a plain host name or IP address');
      sipDomain = uri[2]!;
      fromUri = true;
    }
  }
  if (!SIP_TOKEN.test(callee)) throw new ValidationError('callee', 'must be a SIP user (digits or letters, no spaces or <>")');
  if (!sipDomain) throw new ValidationError('sipDomain', 'is required (the SIP server or host to call), unless callee is a full sip: URI');
  const sipLogin = str(b, 'sipLogin', { pattern: SIP_TOKEN, patternWhy: 'must be a SIP user name' });
  const sipAuthenticationName = str(b, 'sipAuthenticationName', { pattern: SIP_TOKEN, patternWhy: 'must be a SIP user name' });
  const sipPassword = str(b, 'sipPassword', { max: 256 });
  const sipOutboundProxy = str(b, 'sipOutboundProxy', { pattern: HOST, patternWhy: 'must be a host name or IP address' });
  const sipPort = port(b, 'sipPort');
  const sipRegisterRequired = bool(b, 'sipRegisterRequired', false);
  if (sipRegisterRequired && !sipLogin) throw new ValidationError('sipLogin', 'is required when sipRegisterRequired is true');
  if (sipPassword && !sipLogin && !sipAuthenticationName) {
    throw new ValidationError('sipLogin', 'is required when sipPassword is given');
  }
  const hasAudio = bool(b, 'hasAudio', true);
  const hasVideo = bool(b, 'hasVideo', false);
  if (!hasAudio && !hasVideo) throw new ValidationError('hasAudio', 'and hasVideo are both false: nothing to relay');
  const rtmpUrl = str(b, 'rtmpUrl', { max: 1024 });
  const rtmpStream = str(b, 'rtmpStream', { max: 512 });
  const toStream = str(b, 'toStream', { max: 256 });
  const rtmpTransponderFullUrl = bool(b, 'rtmpTransponderFullUrl', false);
  if (!rtmpUrl && !toStream) throw new ValidationError('rtmpUrl', 'is required (or toStream, to publish later with /push/startup)');
  let target: OutputTarget | undefined;
  if (rtmpUrl) {
    if (!rtmpTransponderFullUrl && !rtmpStream) {
      throw new ValidationError('rtmpStream', 'is required unless rtmpTransponderFullUrl is true (then the URL ends with the stream name)');
    }
    target = outputTarget(rtmpUrl, rtmpTransponderFullUrl ? undefined : (opts.streamPrefix ?? '') + rtmpStream);
  }
  return {
    callId, callee, sipLogin, sipAuthenticationName, sipPassword, sipDomain, ...(fromUri ? { sipDomainFromCallee: true } : {}),
    sipOutboundProxy, sipPort, sipRegisterRequired, hasAudio, hasVideo, rtmpUrl, rtmpStream, toStream, rtmpTransponderFullUrl, target,
    maxDuration: maxDuration(b),
    record: bool(b, 'record', false),
    appKey: str(b, 'appKey'),
    visibleName: str(b, 'visibleName', { max: 128 }),
  };
}

/** Where an output publishes: the URL (with the stream name appended, unless it is a full URL), parsed once. */
function outputTarget(rtmpUrl: string, streamName: string | undefined): OutputTarget {
  try {
    return parseOutputTarget(rtmpUrl, streamName);
  } catch (err) {
    if (err instanceof RtmpUrlError) throw new ValidationError('rtmpUrl', err.message.replace(/^rtmpUrl /, ''));
    throw err;
  }
}

/** The URL that names the stream itself: RTMP's path ends with it, SRT's streamid carries it. */
function withStreamName(url: string, streamName: string): string {
  if (/^srt:\/\//i.test(url.trim())) return `${url}${url.includes('?') ? '&' : '?'}streamid=${encodeURIComponent(streamName)}`;
  return `${url.replace(/\/+$/, '')}/${streamName}`;
}

export interface PushStartupRequest {
  /** The call's stream (its toStream). */
  streamName: string;
  rtmpUrl: string;
  rtmpTransponderFullUrl: boolean;
  /** Where it publishes (rtmpUrl, plus the prefixed stream name unless rtmpTransponderFullUrl). */
  target: OutputTarget;
  /** options.action: start muted, or playing options.soundFile. */
  action: '' | 'mute' | 'sound_on';
  soundFile: string;
  loop: boolean;
}

export function validatePushStartup(raw: unknown, settings: ValidateOptions = {}): PushStartupRequest {
  const b = asBody(raw);
  const streamName = str(b, 'streamName', { required: true, max: 256 });
  const rtmpUrl = str(b, 'rtmpUrl', { required: true, max: 1024 });
  const rtmpTransponderFullUrl = bool(b, 'rtmpTransponderFullUrl', false);
  const target = outputTarget(rtmpUrl, rtmpTransponderFullUrl ? undefined : (settings.streamPrefix ?? '') + streamName);
  const o = b.options === undefined || b.options === null ? {} : b.options;
  if (typeof o !== 'object' || Array.isArray(o)) throw new ValidationError('options', 'must be an object');
  const opts = o as Body;
  const action = str(opts, 'action', { max: 32 }).toLowerCase();
  if (action !== '' && action !== 'mute' && action !== 'sound_on') throw new ValidationError('options.action', 'must be "mute" or "sound_on"');
  const soundFile = str(opts, 'soundFile', { max: 256 });
  if (action === 'sound_on' && !soundFile) throw new ValidationError('options.soundFile', 'is required when options.action is "sound_on"');
  return { streamName, rtmpUrl, rtmpTransponderFullUrl, target, action, soundFile, loop: bool(opts, 'loop', false) };
}

export function validateMediaSessionId(raw: unknown): string {
  return str(asBody(raw), 'mediaSessionId', { required: true, max: 64 });
}

/** /recorder/startup (WCS): what to record (a callId or a push's mediaSessionId), and config.fileTemplate. */
export function validateRecorderStartup(raw: unknown): { mediaSessionId: string; fileTemplate: string | undefined } {
  const b = asBody(raw);
  const mediaSessionId = str(b, 'mediaSessionId', { required: true, max: 128 });
  const c = b.config === undefined || b.config === null ? {} : b.config;
  if (typeof c !== 'object' || Array.isArray(c)) throw new ValidationError('config', 'must be an object');
  const config = c as Body;
  const fileTemplate = str(config, 'fileTemplate', { max: 200 });
  const problem = fileTemplate ? templateProblem(fileTemplate) : undefined;
  if (problem) throw new ValidationError('config.fileTemplate', problem);
  // WCS splits long records by size or time; one file per recording here, so say so rather than ignore it.
  if (config.rotation !== undefined && config.rotation !== null && config.rotation !== '' && config.rotation !== 'disabled') {
    throw new ValidationError('config.rotation', 'is not supported: one recording is one file');
  }
  return { mediaSessionId, fileTemplate: fileTemplate || undefined };
}

/** /recorder/terminate: the recorded mediaSessionId (WCS), or a recordingId. */
export function validateRecorderTerminate(raw: unknown): string {
  const b = asBody(raw);
  const id = str(b, 'mediaSessionId', { max: 128 }) || str(b, 'recordingId', { max: 64 });
  if (!id) throw new ValidationError('mediaSessionId', 'is required (or recordingId)');
  return id;
}

export function validateSoundOn(raw: unknown): { mediaSessionId: string; soundFile: string; loop: boolean } {
  const b = asBody(raw);
  return {
    mediaSessionId: str(b, 'mediaSessionId', { required: true, max: 64 }),
    soundFile: str(b, 'soundFile', { required: true, max: 256 }),
    loop: bool(b, 'loop', false),
  };
}

export function validateSendDtmf(raw: unknown): { callId: string; dtmf: string; mode: 'rfc4733' | 'info' } {
  const b = asBody(raw);
  const callId = str(b, 'callId', { required: true, max: 128 });
  const dtmf = str(b, 'dtmf', { required: true, max: 64, pattern: /^[0-9A-Da-d*#]+$/, patternWhy: 'must be DTMF digits: 0-9, *, #, A-D' });
  const type = str(b, 'type', { max: 16 }).toUpperCase();
  if (type !== '' && type !== 'RFC2833' && type !== 'INFO') throw new ValidationError('type', 'must be RFC2833 or INFO');
  return { callId, dtmf: dtmf.toUpperCase(), mode: type === 'INFO' ? 'info' : 'rfc4733' };
}

export function validateInjectSound(raw: unknown): { callId: string; fileName: string } {
  const b = asBody(raw);
  return { callId: str(b, 'callId', { required: true, max: 128 }), fileName: str(b, 'fileName', { required: true, max: 256 }) };
}

/** /call/inject_stream/startup: streamName is another call's stream, an rtmp(s)/http(s) URL, or a sound file. */
export function validateInjectStream(raw: unknown): { callId: string; streamName: string } {
  const b = asBody(raw);
  return { callId: str(b, 'callId', { required: true, max: 128 }), streamName: str(b, 'streamName', { required: true, max: 2048 }) };
}

export function validateCallId(raw: unknown): string {
  return str(asBody(raw), 'callId', { required: true, max: 128 });
}

/**
 * An inbound call the PBX handed over (for Asterisk: Stasis arguments or channel variables, read by the
 * adapter), as /call/startup fields: rtmpUrl, rtmpStream, and optionally hasVideo, hasAudio,
 * rtmpTransponderFullUrl, callId, visibleName, appKey, maxDuration. The stream name is used as given (no
 * rtmp_ prefix): the admin wrote it in the PBX's configuration.
 */
export function validateInbound(fields: Record<string, string>, ch: { channelId: string; caller: string; callerName: string; exten: string }): StartupRequest {
  const b: Body = { ...fields };
  const rtmpUrl = str(b, 'rtmpUrl', { required: true, max: 1024 });
  const rtmpStream = str(b, 'rtmpStream', { max: 512 });
  const rtmpTransponderFullUrl = bool(b, 'rtmpTransponderFullUrl', !rtmpStream);
  if (!rtmpTransponderFullUrl && !rtmpStream) throw new ValidationError('rtmpStream', 'is required unless the URL ends with the stream name');
  // As a full URL: the stream name goes on as written, without the rtmp_ prefix.
  const fullUrl = rtmpTransponderFullUrl ? rtmpUrl : withStreamName(rtmpUrl, rtmpStream);
  const target = outputTarget(fullUrl, undefined);
  const hasAudio = bool(b, 'hasAudio', true);
  const hasVideo = bool(b, 'hasVideo', false);
  if (!hasAudio && !hasVideo) throw new ValidationError('hasAudio', 'and hasVideo are both false: nothing to relay');
  // Caller id and extension come from the far end's SIP: no control characters into API answers and hooks.
  const clean = (v: string) => v.replace(/[\u0000-\u001f\u007f]/g, '').slice(0, 128);
  return {
    callId: str(b, 'callId', { max: 128 }) || ch.channelId,
    callee: clean(ch.exten), sipLogin: clean(ch.caller), sipAuthenticationName: '', sipPassword: '', sipDomain: '', sipOutboundProxy: '', sipPort: undefined,
    sipRegisterRequired: false, hasAudio, hasVideo, rtmpUrl: fullUrl, rtmpStream, toStream: rtmpStream, rtmpTransponderFullUrl: true, target,
    maxDuration: maxDuration(b),
    record: bool(b, 'record', false),
    appKey: str(b, 'appKey'),
    visibleName: str(b, 'visibleName', { max: 128 }) || clean(ch.callerName),
  };
}
