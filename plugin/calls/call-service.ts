/**
 * The call table and each call's life: from a validated /call/startup to the final status.
 *
 *   startup → per-call SIP account → dial callee ─ ringing/progress ─► answered
 *     → media leg (Asterisk → our UAS, bridged 2-party) → CallMedia (RTP → AAC → FLV) → Push (RTMP)
 *   any ending (callee hangs up, terminate, failure, RTMP refused) → end(): one Disposer releases all.
 *
 * Speaks only to the ports in ports.ts; REST maps onto this, never the other way.
 */
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { EventEmitter } from 'node:events';
import type { Config } from '../config.js';
import type { Logger } from '../lib/log.js';
import { CallMedia } from '../media/call-media.js';
import { describeRtmpError, Push, RECONNECT, type Publisher } from '../media/output/push.js';
import { MediaTicker } from '../media/timeline/ticker.js';
import type { GeneratedVideo } from '../media/timeline/video-output.js';
import { monotonicNow } from '../lib/clock.js';
import { TokenBucket } from '../lib/rate-limit.js';
import { describeTarget, parseRtmpUrl, type RtmpTarget } from '../rtmp/url.js';
import { answerLegOffer, LEG_CODECS, type LegMedia } from '../sip/negotiate.js';
import type { SdpSession } from '../sip/sdp.js';
import { Call } from './call.js';
import { answeredOutcome, unansweredOutcome, type Outcome } from './causes.js';
import type { InviteAnswer, MediaLegServer, Pbx, PbxEvent } from './ports.js';
import type { AacClip, AacClipFormat, AudioEncoderFactory, RtpPortSource, SoundSource } from '../media/ports.js';
import { CallPush, type PushView } from './pushes.js';
import type { Hooks } from '../hooks/hooks.js';
import { INBOUND_VARIABLES, validateInbound, type PushStartupRequest } from './validate.js';
import { maskSecret, redactUrl } from '../lib/log.js';
import type { CallView, StartupRequest } from './types.js';

export class ApiError extends Error {
  constructor(readonly statusCode: number, message: string, readonly field?: string) {
    super(message);
  }
}

export interface CallServiceDeps {
  config: Config;
  log: Logger;
  pbx: Pbx;
  uas: MediaLegServer;
  ports: RtpPortSource;
  encoderFactory: AudioEncoderFactory;
  publisherFactory: (target: RtmpTarget) => Publisher;
  /** The black GOP for calls that want video while the caller sends none (made once, shared). */
  generatedVideo?: () => Promise<GeneratedVideo | undefined>;
  /**
   * A relay put between Asterisk and the app's RTP port (tests impair the media leg with it): the SDP
   * answer names the relay's port, and RTP is expected from the relay's sending port.
   */
  mediaRelay?: (kind: 'audio' | 'video', appPort: number) => Promise<MediaRelay>;
  /** Sound files (push mute/sound_on, inject_sound). */
  sounds?: SoundSource;
  /** WCS REST hooks: call, registration and stream events to the customer's backend. */
  hooks?: Hooks;
}

export interface MediaRelay {
  /** Where Asterisk should send. */
  port: number;
  /** Where the relay sends to the app from. */
  sourcePort: number;
  close(): Promise<void>;
}

/** Each digit's tone plus the gap after it, as sent (pbx.sendDtmf: 120 + 80 ms). */
const DTMF_DIGIT_MS = 200;
/** Margin after the last digit, before the next DTMF request of the same call (ms). */
const DTMF_SETTLE_MS = 300;

/**
 * What observers (the console's live feed, /metrics) hear, without reaching into a call's internals:
 * `changed` for anything a Call object or its pushes show, `released` once a call holds nothing more
 * (its counters are final), `pushClosed` for an output removed from a live call, `removed` when a call
 * leaves the list (ENDED_TTL_SEC after its end).
 */
export interface CallServiceEvents {
  changed: [Call];
  released: [Call];
  pushClosed: [CallPush];
  removed: [Call];
}

export class CallService {
  readonly changes = new EventEmitter<CallServiceEvents>();
  /** Live and recently ended calls, by the client's callId. */
  private readonly calls = new Map<string, Call>();
  /** Live calls by channel id (the call's and its media leg's), for routing PBX events. */
  private readonly byChannel = new Map<string, { call: Call; leg: boolean }>();
  private readonly ttlTimers = new Set<NodeJS.Timeout>();
  private readonly legAnswered = new Map<string, () => void>();
  /** Every call's outputs by mediaSessionId. */
  private readonly pushes = new Map<string, CallPush>();
  private readonly ticker: MediaTicker;

  private readonly rtpWatch: NodeJS.Timeout | undefined;
  private readonly startups: TokenBucket;

  constructor(private readonly d: CallServiceDeps) {
    // Default period: one AAC frame (1024 samples), so frames leave as soon as they are complete.
    this.ticker = new MediaTicker(d.config.media.tickMs || (1024 * 1000) / d.config.media.aacSampleRate);
    const rate = d.config.calls.startupRatePerSec;
    this.startups = new TokenBucket(rate, rate * 2, monotonicNow());
    d.pbx.on('event', (e) => this.onPbxEvent(e));
    d.pbx.on('down', ({ reason }) => d.log.warn({ reason, calls: this.activeCount }, 'lost the connection to Asterisk: new calls get 503 until it is back'));
    d.pbx.on('up', ({ reconnect }) => {
      if (reconnect) void this.reconcile().catch((err: Error) => d.log.error({ err: err.message }, 'reconciling calls after reconnect failed'));
    });
    const timeoutMs = d.config.calls.rtpTimeoutSec * 1000;
    if (timeoutMs > 0) this.rtpWatch = setInterval(() => this.checkRtpActivity(timeoutMs), Math.min(1000, timeoutMs / 2)).unref();
  }

  /**
   * Back from a lost ARI connection: events may have been missed. A call whose channel (or media leg) is
   * gone ended while we weren't listening: it is ended here with that reason, not left as a ghost.
   * Calls whose channels are all there (a mere socket drop) go on untouched.
   */
  async reconcile(): Promise<void> {
    const exists = this.d.pbx.channelExists?.bind(this.d.pbx);
    if (!exists) return;
    let ended = 0;
    for (const call of [...this.calls.values()]) {
      if (call.final || call.ending) continue;
      // A call not dialled (or answered, inbound) yet may have no channel so far: nothing to judge.
      if (!call.events.some((e) => e.type === 'INVITE' || e.type === 'INCOMING')) continue;
      const checks = [call.channelId, ...(call.media ? [call.legChannelId] : [])];
      const gone = [];
      for (const id of checks) if (!(await exists(id).catch(() => true))) gone.push(id === call.channelId ? 'call' : 'media leg');
      if (gone.length === 0) continue;
      ended++;
      void this.end(call, {
        status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: call.sipStatus,
        info: `the ${gone.join(' and ')} channel ended while the connection to Asterisk was down (Asterisk restarted?)`,
      });
    }
    this.d.log.info({ live: this.activeCount, ended }, 'calls reconciled after reconnecting to Asterisk');
  }

  /** FAILED_BY_RTP_ACTIVITY for answered calls whose media has been silent (no RTP at all) too long. */
  private checkRtpActivity(timeoutMs: number): void {
    for (const call of this.calls.values()) {
      if (call.ending || call.status !== 'ESTABLISHED' || !call.media) continue;
      const idle = call.media.idleMs();
      if (idle >= timeoutMs) {
        void this.end(call, { status: 'FAILED', reason: 'FAILED_BY_RTP_ACTIVITY', sipStatus: call.sipStatus, info: `no RTP from the call for ${Math.round(idle / 1000)} s (RTP_TIMEOUT_SEC)` });
      }
    }
  }

  get activeCount(): number {
    let n = 0;
    for (const c of this.calls.values()) if (!c.final) n++;
    return n;
  }

  /** Accept a call (throws ApiError 409/503); it then proceeds on its own. */
  startup(req: StartupRequest): Call {
    this.rateLimit();
    if (!this.d.pbx.connected) {
      // Client mistakes (409) first, then "try again later".
      this.admit(req);
      throw new ApiError(503, 'Asterisk (ARI) is not connected; try again shortly');
    }
    const primary = this.admit(req);
    const call = new Call(`sar-${randomBytes(5).toString('hex')}`, req);
    this.register(call, primary);
    void this.run(call).catch((err: unknown) => this.end(call, failure(err)));
    return call;
  }

  /** STARTUP_RATE_PER_SEC: a flood of setups is refused with 429 before it reaches Asterisk. */
  private rateLimit(): void {
    const r = this.startups.take(monotonicNow());
    if (!r.ok) throw new ApiError(429, `too many call or push startups (STARTUP_RATE_PER_SEC=${this.d.config.calls.startupRatePerSec}); retry in ${r.retryInMs} ms`);
  }

  /** Checks shared by /call/startup and inbound calls: 409 (callId, destination), 503 (capacity). */
  private admit(req: StartupRequest): CallPush | undefined {
    const existing = this.calls.get(req.callId);
    if (existing) throw new ApiError(409, `callId ${req.callId} already exists (status ${existing.status})`, 'callId');
    const primary = req.rtmpUrl
      ? new CallPush(req.callId, req.toStream || req.rtmpStream, req.rtmpUrl, this.target(req), {}, true)
      : undefined;
    if (primary) {
      this.checkAllowedHost(primary.target);
      const busy = this.pushUsing(primary.key);
      if (busy) throw new ApiError(409, `call ${busy.callId} already publishes to this rtmpUrl and stream`, 'rtmpStream');
    }
    if (this.activeCount >= this.d.config.calls.maxCalls) throw new ApiError(503, `at capacity (${this.d.config.calls.maxCalls} calls)`);
    return primary;
  }

  private register(call: Call, primary: CallPush | undefined): void {
    if (primary) this.addPush(call, primary);
    this.calls.set(call.req.callId, call);
    call.on('note', () => this.changes.emit('changed', call));
    call.on('status', ({ status, info }) => {
      this.d.log.info({ callId: call.req.callId, status, info, incoming: call.incoming }, 'call status');
      this.hook('CallStatusEvent', call.hookView());
    });
  }

  /**
   * An inbound call the dialplan handed over (Stasis(app, rtmpUrl, stream, ...)): answered and relayed
   * like an outbound call once answered. Bad arguments or no capacity: hung up, and logged for the admin.
   */
  private async incoming(e: Extract<PbxEvent, { kind: 'answered' }>): Promise<void> {
    const { pbx } = this.d;
    let call: Call;
    try {
      const vars = e.args.length === 0 && pbx.getVariables ? await pbx.getVariables(e.channelId, Object.values(INBOUND_VARIABLES)) : {};
      const req = validateInbound(e.args, vars, { channelId: e.channelId, caller: e.caller ?? '', callerName: e.callerName ?? '', exten: e.exten ?? '' });
      const primary = this.admit(req);
      call = new Call(`sar-${randomBytes(5).toString('hex')}`, req, true, e.channelId);
      this.register(call, primary);
    } catch (err) {
      this.d.log.warn({ channelId: e.channelId, exten: e.exten, args: e.args.map((a, i) => (i === 1 ? maskSecret(a) : redactUrl(a))), err: (err as Error).message }, 'inbound call refused');
      await pbx.hangup(e.channelId, err instanceof ApiError && err.statusCode === 503 ? 'congestion' : 'normal').catch(() => {});
      return;
    }
    this.byChannel.set(call.channelId, { call, leg: false });
    call.resources.add('call channel', () => pbx.hangup(call.channelId));
    call.note('INCOMING', `${call.req.sipLogin || 'unknown'} → ${call.req.callee}`);
    try {
      if (!pbx.answer) throw new Error('this PBX adapter cannot answer calls');
      await pbx.answer(call.channelId);
      call.answeredAtMs = monotonicNow();
      call.setStatus('ESTABLISHED', 'Answered (inbound)', 200);
      await this.startMedia(call);
    } catch (err) {
      await this.end(call, failure(err));
    }
  }

  find(filter: { callId?: string; callee?: string; rtmpUrl?: string; status?: string }): CallView[] {
    const out: CallView[] = [];
    for (const c of this.calls.values()) {
      if (filter.callId && c.req.callId !== filter.callId) continue;
      if (filter.callee && c.req.callee !== filter.callee) continue;
      if (filter.rtmpUrl && c.req.rtmpUrl !== filter.rtmpUrl) continue;
      if (filter.status && c.status !== filter.status.toUpperCase()) continue;
      out.push(c.view({ withMedia: true }));
    }
    return out;
  }

  get(callId: string): Call | undefined {
    return this.calls.get(callId);
  }

  /** Live and recently ended calls, oldest first. */
  list(): Call[] {
    return [...this.calls.values()];
  }

  /** Hang up. Throws ApiError 404 for an unknown or already ended call. */
  terminate(callId: string): void {
    const call = this.calls.get(callId);
    if (!call || call.final) throw new ApiError(404, `no active call with callId ${callId}`, 'callId');
    void this.end(call, call.status === 'ESTABLISHED' || call.status === 'HOLD'
      ? answeredOutcome(true, 16, 'Normal Clearing')
      : { status: 'FINISH', reason: 'NORMAL_CALL_CLEARING', sipStatus: call.sipStatus, info: 'Terminated before answer' });
  }

  /** /call/send_dtmf: digits toward the SIP party, one request at a time per call. */
  async sendDtmf(callId: string, digits: string, mode: 'rfc4733' | 'info'): Promise<void> {
    const call = this.answeredCall(callId);
    if (!this.d.pbx.sendDtmf) throw new ApiError(501, 'this PBX adapter cannot send DTMF');
    const send = call.serial(async () => {
      // Asterisk ends a digit only as frames pass toward the channel: keep audio flowing meanwhile. Right
      // after the answer the media leg may not be up yet: wait for it (measured: a digit sent before it
      // began but never ended).
      const media = await this.mediaOf(call);
      media.keepAudioToCaller(digits.length * DTMF_DIGIT_MS + 1000);
      await this.d.pbx.sendDtmf!(call.channelId, digits, mode);
      // ARI answers once the digits are queued, not sent; switching the mode for a next request before
      // they are out would lose some (measured: the '#' of "12#" never ended when INFO digits followed).
      await delay(digits.length * DTMF_DIGIT_MS + DTMF_SETTLE_MS);
    });
    call.note('DTMF_SENT', `${digits} (${mode === 'info' ? 'INFO' : 'RFC2833'})`);
    await send;
  }

  /**
   * /call/inject_sound: play a sound file into the call, toward the SIP party (through the media leg, so
   * the file only has to be readable here, not on the Asterisk host). A new sound replaces one playing.
   */
  async injectSound(callId: string, fileName: string): Promise<void> {
    const call = this.answeredCall(callId);
    if (!this.d.sounds) throw new ApiError(501, 'sounds are not configured');
    const media = await this.mediaOf(call);
    let pcm: Int16Array;
    try {
      pcm = await this.d.sounds.pcm(fileName, media.legClockRate);
    } catch (err) {
      throw soundApiError(err, 'fileName');
    }
    call.note('SOUND', fileName);
    media.playToCaller(pcm).catch((err: Error) => this.d.log.warn({ callId, err: err.message }, 'inject_sound failed'));
  }

  /**
   * /call/hold and /call/unhold (our extension): the far end gets a sendonly re-INVITE (Asterisk's hold
   * with moh_passthrough on the endpoint), the status is HOLD, and the RTMP output goes on with silence
   * and generated video until unhold.
   */
  async hold(callId: string, on: boolean): Promise<void> {
    const call = this.answeredCall(callId);
    if (!this.d.pbx.hold) throw new ApiError(501, 'this PBX adapter cannot hold calls');
    if ((call.status === 'HOLD') === on) return; // already so
    const media = await this.mediaOf(call);
    await call.serial(() => this.d.pbx.hold!(call.channelId, on));
    media.setHeld(on);
    if (on) call.setStatus('HOLD', 'On hold');
    else call.setStatus('ESTABLISHED', 'Resumed');
  }

  /** The call's media pipeline, waiting for it right after the answer (503 if it is not up in 5 s). */
  private async mediaOf(call: Call): Promise<CallMedia> {
    const media = await Promise.race([call.mediaReady, delay(5000).then(() => undefined)]);
    if (!media || call.ending) throw new ApiError(503, `call ${call.req.callId}: media not up`, 'callId');
    return media;
  }

  /** A live call that was answered (404 if unknown or ended, 409 if not answered yet). */
  private answeredCall(callId: string): Call {
    const call = this.calls.get(callId);
    if (!call || call.final) throw new ApiError(404, `no active call with callId ${callId}`, 'callId');
    if (call.status !== 'ESTABLISHED' && call.status !== 'HOLD') throw new ApiError(409, `call ${callId} is not established (status ${call.status})`, 'callId');
    return call;
  }

  /** End every call and stop (shutdown). */
  async close(): Promise<void> {
    if (this.rtpWatch) clearInterval(this.rtpWatch);
    for (const t of this.ttlTimers) clearTimeout(t);
    this.ttlTimers.clear();
    await Promise.all([...this.calls.values()].map((c) => this.end(c, { status: 'FINISH', reason: 'NORMAL_CALL_CLEARING', sipStatus: c.sipStatus, info: 'Server shutting down' })));
    this.calls.clear();
  }

  private target(req: StartupRequest): RtmpTarget {
    return this.publishTarget(req.rtmpUrl, req.rtmpTransponderFullUrl, req.rtmpStream);
  }

  /** WCS's rule: rtmpUrl + "/" + prefix + stream, or rtmpUrl exactly as given (rtmpTransponderFullUrl). */
  private publishTarget(rtmpUrl: string, fullUrl: boolean, streamName: string): RtmpTarget {
    return fullUrl ? parseRtmpUrl(rtmpUrl) : parseRtmpUrl(rtmpUrl, this.d.config.calls.streamPrefix + streamName);
  }

  // -------------------------------------------------------------------------------------------------------

  private async run(call: Call): Promise<void> {
    const { pbx } = this.d;
    const r = call.req;
    if (r.sipLogin) {
      call.resources.add('sip account', () => pbx.deleteAccount(call.accountId));
      const proxy = r.sipOutboundProxy ? `sip:${r.sipOutboundProxy}${r.sipPort ? `:${r.sipPort}` : ''}` : undefined;
      await pbx.createAccount(call.accountId, {
        authUser: r.sipAuthenticationName || r.sipLogin,
        password: r.sipPassword,
        fromUser: r.sipLogin,
        fromDomain: r.sipDomain.replace(/:\d+$/, ''),
        ...(proxy ? { outboundProxy: proxy } : {}),
        ...(r.sipRegisterRequired
          ? { registration: { serverUri: `sip:${r.sipDomain}${!proxy && r.sipPort ? `:${r.sipPort}` : ''}`, clientUri: `sip:${r.sipLogin}@${r.sipDomain.replace(/:\d+$/, '')}`, expirationSec: 300 } }
          : {}),
      });
      call.note('ACCOUNT_CREATED');
      if (r.sipRegisterRequired) {
        if (!pbx.waitRegistered) throw new CallFailure({ status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: null, info: 'SIP registration is not supported by this PBX adapter' });
        call.info = 'Registering';
        try {
          await pbx.waitRegistered(call.accountId, 30_000);
        } catch (err) {
          this.hook('RegistrationStatusEvent', { ...registration(call), status: 'AUTHENTICATION_FAIL', info: (err as Error).message });
          throw new CallFailure({ status: 'FAILED', reason: 'AUTHENTICATION_FAIL', sipStatus: null, info: `Registration failed: ${(err as Error).message}` });
        }
        call.note('REGISTERED');
        this.hook('RegistrationStatusEvent', { ...registration(call), status: 'REGISTERED' });
        // Deleting the account at the end of the call unregisters it.
        call.resources.add('unregistered hook', () => this.hook('RegistrationStatusEvent', { ...registration(call), status: 'UNREGISTERED' }));
      }
    } else {
      call.accountId = 'sip-as-rtmp-outbound';
    }
    if (call.ending) return;

    const host = r.sipOutboundProxy ? r.sipDomain : `${r.sipDomain}${r.sipPort && !/:\d+$/.test(r.sipDomain) ? `:${r.sipPort}` : ''}`;
    this.byChannel.set(call.channelId, { call, leg: false });
    call.resources.add('call channel', () => pbx.hangup(call.channelId));
    await pbx.dial({
      channelId: call.channelId,
      accountId: call.accountId,
      target: `sip:${r.callee}@${host}`,
      video: r.hasVideo,
      timeoutSec: this.d.config.calls.answerTimeoutSec,
      ...(r.visibleName ? { callerId: `"${r.visibleName.replace(/"/g, '')}" <${r.sipLogin || 'sip-as-rtmp'}>` } : {}),
    });
    call.info = 'INVITE sent';
    call.note('INVITE');
  }

  private onPbxEvent(e: PbxEvent): void {
    const entry = this.byChannel.get(e.channelId);
    if (!entry) {
      if (e.kind === 'answered' && e.incoming) void this.incoming(e);
      return;
    }
    const { call, leg } = entry;
    if (leg) {
      if (e.kind === 'answered') this.legAnswered.get(call.legChannelId)?.();
      else if (e.kind === 'hangup' && !call.ending) {
        void this.end(call, { status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: call.sipStatus, info: `media leg ended (${e.causeText})` });
      }
      return;
    }
    switch (e.kind) {
      case 'ringing':
        call.setStatus('RING', 'Ringing', 180);
        break;
      case 'progress':
        call.setStatus('SESSION_PROGRESS', 'Session progress', 183);
        break;
      case 'answered':
        call.answeredAtMs = monotonicNow();
        call.setStatus('ESTABLISHED', 'Answered', 200);
        void this.startMedia(call).catch((err: unknown) => this.end(call, failure(err)));
        break;
      case 'hangup': {
        this.byChannel.delete(e.channelId);
        const o = call.establishedAt ? answeredOutcome(false, e.cause, e.causeText) : unansweredOutcome(e.cause, e.causeText, e.sipStatus);
        void this.end(call, o);
        break;
      }
      case 'dtmf':
        call.note('DTMF', e.digit);
        this.hook('DtmfEvent', { callId: call.req.callId, dtmf: e.digit, appKey: call.req.appKey });
        break;
      case 'hold':
        call.setStatus('HOLD', 'On hold');
        break;
      case 'unhold':
        call.setStatus('ESTABLISHED', 'Resumed');
        break;
    }
  }

  /** On answer: media leg, RTP, encoder, RTMP. */
  private async startMedia(call: Call): Promise<void> {
    const { pbx, uas, config } = this.d;
    const sockets = await this.d.ports.allocate();
    call.resources.add('rtp ports', () => sockets.release());
    const videoSockets = call.req.hasVideo ? await this.d.ports.allocate() : undefined;
    if (videoSockets) call.resources.add('video rtp ports', () => videoSockets.release());
    const audioRelay = await this.relay(call, 'audio', sockets.rtpPort);
    const videoRelay = videoSockets ? await this.relay(call, 'video', videoSockets.rtpPort) : undefined;
    if (call.ending) return;

    let negotiated: LegMedia | undefined;
    let version = 0;
    const codecs = await this.legCodecs(call);
    const prefs = codecs.map((c) => LEG_CODECS[c]!);
    // A re-INVITE (hold, codec change) gets a fresh answer; the pipeline keeps the first codec.
    const forget = uas.expect(call.legToken, (offer: SdpSession): InviteAnswer => {
      const a = answerLegOffer(offer, {
        audioPrefs: prefs, audioPort: audioRelay?.port ?? sockets.rtpPort,
        ...(videoSockets ? { videoPort: videoRelay?.port ?? videoSockets.rtpPort } : {}),
        address: '127.0.0.1', sessionId: call.sdpSessionId, version: ++version,
      });
      if (!('sdp' in a)) return a;
      negotiated ??= a.media;
      return { sdp: a.sdp };
    });
    call.resources.add('media leg registration', forget);

    await pbx.createBridge(call.bridgeId);
    call.resources.add('bridge', () => pbx.destroyBridge(call.bridgeId));
    const legUp = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CallFailure({ status: 'FAILED', reason: 'FAILED_BY_SESSION_CREATION', sipStatus: call.sipStatus, info: 'media leg did not answer within 10 s' })), 10_000);
      this.legAnswered.set(call.legChannelId, () => {
        clearTimeout(timer);
        resolve();
      });
      call.resources.add('leg waiter', () => {
        clearTimeout(timer);
        this.legAnswered.delete(call.legChannelId);
      });
    });
    this.byChannel.set(call.legChannelId, { call, leg: true });
    call.resources.add('media leg channel', () => pbx.hangup(call.legChannelId));
    const legFormats = [...codecs, ...(call.req.hasVideo ? ['h264'] : [])].join(',');
    await pbx.dialMediaLeg({ channelId: call.legChannelId, uri: uas.uriFor(call.legToken), formats: legFormats });
    await legUp;
    if (call.ending) return;
    await pbx.addToBridge(call.bridgeId, [call.channelId, call.legChannelId]);
    if (!negotiated) throw new CallFailure({ status: 'FAILED', reason: 'NO_COMMON_CODECS', sipStatus: call.sipStatus, info: 'media leg offered no usable audio codec' });
    call.note('MEDIA_LEG_UP', `${negotiated.audio.encoding}/${negotiated.audio.clockRate}${negotiated.video ? ' + H264' : ''}`);
    const generated = call.req.hasVideo ? await this.d.generatedVideo?.() : undefined;
    const video = call.req.hasVideo
      ? {
          ...(negotiated.video && videoSockets
            ? {
                caller: {
                  sockets: videoSockets, payloadType: negotiated.video.format.payloadType,
                  source: viaRelay(negotiated.video.source, videoRelay),
                  // Asterisk's RTCP port for the stream: its RTP port + 1 (no rtcp-mux on the leg).
                  rtcpTarget: { address: negotiated.video.source.address, port: negotiated.video.source.port + 1 },
                },
              }
            : {}),
          ...(generated ? { generated } : {}),
          maxKeyframeIntervalMs: config.media.maxKeyframeIntervalMs,
          idleMs: config.media.videoIdleMs,
        }
      : undefined;

    const feedCaller = await this.wantsGeneratedMedia(call);
    const media = new CallMedia(sockets, {
      audio: negotiated.audio,
      feedCaller,
      ...(negotiated.dtmf ? { dtmfPayloadType: negotiated.dtmf.payloadType } : {}),
      expectedSource: viaRelay(negotiated.source, audioRelay),
      jitterDepthMs: config.media.jitterDepthMs,
      ticker: this.ticker,
      // Time zero on the ticker's grid: each AAC frame then completes exactly on a tick (ticker.ts).
      startMs: this.ticker.alignUp(call.answeredAtMs ?? monotonicNow()),
      ...(video ? { video } : {}),
      publishAudio: call.req.hasAudio,
      encoder: { factory: this.d.encoderFactory, outputRate: config.media.aacSampleRate, channels: config.media.aacChannels, bitrate: config.media.aacBitrate },
    });
    call.setMedia(media);
    call.resources.add('media pipeline', () => media.close());
    media.start((err) => void this.end(call, { status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: call.sipStatus, info: `audio encoder failed: ${err.message}` }));

    // Pushes asked for before the answer start now, the primary first.
    await Promise.all(call.pushes.map((cp) => this.attachPush(call, media, cp)));
  }

  /**
   * The media leg's codecs: ours (MEDIA_LEG_CODECS), with the callee's own codec first when it is one of
   * them: no transcoding in Asterisk, a quarter of slin16's bytes for us, and nothing lost (a ulaw call
   * carries no more than ulaw). A wideband callee (G.722, Opus) still gets slin16. Measured at 50 calls:
   * Asterisk's share is the same either way (0.16 CPU-s per call-minute: with dtmf_events its bridge
   * handles every frame anyway); the app's went from 0.23 to 0.21.
   */
  private async legCodecs(call: Call): Promise<string[]> {
    const list = this.d.config.media.legCodecs;
    const v = await this.d.pbx.getVariables?.(call.channelId, ['CHANNEL(audionativeformat)']).catch(() => undefined);
    const native = /\w+/.exec(v?.['CHANNEL(audionativeformat)'] ?? '')?.[0];
    return native && list.includes(native) ? [native, ...list.filter((c) => c !== native)] : list;
  }

  /** WCS generate_av_for_ua: does this callee get silence and black video from us? */
  private async wantsGeneratedMedia(call: Call): Promise<boolean> {
    const list = this.d.config.media.generateAvForUa;
    if (list.length === 0) return false;
    const ua = await this.d.pbx.remoteUserAgent?.(call.channelId).catch(() => undefined);
    const yes = list.includes('all') || (!!ua && list.some((s) => ua.toLowerCase().includes(s)));
    if (yes) call.note('GENERATE_AV_FOR_UA', ua ?? 'all');
    return yes;
  }

  private async relay(call: Call, kind: 'audio' | 'video', appPort: number): Promise<MediaRelay | undefined> {
    if (!this.d.mediaRelay) return undefined;
    const r = await this.d.mediaRelay(kind, appPort);
    call.resources.add(`${kind} relay`, () => r.close());
    return r;
  }

  /** Start publishing one output of the call. The primary one's refusal fails the call; others just show FAILED. */
  private async attachPush(call: Call, media: CallMedia, cp: CallPush): Promise<void> {
    const r = this.d.config.rtmp;
    const push = new Push(media.stream, () => this.d.publisherFactory(cp.target), {
      reconnect: { ...RECONNECT, initialMs: Math.max(100, r.reconnectMaxMs / 4), maxMs: r.reconnectMaxMs },
      maxReconnectAttempts: r.reconnectAttempts,
    });
    cp.attach(push);
    const log = { callId: call.req.callId, mediaSessionId: cp.id, rtmpUrl: describeTarget(cp.target) };
    if (cp.primary) call.setStreamStatus('CONNECTING', call.safeRtmpUrl());
    push.on('state', ({ state, reason }) => {
      this.d.log.info({ ...log, state, reason }, 'push state');
      this.changes.emit('changed', call);
      this.hook('StreamStatusEvent', { ...cp.view(), stats: undefined });
      if (!cp.primary || call.ending) return;
      if (state === 'PUBLISHING' || state === 'RECONNECTING') call.setStreamStatus(state, reason);
      else if (state === 'FAILED') {
        call.setStreamStatus('FAILED', reason);
        // RTMP_FAILURE_ACTION: WCS hangs up (FAILED_BY_RTMP_WRITER_ERROR); "continue" keeps the call for a new /push/startup.
        if (r.failureAction === 'hangup') {
          void this.end(call, { status: 'FAILED', reason: 'FAILED_BY_RTMP_WRITER_ERROR', sipStatus: call.sipStatus, info: `RTMP: ${reason ?? 'publish failed'}` });
        }
      }
    });
    try {
      await push.start();
    } catch (err) {
      // The 'state' listener has reported it (and, for the primary, ended the call with the server's reason).
      this.d.log.warn({ ...log, err: describeRtmpError(err as Error) }, 'rtmp publish failed');
    }
  }

  private hook(method: string, body: Record<string, unknown>): void {
    this.d.hooks?.post(method, body);
  }

  /** RTMP_ALLOWED_HOSTS, when set: nothing is published anywhere else (a stolen token can't restream elsewhere). */
  private checkAllowedHost(target: RtmpTarget): void {
    const allowed = this.d.config.rtmp.allowedHosts;
    if (allowed.length > 0 && !allowed.includes(target.host.toLowerCase())) {
      throw new ApiError(400, `rtmpUrl host ${target.host} is not allowed (RTMP_ALLOWED_HOSTS)`, 'rtmpUrl');
    }
  }

  /** A live output already publishing to this destination. */
  private pushUsing(key: string): CallPush | undefined {
    for (const cp of this.pushes.values()) if (cp.key === key && cp.live) return cp;
    return undefined;
  }

  private addPush(call: Call, cp: CallPush): void {
    call.pushes.push(cp);
    this.pushes.set(cp.id, cp);
    call.resources.add(`push ${cp.id}`, async () => {
      this.pushes.delete(cp.id);
      await cp.push?.close();
    });
  }

  // ---- /push/* ------------------------------------------------------------------------------------------

  /** /push/startup: publish a call's stream (by its toStream name) to one more destination. */
  async pushStartup(req: PushStartupRequest): Promise<PushView> {
    this.rateLimit();
    const call = this.liveCallByStream(req.streamName);
    const target = this.publishTarget(req.rtmpUrl, req.rtmpTransponderFullUrl, req.streamName);
    const options = { ...(req.action ? { action: req.action } : {}), ...(req.soundFile ? { soundFile: req.soundFile } : {}) };
    const cp = new CallPush(call.req.callId, req.streamName, req.rtmpUrl, target, options, false);
    this.checkAllowedHost(target);
    const busy = this.pushUsing(cp.key);
    if (busy) throw new ApiError(409, `stream ${busy.streamName} is already pushed to this rtmpUrl (mediaSessionId ${busy.id})`, 'rtmpUrl');
    await resolvable(target.host);
    // Load what the options need before anything starts: a bad soundFile is a 400, not a half-made push.
    if (req.action === 'mute') cp.mute(await this.silentFrame());
    if (req.action === 'sound_on') cp.playSound(req.soundFile, (await this.soundClip(req.soundFile)).frames, req.loop);
    if (call.ending) throw new ApiError(404, `call ${call.req.callId} has ended`, 'streamName');
    this.addPush(call, cp);
    if (call.media) void this.attachPush(call, call.media, cp);
    this.changes.emit('changed', call);
    return cp.view();
  }

  pushFind(filter: { streamName?: string; rtmpUrl?: string }): PushView[] {
    const out: PushView[] = [];
    for (const cp of this.pushes.values()) {
      if (filter.streamName && cp.streamName !== filter.streamName) continue;
      if (filter.rtmpUrl && cp.rawUrl !== filter.rtmpUrl) continue;
      out.push(cp.view());
    }
    return out;
  }

  async pushTerminate(id: string): Promise<void> {
    const cp = this.pushById(id);
    this.pushes.delete(id);
    const call = this.calls.get(cp.callId);
    if (call) {
      const i = call.pushes.indexOf(cp);
      if (i >= 0) call.pushes.splice(i, 1);
      if (cp.primary && !call.ending) call.setStreamStatus('UNPUBLISHED', 'push terminated');
    }
    await cp.push?.close();
    this.changes.emit('pushClosed', cp);
    if (call) this.changes.emit('changed', call);
  }

  async pushMute(id: string, on: boolean): Promise<void> {
    const cp = this.pushById(id);
    if (on) cp.mute(await this.silentFrame());
    else cp.unmute();
    this.pushChanged(cp);
  }

  async pushSound(id: string, soundFile: string, loop: boolean): Promise<void> {
    const cp = this.pushById(id);
    cp.playSound(soundFile, (await this.soundClip(soundFile)).frames, loop);
    this.pushChanged(cp);
  }

  pushSoundOff(id: string): void {
    const cp = this.pushById(id);
    cp.stopSound();
    this.pushChanged(cp);
  }

  private pushChanged(cp: CallPush): void {
    const call = this.calls.get(cp.callId);
    if (call) this.changes.emit('changed', call);
  }

  private pushById(id: string): CallPush {
    const cp = this.pushes.get(id);
    if (!cp) throw new ApiError(404, `no push with mediaSessionId ${id}`, 'mediaSessionId');
    return cp;
  }

  private liveCallByStream(streamName: string): Call {
    for (const c of this.calls.values()) {
      if (!c.final && (c.req.toStream || c.req.rtmpStream) === streamName) return c;
    }
    throw new ApiError(404, `no active call with stream ${streamName} (the toStream of /call/startup)`, 'streamName');
  }

  private get aacFormat(): AacClipFormat {
    const m = this.d.config.media;
    return { sampleRate: m.aacSampleRate, channels: m.aacChannels, bitrate: m.aacBitrate };
  }

  private async silentFrame(): Promise<Buffer> {
    if (!this.d.sounds) throw new ApiError(501, 'muting needs the sound library (not configured)');
    return this.d.sounds.silence(this.aacFormat);
  }

  private async soundClip(name: string): Promise<AacClip> {
    if (!this.d.sounds) throw new ApiError(501, 'sounds are not configured');
    try {
      return await this.d.sounds.clip(name, this.aacFormat);
    } catch (err) {
      throw soundApiError(err, 'soundFile');
    }
  }

  /** The one way a call ends: final status first (so clients see why), then release everything. */
  private async end(call: Call, o: Outcome): Promise<void> {
    const first = call.finish(o);
    // The stream gets the call's last moments before it is unpublished.
    if (first && call.media && call.pushes.some((cp) => cp.push?.state === 'PUBLISHING')) await call.media.drain().catch(() => {});
    if (call.streamStatus === 'PUBLISHING' || call.streamStatus === 'CONNECTING') call.setStreamStatus('UNPUBLISHED');
    const failures = await call.resources.dispose();
    this.byChannel.delete(call.channelId);
    this.byChannel.delete(call.legChannelId);
    for (const f of failures) this.d.log.warn({ callId: call.req.callId, step: f.name, err: String((f.error as Error)?.message ?? f.error) }, 'release step failed');
    if (!first) return;
    call.emit('ended', { call });
    this.changes.emit('released', call);
    const ttl = this.d.config.calls.endedTtlSec * 1000;
    const timer = setTimeout(() => {
      this.ttlTimers.delete(timer);
      if (this.calls.get(call.req.callId) === call) {
        this.calls.delete(call.req.callId);
        this.changes.emit('removed', call);
      }
    }, ttl);
    timer.unref();
    this.ttlTimers.add(timer);
  }
}

/** RTP arrives from the relay when there is one (RTCP toward Asterisk still goes to the offer's port + 1). */
function viaRelay(source: { address: string; port: number }, relay: MediaRelay | undefined): { address: string; port: number } {
  return relay ? { address: '127.0.0.1', port: relay.sourcePort } : source;
}

/** A failure that already knows how it should be reported. */
export class CallFailure extends Error {
  constructor(readonly outcome: Outcome) {
    super(outcome.info);
  }
}

/** What a RegistrationStatusEvent says about the account (never its password). */
function registration(call: Call): Record<string, unknown> {
  const r = call.req;
  return { callId: r.callId, sipLogin: r.sipLogin, sipDomain: r.sipDomain, appKey: r.appKey };
}

/** 400 for a host name that does not resolve (WCS: "bad or unresolvable rtmpUrl"). */
async function resolvable(host: string): Promise<void> {
  if (isIP(host)) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([lookup(host), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('DNS timeout')), 3000)))]);
  } catch (err) {
    throw new ApiError(400, `rtmpUrl host ${host} does not resolve (${(err as Error).message})`, 'rtmpUrl');
  } finally {
    clearTimeout(timer);
  }
}

/** A sound the library refused (SoundError: invalid, outside the directory, missing) is the client's 400. */
function soundApiError(err: unknown, field: string): Error {
  if (err instanceof Error && err.name === 'SoundError') return new ApiError(400, err.message, field);
  return new ApiError(422, `${field} could not be decoded: ${(err as Error).message}`, field);
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

function failure(err: unknown): Outcome {
  if (err instanceof CallFailure) return err.outcome;
  const msg = err instanceof Error ? err.message : String(err);
  return { status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: null, info: msg };
}
