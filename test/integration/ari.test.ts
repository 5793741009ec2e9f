/**
 * The typed ARI client against the real sandbox Asterisk: originate to real far ends (baresip, sipp),
 * per-call PJSIP objects through dynamic config, digest auth, busy, and clean teardown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AriError } from '../../adapters/ari/errors.js';
import { ariSession, sandboxEnv, uniqueId } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/app.js';

describe('ARI client against the sandbox Asterisk', () => {
  const session = ariSession();
  const { ari, log } = session;
  const env = sandboxEnv();
  before(() => session.open());
  after(() => session.close());

  test('asterisk info answers with version 22', async () => {
    const info = await ari.asterisk.info();
    assert.match(info.system?.version ?? '', /^22\./);
  });

  test('originates a call to the baresip softphone: StasisStart, Up, hangup, ChannelDestroyed', async () => {
    const channelId = uniqueId('soft');
    // Registered before the POST: StasisStart may arrive before the REST answer.
    const started = log.wait('StasisStart', (e) => e.channel.id === channelId);
    const ch = await ari.channels.originate({ endpoint: 'PJSIP/softphone', channelId, timeout: 10, callerId: 'Test <1000>' });
    assert.equal(ch.id, channelId);
    const start = await started;
    assert.equal(start.channel.state, 'Up');
    assert.equal((await ari.channels.get(channelId)).state, 'Up');

    const destroyed = log.wait('ChannelDestroyed', (e) => e.channel.id === channelId);
    await ari.channels.hangup(channelId);
    const d = await destroyed;
    assert.equal(d.cause, 16, `normal clearing, got ${d.cause} ${d.cause_txt}`);
    await assert.rejects(ari.channels.get(channelId), (e: unknown) => e instanceof AriError && e.isNotFound);
  });

  /** Create auth, aor, endpoint for one call, the way the app does. Returns the ids to delete. */
  async function createAccount(id: string, password: string): Promise<void> {
    await ari.pjsip.put('auth', id, { auth_type: 'userpass', username: env.FAR_AUTH_USER!, password });
    await ari.pjsip.put('aor', id, {});
    await ari.pjsip.put('endpoint', id, {
      context: 'sip-as-rtmp-unroutable',
      disallow: 'all',
      allow: 'ulaw',
      outbound_auth: id,
      aors: id,
      from_user: env.FAR_AUTH_USER!,
      from_domain: '127.0.0.1',
      direct_media: 'no',
      media_address: '127.0.0.1',
      bind_rtp_to_media_address: 'yes',
    });
  }

  async function deleteAccount(id: string): Promise<void> {
    // Endpoint first: it refers to the others.
    for (const type of ['endpoint', 'aor', 'auth'] as const) await ari.pjsip.delete(type, id);
  }

  test('per-call PJSIP account answers a digest challenge; objects are gone after delete', async () => {
    const acct = uniqueId('acct');
    await createAccount(acct, env.FAR_AUTH_PASSWORD!);
    try {
      const fields = await ari.pjsip.get('endpoint', acct);
      assert.equal(fields.find((f) => f.attribute === 'from_user')?.value, env.FAR_AUTH_USER);
      const auth = await ari.pjsip.get('auth', acct);
      assert.equal(auth.find((f) => f.attribute === 'username')?.value, env.FAR_AUTH_USER);

      const channelId = uniqueId('auth');
      const started = log.wait('StasisStart', (e) => e.channel.id === channelId);
      const destroyed = log.wait('ChannelDestroyed', (e) => e.channel.id === channelId, 20_000);
      await ari.channels.originate({
        endpoint: `PJSIP/${acct}/sip:far@127.0.0.1:${env.SIPP_AUTH_PORT}`,
        channelId,
        timeout: 10,
      });
      const start = await Promise.race([started, destroyed.then((d) => assert.fail(`call failed: ${d.cause} ${d.cause_txt}`))]);
      assert.equal(start.channel.state, 'Up');
      await ari.channels.hangup(channelId);
      const d = await destroyed;
      assert.equal(d.cause, 16);
    } finally {
      await deleteAccount(acct);
    }
    for (const type of ['endpoint', 'aor', 'auth'] as const) {
      await assert.rejects(ari.pjsip.get(type, acct), (e: unknown) => e instanceof AriError && e.status === 404, `${type} still there`);
    }
  });

  test('a wrong SIP password fails the call (403 from the far end), never reaching Up', async () => {
    const acct = uniqueId('badpw');
    await createAccount(acct, 'not-the-password');
    try {
      const channelId = uniqueId('badpw-call');
      const destroyed = log.wait('ChannelDestroyed', (e) => e.channel.id === channelId, 20_000);
      await ari.channels.originate({ endpoint: `PJSIP/${acct}/sip:far@127.0.0.1:${env.SIPP_AUTH_PORT}`, channelId, timeout: 10 });
      const d = await destroyed;
      assert.notEqual(d.cause, 16, 'must not look like a normal call');
      // Q.850 21 "Call Rejected" is what Asterisk maps SIP 403 to.
      assert.equal(d.cause, 21, `got ${d.cause} ${d.cause_txt}`);
      assert.ok(!log.events.some((e) => e.type === 'StasisStart' && e.channel.id === channelId), 'no StasisStart: never answered');
    } finally {
      await deleteAccount(acct);
    }
  });

  test('a busy far end (486) ends with cause 17 User busy', async () => {
    const channelId = uniqueId('busy');
    const destroyed = log.wait('ChannelDestroyed', (e) => e.channel.id === channelId, 15_000);
    await ari.channels.originate({ endpoint: 'PJSIP/sipp-busy', channelId, timeout: 10 });
    const d = await destroyed;
    assert.equal(d.cause, 17, `got ${d.cause} ${d.cause_txt}`);
  });

  test('REST errors carry the status and Asterisk message', async () => {
    await assert.rejects(ari.channels.hangup('no-such-channel'), (e: unknown) => {
      assert.ok(e instanceof AriError);
      assert.equal(e.status, 404);
      assert.equal(e.ariMessage, 'Channel not found');
      return true;
    });
    // An attribute PJSIP does not know: 400 with Asterisk's reason.
    await assert.rejects(ari.pjsip.put('endpoint', uniqueId('bad'), { no_such_attribute: 'x' }), (e: unknown) => {
      assert.ok(e instanceof AriError);
      assert.equal(e.status, 400);
      assert.match(e.ariMessage, /validation/i);
      return true;
    });
    // A pjsip.conf object cannot be changed over ARI.
    await assert.rejects(ari.pjsip.put('endpoint', 'sip-as-rtmp-media', { allow: 'ulaw' }), (e: unknown) => e instanceof AriError && e.status === 403);
  });

  test('bridges: create a 2-party mixing bridge, add a call, destroy it', async () => {
    const channelId = uniqueId('bridged');
    const started = log.wait('StasisStart', (e) => e.channel.id === channelId);
    await ari.channels.originate({ endpoint: 'PJSIP/sipp-answer', channelId, timeout: 10 });
    await started;
    const bridge = await ari.bridges.create({ type: 'mixing', bridgeId: uniqueId('br') });
    const entered = log.wait('ChannelEnteredBridge', (e) => e.channel.id === channelId);
    await ari.bridges.addChannel(bridge.id, channelId);
    await entered;
    assert.deepEqual((await ari.bridges.get(bridge.id)).channels, [channelId]);
    const destroyed = log.wait('ChannelDestroyed', (e) => e.channel.id === channelId);
    await ari.channels.hangup(channelId);
    await destroyed;
    await ari.bridges.destroy(bridge.id);
    // DELETE can answer a moment before the bridge leaves Asterisk's list (seen once in CI): poll briefly.
    await waitFor(async () => ari.bridges.get(bridge.id).then(() => false, (e: unknown) => e instanceof AriError && e.isNotFound), 2000, 'the bridge is gone');
  });

  test('DTMF and variables on a live channel', async () => {
    const channelId = uniqueId('dtmf');
    const started = log.wait('StasisStart', (e) => e.channel.id === channelId);
    await ari.channels.originate({ endpoint: 'PJSIP/sipp-answer', channelId, timeout: 10 });
    await started;
    await ari.channels.setVariable(channelId, 'SIP_AS_RTMP_TEST', 'yes');
    assert.equal(await ari.channels.getVariable(channelId, 'SIP_AS_RTMP_TEST'), 'yes');
    // Asterisk's RTP source address for the channel (used to match media later).
    assert.match(await ari.channels.getVariable(channelId, 'CHANNEL(rtp,src)'), /^127\.0\.0\.1:\d+$/);
    await ari.channels.sendDtmf(channelId, '12#', { duration: 100, between: 50 });
    const destroyed = log.wait('ChannelDestroyed', (e) => e.channel.id === channelId);
    await ari.channels.hangup(channelId);
    await destroyed;
  });
});
