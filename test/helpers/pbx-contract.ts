/**
 * What the call core relies on from any PBX behind the `Pbx` port (plugin/calls/ports.ts), as node:test
 * tests: `pbxContract(name, open)` registers them against the PBX `open()` gives, with its far ends.
 * test/unit/pbx-contract-fake.test.ts runs them against FakePbx, and
 * test/integration/pbx-contract-asterisk.test.ts against AsteriskPbx on the sandbox, so the fake the
 * core's unit tests use stays honest.
 *
 * Only what both can pass is here: no inbound calls (Asterisk's come from its dialplan) and no lost
 * connection (that needs Asterisk restarted).
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, afterEach, before, describe, test } from 'node:test';
import type { AccountSpec, MediaLegServer, Pbx, PbxEvent } from '../../plugin/calls/ports.js';
import { answerLegOffer } from '../../plugin/sip/negotiate.js';
import type { CodecPreference, SdpSession } from '../../plugin/sip/sdp.js';

/** The far ends the PBX can dial, as dial() targets, and how they behave. */
export interface FarEnds {
  /** Rings (180), then answers speaking PCMU (ulaw). */
  answers: string;
  /** Answers 486 Busy Here. */
  busy: string;
  /** Answers, then hangs up itself (BYE) within a few seconds. */
  hangsUp?: string;
  /** Answers, then sends the digit 1 (RFC 4733) within a few seconds. */
  sendsDtmf?: string;
}

export interface PbxUnderTest {
  pbx: Pbx;
  far: FarEnds;
  /** The media-leg server dialMediaLeg's URIs reach (the app's UAS). */
  uas: MediaLegServer;
  /** The longest wait for the far end to act. */
  timeoutMs: number;
  close(): Promise<void>;
}

/** Every event of a PBX from its creation, so a test can wait for one that may already have come. */
export class PbxEventLog {
  readonly events: PbxEvent[] = [];
  private waiters: { match: (e: PbxEvent) => boolean; done: (e: PbxEvent) => void }[] = [];
  private readonly onEvent = (e: PbxEvent) => {
    this.events.push(e);
    const due = this.waiters.filter((w) => w.match(e));
    this.waiters = this.waiters.filter((w) => !due.includes(w));
    for (const w of due) w.done(e);
  };

  constructor(private readonly pbx: Pbx) {
    pbx.on('event', this.onEvent);
  }

  stop(): void {
    this.pbx.off('event', this.onEvent);
  }

  of(channelId: string): PbxEvent[] {
    return this.events.filter((e) => e.channelId === channelId);
  }

  /** The first event of this kind for the channel, past or future. */
  wait<K extends PbxEvent['kind']>(kind: K, channelId: string, timeoutMs: number): Promise<Extract<PbxEvent, { kind: K }>> {
    const match = (e: PbxEvent) => e.kind === kind && e.channelId === channelId;
    const past = this.events.find(match);
    if (past) return Promise.resolve(past as Extract<PbxEvent, { kind: K }>);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.done !== done);
        const seen = this.of(channelId).map((e) => e.kind).join(', ');
        reject(new Error(`no ${kind} for ${channelId} within ${timeoutMs} ms; saw: ${seen || 'nothing'}`));
      }, timeoutMs);
      const done = (e: PbxEvent) => {
        clearTimeout(timer);
        resolve(e as Extract<PbxEvent, { kind: K }>);
      };
      this.waiters.push({ match, done });
    });
  }
}

let counter = 0;
const newId = (what: string) => `contract-${what}-${process.pid}-${Date.now().toString(36)}-${++counter}`;

const ULAW: CodecPreference = { encoding: 'PCMU', clockRate: 8000 };
const SLIN16: CodecPreference = { encoding: 'L16', clockRate: 16000 };

export function pbxContract(name: string, open: () => Promise<PbxUnderTest>): void {
  describe(`Pbx contract: ${name}`, () => {
    let s: PbxUnderTest;
    let log: PbxEventLog;
    /** Channels and accounts a test made: hung up and deleted after it, whatever happened. */
    let channels: string[] = [];
    let accounts: string[] = [];
    let sockets: Socket[] = [];

    before(async () => {
      s = await open();
      log = new PbxEventLog(s.pbx);
    });
    afterEach(async () => {
      for (const id of channels) await s.pbx.hangup(id).catch(() => {});
      for (const id of accounts) await s.pbx.deleteAccount(id).catch(() => {});
      for (const sock of sockets) sock.close();
      if (s.pbx.channelExists) for (const id of channels) await gone(id);
      channels = [];
      accounts = [];
      sockets = [];
    });
    after(async () => {
      log?.stop();
      await s?.close();
    });

    /** Until channelExists says it is gone (Asterisk drops a channel a moment after its hangup). */
    async function gone(id: string): Promise<void> {
      const t0 = Date.now();
      while (await s.pbx.channelExists!(id)) {
        if (Date.now() - t0 > s.timeoutMs) assert.fail(`channel ${id} still exists`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    /** Dial a far end and wait for its answer. */
    async function answeredCall(opts: { accountId?: string; target?: string } = {}): Promise<string> {
      const channelId = newId('call');
      channels.push(channelId);
      await s.pbx.dial({ channelId, target: opts.target ?? s.far.answers, timeoutSec: 10, ...(opts.accountId ? { accountId: opts.accountId } : {}) });
      await log.wait('answered', channelId, s.timeoutMs);
      return channelId;
    }

    const spec = (user: string): AccountSpec => ({ authUser: user, password: 'contract-pw', fromUser: user, fromDomain: '127.0.0.1' });

    test('is connected once up', () => {
      assert.equal(s.pbx.connected, true);
    });

    test('createAccount and deleteAccount are idempotent', async () => {
      const id = newId('acct');
      accounts.push(id);
      await s.pbx.createAccount(id, spec('alice'));
      await s.pbx.createAccount(id, spec('alice2')); // again: replaced, not refused
      await s.pbx.deleteAccount(id);
      await s.pbx.deleteAccount(id);
    });

    test('hangup, destroyBridge and deleteAccount of unknown ids do not throw', async () => {
      await s.pbx.hangup(newId('nochannel'));
      await s.pbx.destroyBridge(newId('nobridge'));
      await s.pbx.deleteAccount(newId('noacct'));
    });

    test('channelExists is false for an unknown channel', async (t) => {
      if (!s.pbx.channelExists) return t.skip('channelExists not implemented');
      assert.equal(await s.pbx.channelExists(newId('nochannel')), false);
    });

    test('dial a callee that answers: answered for that channel id, and the channel exists', async () => {
      const id = await answeredCall();
      assert.ok(!log.of(id).some((e) => e.kind === 'hangup'), 'no hangup before we hang up');
      if (s.pbx.channelExists) assert.equal(await s.pbx.channelExists(id), true);
    });

    test('a callee that sends 180 Ringing: ringing comes before answered', async () => {
      const id = await answeredCall();
      const kinds = log.of(id).map((e) => e.kind);
      assert.ok(kinds.includes('ringing'), `events: ${kinds.join(', ')}`);
      assert.ok(kinds.indexOf('ringing') < kinds.indexOf('answered'), `events: ${kinds.join(', ')}`);
    });

    test('hangup of an answered call: a hangup event with cause 16, and the channel is gone', async () => {
      const id = await answeredCall();
      await s.pbx.hangup(id);
      const h = await log.wait('hangup', id, s.timeoutMs);
      assert.equal(typeof h.causeText, 'string');
      assert.equal(h.cause, 16, `${h.cause} ${h.causeText}`);
      if (s.pbx.channelExists) await gone(id);
      await s.pbx.hangup(id); // again: already gone is fine
    });

    test('dial through a per-call account (createAccount) reaches the callee', async () => {
      const acct = newId('acct');
      accounts.push(acct);
      await s.pbx.createAccount(acct, spec('contract'));
      const id = await answeredCall({ accountId: acct });
      await s.pbx.hangup(id);
      await log.wait('hangup', id, s.timeoutMs);
      await s.pbx.deleteAccount(acct);
    });

    test('dial with a channel id already in use is refused', async () => {
      const id = await answeredCall();
      await assert.rejects(s.pbx.dial({ channelId: id, target: s.far.answers, timeoutSec: 10 }));
      assert.equal(log.of(id).filter((e) => e.kind === 'answered').length, 1);
    });

    test('a busy callee: a hangup with sipStatus 486 (or cause 17), never answered', async (t) => {
      const id = newId('busy');
      channels.push(id);
      await s.pbx.dial({ channelId: id, target: s.far.busy, timeoutSec: 10 });
      const h = await log.wait('hangup', id, s.timeoutMs);
      t.diagnostic(`cause ${h.cause} ${h.causeText}, sipStatus ${h.sipStatus}`);
      assert.ok(h.sipStatus === 486 || h.cause === 17, `cause ${h.cause} ${h.causeText}, sipStatus ${h.sipStatus}`);
      assert.ok(!log.of(id).some((e) => e.kind === 'answered'));
      if (s.pbx.channelExists) await gone(id);
    });

    test('nativeAudioCodec of an answered ulaw call is PCMU/8000', async (t) => {
      if (!s.pbx.nativeAudioCodec) return t.skip('nativeAudioCodec not implemented');
      const id = await answeredCall();
      assert.deepEqual(await s.pbx.nativeAudioCodec(id), ULAW);
    });

    test('bridges: create, add an answered channel, destroy (twice)', async () => {
      const id = await answeredCall();
      const bridgeId = newId('bridge');
      await s.pbx.createBridge(bridgeId);
      try {
        await s.pbx.addToBridge(bridgeId, [id]);
      } finally {
        await s.pbx.destroyBridge(bridgeId);
      }
      await s.pbx.destroyBridge(bridgeId);
      // The channel outlives its bridge.
      if (s.pbx.channelExists) assert.equal(await s.pbx.channelExists(id), true);
    });

    test('addToBridge of an unknown bridge is refused', async () => {
      const id = await answeredCall();
      await assert.rejects(s.pbx.addToBridge(newId('nobridge'), [id]));
    });

    /** Have the PBX dial a media leg to our UAS; the offer it made, once the leg answered. */
    async function mediaLeg(codecs: CodecPreference[], video: boolean): Promise<{ id: string; offer: SdpSession }> {
      const id = newId('leg');
      channels.push(id);
      const token = newId('token');
      const sock = createSocket('udp4');
      sockets.push(sock);
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      let offer: SdpSession | undefined;
      const forget = s.uas.expect(token, (o) => {
        offer = o;
        const a = answerLegOffer(o, { audioPrefs: codecs, audioPort: sock.address().port, address: '127.0.0.1', sessionId: 1, version: 1 });
        return 'sdp' in a ? { sdp: a.sdp } : a;
      });
      try {
        await s.pbx.dialMediaLeg({ channelId: id, uri: s.uas.uriFor(token), codecs, video });
        await log.wait('answered', id, s.timeoutMs);
      } finally {
        forget();
      }
      assert.ok(offer, 'the media-leg server got an offer');
      return { id, offer };
    }

    const audioCodecs = (offer: SdpSession) =>
      (offer.media.find((m) => m.kind === 'audio')?.formats ?? []).filter((f) => f.encoding !== 'TELEPHONE-EVENT').map((f) => `${f.encoding}/${f.clockRate}`);

    for (const order of [[ULAW, SLIN16], [SLIN16, ULAW]]) {
      const names = order.map((c) => `${c.encoding}/${c.clockRate}`);
      test(`dialMediaLeg offers the codecs in the given order (${names.join(', ')}), and the leg answers`, async () => {
        const { offer } = await mediaLeg(order, false);
        assert.deepEqual(audioCodecs(offer), names);
        assert.ok(!offer.media.some((m) => m.kind === 'video' && m.port !== 0), 'no video offered');
      });
    }

    test('dialMediaLeg with video offers H.264 too', async () => {
      const { offer } = await mediaLeg([SLIN16], true);
      const video = offer.media.find((m) => m.kind === 'video');
      assert.ok(video?.formats.some((f) => f.encoding === 'H264' && f.clockRate === 90000), JSON.stringify(offer.media));
    });

    test('hangup of a media leg: a hangup event for it', async () => {
      const { id } = await mediaLeg([ULAW], false);
      await s.pbx.hangup(id);
      await log.wait('hangup', id, s.timeoutMs);
      if (s.pbx.channelExists) await gone(id);
    });

    test('a bridged callee that hangs up: a hangup event with cause 16', async (t) => {
      if (!s.far.hangsUp) return t.skip('no such far end');
      const id = await answeredCall({ target: s.far.hangsUp });
      // In a bridge, as a relayed call is (Asterisk reports cause 0 "Unknown" for a BYE on a channel in no bridge).
      const bridgeId = newId('bridge');
      await s.pbx.createBridge(bridgeId);
      try {
        await s.pbx.addToBridge(bridgeId, [id]);
        const h = await log.wait('hangup', id, s.timeoutMs);
        assert.equal(h.cause, 16, `${h.cause} ${h.causeText}`);
      } finally {
        await s.pbx.destroyBridge(bridgeId);
      }
    });

    test('a callee that sends DTMF: a dtmf event with its digit', async (t) => {
      if (!s.far.sendsDtmf) return t.skip('no such far end');
      const id = await answeredCall({ target: s.far.sendsDtmf });
      const d = await log.wait('dtmf', id, s.timeoutMs);
      assert.equal(d.digit, '1');
      assert.ok(d.durationMs >= 0);
    });
  });
}
