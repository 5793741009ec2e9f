/**
 * Where the server may be sent (plugin/calls/targets.ts), with a fake resolver: forbidden addresses after
 * resolution, this server's own ports, the PBX's own SIP address and the app's UAS, SIP_ALLOWED_DOMAINS,
 * and sipLogin against the PBX's own PJSIP objects.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidError, UnavailableError } from '../../plugin/calls/errors.js';
import type { HostResolver } from '../../plugin/calls/ports.js';
import { OutboundTargets, TargetRefusedError } from '../../plugin/calls/targets.js';
import { validateStartup } from '../../plugin/calls/validate.js';
import { loadConfig } from '../../plugin/config.js';
import { FakePbx } from '../helpers/fake-pbx.js';
import { DnsResolver } from '../../adapters/net/resolve.js';
import type { StartupRequest } from '../../plugin/calls/types.js';
import { createLogger } from '../../plugin/lib/log.js';
import { buildRestServer } from '../../plugin/rest/server.js';

class FakeResolver implements HostResolver {
  readonly names = new Map<string, string[]>([
    ['localhost', ['127.0.0.1', '::1']],
    ['rtmp.example.com', ['203.0.113.10']],
    ['evil.example', ['169.254.169.254']],
    ['half-evil.example', ['203.0.113.11', 'fe80::1']],
    ['mapped.example', ['::ffff:169.254.169.254']],
    ['pbx.example.com', ['10.0.0.5']],
    ['lan.example', ['10.1.2.3']],
  ]);
  lookups = 0;
  local = ['127.0.0.1', '::1', '10.1.2.3'];
  async resolveAll(host: string): Promise<string[]> {
    this.lookups++;
    const a = this.names.get(host.toLowerCase());
    if (!a) throw Object.assign(new Error('no such host'), { code: 'ENOTFOUND' });
    return a;
  }
  localAddresses(): string[] {
    return this.local;
  }
}

const OWN_PORTS = [8081, 5090, 20000];

function setup(env: Record<string, string> = {}) {
  const config = loadConfig({ ARI_PASSWORD: 's', ...env });
  const resolver = new FakeResolver();
  const pbx = new FakePbx();
  const t = new OutboundTargets({ config, resolver, pbx, ownPort: (p) => OWN_PORTS.includes(p) });
  return { t, resolver, pbx };
}

const refused = (field: string, re: RegExp) => (e: unknown) => e instanceof InvalidError && e.field === field && re.test(e.message);

const startup = (extra: Record<string, unknown>) =>
  validateStartup({ callId: 'c1', callee: '100', sipDomain: 'pbx.example.com', rtmpUrl: 'rtmp://rtmp.example.com/live', rtmpStream: 's', ...extra });

test('outputs: link-local and metadata refused, by literal, by name, after resolution (any one address)', async () => {
  const { t } = setup();
  await assert.rejects(t.checkOutput('rtmpUrl', '169.254.169.254', 1935), refused('rtmpUrl', /host 169\.254\.169\.254 is a link-local address; refused/));
  await assert.rejects(t.checkOutput('rtmpUrl', '0xA9FEA9FE', 1935), refused('rtmpUrl', /link-local/));
  await assert.rejects(t.checkOutput('rtmpUrl', 'evil.example', 1935), refused('rtmpUrl', /evil\.example resolves to a link-local address/));
  await assert.rejects(t.checkOutput('rtmpUrl', 'half-evil.example', 1935), refused('rtmpUrl', /resolves to a link-local/));
  await assert.rejects(t.checkOutput('rtmpUrl', 'mapped.example', 1935), refused('rtmpUrl', /link-local/));
  await assert.rejects(t.checkOutput('rtmpUrl', 'metadata.google.internal', 80), refused('rtmpUrl', /cloud metadata name/));
  await assert.rejects(t.checkOutput('rtmpUrl', 'nowhere.example', 1935), refused('rtmpUrl', /does not resolve \(no such host\)/));
  await t.checkOutput('rtmpUrl', 'rtmp.example.com', 1935);
  await t.checkOutput('rtmpUrl', '10.0.0.7', 1935); // private ranges are fine
  await t.checkOutput('rtmpUrl', '127.0.0.1', 1935); // loopback at another port too
});

test("outputs: this server's own ports on loopback, 0.0.0.0 or an own interface are refused; elsewhere fine", async () => {
  const { t } = setup();
  for (const [host, port] of [['127.0.0.1', 8081], ['localhost', 5090], ['::1', 20000], ['0.0.0.0', 8081], ['10.1.2.3', 8081], ['lan.example', 8081], ['127.0.0.2', 8081], ['2130706433', 8081]] as const) {
    await assert.rejects(t.checkOutput('rtmpUrl', host, port), refused('rtmpUrl', new RegExp(`this server's own port ${port}; refused`)), `${host}:${port}`);
  }
  await t.checkOutput('rtmpUrl', '10.9.9.9', 8081); // another machine's 8081
  await t.checkOutput('rtmpUrl', '127.0.0.1', 8082);
});

test('connect time: the checked address is returned; a name that now resolves somewhere forbidden is refused (DNS rebinding)', async () => {
  const { t, resolver } = setup();
  assert.equal(await t.connectAddress('rtmpUrl', 'rtmp.example.com', 1935), '203.0.113.10');
  assert.equal(await t.connectAddress('rtmpUrl', '127.1', 1935), '127.0.0.1');
  resolver.names.set('rtmp.example.com', ['169.254.169.254']);
  await assert.rejects(t.connectAddress('rtmpUrl', 'rtmp.example.com', 1935), (e: unknown) => e instanceof TargetRefusedError && e.code === 'EFORBIDDEN' && /resolves to a link-local/.test(e.message));
  resolver.names.set('rtmp.example.com', ['127.0.0.1']);
  await assert.rejects(t.connectAddress('rtmpUrl', 'rtmp.example.com', 8081), (e: unknown) => e instanceof TargetRefusedError && /own port 8081/.test(e.message));
  await assert.rejects(t.connectAddress('rtmpUrl', 'nowhere.example', 1935), (e: unknown) => (e as { code?: string }).code === 'ENOTFOUND');
});

test('URLs the server fetches (inject_stream, hooks): the host, never the credentials or the path, decides and is shown', async () => {
  const { t } = setup();
  await assert.rejects(t.checkUrl('streamName', 'http://169.254.169.254/latest/meta-data/'), refused('streamName', /link-local/));
  await assert.rejects(t.checkUrl('streamName', 'rtmp://user:pa@ss@2852039166/app/secretkey'), (e: unknown) => {
    assert.ok(e instanceof InvalidError);
    assert.doesNotMatch(e.message, /pa@ss|secretkey|user/);
    return /link-local/.test(e.message);
  });
  await assert.rejects(t.checkUrl('streamName', 'https://[fd00:ec2::254]/'), refused('streamName', /cloud metadata/));
  await t.checkUrl('streamName', 'rtmp://rtmp.example.com/live/x');
  await assert.rejects(t.checkUrlNow('HOOK_URL', 'http://evil.example:8080/hooks'), (e: unknown) => e instanceof TargetRefusedError && /HOOK_URL's host evil\.example resolves to a link-local/.test(e.message));
  await t.checkUrlNow('HOOK_URL', 'http://127.0.0.1:9999/hooks'); // a local backend is fine
});

test("SIP: the PBX's own SIP address (PBX_SIP_ADDRESSES, loopback equivalents) and the app's UAS are refused, naming the field", async () => {
  const { t } = setup();
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ sipDomain: '127.0.0.1' }, 'sipDomain', /127\.0\.0\.1:5060 is the PBX's own SIP address/],
    [{ sipDomain: '127.0.0.1:5060' }, 'sipDomain', /PBX's own/],
    [{ sipDomain: 'localhost' }, 'sipDomain', /PBX's own/],
    [{ sipDomain: '[::1]:5060' }, 'sipDomain', /PBX's own/],
    [{ sipDomain: '10.1.2.3' }, 'sipDomain', /PBX's own/], // an own interface: Asterisk on 0.0.0.0 answers there too
    [{ sipDomain: '127.0.0.1', sipPort: 5060 }, 'sipDomain', /PBX's own/],
    [{ sipDomain: '127.0.0.1:5090' }, 'sipDomain', /media-leg SIP service/],
    [{ sipDomain: '', callee: 'sip:100@127.0.0.1' }, 'callee', /PBX's own/],
    [{ sipDomain: '', callee: 'sip:media@127.0.0.1:5090' }, 'callee', /media-leg/],
    [{ sipDomain: 'pbx.example.com', sipOutboundProxy: '127.0.0.1' }, 'sipOutboundProxy', /PBX's own/],
    [{ sipDomain: 'pbx.example.com', sipOutboundProxy: '127.0.0.1', sipPort: 5090 }, 'sipOutboundProxy', /media-leg/],
  ];
  for (const [body, field, re] of cases) await assert.rejects(t.checkSip(startup(body)), refused(field, re), JSON.stringify(body));
  // The sandbox's far ends: 127.0.0.1 at other ports.
  for (const body of [{ sipDomain: '127.0.0.1:5070' }, { sipDomain: '127.0.0.1', sipPort: 5080 }, { sipDomain: '127.0.0.1', sipOutboundProxy: '127.0.0.1', sipPort: 5080 },
    { sipDomain: '', callee: 'sip:softphone@127.0.0.1:5082' }, { sipDomain: 'pbx.example.com' }, { sipDomain: '10.0.0.9' }]) {
    await t.checkSip(startup(body));
  }
});

test('SIP: PBX_SIP_ADDRESSES elsewhere, ALLOW_SELF_SIP_TARGETS, and link-local never', async () => {
  const remote = setup({ PBX_SIP_ADDRESSES: 'pbx.example.com:5060, 10.0.0.6' });
  await assert.rejects(remote.t.checkSip(startup({ sipDomain: 'pbx.example.com' })), refused('sipDomain', /PBX's own/));
  await assert.rejects(remote.t.checkSip(startup({ sipDomain: '10.0.0.5:5060' })), refused('sipDomain', /PBX's own/)); // its address
  await assert.rejects(remote.t.checkSip(startup({ sipDomain: '10.0.0.6' })), refused('sipDomain', /PBX's own/)); // no port: 5060
  await remote.t.checkSip(startup({ sipDomain: 'pbx.example.com:5061' }));
  await assert.rejects(remote.t.checkSip(startup({ sipDomain: '127.0.0.1:5090' })), refused('sipDomain', /media-leg/)); // the UAS is always here

  const allowed = setup({ ALLOW_SELF_SIP_TARGETS: 'true' });
  await allowed.t.checkSip(startup({ sipDomain: '127.0.0.1' }));
  await allowed.t.checkSip(startup({ sipDomain: '127.0.0.1:5090' }));
  await assert.rejects(allowed.t.checkSip(startup({ sipDomain: '169.254.169.254' })), refused('sipDomain', /link-local/));
  await assert.rejects(allowed.t.checkSip(startup({ sipDomain: 'evil.example' })), refused('sipDomain', /resolves to a link-local/));
  await assert.rejects(allowed.t.checkSip(startup({ sipOutboundProxy: 'metadata' })), refused('sipOutboundProxy', /metadata name/));
  await assert.rejects(allowed.t.checkSip(startup({ sipDomain: 'nowhere.example' })), refused('sipDomain', /does not resolve/));
});

test('SIP_ALLOWED_DOMAINS: sipDomain, sipOutboundProxy and a callee URI host must match (exact or *.suffix)', async () => {
  const { t } = setup({ SIP_ALLOWED_DOMAINS: 'pbx.example.com, *.example.net' });
  await t.checkSip(startup({ sipDomain: 'PBX.example.com' }));
  await assert.rejects(t.checkSip(startup({ sipDomain: 'lan.example' })), refused('sipDomain', /lan\.example is not allowed \(SIP_ALLOWED_DOMAINS\)/));
  await assert.rejects(t.checkSip(startup({ sipDomain: '', callee: 'sip:100@10.0.0.9' })), refused('callee', /not allowed \(SIP_ALLOWED_DOMAINS\)/));
  await assert.rejects(t.checkSip(startup({ sipOutboundProxy: 'lan.example' })), refused('sipOutboundProxy', /not allowed/));
});

test("sipLogin / sipAuthenticationName equal to one of the PBX's own PJSIP objects is refused; checked only when connected", async () => {
  const { t, pbx } = setup();
  await assert.rejects(t.checkSip(startup({ sipLogin: 'sip-as-rtmp-media' })), refused('sipLogin', /sip-as-rtmp-media is the name of a PJSIP endpoint\/aor on the PBX/));
  pbx.sipObjects.set('trunk-auth', ['auth']);
  await assert.rejects(t.checkSip(startup({ sipLogin: 'alice', sipAuthenticationName: 'trunk-auth' })), refused('sipAuthenticationName', /PJSIP auth/));
  await t.checkSip(startup({ sipLogin: 'alice', sipPassword: 'x' }));
  assert.ok(pbx.history.some((r) => r.method === 'sipObjectsNamed' && r.args[0] === 'alice'));
  pbx.sipObjectsNamed = async () => {
    throw new Error('ARI down');
  };
  await assert.rejects(t.checkSip(startup({ sipLogin: 'alice' })), (e: unknown) => e instanceof UnavailableError && e.field === 'sipLogin');
  const offline = new OutboundTargets({ config: loadConfig({ ARI_PASSWORD: 's' }), resolver: new FakeResolver(), pbx: new FakePbx({ connected: false }), ownPort: () => false });
  await offline.checkSip(startup({ sipLogin: 'sip-as-rtmp-media' }));
});

test('DnsResolver: every address of localhost, IP literals as they are, a time limit, the code kept, this host\'s addresses', async () => {
  const real = new DnsResolver();
  const local = await real.resolveAll('localhost');
  assert.ok(local.some((a) => a === '127.0.0.1' || a === '::1'), local.join());
  assert.deepEqual(await real.resolveAll('10.0.0.1'), ['10.0.0.1']);
  assert.ok(real.localAddresses().includes('127.0.0.1'));
  const hanging = new DnsResolver({ timeoutMs: 50, lookup: () => new Promise(() => {}) });
  await assert.rejects(hanging.resolveAll('slow.example'), (e: unknown) => (e as { code?: string }).code === 'ETIMEOUT' && /DNS timeout/.test((e as Error).message));
  const missing = new DnsResolver({ lookup: async () => Promise.reject(Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' })) });
  await assert.rejects(missing.resolveAll('x.example'), (e: unknown) => (e as { code?: string }).code === 'ENOTFOUND' && (e as Error).message === 'no such host');
  const many = new DnsResolver({ lookup: async () => [{ address: '203.0.113.1' }, { address: 'fe80::1' }] });
  assert.deepEqual(await many.resolveAll('two.example'), ['203.0.113.1', 'fe80::1']);
});

test('REST: /call/startup refused by the target checks is a 400 {status, error, field}, and nothing is started', async () => {
  const { t } = setup();
  const started: string[] = [];
  const calls = { vetStartup: (r: StartupRequest) => Promise.all([r.target ? t.checkOutput('rtmpUrl', r.target.host, r.target.port) : undefined, t.checkSip(r)]), reserve: async () => {}, unreserve: async () => {}, startup: (r: StartupRequest) => void started.push(r.callId) };
  const app = buildRestServer({ prefix: '/rest-api', log: createLogger({ level: 'silent' }), calls: calls as never, streamPrefix: 'rtmp_' });
  const post = (over: Record<string, unknown>) => app.inject({ method: 'POST', url: '/rest-api/call/startup', payload: { callId: 'r1', callee: '100', sipDomain: 'pbx.example.com', rtmpUrl: 'rtmp://rtmp.example.com/live', rtmpStream: 'secretkey', ...over } });
  try {
    const meta = await post({ rtmpUrl: 'rtmp://user:hunter2@evil.example/live' });
    assert.equal(meta.statusCode, 400);
    const body = JSON.parse(meta.body) as { status: number; error: string; field: string };
    assert.deepEqual([body.status, body.field], [400, 'rtmpUrl']);
    assert.match(body.error, /^rtmpUrl's host evil\.example resolves to a link-local address; refused/);
    assert.doesNotMatch(meta.body, /hunter2|secretkey/);
    assert.equal(JSON.parse((await post({ sipDomain: '127.0.0.1' })).body).field, 'sipDomain');
    assert.equal(JSON.parse((await post({ sipLogin: 'sip-as-rtmp-media' })).body).field, 'sipLogin');
    assert.deepEqual(started, []);
    assert.equal((await post({})).statusCode, 200);
    assert.deepEqual(started, ['r1']);
  } finally {
    await app.close();
  }
});
