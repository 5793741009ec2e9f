/**
 * One relayed call: its request, its state as WCS clients see it, and everything it holds (one Disposer),
 * so whatever way the call ends, end() releases it all.
 */
import { EventEmitter } from 'node:events';
import { isoOrNull } from '../lib/clock.js';
import { Disposer } from '../lib/disposer.js';
import { maskSecret, redactUrl } from '../lib/redact.js';
import type { CallMedia } from '../media/call-media.js';
import { DtmfMerge } from '../media/dtmf.js';
import type { Outcome } from './causes.js';
import type { CallPush } from './pushes.js';
import type { CallRecording } from './recordings.js';
import { FINAL_STATUSES, streamNameIsKey, type CallEvent, type CallReason, type CallStatus, type CallView, type StartupRequest, type StreamStatus } from './types.js';

export interface CallEvents {
  status: [{ call: Call; status: CallStatus; info: string }];
  ended: [{ call: Call }];
  /** A new entry in its history (every status change is one). */
  note: [CallEvent];
}

const MAX_EVENTS = 50;

export class Call extends EventEmitter<CallEvents> {
  status: CallStatus = 'TRYING';
  sipStatus: number | null = null;
  info = 'Accepted';
  reason: CallReason | null = null;
  streamStatus: StreamStatus = 'NEW';
  readonly createdAt = new Date();
  establishedAt: Date | null = null;
  /** The answer on the media clock (monotonic ms): the stream's time zero. */
  answeredAtMs: number | undefined;
  /** Its duration limit in seconds (maxDuration, else MAX_CALL_DURATION; set when listed); 0: none. */
  maxDurationSec = 0;
  endedAt: Date | null = null;
  readonly events: CallEvent[] = [];
  /** The SIP party's digits as reported so far (by the PBX and the media leg: calls/context.ts dtmf). */
  readonly dtmfIn = new DtmfMerge();
  /** /call/inject_stream: what is played toward the SIP party now, and how to stop it. */
  injection: { streamName: string; startedAt: Date; stop: () => Promise<void> } | undefined;
  readonly resources = new Disposer();

  /** ARI/PBX ids, all derived from the internal key (never from the user's callId). */
  readonly channelId: string;
  readonly legChannelId: string;
  readonly bridgeId: string;
  readonly legToken: string;
  /** SDP o= session id of our answers on the media leg. */
  readonly sdpSessionId = Math.floor(Math.random() * 2 ** 31);
  accountId: string;
  media: CallMedia | undefined;
  /** Resolves once the media pipeline runs (after the answer and the media leg). */
  readonly mediaReady: Promise<CallMedia>;
  private resolveMedia!: (m: CallMedia) => void;
  /** Its RTMP outputs; the primary one (from /call/startup's rtmpUrl) first. */
  readonly pushes: CallPush[] = [];
  /** Its recordings, in the order they started. */
  readonly recordings: CallRecording[] = [];

  /** rtmpUrl as it may be shown or logged: no credentials or query, and a stream key at its end masked. */
  readonly safeRtmpUrl: string;

  /** `channelId`: an inbound call's own channel (the PBX's id); outbound calls get one derived from the key. */
  constructor(readonly key: string, readonly req: StartupRequest, readonly incoming = false, channelId?: string) {
    super();
    this.safeRtmpUrl = !req.rtmpUrl ? '' : req.rtmpTransponderFullUrl ? req.target!.display : redactUrl(req.rtmpUrl);
    this.channelId = channelId ?? `${key}-call`;
    this.legChannelId = `${key}-leg`;
    this.bridgeId = `${key}-bridge`;
    this.legToken = `${key}-leg`;
    this.accountId = key;
    this.mediaReady = new Promise((r) => (this.resolveMedia = r));
  }

  setMedia(media: CallMedia): void {
    this.media = media;
    this.resolveMedia(media);
  }

  private chain: Promise<unknown> = Promise.resolve();

  /** Run `fn` after the previous serial step of this call (DTMF, sounds): never two at once. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => {});
    return next;
  }

  /** When its duration limit hangs it up (monotonic ms), once answered. */
  get endsAtMs(): number | undefined {
    return this.maxDurationSec && this.answeredAtMs !== undefined ? this.answeredAtMs + this.maxDurationSec * 1000 : undefined;
  }

  get final(): boolean {
    return FINAL_STATUSES.has(this.status);
  }

  get ending(): boolean {
    return this.resources.disposed;
  }

  note(type: string, detail?: string): void {
    this.events.push({ at: new Date().toISOString(), type, ...(detail ? { detail } : {}) });
    if (this.events.length > MAX_EVENTS) this.events.shift();
    this.emit('note', this.events[this.events.length - 1]!);
  }

  /** Move to a non-final status (ignored once final, and for repeats). */
  setStatus(status: CallStatus, info: string, sipStatus?: number): void {
    if (this.final || this.status === status) return;
    this.status = status;
    this.info = info;
    if (sipStatus !== undefined) this.sipStatus = sipStatus;
    // The answer's time: back from HOLD is ESTABLISHED again, not a new start.
    if (status === 'ESTABLISHED') this.establishedAt ??= new Date();
    this.note(status, info);
    this.emit('status', { call: this, status, info });
  }

  /** Final status; the first one wins. Returns false if already final. */
  finish(o: Outcome): boolean {
    if (this.final) return false;
    this.status = o.status;
    this.reason = o.reason;
    this.info = o.info;
    if (o.sipStatus !== null) this.sipStatus = o.sipStatus;
    this.endedAt = new Date();
    this.note(o.status, `${o.reason}: ${o.info}`);
    this.emit('status', { call: this, status: o.status, info: o.info });
    return true;
  }

  setStreamStatus(s: StreamStatus, detail?: string): void {
    this.streamStatus = s;
    this.note(`STREAM_${s}`, detail);
  }

  /** The Call object for a CallStatusEvent hook: no history, no media counters. */
  hookView(): Omit<CallView, 'events' | 'media' | 'video'> {
    const { events: _e, media: _m, video: _v, ...rest } = this.view();
    return rest;
  }

  view(opts: { withMedia?: boolean } = {}): CallView {
    const r = this.req;
    return {
      callId: r.callId,
      status: this.status,
      sipStatus: this.sipStatus,
      caller: r.sipLogin,
      callee: r.callee,
      rtmpUrl: this.safeRtmpUrl,
      // The stream name is often a platform's stream key: a secret.
      rtmpStream: r.rtmpStream ? maskSecret(r.rtmpStream) : '',
      // An inbound call's stream name is its key (streamNameIsKey); an outbound toStream is a name of the client's.
      streamName: r.toStream && streamNameIsKey(r) ? maskSecret(r.toStream) : r.toStream,
      rtmpStreamStatus: this.streamStatus,
      hasAudio: r.hasAudio,
      hasVideo: r.hasVideo,
      incoming: this.incoming,
      visibleName: r.visibleName,
      appKey: r.appKey,
      info: this.info,
      reason: this.reason,
      createdAt: this.createdAt.toISOString(),
      establishedAt: this.establishedAt?.toISOString() ?? null,
      endedAt: this.endedAt?.toISOString() ?? null,
      maxDuration: this.maxDurationSec || null,
      endsAt: isoOrNull(this.endsAtMs),
      events: [...this.events],
      video: this.media?.videoState ?? null,
      recordings: this.recordings.map((r) => r.view()),
      ...(opts.withMedia && this.media ? { media: this.media.toJSON() } : {}),
    };
  }
}
