/**
 * A call's media, once it is answered: the media leg (Asterisk dials our UAS, we answer with our RTP
 * ports, both channels share a 2-party bridge), then the pipeline (media/call-media.ts) on those ports.
 * Everything taken is registered on the call, so its end releases it.
 */
import { parseSize } from '../config.js';
import { monotonicNow } from '../lib/clock.js';
import { CallMedia } from '../media/call-media.js';
import type { AudioEncoderFactory, RtpPortSource, RtpSocketPair, VideoTranscoderFactory } from '../media/ports.js';
import type { MediaTicker } from '../media/timeline/ticker.js';
import type { FillLibrary } from '../media/timeline/fill-library.js';
import type { Size } from '../media/timeline/video-output.js';
import { answerLegOffer, type LegMedia } from '../sip/negotiate.js';
import type { CodecPreference, SdpSession } from '../sip/sdp.js';
import type { Call } from './call.js';
import { CallFailure, type CallContext } from './context.js';
import type { InviteAnswer, MediaLegServer } from './ports.js';

export interface MediaSetupDeps {
  uas: MediaLegServer;
  ports: RtpPortSource;
  encoderFactory: AudioEncoderFactory;
  /** The shared output clock (one timer for all calls). */
  ticker: MediaTicker;
  /** The fill video (slate or black) while the caller sends none; without it, only the caller's video. */
  fills?: FillLibrary;
  /** The transcode path for callers whose keyframes or size don't meet the rules. */
  transcoder?: VideoTranscoderFactory;
  /**
   * A relay put between Asterisk and the app's RTP port (tests impair the media leg with it): the SDP
   * answer names the relay's port, and RTP is expected from the relay's sending port.
   */
  mediaRelay?: (kind: 'audio' | 'video', appPort: number) => Promise<MediaRelay>;
  /** Every stream's timestamps start here (ms). Tests cross RTMP's 24-bit limit without a 4.7 h call. */
  streamTimeOriginMs?: number;
}

export interface MediaRelay {
  /** Where Asterisk should send. */
  port: number;
  /** Where the relay sends to the app from. */
  sourcePort: number;
  close(): Promise<void>;
}

/** How long the media leg may take to answer. */
const LEG_ANSWER_MS = 10_000;

export class MediaSetup {
  /** Media legs being dialled, by channel id: their answer settles the wait. */
  private readonly legWaiters = new Map<string, () => void>();

  constructor(private readonly ctx: CallContext, private readonly d: MediaSetupDeps) {}

  /** While the call rings: its slate at the default size (an ffmpeg run), so its video starts with its own name. */
  prepare(call: Call): void {
    const fills = this.d.fills;
    if (!fills || fills.kind !== 'slate') return;
    const { width, height } = parseSize(this.ctx.config.media.generatedVideoSize);
    fills.prepare(width, height, slateName(call));
  }

  /** The PBX says this media leg answered. */
  legAnswered(channelId: string): void {
    this.legWaiters.get(channelId)?.();
  }

  /** Media leg, RTP, encoder: the call's pipeline, running (undefined if the call ended meanwhile). */
  async start(call: Call): Promise<CallMedia | undefined> {
    const { config } = this.ctx;
    const sockets = await this.d.ports.allocate();
    call.resources.add('rtp ports', () => sockets.release());
    const videoSockets = call.req.hasVideo ? await this.d.ports.allocate() : undefined;
    if (videoSockets) call.resources.add('video rtp ports', () => videoSockets.release());
    const audioRelay = await this.relay(call, 'audio', sockets.rtpPort);
    const videoRelay = videoSockets ? await this.relay(call, 'video', videoSockets.rtpPort) : undefined;
    if (call.ending) return undefined;

    const negotiated = await this.dialLeg(call, {
      audioPort: audioRelay?.port ?? sockets.rtpPort,
      ...(videoSockets ? { videoPort: videoRelay?.port ?? videoSockets.rtpPort } : {}),
    });
    if (call.ending) return undefined;
    await this.ctx.pbx.addToBridge(call.bridgeId, [call.channelId, call.legChannelId]);
    if (!negotiated) throw new CallFailure({ status: 'FAILED', reason: 'NO_COMMON_CODECS', sipStatus: call.sipStatus, info: 'media leg offered no usable audio codec' });
    call.note('MEDIA_LEG_UP', `${negotiated.audio.encoding}/${negotiated.audio.clockRate}${negotiated.video ? ' + H264' : ''}`);

    const feedCaller = await this.wantsGeneratedMedia(call);
    const video = await this.videoTrack(call, negotiated, videoSockets, videoRelay, feedCaller);
    const { ticker } = this.d;
    const media = new CallMedia(sockets, {
      audio: negotiated.audio,
      feedCaller,
      ...(negotiated.dtmf ? { dtmfPayloadType: negotiated.dtmf.payloadType } : {}),
      ...(this.ctx.pbx.dtmfOnLeg ? { onDtmf: (digit: string) => this.ctx.dtmf(call, digit, 'leg') } : {}),
      expectedSource: viaRelay(negotiated.source, audioRelay),
      jitterDepthMs: config.media.jitterDepthMs,
      ticker,
      // Time zero on the ticker's grid: each AAC frame then completes exactly on a tick (ticker.ts).
      startMs: ticker.alignUp(call.answeredAtMs ?? monotonicNow()),
      ...(video ? { video } : {}),
      publishAudio: call.req.hasAudio,
      ...(this.d.streamTimeOriginMs ? { timeOriginMs: this.d.streamTimeOriginMs } : {}),
      encoder: { factory: this.d.encoderFactory, outputRate: config.media.aacSampleRate, channels: config.media.aacChannels, bitrate: config.media.aacBitrate },
    });
    call.setMedia(media);
    call.resources.add('media pipeline', () => media.close());
    media.start((err) => void this.ctx.end(call, { status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: call.sipStatus, info: `audio encoder failed: ${err.message}` }));
    return media;
  }

  /**
   * The stream's video track: every call gets one (YouTube and Facebook refuse audio-only streams) unless
   * VIDEO_FILL=none and the caller sends no video. hasVideo=false keeps its WCS meaning: the caller's
   * video is not taken (no video on the leg), and the stream shows the fill.
   */
  private async videoTrack(call: Call, negotiated: LegMedia, sockets: RtpSocketPair | undefined, relay: MediaRelay | undefined, feedCaller: boolean) {
    const { config } = this.ctx;
    const fills = this.d.fills;
    const caller = negotiated.video && sockets ? callerVideo(negotiated.video, sockets, relay) : undefined;
    if (!caller && (!fills || fills.kind === 'none')) return undefined;
    const { width, height } = parseSize(config.media.generatedVideoSize);
    const name = slateName(call);
    // Toward the phone (generate_av_for_ua): black, at the default size; its own picture, not the stream's.
    const toCaller = feedCaller && caller && fills ? await fills.get(width, height, '', 'black') : undefined;
    return {
      ...(caller ? { caller } : {}),
      ...(toCaller ? { toCaller } : {}),
      output: {
        idleMs: config.media.videoIdleMs,
        defaultSize: { width, height },
        // The caller's size, when its first SPS comes in time: no scaling, the phone's own picture.
        sizeWaitMs: caller ? config.media.videoSizeWaitMs : 0,
        ...(fills ? { fill: (size: Size) => fills.offer(size.width, size.height, name) } : {}),
        keyframeIntervalMs: config.media.maxKeyframeIntervalMs,
        transcode: config.media.videoTranscode,
        ...(this.d.transcoder ? { transcoder: this.d.transcoder } : {}),
        onEvent: (event: string, detail: string) => call.note(`VIDEO_${event}`, detail),
      },
    };
  }

  /**
   * Bridge, then have the PBX dial our UAS and wait for the leg's answer. Our SDP answer names our ports;
   * a re-INVITE (hold, codec change) gets a fresh answer, while the pipeline keeps the first codec.
   */
  private async dialLeg(call: Call, ports: { audioPort: number; videoPort?: number }): Promise<LegMedia | undefined> {
    const { pbx } = this.ctx;
    let negotiated: LegMedia | undefined;
    let version = 0;
    const codecs = await this.legCodecs(call);
    const forget = this.d.uas.expect(call.legToken, (offer: SdpSession): InviteAnswer => {
      const a = answerLegOffer(offer, { audioPrefs: codecs, ...ports, address: '127.0.0.1', sessionId: call.sdpSessionId, version: ++version });
      if (!('sdp' in a)) return a;
      negotiated ??= a.media;
      return { sdp: a.sdp };
    });
    call.resources.add('media leg registration', forget);

    await pbx.createBridge(call.bridgeId);
    call.resources.add('bridge', () => pbx.destroyBridge(call.bridgeId));
    const legUp = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CallFailure({ status: 'FAILED', reason: 'FAILED_BY_SESSION_CREATION', sipStatus: call.sipStatus, info: `media leg did not answer within ${LEG_ANSWER_MS / 1000} s` })), LEG_ANSWER_MS);
      this.legWaiters.set(call.legChannelId, () => {
        clearTimeout(timer);
        resolve();
      });
      call.resources.add('leg waiter', () => {
        clearTimeout(timer);
        this.legWaiters.delete(call.legChannelId);
        // The call ended first: settle the wait, whoever is still on it.
        reject(new CallFailure({ status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: call.sipStatus, info: 'the call ended before its media leg answered' }));
      });
    });
    // Not awaited if dialling the leg throws first: no unhandled rejection then.
    legUp.catch(() => {});
    this.ctx.watchChannel(call.legChannelId, call, true);
    call.resources.add('media leg channel', () => pbx.hangup(call.legChannelId));
    await pbx.dialMediaLeg({ channelId: call.legChannelId, uri: this.d.uas.uriFor(call.legToken), codecs, video: call.req.hasVideo });
    await legUp;
    return negotiated;
  }

  /**
   * The media leg's codecs: ours (MEDIA_LEG_CODECS), with the callee's own codec first when it is one of
   * them: no transcoding in Asterisk, a quarter of slin16's bytes for us, and nothing lost (a ulaw call
   * carries no more than ulaw). A wideband callee (G.722, Opus) still gets slin16. Measured at 50 calls:
   * Asterisk's share is the same either way (0.16 CPU-s per call-minute: with dtmf_events its bridge
   * handles every frame anyway); the app's went from 0.23 to 0.21.
   */
  private async legCodecs(call: Call): Promise<CodecPreference[]> {
    const list = this.ctx.config.media.legCodecs;
    const native = await this.ctx.pbx.nativeAudioCodec?.(call.channelId).catch(() => undefined);
    const same = (c: CodecPreference) => !!native && c.encoding.toUpperCase() === native.encoding.toUpperCase() && c.clockRate === native.clockRate;
    const first = list.find(same);
    return first ? [first, ...list.filter((c) => c !== first)] : list;
  }

  /** WCS generate_av_for_ua: does this callee get silence and black video from us? */
  private async wantsGeneratedMedia(call: Call): Promise<boolean> {
    const list = this.ctx.config.media.generateAvForUa;
    if (list.length === 0) return false;
    const ua = await this.ctx.pbx.remoteUserAgent?.(call.channelId).catch(() => undefined);
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
}

/** The slate shows the call's visible name, else whom it called. */
const slateName = (call: Call) => call.req.visibleName || call.req.callee;

/** The caller's video as the pipeline takes it: our sockets, its payload type, where it comes from. */
function callerVideo(v: NonNullable<LegMedia['video']>, sockets: RtpSocketPair, relay: MediaRelay | undefined) {
  return {
    sockets, payloadType: v.format.payloadType,
    source: viaRelay(v.source, relay),
    // Asterisk's RTCP port for the stream: its RTP port + 1 (no rtcp-mux on the leg).
    rtcpTarget: { address: v.source.address, port: v.source.port + 1 },
  };
}

/** RTP arrives from the relay when there is one (RTCP toward Asterisk still goes to the offer's port + 1). */
function viaRelay(source: { address: string; port: number }, relay: MediaRelay | undefined): { address: string; port: number } {
  return relay ? { address: '127.0.0.1', port: relay.sourcePort } : source;
}
