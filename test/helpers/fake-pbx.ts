/**
 * A PBX in memory for tests of the call core: implements the `Pbx` port (plugin/calls/ports.ts) the way
 * adapters/asterisk/pbx.ts behaves on Asterisk, without Asterisk.
 *
 * - It records every request made to it (`history`, `waitCall`) and keeps what they created (accounts,
 *   channels, bridges): `objects()` is empty again once everything a call took was released.
 * - The far end is scripted through `far`: ring, progress, answer, reject with a SIP code (the hangup
 *   carries the Q.850 cause Asterisk maps it to, and the code as `sipStatus`), hang up, DTMF, hold, and
 *   inbound calls. `onDial` lets a test script a far end for every call dialled.
 * - The connection can drop (`disconnect`) and come back (`reconnect`): meanwhile events are lost and
 *   requests fail, as with an Asterisk that restarts.
 * - The media leg: `dialMediaLeg` plays Asterisk's part toward a FakeMediaLegServer (the core's
 *   MediaLegServer): an SDP offer of the given codecs, in order, then `answered` for the leg. With
 *   `rtp: true` it also sends 20 ms RTP packets of silence to the answered port, so media flows.
 *
 * Events the app's own requests cause (the answer of a media leg, the hangup after hangup()) arrive a
 * moment later, as ARI's do; the far end's (`far.*`) are emitted at once.
 */
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import type { AccountSpec, InviteAnswer, MediaLegServer, Pbx, PbxEvent, PbxEvents } from '../../plugin/calls/ports.js';
import { serializeRtp } from '../../plugin/media/ingest/rtp.js';
import { buildSdp, parseSdp, type CodecPreference, type SdpFormat, type SdpSession } from '../../plugin/sip/sdp.js';

// ---------------------------------------------------------------------------------------------------------
// What Asterisk says

/** Q.850 causes as Asterisk names them (causes.c, ast_cause2str). */
export const CAUSE_TEXT: Record<number, string> = {
  0: 'Unknown', 1: 'Unallocated (unassigned) number', 3: 'No route to destination', 16: 'Normal Clearing', 17: 'User busy',
  18: 'No user responding', 19: 'User alerting, no answer', 21: 'Call Rejected', 22: 'Number changed',
  27: 'Destination out of order', 28: 'Invalid number format (addr incomplete)', 29: 'Facility rejected',
  34: 'Circuit/channel congestion', 38: 'Network out of order', 41: 'Temporary failure',
  58: 'Bearer capability not available', 102: 'Recover on timer expiry', 127: 'Interworking, unspecified',
};

/** Asterisk's SIP → Q.850 mapping (res_pjsip_session.c, hangup_sip2cause). */
export function sipToCause(sip: number): number {
  const table: Record<number, number> = {
    401: 21, 403: 21, 404: 1, 407: 21, 408: 18, 409: 41, 410: 22, 420: 3, 480: 19, 483: 19, 484: 28, 485: 1,
    486: 17, 488: 58, 500: 38, 501: 29, 502: 27, 503: 34, 504: 102, 600: 17, 603: 21, 604: 1, 606: 58,
  };
  return table[sip] ?? (sip >= 500 && sip < 600 ? 34 : sip >= 400 && sip < 700 ? 127 : 16);
}

/** ARI's hangup reasons and the cause each gives the channel. */
const REASON_CAUSE = { normal: 16, busy: 17, congestion: 34, no_answer: 19 } as const;

/** Payload types Asterisk uses on the media leg (static ones per RFC 3551; L16 as Asterisk numbers it). */
const LEG_PT: Record<string, number> = { 'PCMU/8000': 0, 'PCMA/8000': 8, 'G722/8000': 9, 'L16/8000': 117, 'L16/16000': 118 };

/** A request refused, as ARI refuses it (404 unknown object, 409 id taken, 0 unreachable). */
export class FakePbxError extends Error {
  override readonly name = 'FakePbxError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The media leg's far end: the app's UAS, in memory

/** A MediaLegServer without sockets: the FakePbx hands it offers directly, by the URI it gave out. */
export class FakeMediaLegServer implements MediaLegServer {
  private readonly legs = new Map<string, Parameters<MediaLegServer['expect']>[1]>();
  /** Every INVITE delivered: its token, the offer and what the handler answered. */
  readonly invites: { token: string; offer: SdpSession; reinvite: boolean; answer: InviteAnswer }[] = [];

  uriFor(token: string): string {
    return `sip:${token}@127.0.0.1:5090;transport=tcp`;
  }

  expect(token: string, handler: Parameters<MediaLegServer['expect']>[1]): () => void {
    this.legs.set(token, handler);
    return () => {
      if (this.legs.get(token) === handler) this.legs.delete(token);
    };
  }

  /** Legs expected and not forgotten (0 once every call released its registration). */
  get activeLegs(): number {
    return this.legs.size;
  }

  /** An INVITE to `uri` with this SDP: the handler's answer, or 404 when nobody expects the token. */
  async invite(uri: string, sdp: string, reinvite = false): Promise<InviteAnswer> {
    const token = /^sips?:([^@;]+)@/.exec(uri)?.[1] ?? '';
    const handler = this.legs.get(token);
    if (!handler) return { status: 404, reason: 'Not Found' };
    const offer = parseSdp(sdp);
    let answer: InviteAnswer;
    try {
      answer = await handler(offer, { reinvite });
    } catch {
      answer = { status: 500, reason: 'Server Internal Error' };
    }
    this.invites.push({ token, offer, reinvite, answer });
    return answer;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The PBX

export interface FakeChannel {
  id: string;
  /** call: dialled by dial(); leg: a media leg; inbound: handed over by far.call(). */
  kind: 'call' | 'leg' | 'inbound';
  state: 'down' | 'ringing' | 'up';
  /** dial's target, the leg's URI, or an inbound call's extension. */
  target: string;
  accountId?: string;
  video: boolean;
  /** The audio codec the far end speaks (nativeAudioCodec). */
  codec: CodecPreference;
  userAgent?: string;
  bridgeId?: string;
  /** Put on hold by the app (pbx.hold). */
  held: boolean;
  /** A media leg: the offer sent, and the answer once it came. */
  leg?: { offer: string; answer?: SdpSession };
}

/** One request made to the PBX, with its arguments as given. */
export interface PbxRequest {
  method: string;
  args: unknown[];
}

export interface FakePbxOptions {
  /** The app's media-leg server (default: a new FakeMediaLegServer, as `uas`). */
  uas?: FakeMediaLegServer;
  /** Send RTP to the answered media leg's audio port (20 ms packets of silence). Default false. */
  rtp?: boolean;
  /** Connected at start (default true). */
  connected?: boolean;
}

export class FakePbx extends EventEmitter<PbxEvents> implements Pbx {
  readonly uas: FakeMediaLegServer;
  /** Every request, in order. */
  readonly history: PbxRequest[] = [];
  /** Every event emitted (events lost while disconnected are not here). */
  readonly emitted: PbxEvent[] = [];
  /** The far end of each dialled call, scripted by the test (runs just after dial() returns). */
  onDial: ((ch: FakeChannel) => void) | undefined;
  /** The registrar's verdict on an account's registration: undefined = Registered, a string = rejected with it. */
  registrar: (id: string, spec: AccountSpec) => string | undefined = () => undefined;
  /** The PBX's own PJSIP objects by name (as configured in pjsip.conf): what sipObjectsNamed finds. */
  readonly sipObjects = new Map<string, string[]>([['sip-as-rtmp-media', ['endpoint', 'aor']]]);
  private readonly accounts = new Map<string, AccountSpec>();
  private readonly channels = new Map<string, FakeChannel>();
  private readonly bridges = new Map<string, Set<string>>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly rtp = new Map<string, RtpSender>();
  private readonly waiters: { method: string; resolve: (r: PbxRequest) => void }[] = [];
  private isConnected: boolean;
  private nextInbound = 0;
  private nextPort = 0;

  constructor(private readonly opts: FakePbxOptions = {}) {
    super();
    this.uas = opts.uas ?? new FakeMediaLegServer();
    this.isConnected = opts.connected ?? true;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  // ---- what a test looks at ----

  /** What the PBX holds now: "account <id>", "channel <id>", "bridge <id>", sorted. */
  objects(): string[] {
    return [
      ...[...this.accounts.keys()].map((id) => `account ${id}`),
      ...[...this.channels.keys()].map((id) => `channel ${id}`),
      ...[...this.bridges.keys()].map((id) => `bridge ${id}`),
    ].sort();
  }

  channel(id: string): FakeChannel | undefined {
    return this.channels.get(id);
  }

  account(id: string): AccountSpec | undefined {
    return this.accounts.get(id);
  }

  bridgeMembers(id: string): string[] | undefined {
    const b = this.bridges.get(id);
    return b ? [...b] : undefined;
  }

  /** The arguments of every request to `method`. */
  callsTo(method: string): unknown[][] {
    return this.history.filter((r) => r.method === method).map((r) => r.args);
  }

  /** The first request to `method`, past or future. */
  waitCall(method: string, timeoutMs = 5000): Promise<PbxRequest> {
    const past = this.history.find((r) => r.method === method);
    if (past) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${method}() within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        method,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
    });
  }

  /** Stop what runs on its own (answer timeouts, RTP). The objects stay, for the test to look at. */
  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const s of this.rtp.values()) s.stop();
    this.rtp.clear();
  }

  // ---- the connection ----

  /** The connection drops: 'down', then events are lost and requests fail until reconnect(). */
  disconnect(reason = 'connection lost'): void {
    if (!this.isConnected) return;
    this.isConnected = false;
    this.emit('down', { reason });
  }

  reconnect(): void {
    if (this.isConnected) return;
    this.isConnected = true;
    this.emit('up', { reconnect: true });
  }

  // ---- the far end, scripted ----

  readonly far = {
    /** 180 Ringing. */
    ring: (id: string) => {
      this.live(id).state = 'ringing';
      this.send({ kind: 'ringing', channelId: id });
    },
    /** 183 Session Progress. */
    progress: (id: string) => {
      this.live(id);
      this.send({ kind: 'progress', channelId: id });
    },
    /** 200 OK: the callee answers, speaking `codec` (default PCMU/8000). */
    answer: (id: string, o: { codec?: CodecPreference; userAgent?: string } = {}) => {
      const ch = this.live(id);
      if (ch.state === 'up') throw new Error(`channel ${id} is already answered`);
      ch.state = 'up';
      if (o.codec) ch.codec = o.codec;
      if (o.userAgent) ch.userAgent = o.userAgent;
      this.clearTimer(id);
      this.send({ kind: 'answered', channelId: id });
    },
    /** A final refusal (486 Busy Here, 403, 404...): the channel is gone with Asterisk's cause and the code. */
    reject: (id: string, sipStatus: number) => {
      const ch = this.live(id);
      if (ch.state === 'up') throw new Error(`channel ${id} is answered: hang it up instead`);
      const cause = sipToCause(sipStatus);
      this.remove(id);
      this.send({ kind: 'hangup', channelId: id, cause, causeText: CAUSE_TEXT[cause] ?? `cause ${cause}`, sipStatus });
    },
    /**
     * The far end hangs up (BYE), or the channel just goes away (a leg, an inbound caller). Asterisk's cause
     * for a callee's BYE (measured on the sandbox): 16 Normal Clearing in a bridge, 0 Unknown in none.
     */
    hangup: (id: string, cause?: number) => {
      const ch = this.live(id);
      cause ??= ch.kind === 'call' && ch.state === 'up' && !ch.bridgeId ? 0 : 16;
      this.remove(id);
      this.send({ kind: 'hangup', channelId: id, cause, causeText: CAUSE_TEXT[cause] ?? `cause ${cause}` });
    },
    dtmf: (id: string, digit: string, durationMs = 100) => {
      this.live(id);
      this.send({ kind: 'dtmf', channelId: id, digit, durationMs });
    },
    hold: (id: string) => {
      this.live(id);
      this.send({ kind: 'hold', channelId: id });
    },
    unhold: (id: string) => {
      this.live(id);
      this.send({ kind: 'unhold', channelId: id });
    },
    /**
     * An inbound call handed over to the app (the dialplan's Stasis): `fields` are what its configuration
     * gives, or an Error when that configuration is malformed. Returns the channel id.
     */
    call: (c: { caller?: string; callerName?: string; exten?: string; fields: Record<string, string> | Error; channelId?: string }): string => {
      const id = c.channelId ?? `inbound-${++this.nextInbound}`;
      if (this.channels.has(id)) throw new Error(`channel ${id} exists`);
      const exten = c.exten ?? '7100';
      this.channels.set(id, { id, kind: 'inbound', state: 'ringing', target: exten, video: false, codec: PCMU, held: false });
      const f = c.fields;
      this.send({
        kind: 'incoming', channelId: id, caller: c.caller ?? '1000', callerName: c.callerName ?? '', exten,
        fields: async () => {
          if (f instanceof Error) throw f;
          return { ...f };
        },
      });
      return id;
    },
  };

  // ---- the Pbx port ----

  async createAccount(id: string, spec: AccountSpec): Promise<void> {
    this.request('createAccount', id, spec);
    this.accounts.set(id, spec); // PUT: created, or replaced
  }

  async sipObjectsNamed(id: string): Promise<string[]> {
    this.request('sipObjectsNamed', id);
    return this.sipObjects.get(id) ?? (this.accounts.has(id) ? ['endpoint', 'aor', 'auth'] : []);
  }

  async deleteAccount(id: string): Promise<void> {
    this.request('deleteAccount', id);
    this.accounts.delete(id);
  }

  async waitRegistered(id: string, timeoutMs: number): Promise<void> {
    this.request('waitRegistered', id, timeoutMs);
    const spec = this.accounts.get(id);
    if (!spec?.registration) throw new Error('no registration for this account');
    const refused = this.registrar(id, spec);
    if (refused !== undefined) throw new Error(`Rejected: ${refused}`);
  }

  async dial(p: { channelId: string; accountId?: string; target: string; callerId?: string; video?: boolean; timeoutSec: number }): Promise<void> {
    this.request('dial', p);
    this.claim(p.channelId);
    if (p.accountId !== undefined && !this.accounts.has(p.accountId)) throw new FakePbxError(400, `Endpoint ${p.accountId} not found`);
    const ch: FakeChannel = { id: p.channelId, kind: 'call', state: 'down', target: p.target, video: p.video ?? false, codec: PCMU, held: false, ...(p.accountId ? { accountId: p.accountId } : {}) };
    this.channels.set(ch.id, ch);
    // Originate's timeout: unanswered by then, the channel is hung up (cause 19, as for a callee that rang out).
    const timer = setTimeout(() => {
      this.timers.delete(ch.id);
      if (this.channels.get(ch.id) === ch && ch.state !== 'up') this.far.hangup(ch.id, 19);
    }, p.timeoutSec * 1000);
    timer.unref();
    this.timers.set(ch.id, timer);
    setImmediate(() => {
      if (this.channels.get(ch.id) === ch) this.onDial?.(ch);
    });
  }

  async dialMediaLeg(p: { channelId: string; uri: string; codecs: CodecPreference[]; video: boolean }): Promise<void> {
    this.request('dialMediaLeg', p);
    this.claim(p.channelId);
    const ch: FakeChannel = { id: p.channelId, kind: 'leg', state: 'down', target: p.uri, video: p.video, codec: p.codecs[0] ?? PCMU, held: false };
    this.channels.set(ch.id, ch);
    const sender = this.opts.rtp ? await RtpSender.open() : undefined;
    if (sender && this.channels.get(ch.id) !== ch) sender.stop(); // hung up meanwhile
    else if (sender) this.rtp.set(ch.id, sender);
    const audioPort = sender?.port ?? 10000 + 4 * (this.nextPort++ % 10000);
    const offer = legOffer(p.codecs, p.video, audioPort);
    ch.leg = { offer };
    // Asterisk sends the INVITE after originate has answered.
    setImmediate(() => void this.inviteLeg(ch, offer));
  }

  private async inviteLeg(ch: FakeChannel, offer: string): Promise<void> {
    const answer = await this.uas.invite(ch.target, offer);
    if (this.channels.get(ch.id) !== ch) return; // hung up meanwhile
    if (!('sdp' in answer)) {
      const cause = sipToCause(answer.status);
      this.remove(ch.id);
      this.send({ kind: 'hangup', channelId: ch.id, cause, causeText: CAUSE_TEXT[cause] ?? `cause ${cause}`, sipStatus: answer.status });
      return;
    }
    const sdp = parseSdp(answer.sdp);
    ch.leg = { offer, answer: sdp };
    ch.state = 'up';
    const audio = sdp.media.find((m) => m.kind === 'audio' && m.port !== 0);
    const format = audio?.formats[0];
    if (audio && format) {
      ch.codec = { encoding: format.encoding, clockRate: format.clockRate };
      this.rtp.get(ch.id)?.start({ address: audio.address || sdp.address, port: audio.port }, format);
    }
    this.send({ kind: 'answered', channelId: ch.id });
  }

  async hangup(channelId: string, reason: 'normal' | 'busy' | 'congestion' | 'no_answer' = 'normal'): Promise<void> {
    this.request('hangup', channelId, reason);
    if (!this.channels.has(channelId)) return;
    this.remove(channelId);
    const cause = REASON_CAUSE[reason];
    setImmediate(() => this.send({ kind: 'hangup', channelId, cause, causeText: CAUSE_TEXT[cause]! }));
  }

  async createBridge(bridgeId: string): Promise<void> {
    this.request('createBridge', bridgeId);
    if (!this.bridges.has(bridgeId)) this.bridges.set(bridgeId, new Set());
  }

  async addToBridge(bridgeId: string, channelIds: string[]): Promise<void> {
    this.request('addToBridge', bridgeId, channelIds);
    const bridge = this.bridges.get(bridgeId);
    if (!bridge) throw new FakePbxError(404, 'Bridge not found');
    const missing = channelIds.find((id) => !this.channels.has(id));
    if (missing) throw new FakePbxError(422, `Channel not found: ${missing}`);
    for (const id of channelIds) {
      const ch = this.channels.get(id)!;
      if (ch.bridgeId) this.bridges.get(ch.bridgeId)?.delete(id); // moved from its old bridge
      ch.bridgeId = bridgeId;
      bridge.add(id);
    }
  }

  async destroyBridge(bridgeId: string): Promise<void> {
    this.request('destroyBridge', bridgeId);
    const bridge = this.bridges.get(bridgeId);
    if (!bridge) return;
    for (const id of bridge) {
      const ch = this.channels.get(id);
      if (ch) delete ch.bridgeId;
    }
    this.bridges.delete(bridgeId);
  }

  async sendDtmf(channelId: string, digits: string, mode: 'rfc4733' | 'info'): Promise<void> {
    this.request('sendDtmf', channelId, digits, mode);
    this.existing(channelId);
  }

  async channelExists(channelId: string): Promise<boolean> {
    this.request('channelExists', channelId);
    return this.channels.has(channelId);
  }

  async answer(channelId: string): Promise<void> {
    this.request('answer', channelId);
    const ch = this.existing(channelId);
    ch.state = 'up';
  }

  async nativeAudioCodec(channelId: string): Promise<CodecPreference | undefined> {
    this.request('nativeAudioCodec', channelId);
    // The adapter reads a channel variable and answers undefined when it can't.
    const ch = this.channels.get(channelId);
    return ch ? { ...ch.codec } : undefined;
  }

  async hold(channelId: string, on: boolean): Promise<void> {
    this.request('hold', channelId, on);
    this.existing(channelId).held = on;
  }

  async remoteUserAgent(channelId: string): Promise<string | undefined> {
    this.request('remoteUserAgent', channelId);
    return this.channels.get(channelId)?.userAgent;
  }

  // ---- inside ----

  /** Record a request; fail it as ARI would while Asterisk is unreachable. */
  private request(method: string, ...args: unknown[]): void {
    const r = { method, args };
    this.history.push(r);
    for (const w of this.waiters.filter((w) => w.method === method)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(r);
    }
    if (!this.isConnected) throw new FakePbxError(0, `${method}: the PBX is not reachable`);
  }

  private claim(channelId: string): void {
    if (this.channels.has(channelId)) throw new FakePbxError(409, 'Channel with given unique ID already exists');
  }

  private existing(id: string): FakeChannel {
    const ch = this.channels.get(id);
    if (!ch) throw new FakePbxError(404, 'Channel not found');
    return ch;
  }

  /** For far-end scripting: the channel must exist (a test's mistake otherwise). */
  private live(id: string): FakeChannel {
    const ch = this.channels.get(id);
    if (!ch) throw new Error(`FakePbx: no channel ${id}`);
    return ch;
  }

  private remove(id: string): void {
    const ch = this.channels.get(id);
    if (!ch) return;
    if (ch.bridgeId) this.bridges.get(ch.bridgeId)?.delete(id);
    this.channels.delete(id);
    this.clearTimer(id);
    this.rtp.get(id)?.stop();
    this.rtp.delete(id);
  }

  private clearTimer(id: string): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  /** An event reaches the app only while connected: meanwhile it is lost, as on a dead socket. */
  private send(e: PbxEvent): void {
    if (!this.isConnected) return;
    this.emitted.push(e);
    this.emit('event', e);
  }
}

const PCMU: CodecPreference = { encoding: 'PCMU', clockRate: 8000 };

/** What Asterisk offers on the media leg for these codecs (in order), telephone-event per rate, and H.264. */
export function legOffer(codecs: CodecPreference[], video: boolean, audioPort: number): string {
  const audio: SdpFormat[] = [];
  let dynamic = 96;
  for (const c of codecs) {
    const key = `${c.encoding.toUpperCase()}/${c.clockRate}`;
    audio.push({ payloadType: LEG_PT[key] ?? dynamic++, encoding: c.encoding.toUpperCase(), clockRate: c.clockRate, channels: 1 });
  }
  const rates = [...new Set(audio.map((f) => f.clockRate))];
  rates.forEach((rate, i) => audio.push({ payloadType: 101 + i, encoding: 'TELEPHONE-EVENT', clockRate: rate, channels: 1, fmtp: '0-16' }));
  const media = [{ kind: 'audio', protocol: 'RTP/AVP', port: audioPort, formats: audio, direction: 'sendrecv' as const }];
  if (video) media.push({ kind: 'video', protocol: 'RTP/AVP', port: audioPort + 2, formats: [{ payloadType: 99, encoding: 'H264', clockRate: 90000, channels: 1 }], direction: 'sendrecv' });
  return buildSdp({ address: '127.0.0.1', sessionId: 1234, version: 1, media });
}

/** RTP of silence every 20 ms from one UDP socket (the port named in the offer: RTP is symmetric). */
class RtpSender {
  private timer: NodeJS.Timeout | undefined;
  private seq = Math.floor(Math.random() * 65536);
  private ts = Math.floor(Math.random() * 2 ** 32);
  private readonly ssrc = (Math.random() * 2 ** 32) >>> 0;
  private stopped = false;

  private constructor(private readonly socket: Socket, readonly port: number) {}

  static async open(): Promise<RtpSender> {
    const socket = createSocket('udp4');
    socket.on('error', () => {}); // an unreachable port is not the fake's business
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new RtpSender(socket, socket.address().port);
  }

  start(to: { address: string; port: number }, format: SdpFormat): void {
    if (this.stopped) return;
    const samples = (format.clockRate * 20) / 1000;
    const payload = format.encoding === 'L16' ? Buffer.alloc(samples * 2) : Buffer.alloc(samples, format.encoding === 'PCMA' ? 0xd5 : 0xff);
    this.timer = setInterval(() => {
      const packet = serializeRtp({ marker: false, payloadType: format.payloadType, sequenceNumber: this.seq++, timestamp: this.ts, ssrc: this.ssrc, csrcs: [], payload });
      this.ts = (this.ts + samples) >>> 0;
      this.socket.send(packet, to.port, to.address);
    }, 20);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.socket.close();
  }
}
