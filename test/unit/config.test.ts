import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, describeConfig, loadConfig } from '../../plugin/config.js';

test('defaults: WCS port 8081 and /rest-api, ARI on loopback', () => {
  const c = loadConfig({ ARI_PASSWORD: 's' });
  assert.deepEqual(c.rest, { host: '127.0.0.1', port: 8081, prefix: '/rest-api', hostnames: [], corsOrigins: [], apiToken: '', httpsPort: null, tlsCertFile: '', tlsKeyFile: '' });
  assert.deepEqual(c.http, { headersTimeoutMs: 10000, requestTimeoutMs: 30000, keepAliveTimeoutMs: 5000, maxConnections: 1000 });
  assert.deepEqual(c.hooks, { url: '', timeoutMs: 5000, queueMax: 1000, apps: new Map(), nodeId: hostname(), approve: false });
  assert.deepEqual(c.ari, { url: 'http://127.0.0.1:8088', user: 'sip-as-rtmp', password: 's', app: 'sip-as-rtmp', maxConnections: 32, bridge: 'native' });
  assert.equal(c.shutdownTimeoutMs, 10_000);
  assert.deepEqual(c.sipUas, { host: '127.0.0.1', port: 5090 });
  assert.deepEqual(c.rtp, { portMin: 20000, portMax: 20999 });
});

test('ARI_PASSWORD is required', () => {
  assert.throws(() => loadConfig({}), (e: unknown) => e instanceof ConfigError && /ARI_PASSWORD is required/.test(e.message));
});

test('bad values name the variable', () => {
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', REST_PORT: '80a' }), /REST_PORT must be a port number/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', REST_PORT: '70000' }), /REST_PORT/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', ARI_URL: 'ftp://x' }), /ARI_URL must be http/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', ARI_URL: 'http://u:p@x' }), /must not carry credentials/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', REST_PREFIX: 'rest api' }), /REST_PREFIX/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', RTP_PORT_MIN: '3000', RTP_PORT_MAX: '2000' }), /RTP_PORT_MIN/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', LOG_LEVEL: 'loud' }), /LOG_LEVEL/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', ARI_MAX_CONNECTIONS: '0' }), /ARI_MAX_CONNECTIONS must be a whole number 1-1000/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', SHUTDOWN_TIMEOUT_MS: '500' }), /SHUTDOWN_TIMEOUT_MS must be a whole number 1000-600000/);
});

test('a JSON file sets values; the environment wins over it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const f = join(dir, 'c.json');
  writeFileSync(f, JSON.stringify({ ARI_PASSWORD: 'from-file', REST_PORT: 9000, REST_HOST: '0.0.0.0', API_TOKEN: 't0ken-0123456789abcdef' }));
  const c = loadConfig({ CONFIG_FILE: f, REST_PORT: '9100' });
  assert.equal(c.ari.password, 'from-file');
  assert.equal(c.rest.port, 9100);
  assert.equal(c.rest.host, '0.0.0.0');
  writeFileSync(f, JSON.stringify({ ARI_PASWORD: 'typo' }));
  assert.throws(() => loadConfig({ CONFIG_FILE: f }), /unknown setting ARI_PASWORD/);
  writeFileSync(f, '{not json');
  assert.throws(() => loadConfig({ CONFIG_FILE: f }), /CONFIG_FILE/);
});

test('beyond loopback an API token is required; HOOK_URL must be http(s); CORS_ORIGINS is a list', () => {
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', REST_HOST: '0.0.0.0' }), /API_TOKEN is required when REST_HOST \(0.0.0.0\)/);
  assert.equal(loadConfig({ ARI_PASSWORD: 's', REST_HOST: '::1' }).rest.host, '::1');
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', HOOK_URL: 'ftp://x/y' }), /HOOK_URL must be an http/);
  assert.equal(loadConfig({ ARI_PASSWORD: 's', HOOK_URL: 'http://127.0.0.1:9/hook' }).hooks.url, 'http://127.0.0.1:9/hook');
  assert.deepEqual(loadConfig({ ARI_PASSWORD: 's', CORS_ORIGINS: 'https://A.example, *', API_TOKEN: TOKEN }).rest.corsOrigins, ['https://a.example', '*']);
  assert.ok(!JSON.stringify(describeConfig(loadConfig({ ARI_PASSWORD: 's', API_TOKEN: 'sekrit-tok-0123456789' }))).includes('sekrit-tok'));
});

test('describeConfig hides the ARI password', () => {
  const shown = JSON.stringify(describeConfig(loadConfig({ ARI_PASSWORD: 'hunter2' })));
  assert.ok(!shown.includes('hunter2'));
});

test('GENERATE_AV_FOR_UA: a comma-separated list, lower-cased; empty by default; a JSON array works too', () => {
  assert.deepEqual(loadConfig({ ARI_PASSWORD: 's' }).media.generateAvForUa, []);
  assert.deepEqual(loadConfig({ ARI_PASSWORD: 's', GENERATE_AV_FOR_UA: ' Polycom, ,Yealink ' }).media.generateAvForUa, ['polycom', 'yealink']);
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ ARI_PASSWORD: 's', GENERATE_AV_FOR_UA: ['all'] }));
  assert.deepEqual(loadConfig({ CONFIG_FILE: join(dir, 'c.json') }).media.generateAvForUa, ['all']);
});

test('RTMP reconnect settings and RTMP_FAILURE_ACTION (hangup or continue); RTMP_ALLOWED_HOSTS; RTP_TIMEOUT_SEC', () => {
  const c = loadConfig({ ARI_PASSWORD: 's' });
  assert.deepEqual([c.rtmp.reconnectAttempts, c.rtmp.reconnectMaxMs, c.rtmp.failureAction, c.rtmp.allowedHosts, c.calls.rtpTimeoutSec], [30, 2000, 'hangup', [], 30]);
  assert.equal(loadConfig({ ARI_PASSWORD: 's', RTMP_FAILURE_ACTION: 'continue' }).rtmp.failureAction, 'continue');
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', RTMP_FAILURE_ACTION: 'retry' }), /RTMP_FAILURE_ACTION must be one of hangup, continue/);
  assert.deepEqual(loadConfig({ ARI_PASSWORD: 's', RTMP_ALLOWED_HOSTS: 'A.rtmp.youtube.com,live-api-s.facebook.com' }).rtmp.allowedHosts, ['a.rtmp.youtube.com', 'live-api-s.facebook.com']);
});

test('SIP_ALLOWED_DOMAINS, PBX_SIP_ADDRESSES (default 127.0.0.1:5060, host[:port] entries) and ALLOW_SELF_SIP_TARGETS (off)', () => {
  const c = loadConfig({ ARI_PASSWORD: 's' });
  assert.deepEqual([c.sip.allowedDomains, c.sip.pbxAddresses, c.sip.allowSelfTargets], [[], ['127.0.0.1:5060'], false]);
  const d = loadConfig({ ARI_PASSWORD: 's', SIP_ALLOWED_DOMAINS: 'PBX.example.com, *.sip.example.net', PBX_SIP_ADDRESSES: '10.0.0.5:5060, [::1]:5061,pbx.lan', ALLOW_SELF_SIP_TARGETS: 'true' });
  assert.deepEqual([d.sip.allowedDomains, d.sip.pbxAddresses, d.sip.allowSelfTargets], [['pbx.example.com', '*.sip.example.net'], ['10.0.0.5:5060', '[::1]:5061', 'pbx.lan'], true]);
  for (const bad of ['10.0.0.5:99999', '::1:5060', 'sip:pbx', 'a b']) {
    assert.throws(() => loadConfig({ ARI_PASSWORD: 's', PBX_SIP_ADDRESSES: bad }), /PBX_SIP_ADDRESSES must list host:port entries/, bad);
  }
});

test('MAX_CALL_DURATION (0: no limit, the default) and LIMIT_WARNING_SEC (300; 0: no warnings), whole seconds', () => {
  const c = loadConfig({ ARI_PASSWORD: 's' });
  assert.deepEqual([c.calls.maxDurationSec, c.calls.limitWarningSec], [0, 300]);
  const short = loadConfig({ ARI_PASSWORD: 's', MAX_CALL_DURATION: '2', LIMIT_WARNING_SEC: '1' });
  assert.deepEqual([short.calls.maxDurationSec, short.calls.limitWarningSec], [2, 1]);
  assert.equal(loadConfig({ ARI_PASSWORD: 's', LIMIT_WARNING_SEC: '0' }).calls.limitWarningSec, 0);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', MAX_CALL_DURATION: '2h' }), /MAX_CALL_DURATION must be a whole number 0-604800, got "2h"/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', MAX_CALL_DURATION: '-1' }), /MAX_CALL_DURATION/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', MAX_CALL_DURATION: '604801' }), /MAX_CALL_DURATION/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', LIMIT_WARNING_SEC: '1.5' }), /LIMIT_WARNING_SEC must be a whole number 0-86400/);
});

test('MAX_PUSHES_PER_CALL (10) and MAX_OUTPUTS (1000): whole numbers, at least 1', () => {
  const d = loadConfig({ ARI_PASSWORD: 's' });
  assert.equal(d.calls.maxPushesPerCall, 10);
  assert.equal(d.calls.maxOutputs, 1000);
  const c = loadConfig({ ARI_PASSWORD: 's', MAX_PUSHES_PER_CALL: '3', MAX_OUTPUTS: '50' });
  assert.deepEqual([c.calls.maxPushesPerCall, c.calls.maxOutputs], [3, 50]);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', MAX_PUSHES_PER_CALL: '0' }), /MAX_PUSHES_PER_CALL must be a whole number 1-1000, got "0"/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', MAX_OUTPUTS: 'lots' }), /MAX_OUTPUTS must be a whole number 1-100000/);
});

const TOKEN = 'a-token-of-16+chars';

test('API_TOKEN: at least 16 characters, and the message never shows it', () => {
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', API_TOKEN: 'short-secret' }), (e: unknown) =>
    e instanceof ConfigError && /API_TOKEN must be at least 16 characters long \(it has 12\)/.test(e.message) && !e.message.includes('short-secret'));
  assert.equal(loadConfig({ ARI_PASSWORD: 's', API_TOKEN: TOKEN }).rest.apiToken, TOKEN);
});

test('CORS_ORIGINS=* requires API_TOKEN; a list of origins does not', () => {
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', CORS_ORIGINS: '*' }), (e: unknown) => e instanceof ConfigError && /CORS_ORIGINS=\* requires API_TOKEN/.test(e.message));
  assert.deepEqual(loadConfig({ ARI_PASSWORD: 's', CORS_ORIGINS: '*', API_TOKEN: TOKEN }).rest.corsOrigins, ['*']);
  assert.deepEqual(loadConfig({ ARI_PASSWORD: 's', CORS_ORIGINS: 'https://a.example' }).rest.corsOrigins, ['https://a.example']);
});

test('REST_HOSTNAMES: names or addresses without port, lower-cased; IPv6 in brackets', () => {
  assert.deepEqual(loadConfig({ ARI_PASSWORD: 's', REST_HOSTNAMES: 'PBX.example.com, 10.0.0.5,[fd00::5]' }).rest.hostnames, ['pbx.example.com', '10.0.0.5', '[fd00::5]']);
  for (const bad of ['pbx.example.com:8081', 'http://pbx', 'a b', '*.example.com', 'fd00::5']) {
    assert.throws(() => loadConfig({ ARI_PASSWORD: 's', REST_HOSTNAMES: bad }), /REST_HOSTNAMES must be host names or addresses without port or scheme/, bad);
  }
});

test('HTTP limits: settings, ranges, headers timeout within the request timeout', () => {
  const c = loadConfig({ ARI_PASSWORD: 's', HTTP_HEADERS_TIMEOUT_MS: '1500', HTTP_REQUEST_TIMEOUT_MS: '2000', HTTP_KEEPALIVE_TIMEOUT_MS: '1000', HTTP_MAX_CONNECTIONS: '10' });
  assert.deepEqual(c.http, { headersTimeoutMs: 1500, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1000, maxConnections: 10 });
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', HTTP_HEADERS_TIMEOUT_MS: '40000' }), /HTTP_HEADERS_TIMEOUT_MS \(40000\) must not exceed HTTP_REQUEST_TIMEOUT_MS \(30000\)/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', HTTP_MAX_CONNECTIONS: '0' }), /HTTP_MAX_CONNECTIONS must be a whole number/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', HTTP_HEADERS_TIMEOUT_MS: '0' }), /HTTP_HEADERS_TIMEOUT_MS/);
});

test('HTTPS_PORT needs readable TLS_CERT_FILE and TLS_KEY_FILE; REST_PORT=off needs HTTPS_PORT; the log shows the paths, never the token', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  writeFileSync(cert, 'CERT');
  writeFileSync(key, 'KEY');
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', HTTPS_PORT: '8444' }), /TLS_CERT_FILE is required with HTTPS_PORT/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', HTTPS_PORT: '8444', TLS_CERT_FILE: cert }), /TLS_KEY_FILE is required with HTTPS_PORT/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', HTTPS_PORT: '8444', TLS_CERT_FILE: join(dir, 'nope.pem'), TLS_KEY_FILE: key }), /TLS_CERT_FILE .*nope\.pem: ENOENT \(cannot be read\)/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', TLS_CERT_FILE: cert, TLS_KEY_FILE: key }), /used only with HTTPS_PORT/);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', REST_PORT: 'off' }), /REST_PORT=off needs HTTPS_PORT/);
  const c = loadConfig({ ARI_PASSWORD: 's', REST_PORT: 'off', HTTPS_PORT: '8444', TLS_CERT_FILE: cert, TLS_KEY_FILE: key, API_TOKEN: TOKEN });
  assert.deepEqual([c.rest.port, c.rest.httpsPort, c.rest.tlsCertFile, c.rest.tlsKeyFile], [null, 8444, cert, key]);
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', HTTPS_PORT: '-1' }), /HTTPS_PORT must be a port number/);
  const shown = JSON.stringify(describeConfig(c));
  assert.ok(shown.includes(cert) && shown.includes(key), 'the TLS file paths are shown');
  assert.ok(!shown.includes(TOKEN) && !shown.includes('KEY"'), 'never the token nor the key itself');
});

test('cluster settings: off by default, NODE_MAX_CALLS defaults to MAX_CALLS, a Redis password never shown, NODE_URL needed behind 0.0.0.0', () => {
  const single = loadConfig({ ARI_PASSWORD: 's', MAX_CALLS: '40' });
  assert.equal(single.cluster.redisUrl, '');
  assert.equal(single.cluster.nodeMaxCalls, 40);
  const c = loadConfig({ ARI_PASSWORD: 's', CLUSTER_REDIS_URL: 'redis://:r3dis-pass@10.0.0.5:6379/0', NODE_MAX_CALLS: '150', MAX_CALLS: '600' });
  assert.equal(c.cluster.nodeMaxCalls, 150);
  assert.equal(c.cluster.leaseMs, 3000);
  assert.ok(!JSON.stringify(describeConfig(c)).includes('r3dis-pass'));
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', CLUSTER_REDIS_URL: 'http://x:1' }), (e: unknown) => e instanceof ConfigError && /CLUSTER_REDIS_URL must be a redis/.test(e.message));
  assert.throws(() => loadConfig({ ARI_PASSWORD: 's', CLUSTER_REDIS_URL: 'redis://:pw-9@x:1', REST_HOST: '0.0.0.0', API_TOKEN: 'a-long-token-0123456789' }),
    (e: unknown) => e instanceof ConfigError && /NODE_URL is required/.test(e.message) && !e.message.includes('pw-9'));
  assert.equal(loadConfig({ ARI_PASSWORD: 's', CLUSTER_REDIS_URL: 'redis://x:1', REST_HOST: '0.0.0.0', API_TOKEN: 'a-long-token-0123456789', NODE_URL: 'http://10.0.0.7:8081/rest-api' }).cluster.nodeUrl, 'http://10.0.0.7:8081/rest-api');
});
