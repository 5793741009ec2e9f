/**
 * What a client does to an answered call: DTMF toward the SIP party, a sound into the call, hold and
 * unhold. All go through the media leg or the PBX; none touches the call's outputs.
 */
import type { CallMedia } from '../media/call-media.js';
import type { InjectedStreamFactory, InjectedStreamOptions, SoundSource } from '../media/ports.js';
import { maskSecret, redactUrl } from '../lib/redact.js';
import type { Call } from './call.js';
import { delay, type CallContext } from './context.js';
import { ConflictError, InvalidError, NotFoundError, UnavailableError, UnsupportedError } from './errors.js';
import { liveCallByStream, soundError } from './push-desk.js';
import { streamNameIsKey } from './types.js';
import type { OutboundTargets } from './targets.js';

/** Each digit's tone plus the gap after it, as sent (pbx.sendDtmf: 120 + 80 ms; the same on the leg). */
const DTMF_DIGIT_MS = 200;
const DTMF_TONE_MS = 120;
/** Margin after the last digit, before the next DTMF request of the same call (ms). */
const DTMF_SETTLE_MS = 300;
/** How long a request right after the answer waits for the media to come up. */
const MEDIA_WAIT_MS = 5000;

export class CallControls {
  constructor(
    private readonly ctx: CallContext,
    private readonly d: { sounds?: SoundSource | undefined; injector?: InjectedStreamFactory | undefined; targets?: OutboundTargets | undefined },
  ) {}

  /** /call/send_dtmf: digits toward the SIP party, one request at a time per call. */
  async sendDtmf(callId: string, digits: string, mode: 'rfc4733' | 'info'): Promise<void> {
    const call = this.answeredCall(callId);
    const { pbx } = this.ctx;
    if (!pbx.sendDtmf) throw new UnsupportedError('this PBX adapter cannot send DTMF');
    const send = call.serial(async () => {
      // Right after the answer the media leg may not be up yet: wait for it (measured: a digit sent before
      // it began but never ended).
      const media = await this.mediaOf(call);
      if (mode === 'rfc4733' && pbx.dtmfOnLeg && media.canSendDtmf) {
        await media.sendDtmf(digits, DTMF_TONE_MS, DTMF_DIGIT_MS - DTMF_TONE_MS);
        return;
      }
      // Asterisk ends a digit only as frames pass toward the channel: keep audio flowing meanwhile.
      media.keepAudioToCaller(digits.length * DTMF_DIGIT_MS + 1000);
      await pbx.sendDtmf!(call.channelId, digits, mode);
      // ARI answers once the digits are queued, not sent; switching the mode for a next request before
      // they are out would lose some (measured: the '#' of "12#" never ended when INFO digits followed).
      await delay(digits.length * DTMF_DIGIT_MS + DTMF_SETTLE_MS);
    });
    call.note('DTMF_SENT', `${digits} (${mode === 'info' ? 'INFO' : 'RFC2833'})`);
    await send;
  }

  /**
   * /call/inject_sound: play a sound file into the call, toward the SIP party (through the media leg, so
   * the file only has to be readable here, not on the PBX host). A new sound replaces one playing.
   */
  async injectSound(callId: string, fileName: string): Promise<void> {
    const call = this.answeredCall(callId);
    if (!this.d.sounds) throw new UnsupportedError('sounds are not configured');
    const media = await this.mediaOf(call);
    let pcm: Int16Array;
    try {
      pcm = await this.d.sounds.pcm(fileName, media.legClockRate);
    } catch (err) {
      // WCS: "404 File not found".
      if (err instanceof Error && err.name === 'SoundError' && (err as { reason?: string }).reason === 'missing') throw new NotFoundError(err.message, 'fileName');
      throw soundError(err, 'fileName');
    }
    call.note('SOUND', fileName);
    media.playToCaller(pcm).catch((err: Error) => this.ctx.log.warn({ callId, err: err.message }, 'inject_sound failed'));
  }

  /**
   * /call/inject_stream/startup: another stream toward the SIP party, instead of silence (and, on a video
   * leg, of generated video) until /terminate or its end; the call's own published stream is unchanged.
   * `streamName`: another live call's stream (by its name, as /push takes it), an rtmp(s):// or http(s)://
   * URL, or a file of the sound directory (played once, at its own pace). A new one replaces the last.
   */
  async injectStream(callId: string, streamName: string): Promise<void> {
    const call = this.answeredCall(callId);
    const injector = this.d.injector;
    if (!injector) throw new UnsupportedError('stream injection is not available');
    const media = await this.mediaOf(call);
    let input: InjectedStreamOptions['input'];
    let source: Call | undefined;
    let shown = streamName;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(streamName)) {
      if (!/^(rtmps?|https?):\/\//i.test(streamName)) throw new InvalidError('streamName: a URL must be rtmp://, rtmps://, http:// or https://', 'streamName');
      try {
        new URL(streamName);
      } catch {
        throw new InvalidError('streamName is not a valid URL', 'streamName');
      }
      // ffmpeg fetches it: never from link-local or cloud metadata addresses (checked now, as ffmpeg resolves it).
      await this.d.targets?.checkUrl('streamName', streamName);
      input = { url: streamName, realtime: /^https?:/i.test(streamName) };
      shown = redactUrl(streamName);
    } else if ((source = liveCallByStream(this.ctx, streamName))) {
      // Another call's stream key: the call's history and the log show it masked, as its answers do.
      if (streamNameIsKey(source.req)) shown = maskSecret(streamName);
      if (source === call) throw new InvalidError('streamName is this call\'s own stream (the caller would hear itself)', 'streamName');
      if (!source.media) throw new ConflictError(`the call publishing ${streamName} has no media yet`, 'streamName');
      input = { frames: true };
    } else {
      if (!this.d.sounds) throw new NotFoundError(`no live stream named ${streamName}`, 'streamName');
      let file: string;
      try {
        file = await this.d.sounds.resolve(streamName);
      } catch (err) {
        throw new NotFoundError(`no live stream or sound file named ${streamName} (${(err as Error).message})`, 'streamName');
      }
      input = { url: file, realtime: true };
    }
    if (call.ending) throw new NotFoundError(`no active call with callId ${callId}`, 'callId');

    await call.injection?.stop();
    const src = injector({ input, sampleRate: media.legClockRate, ...(media.injectVideoSize ? { video: media.injectVideoSize } : {}) });
    const sourceMedia = source?.media;
    if (sourceMedia && src.sink) sourceMedia.stream.addSink(src.sink);
    media.injectToCaller(src);
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      if (call.injection === injection) call.injection = undefined;
      if (sourceMedia && src.sink) sourceMedia.stream.removeSink(src.sink);
      media.stopInjecting();
      releaseStep();
      unlinkSource?.();
      await src.close();
      this.ctx.changed(call);
    };
    const injection = { streamName: shown, startedAt: new Date(), stop };
    call.injection = injection;
    const releaseStep = call.resources.add('injected stream', stop);
    // The injected call ending ends the injection (its stream stops).
    const unlinkSource = source?.resources.add(`injected into ${call.req.callId}`, () => {
      if (!stopped) call.note('INJECT_END', `${shown}: that call ended`);
      return stop();
    });
    src.on('end', (err) => {
      if (stopped) return;
      call.note('INJECT_END', err ? `${shown}: ${err.message}` : shown);
      if (err) this.ctx.log.warn({ callId, stream: shown, err: err.message }, 'injected stream failed');
      void stop();
    });
    call.note('INJECT', shown);
    this.ctx.log.info({ callId, stream: shown, kind: source ? 'call' : 'url' in input && /^\w+:\/\//.test(input.url) ? 'url' : 'file' }, 'injecting a stream toward the caller');
    this.ctx.changed(call);
  }

  /** /call/inject_stream/terminate: back to silence (or generated video). Not found if nothing is injected. */
  async stopInjectStream(callId: string): Promise<void> {
    const call = this.ctx.get(callId);
    if (!call || call.final) throw new NotFoundError(`no active call with callId ${callId}`, 'callId');
    if (!call.injection) throw new NotFoundError(`call ${callId} has no injected stream`, 'callId');
    call.note('INJECT_END', `${call.injection.streamName} (terminated)`);
    await call.injection.stop();
  }

  /**
   * /call/hold and /call/unhold (our extension): the far end gets a sendonly re-INVITE (Asterisk's hold
   * with moh_passthrough on the endpoint), the status is HOLD, and the outputs go on with silence and
   * generated video until unhold.
   */
  async hold(callId: string, on: boolean): Promise<void> {
    const call = this.answeredCall(callId);
    const { pbx } = this.ctx;
    if (!pbx.hold) throw new UnsupportedError('this PBX adapter cannot hold calls');
    if ((call.status === 'HOLD') === on) return; // already so
    const media = await this.mediaOf(call);
    await call.serial(() => pbx.hold!(call.channelId, on));
    media.setHeld(on);
    if (on) call.setStatus('HOLD', 'On hold');
    else call.setStatus('ESTABLISHED', 'Resumed');
  }

  /** The call's media pipeline, waiting for it right after the answer (unavailable if not up in 5 s). */
  private async mediaOf(call: Call): Promise<CallMedia> {
    const media = await Promise.race([call.mediaReady, delay(MEDIA_WAIT_MS).then(() => undefined)]);
    if (!media || call.ending) throw new UnavailableError(`call ${call.req.callId}: media not up`, 'callId');
    return media;
  }

  /** A live call that was answered (not found if unknown or ended, a conflict if not answered yet). */
  private answeredCall(callId: string): Call {
    const call = this.ctx.get(callId);
    if (!call || call.final) throw new NotFoundError(`no active call with callId ${callId}`, 'callId');
    if (call.status !== 'ESTABLISHED' && call.status !== 'HOLD') throw new ConflictError(`call ${callId} is not established (status ${call.status})`, 'callId');
    return call;
  }
}
