/**
 * CallService against FakePbx, without Asterisk: the call's life from /call/startup (or an inbound call)
 * to its final status, and the release of everything it took: PBX objects (accounts, channels, bridges),
 * RTP ports, the media-leg registration, its outputs. The RTP ports, the media pipeline and the AAC
 * encoder are the real ones; the fake PBX sends RTP of silence on the media leg, so media flows.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileRecordingStore } from '../../adapters/recording/store.js';
import { RtpPortPool } from '../../adapters/rtp/port-pool.js';
import type { Call } from '../../plugin/calls/call.js';
import { CallService, type CallServiceDeps } from '../../plugin/calls/call-service.js';
import { ConflictError, InvalidError, NotFoundError, RateLimitedError, UnavailableError } from '../../plugin/calls/errors.js';
import { KEPT_ENDED_PUSHES } from '../../plugin/calls/push-desk.js';
import { OutboundTargets } from '../../plugin/calls/targets.js';
import type { CallStatus } from '../../plugin/calls/types.js';
import { validatePushStartup, validateStartup } from '../../plugin/calls/validate.js';
import { loadConfig } from '../../plugin/config.js';
import { NoHooks } from '../../plugin/hooks/hooks.js';
import { createLogger } from '../../plugin/lib/log.js';
import { NativeAacEncoder } from '../../plugin/media/encode/aac/audio-encoder.js';
import type { ConfigChange, MediaFrame } from '../../plugin/media/frame.js';
import type { OutputError, OutputSink } from '../../plugin/media/output/sink.js';
import type { OutputTarget } from '../../plugin/media/output/target.js';
import { FakeMediaLegServer, FakePbx, type FakeChannel } from '../helpers/fake-pbx.js';

/** A free high range of our own: other test files may run beside this one. */
const RTP_MIN = 34400;
const RTP_MAX = 34599;

/** One connection to an output, recorded: what it was sent and whether it was closed. */
class RecordingSink extends EventEmitter implements OutputSink {
  configs = 0;
  frames = 0;
  closed = false;
  constructor(readonly target: OutputTarget, private readonly refusal: OutputError | undefined) {
    super();
  }
  async start(): Promise<void> {
    if (this.refusal) throw this.refusal;
  }
  config(_c: ConfigChange): void {
    this.configs++;
  }
  frame(_f: MediaFrame): void {
    this.frames++;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

/** openOutput: a RecordingSink per connection; `refuse` makes the server refuse the next ones. */
class Outputs {
  readonly sinks: RecordingSink[] = [];
  refuse: OutputError | undefined;
  readonly open = (target: OutputTarget): OutputSink => {
    const s = new RecordingSink(target, this.refuse);
    this.sinks.push(s);
    return s;
  };
}

/** An RTMP server's refusal, in its own words. */
function refusal(code: string, description: string): OutputError {
  return Object.assign(new Error('publish refused'), { code, description });
}

interface Harness {
  svc: CallService;
  pbx: FakePbx;
  uas: FakeMediaLegServer;
  ports: RtpPortPool;
  outputs: Outputs;
  /** Calls that have released everything they held. */
  released: Set<Call>;
  /** REST hooks posted: [method, body]. */
  hooks: [string, Record<string, unknown>][];
  /** Close the service and the fake, then check nothing is held anywhere. */
  close(): Promise<void>;
}

function harness(env: Record<string, string> = {}, extra: Partial<CallServiceDeps> = {}): Harness {
  const config = loadConfig({ ARI_PASSWORD: 'test', RTP_PORT_MIN: String(RTP_MIN), RTP_PORT_MAX: String(RTP_MAX), RTP_TIMEOUT_SEC: '0', ...env });
  const uas = new FakeMediaLegServer();
  const pbx = new FakePbx({ uas, rtp: true });
  const ports = new RtpPortPool({ host: '127.0.0.1', portMin: config.rtp.portMin, portMax: config.rtp.portMax });
  const outputs = new Outputs();
  const hooks: [string, Record<string, unknown>][] = [];
  const svc = new CallService({
    config, log: createLogger({ level: 'silent' }), pbx, uas, ports, openOutput: outputs.open,
    encoderFactory: (o) => new NativeAacEncoder(o),
    hooks: { post: (method, body) => void hooks.push([method, body]), close: async () => {}, stats: NoHooks.stats },
    ...extra,
  });
  const released = new Set<Call>();
  svc.changes.on('released', (c) => released.add(c));
  return {
    svc, pbx, uas, ports, outputs, released, hooks,
    async close() {
      await svc.close();
      pbx.close();
      assert.deepEqual(pbx.objects(), [], 'PBX objects left');
      assert.equal(ports.allocated, 0, 'RTP port pairs still allocated');
      assert.equal(uas.activeLegs, 0, 'media legs still expected');
      assert.ok(outputs.sinks.every((s) => s.closed), 'output connections left open');
    },
  };
}

/** Run a test on a fresh harness; whatever happens, it is closed and checked. */
async function withHarness(fn: (h: Harness) => Promise<void>, env: Record<string, string> = {}, extra: Partial<CallServiceDeps> = {}): Promise<void> {
  const h = harness(env, extra);
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

let n = 0;
/** A /call/startup body, validated as REST does. */
function startup(over: Record<string, unknown> = {}) {
  n++;
  return validateStartup({
    callId: `call-${n}`, callee: 'answer', sipDomain: '127.0.0.1', sipPort: 5070,
    rtmpUrl: 'rtmp://127.0.0.1:1935/live', rtmpStream: `stream-${n}`, ...over,
  }, { streamPrefix: 'rtmp_' });
}

/** The call's status once it is one of these (now or later). */
function reach(call: Call, ...statuses: CallStatus[]): Promise<CallStatus> {
  if (statuses.includes(call.status)) return Promise.resolve(call.status);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`call ${call.req.callId} stuck at ${call.status} (${call.info}), not ${statuses.join('/')}`)), 5000);
    const on = ({ status }: { status: CallStatus }) => {
      if (!statuses.includes(status)) return;
      clearTimeout(timer);
      call.off('status', on);
      resolve(status);
    };
    call.on('status', on);
  });
}

/** Once the call has ended and released everything it held (the service's 'released', heard from the start). */
async function released(h: Harness, call: Call): Promise<void> {
  await until(() => h.released.has(call), `call ${call.req.callId} released (${call.status}: ${call.info})`);
}

async function until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every dialled callee rings, then answers (PCMU). */
function answering(pbx: FakePbx): void {
  pbx.onDial = (ch: FakeChannel) => {
    pbx.far.ring(ch.id);
    pbx.far.answer(ch.id);
  };
}

/** A call answered, its media running and its primary output publishing (when it has one). */
async function establishedCall(h: Harness, over: Record<string, unknown> = {}): Promise<Call> {
  answering(h.pbx);
  const call = h.svc.startup(startup(over));
  assert.equal(await reach(call, 'ESTABLISHED', 'FAILED', 'BUSY', 'FINISH'), 'ESTABLISHED', call.info);
  await call.mediaReady;
  if (call.req.target) await until(() => call.streamStatus === 'PUBLISHING', 'the primary output PUBLISHING');
  return call;
}

test('startup → RING → ESTABLISHED → the callee hangs up → FINISH, NORMAL_CALL_CLEARING; everything released', async () => {
  await withHarness(async (h) => {
    answering(h.pbx);
    const statuses: string[] = [];
    const call = h.svc.startup(startup({ sipLogin: 'alice', sipPassword: 'pw' }));
    call.on('status', ({ status }) => statuses.push(status));
    assert.equal(call.status, 'TRYING');
    // WCS's first event of a call is TRYING, with its nodeId and sessionId.
    const [first] = h.hooks.filter(([m]) => m === 'CallStatusEvent');
    assert.deepEqual([first?.[1].status, first?.[1].callId, first?.[1].sessionId, first?.[1].nodeId], ['TRYING', call.req.callId, call.key, hostname()]);
    assert.equal(await reach(call, 'ESTABLISHED', 'FAILED'), 'ESTABLISHED', call.info);
    await call.mediaReady;
    await until(() => call.streamStatus === 'PUBLISHING', 'PUBLISHING');

    // What the PBX was asked: the account, the INVITE through it, the media leg, both channels bridged.
    const [[accountId, spec]] = h.pbx.callsTo('createAccount') as [[string, { authUser: string; fromDomain: string }]];
    assert.equal(accountId, call.accountId);
    assert.equal(spec.authUser, 'alice');
    const [[dial]] = h.pbx.callsTo('dial') as [[{ channelId: string; accountId: string; target: string }]];
    assert.deepEqual([dial.channelId, dial.accountId, dial.target], [call.channelId, call.accountId, 'sip:answer@127.0.0.1:5070']);
    assert.deepEqual(h.pbx.bridgeMembers(call.bridgeId)?.sort(), [call.channelId, call.legChannelId].sort());
    // The callee speaks PCMU: the leg offers it first (no transcoding), then the configured list.
    const offered = h.uas.invites[0]!.offer.media[0]!.formats.filter((f) => f.encoding !== 'TELEPHONE-EVENT').map((f) => f.encoding);
    assert.deepEqual(offered, ['PCMU', 'L16', 'PCMA']);

    // Media flows: RTP in, AAC frames out to the output.
    const sink = h.outputs.sinks[0]!;
    await until(() => sink.frames > 5, 'AAC frames at the output');
    const rtp = (call.view({ withMedia: true }).media as { rtp: { accepted: number } }).rtp;
    assert.ok(rtp.accepted > 0, 'RTP accepted');

    h.pbx.far.hangup(call.channelId);
    await released(h, call);
    assert.deepEqual(statuses, ['RING', 'ESTABLISHED', 'FINISH']);
    assert.equal(call.reason, 'NORMAL_CALL_CLEARING');
    assert.equal(call.sipStatus, 200);
    assert.match(call.info, /callee/);
    assert.equal(call.streamStatus, 'UNPUBLISHED');
    assert.ok(sink.closed);
    assert.deepEqual(h.pbx.objects(), []);
    assert.equal(h.ports.allocated, 0);
    assert.equal(h.uas.activeLegs, 0);
  });
});

test('a busy callee → BUSY with sipStatus 486; the account is deleted', async () => {
  await withHarness(async (h) => {
    h.pbx.onDial = (ch) => h.pbx.far.reject(ch.id, 486);
    const call = h.svc.startup(startup({ callee: 'busy', sipLogin: 'bob', sipPassword: 'pw' }));
    assert.equal(await reach(call, 'BUSY', 'FAILED', 'ESTABLISHED'), 'BUSY');
    await released(h, call);
    assert.equal(call.sipStatus, 486);
    assert.equal(call.reason, 'NORMAL_CALL_CLEARING');
    assert.match(call.info, /486/);
    assert.deepEqual(h.pbx.callsTo('deleteAccount'), [[call.accountId]]);
    assert.deepEqual(h.pbx.objects(), []);
    assert.deepEqual(h.pbx.callsTo('dialMediaLeg'), [], 'no media leg for an unanswered call');
  });
});

test('terminate before the answer → FINISH "Terminated before answer"; the ringing channel is hung up', async () => {
  await withHarness(async (h) => {
    h.pbx.onDial = (ch) => h.pbx.far.ring(ch.id);
    const call = h.svc.startup(startup());
    await reach(call, 'RING');
    h.svc.terminate(call.req.callId);
    await released(h, call);
    assert.equal(call.status, 'FINISH');
    assert.equal(call.reason, 'NORMAL_CALL_CLEARING');
    assert.equal(call.info, 'Terminated before answer');
    assert.deepEqual(h.pbx.callsTo('hangup').map(([id]) => id), [call.channelId]);
    assert.deepEqual(h.pbx.objects(), []);
    assert.throws(() => h.svc.terminate(call.req.callId), NotFoundError, 'an ended call is not found');
  });
});

test('visibleName reaches the dial as an escaped quoted display name (a trailing backslash keeps the quote closed)', async () => {
  await withHarness(async (h) => {
    h.pbx.onDial = (ch) => h.pbx.far.ring(ch.id);
    const call = h.svc.startup(startup({ visibleName: 'Desk "7" \\', sipLogin: 'desk7' }));
    await reach(call, 'RING');
    const [dial] = h.pbx.callsTo('dial') as [{ callerId?: string }][];
    assert.equal(dial?.[0].callerId, '"Desk \\"7\\" \\\\" <desk7>');
    h.svc.terminate(call.req.callId);
    await released(h, call);
  });
});

test('terminate after the answer releases the account, both channels, the bridge, ports and the output', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h, { sipLogin: 'carol', sipPassword: 'pw' });
    assert.ok(h.ports.allocated > 0);
    assert.deepEqual(h.pbx.objects(), [`account ${call.accountId}`, `bridge ${call.bridgeId}`, `channel ${call.channelId}`, `channel ${call.legChannelId}`].sort());
    h.svc.terminate(call.req.callId);
    await released(h, call);
    assert.equal(call.status, 'FINISH');
    assert.equal(call.info, 'Terminated');
    assert.deepEqual(h.pbx.callsTo('hangup').map(([id]) => id).sort(), [call.channelId, call.legChannelId].sort());
    assert.deepEqual(h.pbx.callsTo('destroyBridge'), [[call.bridgeId]]);
    assert.deepEqual(h.pbx.callsTo('deleteAccount'), [[call.accountId]]);
    assert.deepEqual(h.pbx.objects(), []);
    assert.equal(h.ports.allocated, 0);
    assert.equal(h.uas.activeLegs, 0);
    assert.ok(h.outputs.sinks.every((s) => s.closed));
  });
});

test('a duplicate callId is a ConflictError naming callId (and the PBX is not asked twice)', async () => {
  await withHarness(async (h) => {
    h.pbx.onDial = (ch) => h.pbx.far.ring(ch.id);
    const req = startup();
    const call = h.svc.startup(req);
    await reach(call, 'RING');
    assert.throws(() => h.svc.startup({ ...req, rtmpStream: 'another' }), (e: unknown) => e instanceof ConflictError && e.field === 'callId');
    assert.equal(h.pbx.callsTo('dial').length, 1);
    h.svc.terminate(req.callId);
    await released(h, call);
  });
});

test('the PBX not connected → UnavailableError, and nothing reaches the PBX', async () => {
  await withHarness(async (h) => {
    h.pbx.disconnect('test');
    assert.throws(() => h.svc.startup(startup()), UnavailableError);
    assert.deepEqual(h.svc.list(), []);
    assert.deepEqual(h.pbx.history, []);
    h.pbx.reconnect();
  });
});

test('an output refused at connect → FAILED_BY_RTMP_WRITER_ERROR with the server\'s reason, and the call is hung up', async () => {
  await withHarness(async (h) => {
    h.outputs.refuse = refusal('NetStream.Publish.BadName', 'Already publishing');
    answering(h.pbx);
    const call = h.svc.startup(startup());
    assert.equal(await reach(call, 'FAILED', 'FINISH'), 'FAILED');
    await released(h, call);
    assert.equal(call.reason, 'FAILED_BY_RTMP_WRITER_ERROR');
    assert.equal(call.streamStatus, 'FAILED');
    assert.equal(call.info, 'RTMP: NetStream.Publish.BadName: Already publishing');
    assert.ok(h.pbx.callsTo('hangup').some(([id]) => id === call.channelId), 'the call was hung up');
    assert.deepEqual(h.pbx.objects(), []);
  });
});

test('RTMP_FAILURE_ACTION=continue: a refused primary output is FAILED, the call goes on', async () => {
  await withHarness(async (h) => {
    h.outputs.refuse = refusal('NetStream.Publish.Denied', 'denied by on_publish');
    answering(h.pbx);
    const call = h.svc.startup(startup());
    await reach(call, 'ESTABLISHED');
    await until(() => call.streamStatus === 'FAILED', 'the stream FAILED');
    assert.equal(call.status, 'ESTABLISHED');
    assert.ok(h.pbx.channel(call.channelId), 'not hung up');
    h.svc.terminate(call.req.callId);
    await released(h, call);
  }, { RTMP_FAILURE_ACTION: 'continue' });
});

test('sipRegisterRequired: registered before the INVITE; a refused registration is AUTHENTICATION_FAIL with no INVITE', async () => {
  await withHarness(async (h) => {
    answering(h.pbx);
    const body = { sipLogin: 'dave', sipPassword: 'pw', sipRegisterRequired: 'true' };
    const ok = await establishedCall(h, body);
    const methods = h.pbx.history.map((r) => r.method);
    assert.ok(methods.indexOf('waitRegistered') >= 0 && methods.indexOf('waitRegistered') < methods.indexOf('dial'), methods.join(','));
    const [[, spec]] = h.pbx.callsTo('createAccount') as [[string, { registration?: { clientUri: string } }]];
    assert.equal(spec.registration?.clientUri, 'sip:dave@127.0.0.1');
    h.svc.terminate(ok.req.callId);
    await released(h, ok);

    h.pbx.registrar = () => '403 Forbidden';
    const dials = h.pbx.callsTo('dial').length;
    const bad = h.svc.startup(startup(body));
    assert.equal(await reach(bad, 'FAILED', 'ESTABLISHED'), 'FAILED');
    await released(h, bad);
    assert.equal(bad.reason, 'AUTHENTICATION_FAIL');
    assert.match(bad.info, /403 Forbidden/);
    assert.equal(h.pbx.callsTo('dial').length, dials, 'no INVITE');
    assert.ok(h.hooks.some(([m, b]) => m === 'RegistrationStatusEvent' && b.status === 'AUTHENTICATION_FAIL'));
    assert.deepEqual(h.pbx.objects(), []);
  });
});

test('the far end\'s DTMF and hold reach the call; the client\'s DTMF and hold reach the PBX', async () => {
  await withHarness(async (h) => {
    h.pbx.onDial = (ch) => h.pbx.far.ring(ch.id);
    const call = h.svc.startup(startup());
    await reach(call, 'RING');
    await assert.rejects(h.svc.sendDtmf(call.req.callId, '1', 'rfc4733'), ConflictError, 'not answered yet');
    h.pbx.far.answer(call.channelId);
    await reach(call, 'ESTABLISHED');
    await call.mediaReady;

    h.pbx.far.dtmf(call.channelId, '5');
    assert.ok(call.events.some((e) => e.type === 'DTMF' && e.detail === '5'));
    assert.ok(h.hooks.some(([m, b]) => m === 'DtmfEvent' && b.dtmf === '5' && b.callId === call.req.callId));
    h.pbx.far.hold(call.channelId);
    assert.equal(call.status, 'HOLD');
    h.pbx.far.unhold(call.channelId);
    assert.equal(call.status, 'ESTABLISHED');

    await h.svc.hold(call.req.callId, true);
    assert.equal(call.status, 'HOLD');
    assert.equal(h.pbx.channel(call.channelId)?.held, true);
    await h.svc.hold(call.req.callId, false);
    assert.equal(call.status, 'ESTABLISHED');
    await h.svc.sendDtmf(call.req.callId, '1', 'info');
    assert.deepEqual(h.pbx.callsTo('sendDtmf'), [[call.channelId, '1', 'info']]);

    h.svc.terminate(call.req.callId);
    await released(h, call);
  });
});

test('an inbound call with good fields is answered, relayed and listed incoming=true', async () => {
  await withHarness(async (h) => {
    const channelId = h.pbx.far.call({ caller: '1000', callerName: 'Alice', exten: '7100', fields: { rtmpUrl: 'rtmp://127.0.0.1:1935/recorded', rtmpStream: 'inbound-7100' } });
    await h.pbx.waitCall('answer');
    await until(() => h.svc.list().length === 1, 'the call listed');
    const call = h.svc.list()[0]!;
    assert.equal(call.channelId, channelId);
    assert.equal(await reach(call, 'ESTABLISHED', 'FAILED'), 'ESTABLISHED');
    await call.mediaReady;
    await until(() => call.streamStatus === 'PUBLISHING', 'PUBLISHING');
    const [view] = h.svc.find({ callId: call.req.callId });
    assert.equal(view?.incoming, true);
    assert.equal(view?.caller, '1000');
    assert.equal(view?.callee, '7100');
    assert.equal(view?.visibleName, 'Alice');
    assert.equal(h.outputs.sinks[0]?.target.key, '127.0.0.1:1935/recorded/inbound-7100');
    // The dialplan's stream name is a stream key: masked wherever it is shown, as rtmpStream is...
    assert.equal(view?.streamName, 'inbo***');
    assert.equal(view?.rtmpStream, 'inbo***');
    const status = h.hooks.filter(([m]) => m === 'CallStatusEvent').map(([, b]) => b);
    assert.ok(status.length > 0 && status.every((b) => b.streamName === 'inbo***'), JSON.stringify(status.map((b) => b.streamName)));
    const streamHooks = h.hooks.filter(([m]) => m === 'StreamStatusEvent').map(([, b]) => b);
    assert.ok(streamHooks.length > 0 && streamHooks.every((b) => b.streamName === 'inbo***'));
    // ...while /push/find still finds the call's outputs by the real name, and shows it masked.
    const pushes = h.svc.pushFind({ streamName: 'inbound-7100' });
    assert.deepEqual(pushes.map((p) => [p.streamName, p.primary]), [['inbo***', true]]);
    assert.ok(!JSON.stringify([h.svc.find({}), pushes, h.hooks]).includes('inbound-7100'), 'the key appears nowhere');

    h.pbx.far.hangup(channelId);
    await released(h, call);
    assert.equal(call.status, 'FINISH');
    assert.deepEqual(h.pbx.objects(), []);
  });
});

for (const [what, fields] of [
  ['bad fields', { rtmpUrl: 'ftp://example.com/x', rtmpStream: 'y' }],
  ['a malformed configuration (fields() rejects)', new Error('Stasis argument "x" must be key=value')],
] as const) {
  test(`an inbound call with ${what} is hung up and never listed`, async () => {
    await withHarness(async (h) => {
      const channelId = h.pbx.far.call({ exten: '7102', fields });
      await h.pbx.waitCall('hangup');
      assert.deepEqual(h.pbx.callsTo('hangup'), [[channelId, 'normal']]);
      assert.deepEqual(h.pbx.callsTo('answer'), [], 'never answered');
      assert.deepEqual(h.svc.list(), []);
      assert.deepEqual(h.pbx.objects(), []);
    });
  });
}

test('the media leg hanging up ends the call FAILED', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h);
    h.pbx.far.hangup(call.legChannelId);
    await released(h, call);
    assert.equal(call.status, 'FAILED');
    assert.equal(call.reason, 'FAILED_BY_ERROR');
    assert.match(call.info, /media leg ended/);
    assert.deepEqual(h.pbx.objects(), []);
  });
});

test('after a lost connection, reconcile ends the call whose channel vanished and keeps the other', async () => {
  await withHarness(async (h) => {
    const lost = await establishedCall(h);
    const kept = await establishedCall(h);
    h.pbx.disconnect('ARI event socket closed (1006)');
    // While the connection is down, the first callee hangs up: the event is lost.
    h.pbx.far.hangup(lost.channelId);
    assert.equal(lost.status, 'ESTABLISHED');
    h.pbx.reconnect();
    await released(h, lost);
    assert.equal(lost.status, 'FAILED');
    assert.match(lost.info, /while the connection to Asterisk was down/);
    assert.equal(kept.status, 'ESTABLISHED');
    assert.ok(h.pbx.channel(kept.channelId) && h.pbx.channel(kept.legChannelId));
    h.svc.terminate(kept.req.callId);
    await released(h, kept);
    assert.deepEqual(h.pbx.objects(), []);
  });
});

test('/push/startup on a live call by its toStream: found, publishing, then terminated; the call goes on', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h, { rtmpUrl: undefined, rtmpStream: undefined, toStream: 'room-1' });
    assert.equal(h.outputs.sinks.length, 0, 'no output before /push/startup');
    const view = await h.svc.pushStartup(validatePushStartup({ streamName: 'room-1', rtmpUrl: 'rtmp://127.0.0.1:1935/live' }, { streamPrefix: 'rtmp_' }));
    assert.equal(view.callId, call.req.callId);
    assert.equal(view.primary, false);
    await until(() => h.svc.pushFind({ streamName: 'room-1' })[0]?.status === 'PUBLISHING', 'the push PUBLISHING');
    assert.equal(h.outputs.sinks[0]?.target.key, '127.0.0.1:1935/live/rtmp_room-1');
    assert.deepEqual(h.svc.pushFind({ streamName: 'room-1' }).map((p) => p.mediaSessionId), [view.mediaSessionId]);
    // WCS's pages poll by the transponder name ("rtmp_" + stream) and the URL as they gave it.
    assert.equal(view.streamName, 'rtmp_room-1', 'answers carry WCS\'s name');
    assert.deepEqual(h.svc.pushFind({ streamName: 'rtmp_room-1', rtmpUrl: 'rtmp://127.0.0.1:1935/live' }).map((p) => p.mediaSessionId), [view.mediaSessionId]);
    // ...and may name the call's stream so when they start another push.
    const other = await h.svc.pushStartup(validatePushStartup({ streamName: 'rtmp_room-1', rtmpUrl: 'rtmp://127.0.0.1:1935/recorded', rtmpTransponderFullUrl: 'false' }, { streamPrefix: 'rtmp_' }));
    assert.equal(other.callId, call.req.callId);
    await h.svc.pushTerminate(other.mediaSessionId);

    await h.svc.pushTerminate(view.mediaSessionId);
    assert.deepEqual(h.svc.pushFind({ streamName: 'room-1' }), []);
    assert.ok(h.outputs.sinks[0]!.closed);
    assert.equal(call.status, 'ESTABLISHED', 'the call goes on without the push');
    await assert.rejects(h.svc.pushTerminate(view.mediaSessionId), NotFoundError);

    h.svc.terminate(call.req.callId);
    await released(h, call);
  });
});

/** A /push/startup of the call's stream to a destination of its own (one output per destination). */
const pushTo = (h: Harness, stream: string, i: number) =>
  h.svc.pushStartup(validatePushStartup({ streamName: stream, rtmpUrl: `rtmp://127.0.0.1:1935/out${i}` }, { streamPrefix: 'rtmp_' }));

/** What the service holds for a call's outputs: listed pushes, the call's own list, release steps. */
function heldOutputs(h: Harness, call: Call): { listed: number; onCall: number; steps: number } {
  return {
    listed: h.svc.pushFind({}).filter((p) => p.callId === call.req.callId).length,
    onCall: call.pushes.length,
    steps: call.resources.held.filter((n) => n.startsWith('push ')).length,
  };
}

test('MAX_PUSHES_PER_CALL: 1,000 /push/startup on one call → the first 9 (10 with its primary) accepted, the rest 429 naming the limit; room again once one ends', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h, { toStream: 'many' });
    let accepted = 0;
    const refusals = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      try {
        await pushTo(h, 'many', i);
        accepted++;
      } catch (err) {
        assert.ok(err instanceof RateLimitedError && err.field === 'streamName', String(err));
        refusals.add(err.message);
      }
    }
    assert.equal(accepted, 9, 'the primary counts');
    assert.deepEqual([...refusals], [`call ${call.req.callId} already has 10 live outputs (MAX_PUSHES_PER_CALL=10); terminate one first`]);
    assert.deepEqual(heldOutputs(h, call), { listed: 10, onCall: 10, steps: 10 });
    assert.equal(h.outputs.sinks.length, 10, 'no connection for a refused push');
    // One ends: room for one more.
    await h.svc.pushTerminate(h.svc.pushFind({}).find((p) => !p.primary)!.mediaSessionId);
    await pushTo(h, 'many', 1000);
    await assert.rejects(pushTo(h, 'many', 1001), RateLimitedError);
    assert.deepEqual(heldOutputs(h, call), { listed: 10, onCall: 10, steps: 10 }, 'the terminated push is released, its release step too');
    h.svc.terminate(call.req.callId);
    await released(h, call);
  }, { STARTUP_RATE_PER_SEC: '10000' });
});

test('FAILED pushes don\'t count and don\'t pile up: 1,000 refused pushes on one call keep only the newest few listed, the rest released', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h, { rtmpUrl: undefined, rtmpStream: undefined, toStream: 'retry' });
    h.outputs.refuse = refusal('NetStream.Publish.BadName', 'wrong key');
    for (let i = 0; i < 1000; i++) {
      await pushTo(h, 'retry', i);
      // The refusal is settled by then (promises only): the push is FAILED before the next one.
      await new Promise((r) => setImmediate(r));
    }
    const listed = h.svc.pushFind({ streamName: 'retry' });
    assert.equal(listed.length, KEPT_ENDED_PUSHES);
    assert.ok(listed.every((p) => p.status === 'FAILED' && p.reason?.includes('wrong key')));
    // The newest ones are kept (a client polling its last attempt still sees why).
    assert.deepEqual(listed.map((p) => p.rtmpUrl), [995, 996, 997, 998, 999].map((i) => `rtmp://127.0.0.1:1935/out${i}/rtmp***`));
    assert.deepEqual(heldOutputs(h, call), { listed: KEPT_ENDED_PUSHES, onCall: KEPT_ENDED_PUSHES, steps: KEPT_ENDED_PUSHES });
    assert.ok(h.outputs.sinks.every((s) => s.closed), 'every refused connection closed');
    assert.equal(call.status, 'ESTABLISHED');
    // A live one still goes in beside them.
    h.outputs.refuse = undefined;
    await pushTo(h, 'retry', 1000);
    h.svc.terminate(call.req.callId);
    await released(h, call);
  }, { STARTUP_RATE_PER_SEC: '10000' });
});

test('MAX_OUTPUTS: live outputs across calls; a push or a /call/startup with rtmpUrl beyond it is UnavailableError (503); a call without an output still starts', async () => {
  await withHarness(async (h) => {
    const a = await establishedCall(h);
    const b = await establishedCall(h, { rtmpUrl: undefined, rtmpStream: undefined, toStream: 'b-stream' });
    await pushTo(h, 'b-stream', 1);
    await pushTo(h, 'b-stream', 2);
    await assert.rejects(pushTo(h, 'b-stream', 3), (e: unknown) => e instanceof UnavailableError && /3 live outputs, MAX_OUTPUTS=3/.test(e.message));
    assert.throws(() => h.svc.startup(startup()), (e: unknown) => e instanceof UnavailableError && /MAX_OUTPUTS=3/.test(e.message));
    const c = h.svc.startup(startup({ rtmpUrl: undefined, rtmpStream: undefined, toStream: 'c-stream' }));
    for (const call of [a, b, c]) h.svc.terminate(call.req.callId);
    for (const call of [a, b, c]) await released(h, call);
  }, { MAX_OUTPUTS: '3' });
});

test('log lines name outputs by their redacted form: no URL credentials, query or stream key, inbound ones included', async () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => { lines.push(c.toString()); cb(); } }) });
  await withHarness(async (h) => {
    const call = await establishedCall(h, { rtmpUrl: 'rtmp://pubuser:pubpass77@127.0.0.1:1935/live?auth=qtok9911', rtmpStream: 'stream-key-4d2f91', toStream: 'room-9' });
    h.outputs.refuse = refusal('NetStream.Publish.BadName', 'bad key');
    await pushTo(h, 'room-9', 1).then((v) => until(() => h.svc.pushFind({}).some((p) => p.mediaSessionId === v.mediaSessionId && p.status === 'FAILED'), 'FAILED'));
    // An inbound call whose dialplan gives a URL ending with its key, refused (no capacity for its output).
    h.pbx.far.call({ exten: '7200', fields: { rtmpUrl: 'rtmp://127.0.0.1:1935/live/inbound-key-88e1c3', rtmpTransponderFullUrl: 'true', hasAudio: 'false', hasVideo: 'false' } });
    await h.pbx.waitCall('hangup');
    h.svc.terminate(call.req.callId);
    await released(h, call);
  }, {}, { log });
  const text = lines.join('');
  assert.match(text, /push state/);
  assert.match(text, /inbound call refused/);
  for (const secret of ['pubpass77', 'qtok9911', 'stream-key-4d2f91', 'inbound-key-88e1c3']) assert.ok(!text.includes(secret), `${secret} in the log`);
});

test('outbound targets: /call/startup vetted before it is accepted (rtmpUrl, SIP hosts, sipLogin), /push/startup and inject_stream URLs checked', async () => {
  const resolver = {
    resolveAll: async (host: string) => {
      if (host === 'evil.example') return ['10.0.0.1', '169.254.169.254'];
      throw Object.assign(new Error('no such host'), { code: 'ENOTFOUND' });
    },
    localAddresses: () => ['127.0.0.1'],
  };
  const targets = new OutboundTargets({ config: loadConfig({ ARI_PASSWORD: 's' }), resolver, pbx: new FakePbx(), ownPort: (p) => p === 8081 });
  const injector = () => {
    throw new Error('never reached: the URL is refused first');
  };
  await withHarness(async (h) => {
    const refused = (field: string, re: RegExp) => (e: unknown) => e instanceof InvalidError && e.field === field && re.test(e.message);
    await assert.rejects(h.svc.vetStartup(startup({ rtmpUrl: 'rtmp://169.254.169.254/live' })), refused('rtmpUrl', /link-local address; refused/));
    await assert.rejects(h.svc.vetStartup(startup({ rtmpUrl: 'rtmp://user:pw@evil.example/live' })), refused('rtmpUrl', /evil\.example resolves to a link-local/));
    await assert.rejects(h.svc.vetStartup(startup({ rtmpUrl: 'rtmp://127.0.0.1:8081/live' })), refused('rtmpUrl', /own port 8081/));
    await assert.rejects(h.svc.vetStartup(startup({ sipPort: undefined })), refused('sipDomain', /PBX's own SIP address/));
    await assert.rejects(h.svc.vetStartup(startup({ sipLogin: 'sip-as-rtmp-media' })), refused('sipLogin', /PJSIP endpoint/));
    await h.svc.vetStartup(startup()); // the sandbox's far end: 127.0.0.1:5070

    const call = await establishedCall(h, { rtmpUrl: undefined, rtmpStream: undefined, toStream: 'room-t' });
    await assert.rejects(h.svc.pushStartup(validatePushStartup({ streamName: 'room-t', rtmpUrl: 'rtmp://evil.example/live' })), refused('rtmpUrl', /link-local/));
    assert.deepEqual(h.svc.pushFind({ streamName: 'room-t' }), [], 'no push made');
    await assert.rejects(h.svc.injectStream(call.req.callId, 'http://169.254.169.254/latest/meta-data/'), refused('streamName', /link-local/));
    h.svc.terminate(call.req.callId);
    await released(h, call);
  }, {}, { targets, injector: injector as never });
});

test('errors by meaning: NotFoundError for an unknown callId, mediaSessionId or stream', async () => {
  await withHarness(async (h) => {
    assert.throws(() => h.svc.terminate('no-such-call'), (e: unknown) => e instanceof NotFoundError && e.field === 'callId');
    await assert.rejects(h.svc.sendDtmf('no-such-call', '1', 'rfc4733'), (e: unknown) => e instanceof NotFoundError && e.field === 'callId');
    await assert.rejects(h.svc.hold('no-such-call', true), NotFoundError);
    await assert.rejects(h.svc.pushTerminate('no-such-push'), (e: unknown) => e instanceof NotFoundError && e.field === 'mediaSessionId');
    await assert.rejects(h.svc.pushMute('no-such-push', true), (e: unknown) => e instanceof NotFoundError && e.field === 'mediaSessionId');
    assert.throws(() => h.svc.pushSoundOff('no-such-push'), NotFoundError);
    await assert.rejects(
      h.svc.pushStartup(validatePushStartup({ streamName: 'nobody', rtmpUrl: 'rtmp://127.0.0.1:1935/live' })),
      (e: unknown) => e instanceof NotFoundError && e.field === 'streamName',
    );
    assert.deepEqual(h.svc.find({ callId: 'no-such-call' }), []);
  });
});

const limitWarnings = (h: Harness) => h.hooks.filter(([m]) => m === 'CallLimitWarningEvent').map(([, b]) => b);

test('MAX_CALL_DURATION: one warning hook LIMIT_WARNING_SEC before, then hung up as a terminate would be; the timer goes with the call', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h);
    const view = call.view();
    assert.equal(view.maxDuration, 2);
    assert.equal(view.endsAt, new Date(call.answeredAtMs! + 2000).toISOString());
    assert.ok(call.resources.held.includes('limit timer'));
    await until(() => limitWarnings(h).length > 0, 'the warning hook', 3000);
    assert.equal(call.status, 'ESTABLISHED', 'warned before the end');
    assert.deepEqual(limitWarnings(h), [{ nodeId: hostname(), callId: call.req.callId, limit: 'maxCallDuration', limitSec: 2, remainingSec: 1, endsAt: view.endsAt, appKey: '' }]);

    await released(h, call);
    assert.equal(call.status, 'FINISH');
    assert.equal(call.reason, 'NORMAL_CALL_CLEARING');
    assert.equal(call.info, 'call reached MAX_CALL_DURATION (2 s)');
    assert.ok(call.endedAt!.getTime() - call.establishedAt!.getTime() >= 1950, 'not before the limit');
    assert.equal(call.streamStatus, 'UNPUBLISHED');
    assert.ok(h.outputs.sinks[0]!.closed);
    assert.ok(h.pbx.callsTo('hangup').some(([id]) => id === call.channelId), 'hung up');
    assert.deepEqual(call.resources.held, [], 'the limit timer released with the rest');
    assert.equal(limitWarnings(h).length, 1, 'one warning per limit');
  }, { MAX_CALL_DURATION: '2', LIMIT_WARNING_SEC: '1' });
});

test('maxDuration overrides MAX_CALL_DURATION (warned at once when shorter than LIMIT_WARNING_SEC); a call ended earlier leaves no timer behind', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h, { maxDuration: '1' });
    assert.equal(call.view().maxDuration, 1);
    assert.deepEqual(limitWarnings(h).map((w) => [w.limitSec, w.remainingSec]), [[1, 1]]);
    h.svc.terminate(call.req.callId);
    await released(h, call);
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(call.info, 'Terminated', 'the limit never fired after the end');
    assert.deepEqual(call.events.filter((e) => e.type === 'FINISH').length, 1);
    assert.equal(limitWarnings(h).length, 1);
  }, { MAX_CALL_DURATION: '3600' });
});

test('a push to a platform shows its session limit and when it ends; a call without a limit shows none', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h, { rtmpUrl: 'rtmps://live-api-s.facebook.com:443/rtmp/', rtmpStream: 'FB-1234567890-0-AbCd' });
    assert.deepEqual([call.view().maxDuration, call.view().endsAt], [null, null]);
    const [push] = h.svc.pushFind({ streamName: call.req.rtmpStream });
    assert.equal(push?.platform, 'facebook');
    assert.equal(push?.sessionLimitSec, 8 * 3600);
    const endsIn = Date.parse(push!.sessionEndsAt!) - Date.now();
    assert.ok(endsIn > 8 * 3600_000 - 10_000 && endsIn <= 8 * 3600_000, `sessionEndsAt ${push!.sessionEndsAt}`);
    assert.deepEqual(limitWarnings(h), []);
    h.svc.terminate(call.req.callId);
    await released(h, call);
  });
});

test('recordings: record:true from the answer; /recorder/startup of an output; 409 for a second one, 404 for nothing live; DONE as MP4s when the call ends; hooks; find_all', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'svc-rec-'));
  try {
    await withHarness(async (h) => {
      const call = await establishedCall(h, { record: 'true' });
      await until(() => call.recordings.length === 1, 'the call\'s recording');
      const [own] = call.view().recordings;
      assert.deepEqual([own!.status, own!.source, own!.mediaSessionId], ['RECORDING', 'call', call.req.callId]);
      assert.match(own!.fileName, new RegExp(`^${call.req.callId}-\\d{8}-\\d{6}\\.recording\\.flv$`), 'RECORD_FILE_TEMPLATE {streamName}-{date}: the callId without toStream');
      await assert.rejects(h.svc.recorderStartup(call.req.callId), (e: unknown) => e instanceof ConflictError && /being recorded already/.test(e.message));
      await assert.rejects(h.svc.recorderStartup('nothing-here'), NotFoundError);

      const [primary] = h.svc.pushFind({ streamName: call.req.rtmpStream });
      const ofPush = await h.svc.recorderStartup(primary!.mediaSessionId, '{mediaSessionId}');
      assert.deepEqual([ofPush.status, ofPush.source], ['RECORDING', 'push']);
      assert.equal(ofPush.fileName, `${primary!.mediaSessionId}.recording.flv`);
      await new Promise((r) => setTimeout(r, 1500)); // media into both files
      const stopped = await h.svc.recorderTerminate(ofPush.recordingId);
      assert.equal(stopped.status, 'FINALIZING');

      h.svc.terminate(call.req.callId);
      await released(h, call);
      await until(() => h.svc.recorderFindAll({ callId: call.req.callId }).every((r) => r.status === 'DONE' || r.status === 'FAILED'), 'both DONE', 10_000);
      const done = h.svc.recorderFindAll({ callId: call.req.callId });
      assert.deepEqual(done.map((r) => [r.source, r.status, r.reason]), [['call', 'DONE', null], ['push', 'DONE', null]]);
      for (const r of done) {
        assert.match(r.fileName, /\.mp4$/);
        assert.equal(statSync(r.path).size, r.bytes);
        assert.ok(r.durationMs > 1000, `${r.fileName}: ${r.durationMs} ms`);
        assert.equal(r.downloadUrl, `/rest-api/recordings/${r.fileName}`);
      }
      assert.deepEqual(readdirSync(dir).sort(), done.map((r) => r.fileName).sort(), 'only the MP4s are left');
      const events = h.hooks.filter(([m]) => m === 'RecordingStatusEvent').map(([, b]) => `${b.source} ${b.status}`);
      for (const want of ['call RECORDING', 'push RECORDING', 'push FINALIZING', 'push DONE', 'call FINALIZING', 'call DONE']) assert.ok(events.includes(want), `${want} in ${events.join(', ')}`);
      const read = await h.svc.openRecording(done[0]!.fileName, 'bytes=0-9');
      assert.ok(read && !('unsatisfiable' in read) && read.partial && read.end === 9);
      const chunks: Buffer[] = [];
      for await (const c of (read as { stream: AsyncIterable<Buffer> }).stream) chunks.push(c);
      assert.equal(Buffer.concat(chunks).length, 10);
      assert.equal(await h.svc.openRecording('../etc/passwd'), undefined, 'a path is not a name');
    }, {}, { recordings: new FileRecordingStore({ dir }) });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('recording unavailable: without a store, /recorder/startup says it is not configured', async () => {
  await withHarness(async (h) => {
    const call = await establishedCall(h);
    await assert.rejects(h.svc.recorderStartup(call.req.callId), /not configured \(RECORDINGS_DIR\)/);
    h.svc.terminate(call.req.callId);
    await released(h, call);
  });
});
