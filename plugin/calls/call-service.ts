/**
 * The call table and each call's life: from a validated /call/startup (or an inbound call the PBX hands
 * over) to the final status.
 *
 *   startup → dialing.ts (account, INVITE) ─ ringing/progress ─► answered → limits.ts (duration, warnings)
 *     → media-setup.ts (media leg, RTP, encoder) → push-desk.ts (outputs)
 *   any ending (callee hangs up, terminate, limit, failure, output refused) → end(): one Disposer releases all.
 *
 * Speaks only to the ports in ports.ts and media/ports.ts; errors are named by meaning (errors.ts), and
 * REST maps them onto HTTP, never the other way.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Config } from '../config.js';
import type { Hooks } from '../hooks/hooks.js';
import { monotonicNow } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { TokenBucket } from '../lib/rate-limit.js';
import type { OutputSink } from '../media/output/sink.js';
import { parseOutputTarget, type OutputTarget } from '../media/output/target.js';
import type { InjectedStreamFactory, SoundSource } from '../media/ports.js';
import { MediaTicker } from '../media/timeline/ticker.js';
import { Call } from './call.js';
import { CallControls } from './call-controls.js';
import { answeredOutcome, unansweredOutcome, type Outcome } from './causes.js';
import { failure, type CallContext } from './context.js';
import { placeCall } from './dialing.js';
import { ConflictError, NotFoundError, RateLimitedError, UnavailableError } from './errors.js';
import { CallLimits, durationLimit } from './limits.js';
import { MediaSetup, type MediaSetupDeps } from './media-setup.js';
import type { Pbx, PbxEvent } from './ports.js';
import { PushDesk } from './push-desk.js';
import type { OutboundTargets } from './targets.js';
import { RecorderDesk } from './recorder-desk.js';
import type { RecordingView } from './recordings.js';
import type { RecordingStore } from '../media/output/recording.js';
import { endSilentCalls, reconcile, releaseLeftovers } from './recovery.js';
import type { CallPush, PushView } from './pushes.js';
import type { CallView, StartupRequest } from './types.js';
import type { ClusterRegistry, Reservation } from '../cluster/registry.js';
import { validateInbound, type PushStartupRequest } from './validate.js';

/**
 * How every call key starts; every PBX object of a call (channels, bridge, account) is named from its key
 * (call.ts), so an object with this prefix that no call here holds was left by an earlier run.
 */
/** Every PBX object a call makes is named from its key (call.ts), which starts with this... */
export const CALL_KEY_PREFIX = 'sar-';
/**
 * ...then a tag of the ARI application, so apps sharing one Asterisk (each has its own ARI_APP) never take
 * each other's channels, bridges or PJSIP objects for leftovers: sar-<4 hex of sha256(ARI_APP)>-.
 */
export function callKeyPrefix(ariApp: string): string {
  return `${CALL_KEY_PREFIX}${createHash('sha256').update(ariApp).digest('hex').slice(0, 4)}-`;
}

export interface CallServiceDeps extends Omit<MediaSetupDeps, 'ticker'> {
  config: Config;
  log: Logger;
  pbx: Pbx;
  /** A sink for one connection to an output's target (adapters/). */
  openOutput: (target: OutputTarget) => OutputSink;
  /** Sound files (push mute/sound_on, inject_sound). */
  sounds?: SoundSource;
  /** Decodes a stream played toward the SIP party (/call/inject_stream); without it, that is unavailable. */
  injector?: InjectedStreamFactory;
  /** WCS REST hooks: call, registration and stream events to the customer's backend. */
  hooks?: Hooks;
  /** Where outputs, injected streams and SIP targets may go (targets.ts); without it, anywhere. */
  targets?: OutboundTargets;
  /** Where recordings are written (adapters/recording/store.ts); without it, recording is unavailable. */
  recordings?: RecordingStore;
  /** Places under the cluster-wide MAX_CALLS and startup rate (cluster/registry.ts); without it, this node's own. */
  registry?: ClusterRegistry;
}

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
  private readonly rtpWatch: NodeJS.Timeout | undefined;
  private readonly startups: TokenBucket;
  private readonly ctx: CallContext;
  private readonly media: MediaSetup;
  /** The output clock every call's media leaves on (its timing is in /metrics). */
  readonly ticker: MediaTicker;
  private readonly desk: PushDesk;
  private readonly recorder: RecorderDesk;
  private readonly controls: CallControls;
  /** Each answered call's limit timer (limits.ts), re-read when its outputs change. */
  private readonly limits = new WeakMap<Call, CallLimits>();
  /** Settles once what an earlier run left in the PBX is released (on the first connection; never rejects). */
  readonly leftoversReleased: Promise<void>;
  private markReleased!: () => void;
  /** After close(): no new calls, and the PBX's events are no longer heard. */
  private closed = false;
  private readonly onEvent = (e: PbxEvent) => this.onPbxEvent(e);

  constructor(private readonly d: CallServiceDeps) {
    const { config, log, pbx } = d;
    this.keyPrefix = callKeyPrefix(config.ari.app);
    this.ctx = {
      config, log, pbx,
      end: (call, o) => this.end(call, o),
      // WCS's nodeId on every event: which server of a fleet sent it. A call ended by fencing was reported
      // by the cluster's reaper already: its own events stay unsent.
      hook: (method, body) => {
        if (typeof body.callId === 'string' && this.unreported.has(body.callId)) return;
        d.hooks?.post(method, { nodeId: config.hooks.nodeId, ...body });
      },
      changed: (call) => {
        this.limits.get(call)?.check(); // an output published or closed: its platform session limit with it
        this.changes.emit('changed', call);
      },
      calls: () => this.calls.values(),
      get: (id) => this.calls.get(id),
      watchChannel: (id, call, leg) => this.byChannel.set(id, { call, leg }),
      dtmf: (call, digit, from) => {
        if (!call.dtmfIn.add(from, digit, monotonicNow())) return;
        call.note('DTMF', digit);
        this.ctx.hook('DtmfEvent', { callId: call.req.callId, dtmf: digit, appKey: call.req.appKey });
      },
    };
    // Default period: one AAC frame (1024 samples), so frames leave as soon as they are complete.
    const ticker = new MediaTicker(config.media.tickMs || (1024 * 1000) / config.media.aacSampleRate);
    this.ticker = ticker;
    this.media = new MediaSetup(this.ctx, { ...d, ticker });
    this.desk = new PushDesk(this.ctx, { ...d, pushClosed: (cp) => this.changes.emit('pushClosed', cp) });
    this.recorder = new RecorderDesk(this.ctx, {
      ...(d.recordings ? { store: d.recordings } : {}),
      pushById: (id) => this.desk.lookup(id),
      downloadBase: `${config.rest.prefix}/recordings/`,
    });
    this.controls = new CallControls(this.ctx, d);
    const rate = config.calls.startupRatePerSec;
    this.startups = new TokenBucket(rate, rate * 2, monotonicNow());
    pbx.on('event', this.onEvent);
    pbx.on('down', ({ reason }) => log.warn({ reason, calls: this.activeCount }, 'lost the connection to Asterisk: new calls get 503 until it is back'));
    this.leftoversReleased = new Promise((r) => (this.markReleased = r));
    const reap = () => releaseLeftovers(this.ctx, this.keyPrefix, (call) => this.releasedCalls.has(call));
    pbx.on('up', ({ reconnect }) => {
      if (!reconnect) void reap().finally(this.markReleased);
      // Back from an outage: calls whose channels went are ended first; then whatever of ours no live call
      // holds (a release that failed while Asterisk was away) is reaped.
      else void reconcile(this.ctx).then(reap, (err: Error) => log.error({ err: err.message }, 'reconciling calls after reconnect failed'));
    });
    const timeoutMs = config.calls.rtpTimeoutSec * 1000;
    if (timeoutMs > 0) this.rtpWatch = setInterval(() => endSilentCalls(this.ctx, timeoutMs), Math.min(1000, timeoutMs / 2)).unref();
  }

  get activeCount(): number {
    let n = 0;
    for (const c of this.calls.values()) if (!c.final) n++;
    return n;
  }

  /**
   * The call's place under the cluster-wide MAX_CALLS (cluster/registry.ts), taken before startup():
   * `placed` when the node that received the request took it for this node already.
   */
  async reserve(req: StartupRequest, placed = false): Promise<void> {
    const reg = this.d.registry;
    if (!reg) return;
    if (placed) {
      if (await reg.owner(req.callId) === reg.nodeId) return;
      throw new UnavailableError('this node no longer holds the place it was given for the call (try again)');
    }
    refuse(await reg.reserve(req.callId), 'callId');
  }

  /** A reserved call that did not start after all: its place and callId are free again. */
  async unreserve(callId: string): Promise<void> {
    if (!this.calls.has(callId)) await this.d.registry?.release(callId, undefined, true).catch(() => {});
  }

  /** Accept a call (conflict, unavailable, rate-limited errors); it then proceeds on its own. */
  startup(req: StartupRequest): Call {
    if (this.closed) throw new UnavailableError('the server is shutting down');
    if (!this.rateTaken.delete(req)) this.rateLimit();
    if (!this.d.pbx.connected) {
      // Client mistakes (conflicts) first, then "try again later".
      this.admit(req);
      throw new UnavailableError('Asterisk (ARI) is not connected; try again shortly');
    }
    const primary = this.admit(req);
    const call = new Call(this.newCallKey(), req);
    this.register(call, primary);
    void placeCall(this.ctx, call).catch((err: unknown) => this.end(call, failure(err)));
    return call;
  }

  /**
   * The checks of a /call/startup that need the network or the PBX (targets.ts): the output's host and the
   * SIP hosts and login. Awaited before startup(), so a refusal is the request's 400, not a failed call.
   */
  async vetStartup(req: StartupRequest, o: { placed?: boolean } = {}): Promise<void> {
    // The rate limit first: a flood must not cost a DNS lookup and PBX queries per request. A request
    // placed here by another node took the cluster's token there.
    if (!o.placed) await this.takeStartup();
    this.rateTaken.add(req);
    const t = this.d.targets;
    if (!t) return;
    await Promise.all([req.target ? this.desk.checkTarget(req.target) : undefined, t.checkSip(req)]);
  }

  /** Requests whose startup already took its STARTUP_RATE_PER_SEC token in vetStartup(). */
  private readonly rateTaken = new WeakSet<StartupRequest>();
  /** Calls whose release steps have all run: what they named in the PBX is gone or theirs to retry no more. */
  private readonly releasedCalls = new WeakSet<Call>();
  /** This app's mark on what it makes in the PBX (callKeyPrefix). */
  readonly keyPrefix: string;
  private newCallKey(): string {
    return `${this.keyPrefix}${randomBytes(4).toString('hex')}`;
  }

  /** STARTUP_RATE_PER_SEC, the whole cluster's when there is one. */
  async takeStartup(): Promise<void> {
    const reg = this.d.registry;
    if (reg?.shared) refuse(await reg.takeStartup(), 'callId');
    else this.rateLimit();
  }

  /** STARTUP_RATE_PER_SEC: a flood of setups is refused before it reaches Asterisk. */
  private rateLimit(): void {
    const r = this.startups.take(monotonicNow());
    if (!r.ok) throw new RateLimitedError(`too many call or push startups (STARTUP_RATE_PER_SEC=${this.d.config.calls.startupRatePerSec}); retry in ${r.retryInMs} ms`, r.retryInMs);
  }

  /** Checks shared by /call/startup and inbound calls: callId and destination free, capacity left. */
  private admit(req: StartupRequest): CallPush | undefined {
    const existing = this.calls.get(req.callId);
    if (existing) throw new ConflictError(`callId ${req.callId} already exists (status ${existing.status})`, 'callId');
    const primary = this.desk.primaryFor(req);
    const cap = this.d.config.cluster.nodeMaxCalls;
    if (this.activeCount >= cap) throw new UnavailableError(`at capacity (${cap} calls${this.d.registry?.shared ? ' on this node' : ''})`);
    return primary;
  }

  private register(call: Call, primary: CallPush | undefined): void {
    if (primary) this.desk.add(call, primary);
    this.calls.set(call.req.callId, call);
    call.maxDurationSec = durationLimit(call.req.maxDuration, this.d.config.calls.maxDurationSec);
    this.media.prepare(call);
    call.on('note', () => this.changes.emit('changed', call));
    const statusEvent = () => this.ctx.hook('CallStatusEvent', { sessionId: call.key, ...call.hookView() });
    call.on('status', ({ status, info }) => {
      this.d.log.info({ callId: call.req.callId, status, info, incoming: call.incoming }, 'call status');
      statusEvent();
    });
    // WCS's first event of a call: TRYING (the INVITE is on its way), before any status change.
    statusEvent();
  }

  /**
   * An inbound call the PBX handed over: answered and relayed like an outbound call once answered. Bad
   * configuration or no capacity: hung up, and logged for the admin.
   */
  private async incoming(e: Extract<PbxEvent, { kind: 'incoming' }>): Promise<void> {
    const { pbx } = this.d;
    let call: Call;
    let fields: Record<string, string> = {};
    let reserved: string | undefined;
    try {
      fields = await e.fields();
      const req = validateInbound(fields, { channelId: e.channelId, caller: e.caller, callerName: e.callerName, exten: e.exten });
      this.admit(req);
      // Its place in the cluster: refused (at the cluster's MAX_CALLS), the caller gets 503 (Kamailio tries the next node).
      await this.reserve(req);
      reserved = req.callId;
      const primary = this.admit(req);
      call = new Call(this.newCallKey(), req, true, e.channelId);
      this.register(call, primary);
    } catch (err) {
      if (reserved) await this.unreserve(reserved);
      this.d.log.warn({ channelId: e.channelId, exten: e.exten, rtmpUrl: shownUrl(fields), err: (err as Error).message }, 'inbound call refused');
      await pbx.hangup(e.channelId, err instanceof UnavailableError ? 'congestion' : 'normal').catch(() => {});
      return;
    }
    this.ctx.watchChannel(call.channelId, call, false);
    call.resources.add('call channel', () => pbx.hangup(call.channelId));
    call.note('INCOMING', `${call.req.sipLogin || 'unknown'} → ${call.req.callee}`);
    try {
      if (!pbx.answer) throw new Error('this PBX adapter cannot answer calls');
      await pbx.answer(call.channelId);
      await this.answered(call, 'Answered (inbound)');
    } catch (err) {
      await this.end(call, failure(err));
    }
  }

  /** The call is answered: its clock starts (the stream's time zero, its limits), then its media and outputs. */
  private async answered(call: Call, info: string): Promise<void> {
    call.answeredAtMs = monotonicNow();
    call.setStatus('ESTABLISHED', info, 200);
    const limits = new CallLimits(this.ctx, call);
    this.limits.set(call, limits);
    call.resources.add('limit timer', () => limits.stop());
    limits.check();
    const media = await this.media.start(call);
    if (!media) return;
    // The recording opens its file while the outputs connect: both from the stream's first seconds.
    const recorded = call.req.record ? this.recorder.startForCall(call) : undefined;
    await this.desk.attachAll(call, media);
    await recorded;
  }

  private onPbxEvent(e: PbxEvent): void {
    const entry = this.byChannel.get(e.channelId);
    if (!entry) {
      if (e.kind === 'incoming') void this.incoming(e);
      return;
    }
    const { call, leg } = entry;
    if (leg) {
      if (e.kind === 'answered') this.media.legAnswered(e.channelId);
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
        void this.answered(call, 'Answered').catch((err: unknown) => this.end(call, failure(err)));
        break;
      case 'hangup': {
        this.byChannel.delete(e.channelId);
        const o = call.establishedAt ? answeredOutcome(false, e.cause, e.causeText) : unansweredOutcome(e.cause, e.causeText, e.sipStatus);
        void this.end(call, o);
        break;
      }
      case 'dtmf':
        this.ctx.dtmf(call, e.digit, 'pbx');
        break;
      case 'hold':
        call.setStatus('HOLD', 'On hold');
        break;
      case 'unhold':
        call.setStatus('ESTABLISHED', 'Resumed');
        break;
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

  /** Hang up (not found for an unknown or already ended call). */
  terminate(callId: string): void {
    const call = this.calls.get(callId);
    if (!call || call.final) throw new NotFoundError(`no active call with callId ${callId}`, 'callId');
    void this.end(call, call.status === 'ESTABLISHED' || call.status === 'HOLD'
      ? answeredOutcome(true, 16, 'Normal Clearing')
      : { status: 'FINISH', reason: 'NORMAL_CALL_CLEARING', sipStatus: call.sipStatus, info: 'Terminated before answer' });
  }

  // ---- what a client does to an answered call (call-controls.ts) ----

  sendDtmf(callId: string, digits: string, mode: 'rfc4733' | 'info'): Promise<void> {
    return this.controls.sendDtmf(callId, digits, mode);
  }

  injectSound(callId: string, fileName: string): Promise<void> {
    return this.controls.injectSound(callId, fileName);
  }

  injectStream(callId: string, streamName: string): Promise<void> {
    return this.controls.injectStream(callId, streamName);
  }

  stopInjectStream(callId: string): Promise<void> {
    return this.controls.stopInjectStream(callId);
  }

  hold(callId: string, on: boolean): Promise<void> {
    return this.controls.hold(callId, on);
  }

  // ---- /push/* (push-desk.ts) ----

  async pushStartup(req: PushStartupRequest): Promise<PushView> {
    this.rateLimit();
    return this.desk.startup(req);
  }

  pushFind(filter: { streamName?: string; rtmpUrl?: string }): PushView[] {
    return this.desk.find(filter);
  }

  async pushTerminate(id: string): Promise<void> {
    const { cp, call } = await this.desk.terminate(id);
    this.changes.emit('pushClosed', cp);
    if (call) this.changes.emit('changed', call);
  }

  pushMute(id: string, on: boolean): Promise<void> {
    return this.desk.mute(id, on);
  }

  pushSound(id: string, soundFile: string, loop: boolean): Promise<void> {
    return this.desk.sound(id, soundFile, loop);
  }

  pushSoundOff(id: string): void {
    this.desk.soundOff(id);
  }

  // ---- /recorder/* (recorder-desk.ts) ----

  recorderStartup(mediaSessionId: string, fileTemplate?: string): Promise<RecordingView> {
    return this.recorder.startup(mediaSessionId, fileTemplate);
  }

  recorderTerminate(id: string): Promise<RecordingView> {
    return this.recorder.terminate(id);
  }

  recorderFindAll(filter: { callId?: string; mediaSessionId?: string } = {}): RecordingView[] {
    return this.recorder.findAll(filter);
  }

  /** A recording's file, for a download (undefined: no such file, or recording is off). */
  async openRecording(fileName: string, range?: string): ReturnType<RecordingStore['read']> {
    return this.d.recordings?.read(fileName, range);
  }

  /** Recordings by state and their totals, for /metrics. */
  recordingStats(): ReturnType<RecorderDesk['stats']> {
    return this.recorder.stats();
  }

  // ---- the end ----

  /**
   * This node lost its cluster lease: another node reported its calls FAILED already, so they end here too,
   * without reporting again (a call is never live on two nodes, nor reported twice).
   */
  async fence(info: string): Promise<void> {
    const live = [...this.calls.values()].filter((c) => !c.final);
    for (const c of live) this.unreported.add(c.req.callId);
    await Promise.all(live.map((c) => this.end(c, { status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: c.sipStatus, info })));
  }

  /** Calls ended by fence(): their events are not sent. */
  private readonly unreported = new Set<string>();

  /** End every call and stop (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    // An inbound call arriving now would be answered by a service that is going away.
    this.d.pbx.off('event', this.onEvent);
    if (this.rtpWatch) clearInterval(this.rtpWatch);
    for (const t of this.ttlTimers) clearTimeout(t);
    this.ttlTimers.clear();
    await Promise.all([...this.calls.values()].map((c) => this.end(c, { status: 'FINISH', reason: 'NORMAL_CALL_CLEARING', sipStatus: c.sipStatus, info: 'Server shutting down' })));
    this.calls.clear();
    // Recordings of the calls just ended become MP4s before we go.
    await this.recorder.close();
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
    void this.d.registry?.release(call.req.callId).catch((err: Error) => this.d.log.warn({ callId: call.req.callId, err: err.message }, 'cluster: releasing the call\'s place failed'));
    call.emit('ended', { call });
    this.releasedCalls.add(call);
    this.changes.emit('released', call);
    const timer = setTimeout(() => {
      this.ttlTimers.delete(timer);
      if (this.calls.get(call.req.callId) === call) {
        this.calls.delete(call.req.callId);
        this.unreported.delete(call.req.callId);
        this.changes.emit('removed', call);
      }
    }, this.d.config.calls.endedTtlSec * 1000);
    timer.unref();
    this.ttlTimers.add(timer);
  }
}

/** A refused place or startup token as the error REST maps to 409, 503 or 429. */
function refuse(r: Reservation, field: string): void {
  if (r.ok) return;
  if (r.why === 'conflict') throw new ConflictError(r.message, field);
  if (r.why === 'rate') throw new RateLimitedError(r.message, r.retryInMs ?? 1000);
  throw new UnavailableError(r.message);
}

/**
 * Where an inbound call asked to publish, as a log line may show it: through the output target's display
 * (no credentials, no query, the stream key masked), since a dialplan's full URL often ends with the key.
 */
function shownUrl(fields: Record<string, string>): string | undefined {
  if (!fields.rtmpUrl) return undefined;
  try {
    return parseOutputTarget(fields.rtmpUrl, fields.rtmpStream || undefined).display;
  } catch {
    return '(not a valid URL)';
  }
}
