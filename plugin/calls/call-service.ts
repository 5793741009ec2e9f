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
import type { Config } from '../config.js';
import type { Logger } from '../lib/log.js';
import { CallMedia } from '../media/call-media.js';
import { describeRtmpError, Push, type Publisher } from '../media/push.js';
import { MediaTicker } from '../media/ticker.js';
import type { GeneratedVideo } from '../media/video-output.js';
import { monotonicNow } from '../lib/clock.js';
import { parseRtmpUrl, type RtmpTarget } from '../rtmp/url.js';
import { answerLegOffer, type LegMedia } from '../sip/negotiate.js';
import type { CodecPreference, SdpSession } from '../sip/sdp.js';
import { Call } from './call.js';
import { answeredOutcome, unansweredOutcome, type Outcome } from './causes.js';
import type { AudioEncoderFactory, InviteAnswer, MediaLegServer, Pbx, PbxEvent, RtpPortSource } from './ports.js';
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
}

export interface MediaRelay {
  /** Where Asterisk should send. */
  port: number;
  /** Where the relay sends to the app from. */
  sourcePort: number;
  close(): Promise<void>;
}

const LEG_CODECS: Record<string, CodecPreference> = {
  slin16: { encoding: 'L16', clockRate: 16000 },
  ulaw: { encoding: 'PCMU', clockRate: 8000 },
  alaw: { encoding: 'PCMA', clockRate: 8000 },
};

export class CallService {
  /** Live and recently ended calls, by the client's callId. */
  private readonly calls = new Map<string, Call>();
  /** Live calls by channel id (the call's and its media leg's), for routing PBX events. */
  private readonly byChannel = new Map<string, { call: Call; leg: boolean }>();
  private readonly ttlTimers = new Set<NodeJS.Timeout>();
  private readonly legAnswered = new Map<string, () => void>();
  private readonly ticker: MediaTicker;

  constructor(private readonly d: CallServiceDeps) {
    this.ticker = new MediaTicker(d.config.media.tickMs);
    d.pbx.on('event', (e) => this.onPbxEvent(e));
  }

  get activeCount(): number {
    let n = 0;
    for (const c of this.calls.values()) if (!c.final) n++;
    return n;
  }

  /** Accept a call (throws ApiError 409/503); it then proceeds on its own. */
  startup(req: StartupRequest): Call {
    const existing = this.calls.get(req.callId);
    if (existing) throw new ApiError(409, `callId ${req.callId} already exists (status ${existing.status})`, 'callId');
    let publishKey: string | undefined;
    if (req.rtmpUrl) {
      const t = this.target(req);
      publishKey = `${t.host}:${t.port}/${t.app}/${t.streamName}`;
      for (const c of this.calls.values()) {
        if (!c.final && c.publishKey === publishKey) {
          throw new ApiError(409, `call ${c.req.callId} already publishes to this rtmpUrl and stream`, 'rtmpStream');
        }
      }
    }
    if (!this.d.pbx.connected) throw new ApiError(503, 'Asterisk (ARI) is not connected; try again shortly');
    if (this.activeCount >= this.d.config.calls.maxCalls) throw new ApiError(503, `at capacity (${this.d.config.calls.maxCalls} calls)`);

    const call = new Call(`sar-${randomBytes(5).toString('hex')}`, req);
    call.publishKey = publishKey;
    this.calls.set(req.callId, call);
    call.on('status', ({ status, info }) => this.d.log.info({ callId: req.callId, status, info }, 'call status'));
    void this.run(call).catch((err: unknown) => this.end(call, failure(err)));
    return call;
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

  /** Hang up. Throws ApiError 404 for an unknown or already ended call. */
  terminate(callId: string): void {
    const call = this.calls.get(callId);
    if (!call || call.final) throw new ApiError(404, `no active call with callId ${callId}`, 'callId');
    void this.end(call, call.status === 'ESTABLISHED' || call.status === 'HOLD'
      ? answeredOutcome(true, 16, 'Normal Clearing')
      : { status: 'FINISH', reason: 'NORMAL_CALL_CLEARING', sipStatus: call.sipStatus, info: 'Terminated before answer' });
  }

  /** End every call and stop (shutdown). */
  async close(): Promise<void> {
    for (const t of this.ttlTimers) clearTimeout(t);
    this.ttlTimers.clear();
    await Promise.all([...this.calls.values()].map((c) => this.end(c, { status: 'FINISH', reason: 'NORMAL_CALL_CLEARING', sipStatus: c.sipStatus, info: 'Server shutting down' })));
    this.calls.clear();
  }

  private target(req: StartupRequest): RtmpTarget {
    return req.rtmpTransponderFullUrl
      ? parseRtmpUrl(req.rtmpUrl)
      : parseRtmpUrl(req.rtmpUrl, this.d.config.calls.streamPrefix + req.rtmpStream);
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
          throw new CallFailure({ status: 'FAILED', reason: 'AUTHENTICATION_FAIL', sipStatus: null, info: `Registration failed: ${(err as Error).message}` });
        }
        call.note('REGISTERED');
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
    if (!entry) return;
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
    const prefs = config.media.legCodecs.map((c) => LEG_CODECS[c]!);
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
    const legFormats = [...config.media.legCodecs, ...(call.req.hasVideo ? ['h264'] : [])].join(',');
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
      ...(call.answeredAtMs ? { startMs: call.answeredAtMs } : {}),
      ...(video ? { video } : {}),
      publishAudio: call.req.hasAudio,
      encoder: { factory: this.d.encoderFactory, outputRate: config.media.aacSampleRate, channels: config.media.aacChannels, bitrate: config.media.aacBitrate },
    });
    call.media = media;
    call.resources.add('media pipeline', () => media.close());
    media.start((err) => void this.end(call, { status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: call.sipStatus, info: `audio encoder failed: ${err.message}` }));

    if (call.req.rtmpUrl) await this.startPush(call, media);
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

  private async startPush(call: Call, media: CallMedia): Promise<void> {
    const target = this.target(call.req);
    const push = new Push(media.stream, this.d.publisherFactory(target));
    call.push = push;
    call.resources.add('rtmp push', () => push.close());
    call.setStreamStatus('CONNECTING', call.safeRtmpUrl());
    push.on('state', ({ state, reason }) => {
      if (state === 'PUBLISHING') call.setStreamStatus('PUBLISHING');
      else if (state === 'FAILED' && !call.ending) {
        call.setStreamStatus('FAILED', reason);
        void this.end(call, { status: 'FAILED', reason: 'FAILED_BY_RTMP_WRITER_ERROR', sipStatus: call.sipStatus, info: `RTMP: ${reason ?? 'publish failed'}` });
      }
    });
    try {
      await push.start();
    } catch (err) {
      // The 'state' listener has ended the call with the server's reason.
      this.d.log.warn({ callId: call.req.callId, err: describeRtmpError(err as Error) }, 'rtmp publish failed');
    }
  }

  /** The one way a call ends: final status first (so clients see why), then release everything. */
  private async end(call: Call, o: Outcome): Promise<void> {
    const first = call.finish(o);
    // The stream gets the call's last moments before it is unpublished.
    if (first && call.media && call.push?.state === 'PUBLISHING') await call.media.drain().catch(() => {});
    if (call.streamStatus === 'PUBLISHING' || call.streamStatus === 'CONNECTING') call.setStreamStatus('UNPUBLISHED');
    const failures = await call.resources.dispose();
    this.byChannel.delete(call.channelId);
    this.byChannel.delete(call.legChannelId);
    for (const f of failures) this.d.log.warn({ callId: call.req.callId, step: f.name, err: String((f.error as Error)?.message ?? f.error) }, 'release step failed');
    if (!first) return;
    call.emit('ended', { call });
    const ttl = this.d.config.calls.endedTtlSec * 1000;
    const timer = setTimeout(() => {
      this.ttlTimers.delete(timer);
      if (this.calls.get(call.req.callId) === call) this.calls.delete(call.req.callId);
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

function failure(err: unknown): Outcome {
  if (err instanceof CallFailure) return err.outcome;
  const msg = err instanceof Error ? err.message : String(err);
  return { status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: null, info: msg };
}
