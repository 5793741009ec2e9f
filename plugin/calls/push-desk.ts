/**
 * The /push API (WCS "SIP as RTMP" variant 4): a call's outputs. The primary one comes from
 * /call/startup's rtmpUrl; /push/startup adds more. Each output is one Push (media/output/push.ts) on the
 * call's one encoded stream, with its own state, reconnects, mute and sound.
 */
import { monotonicNow } from '../lib/clock.js';
import { hostAllowed } from '../lib/host-list.js';
import type { CallMedia } from '../media/call-media.js';
import { Push, RECONNECT } from '../media/output/push.js';
import { describeRtmpError, type OutputSink } from '../media/output/sink.js';
import type { OutputTarget } from '../media/output/target.js';
import type { AacClip, AacClipFormat, SoundSource } from '../media/ports.js';
import type { Call } from './call.js';
import type { CallContext } from './context.js';
import { ConflictError, InvalidError, NotFoundError, RateLimitedError, UnavailableError, UndecodableError, UnsupportedError } from './errors.js';
import { CallPush, type PushView } from './pushes.js';
import { streamNameIsKey, type StartupRequest } from './types.js';
import type { OutboundTargets } from './targets.js';
import type { PushStartupRequest } from './validate.js';

export interface PushDeskDeps {
  /** A sink for one connection to the target (adapters/: RTMP today). */
  openOutput: (target: OutputTarget) => OutputSink;
  /** Sound files (push mute/sound_on). */
  sounds?: SoundSource;
  /** An output left a live call (terminated, or an old FAILED one dropped): observers retire its counters. */
  pushClosed?: (cp: CallPush) => void;
  /** Where an output may go (targets.ts): checked before a push starts; without it, anywhere. */
  targets?: OutboundTargets;
}

/**
 * Ended (FAILED) outputs a call keeps listed for /push/find, newest first: a client polling after a failure
 * still sees why, while a client retrying a bad URL all day doesn't pile them up until the call ends.
 */
export const KEPT_ENDED_PUSHES = 5;

export class PushDesk {
  /** Every call's outputs by mediaSessionId. */
  private readonly pushes = new Map<string, CallPush>();
  /** Each held output's release step in its call's Disposer, dropped when the output goes before the call. */
  private readonly releases = new WeakMap<CallPush, () => void>();

  constructor(private readonly ctx: CallContext, private readonly d: PushDeskDeps) {}

  /** The primary output a /call/startup (or inbound call) asks for, checked: 400 not allowed, 409 in use. */
  primaryFor(req: StartupRequest): CallPush | undefined {
    if (!req.target) return undefined;
    const name = req.toStream || req.rtmpStream;
    const cp = new CallPush(req.callId, name, req.rtmpUrl, req.target, {}, true, req.rtmpTransponderFullUrl ? name : this.prefix + req.rtmpStream, streamNameIsKey(req));
    this.checkDestination(cp.target, 'rtmpStream');
    this.checkOutputs();
    return cp;
  }

  /** The call holds it from now on: released (closed) when the call ends, or when it goes before (remove()). */
  add(call: Call, cp: CallPush): void {
    call.pushes.push(cp);
    this.pushes.set(cp.id, cp);
    this.releases.set(cp, call.resources.add(`push ${cp.id}`, async () => {
      this.pushes.delete(cp.id);
      await cp.push?.close();
    }));
  }

  /** An output goes before its call ends: unlisted, its release step dropped, its connection closed. */
  private async remove(cp: CallPush, call: Call | undefined): Promise<void> {
    this.pushes.delete(cp.id);
    this.releases.get(cp)?.();
    this.releases.delete(cp);
    if (call) {
      const i = call.pushes.indexOf(cp);
      if (i >= 0) call.pushes.splice(i, 1);
    }
    await cp.push?.close();
  }

  /** Keep only the newest KEPT_ENDED_PUSHES ended outputs of a live call; older ones are released. */
  private pruneEnded(call: Call): void {
    const ended = call.pushes.filter((cp) => !cp.live);
    for (const cp of ended.slice(0, Math.max(0, ended.length - KEPT_ENDED_PUSHES))) {
      void this.remove(cp, call);
      this.d.pushClosed?.(cp);
    }
  }

  /**
   * MAX_OUTPUTS across all calls (503, like MAX_CALLS: capacity) and MAX_PUSHES_PER_CALL (429, like the feed's
   * and preview's listener caps: too many of one thing). Ended outputs hold no connection and don't count.
   */
  private checkOutputs(call?: Call): void {
    const c = this.ctx.config.calls;
    if (call) {
      const mine = call.pushes.filter((cp) => cp.live).length;
      if (mine >= c.maxPushesPerCall) {
        throw new RateLimitedError(`call ${call.req.callId} already has ${mine} live outputs (MAX_PUSHES_PER_CALL=${c.maxPushesPerCall}); terminate one first`, undefined, 'streamName');
      }
    }
    let all = 0;
    for (const cp of this.pushes.values()) if (cp.live) all++;
    if (all >= c.maxOutputs) throw new UnavailableError(`at capacity (${all} live outputs, MAX_OUTPUTS=${c.maxOutputs})`);
  }

  /** Start publishing one output of the call. The primary one's refusal fails the call; others just show FAILED. */
  async attach(call: Call, media: CallMedia, cp: CallPush): Promise<void> {
    const r = this.ctx.config.rtmp;
    const push = new Push(media.stream, () => this.d.openOutput(cp.target), {
      reconnect: { ...RECONNECT, initialMs: Math.max(100, r.reconnectMaxMs / 4), maxMs: r.reconnectMaxMs },
      maxReconnectAttempts: r.reconnectAttempts,
    });
    cp.attach(push);
    const log = { callId: call.req.callId, mediaSessionId: cp.id, rtmpUrl: cp.target.display };
    if (cp.primary) call.setStreamStatus('CONNECTING', call.safeRtmpUrl);
    // First, so that observers told of this failure (below) see the list already pruned.
    push.on('state', ({ state }) => {
      if (state === 'FAILED' && !call.ending) this.pruneEnded(call);
    });
    push.on('state', ({ state, reason }) => {
      this.ctx.log.info({ ...log, state, reason }, 'push state');
      // A platform's session starts at the first publish (changed() then re-reads the call's limits).
      if (state === 'PUBLISHING') cp.publishedAtMs ??= monotonicNow();
      this.ctx.changed(call);
      this.ctx.hook('StreamStatusEvent', { ...cp.view(), stats: undefined, appKey: call.req.appKey });
      if (!cp.primary || call.ending) return;
      if (state === 'PUBLISHING' || state === 'RECONNECTING') call.setStreamStatus(state, reason);
      else if (state === 'FAILED') {
        call.setStreamStatus('FAILED', reason);
        // RTMP_FAILURE_ACTION: WCS hangs up (FAILED_BY_RTMP_WRITER_ERROR); "continue" keeps the call for a new /push/startup.
        if (r.failureAction === 'hangup') {
          void this.ctx.end(call, { status: 'FAILED', reason: 'FAILED_BY_RTMP_WRITER_ERROR', sipStatus: call.sipStatus, info: `RTMP: ${reason ?? 'publish failed'}` });
        }
      }
    });

    try {
      await push.start();
    } catch (err) {
      // The 'state' listener has reported it (and, for the primary, ended the call with the server's reason).
      this.ctx.log.warn({ ...log, err: describeRtmpError(err as Error) }, 'rtmp publish failed');
    }
  }

  /** The media is up: the outputs asked for before the answer start now, the primary first. */
  async attachAll(call: Call, media: CallMedia): Promise<void> {
    await Promise.all(call.pushes.map((cp) => this.attach(call, media, cp)));
  }

  /** /push/startup: publish a call's stream (by its toStream name) to one more destination. */
  async startup(req: PushStartupRequest): Promise<PushView> {
    const call = this.liveCallByStream(req.streamName);
    const options = { ...(req.action ? { action: req.action } : {}), ...(req.soundFile ? { soundFile: req.soundFile } : {}) };
    const name = call.req.toStream || call.req.rtmpStream;
    const cp = new CallPush(call.req.callId, name, req.rtmpUrl, req.target, options, false, req.rtmpTransponderFullUrl ? name : this.prefix + name, streamNameIsKey(call.req));
    this.checkDestination(cp.target, 'rtmpUrl');
    this.checkOutputs(call);
    await this.checkTarget(cp.target);
    // Load what the options need before anything starts: a bad soundFile is a 400, not a half-made push.
    if (req.action === 'mute') cp.mute(await this.silentFrame());
    if (req.action === 'sound_on') cp.playSound(req.soundFile, (await this.soundClip(req.soundFile)).frames, req.loop);
    if (call.ending) throw new NotFoundError(`call ${call.req.callId} has ended`, 'streamName');
    // Again: other startups may have been accepted while this one was resolving its host.
    this.checkOutputs(call);
    this.add(call, cp);
    if (call.media) void this.attach(call, call.media, cp);
    this.ctx.changed(call);
    return cp.view();
  }

  find(filter: { streamName?: string; rtmpUrl?: string }): PushView[] {
    const out: PushView[] = [];
    for (const cp of this.pushes.values()) {
      if (filter.streamName && !cp.isNamed(filter.streamName)) continue;
      if (filter.rtmpUrl && cp.rawUrl !== filter.rtmpUrl) continue;
      out.push(cp.view());
    }
    return out;
  }

  /** /push/terminate: close one output; the call goes on. Returns the push and its call (if still listed). */
  async terminate(id: string): Promise<{ cp: CallPush; call: Call | undefined }> {
    const cp = this.byId(id);
    const call = this.ctx.get(cp.callId);
    if (call && cp.primary && !call.ending) call.setStreamStatus('UNPUBLISHED', 'push terminated');
    await this.remove(cp, call);
    return { cp, call };
  }

  async mute(id: string, on: boolean): Promise<void> {
    const cp = this.byId(id);
    if (on) cp.mute(await this.silentFrame());
    else cp.unmute();
    this.changed(cp);
  }

  async sound(id: string, soundFile: string, loop: boolean): Promise<void> {
    const cp = this.byId(id);
    cp.playSound(soundFile, (await this.soundClip(soundFile)).frames, loop);
    this.changed(cp);
  }

  /** Observers re-read the push's call. */
  private changed(cp: CallPush): void {
    const call = this.ctx.get(cp.callId);
    if (call) this.ctx.changed(call);
  }

  soundOff(id: string): void {
    const cp = this.byId(id);
    cp.stopSound();
    this.changed(cp);
  }


  /** A push by mediaSessionId, if there is one. */
  lookup(id: string): CallPush | undefined {
    return this.pushes.get(id);
  }

  byId(id: string): CallPush {
    const cp = this.pushes.get(id);
    if (!cp) throw new NotFoundError(`no push with mediaSessionId ${id}`, 'mediaSessionId');
    return cp;
  }

  /**
   * May an output go there? Only to RTMP_ALLOWED_HOSTS when set (a stolen token can't restream elsewhere),
   * and not where a live output already publishes (one stream per destination). The conflict names the
   * call and push, never the stream name: it is often another call's stream key.
   */
  private checkDestination(target: OutputTarget, field: string): void {
    if (!hostAllowed(target.host, this.ctx.config.rtmp.allowedHosts)) {
      throw new InvalidError(`rtmpUrl host ${target.host} is not allowed (RTMP_ALLOWED_HOSTS)`, 'rtmpUrl');
    }
    for (const cp of this.pushes.values()) {
      if (cp.target.key === target.key && cp.live) {
        throw new ConflictError(`call ${cp.callId} already publishes to this destination (mediaSessionId ${cp.id})`, field);
      }
    }
  }

  private get prefix(): string {
    return this.ctx.config.calls.streamPrefix;
  }

  private liveCallByStream(streamName: string): Call {
    const call = liveCallByStream(this.ctx, streamName);
    if (!call) throw new NotFoundError(`no active call with stream ${streamName} (the toStream of /call/startup)`, 'streamName');
    return call;
  }

  /**
   * An output's host: resolvable (WCS: "bad or unresolvable rtmpUrl"), never link-local or cloud metadata,
   * never this server's own ports. A 400 naming rtmpUrl.
   */
  checkTarget(target: OutputTarget): Promise<void> {
    return this.d.targets?.checkOutput('rtmpUrl', target.host, target.port) ?? Promise.resolve();
  }

  private get aacFormat(): AacClipFormat {
    const m = this.ctx.config.media;
    return { sampleRate: m.aacSampleRate, channels: m.aacChannels, bitrate: m.aacBitrate };
  }

  private async silentFrame(): Promise<Buffer> {
    if (!this.d.sounds) throw new UnsupportedError('muting needs the sound library (not configured)');
    return this.d.sounds.silence(this.aacFormat);
  }

  private async soundClip(name: string): Promise<AacClip> {
    if (!this.d.sounds) throw new UnsupportedError('sounds are not configured');
    try {
      return await this.d.sounds.clip(name, this.aacFormat);
    } catch (err) {
      throw soundError(err, 'soundFile');
    }
  }
}

/** A sound the library refused (SoundError: invalid, outside the directory, missing) is the client's mistake. */
/** A live call by its stream name, or by WCS's transponder name for it (RTMP_STREAM_PREFIX + the name). */
export function liveCallByStream(ctx: CallContext, streamName: string): Call | undefined {
  const prefix = ctx.config.calls.streamPrefix;
  const bare = prefix && streamName.startsWith(prefix) ? streamName.slice(prefix.length) : undefined;
  for (const name of bare !== undefined ? [streamName, bare] : [streamName]) {
    for (const c of ctx.calls()) {
      if (!c.final && (c.req.toStream || c.req.rtmpStream) === name) return c;
    }
  }
  return undefined;
}

export function soundError(err: unknown, field: string): Error {
  if (err instanceof Error && err.name === 'SoundError') return new InvalidError(err.message, field);
  return new UndecodableError(`${field} could not be decoded: ${(err as Error).message}`, field);
}
