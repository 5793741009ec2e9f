import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { test } from 'node:test';
import { canonicalIp, forbiddenAddress, forbiddenHost, isLoopback, isUnspecified, parseIp } from '../../plugin/lib/forbidden-address.js';
import { hostAllowed } from '../../plugin/lib/host-list.js';

test('169.254.169.254 in every form a resolver takes is refused as link-local', () => {
  const forms = [
    '169.254.169.254', '169.254.0.1', '169.254.255.255', '2852039166', '0xA9FEA9FE', '0xa9fea9fe', '0251.0376.0251.0376',
    '0xA9.0xFE.0xA9.0xFE', '169.254.43518', '169.16689662', '0251.0xfe.169.254', ' 169.254.169.254 ',
    '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '[::ffff:169.254.169.254]', '0:0:0:0:0:ffff:a9fe:a9fe', '::169.254.169.254',
    '64:ff9b::169.254.169.254', '[0000:0000::FFFF:A9FE:A9FE]',
  ];
  for (const f of forms) assert.equal(forbiddenAddress(f), 'a link-local address', f);
  assert.equal(forbiddenHost('0xA9FEA9FE'), 'a link-local address');
});

test('IPv6 link-local fe80::/10 (with a zone, in brackets) is refused', () => {
  for (const f of ['fe80::1', 'FE80::1%eth0', '[fe80::1]', 'febf:ffff::1', 'fe80:0:0:0:0:0:0:1']) assert.equal(forbiddenAddress(f), 'a link-local address', f);
  for (const f of ['fec0::1', 'fe7f::1', '2001:db8::1', 'fd00::1']) assert.equal(forbiddenAddress(f), undefined, f);
});

test('cloud metadata addresses outside link-local, and metadata names', () => {
  for (const f of ['fd00:ec2::254', '[FD00:EC2:0:0:0:0:0:254]', '100.100.100.200', '::ffff:100.100.100.200', '168.63.129.16', 'fd20:ce::254', '192.0.0.192']) {
    assert.equal(forbiddenAddress(f), 'a cloud metadata address', f);
  }
  for (const n of ['metadata.google.internal', 'METADATA.google.internal.', 'metadata', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal', 'metadata.tencentyun.com']) {
    assert.equal(forbiddenHost(n), 'a cloud metadata name', n);
  }
  assert.equal(forbiddenHost('169.254.170.2'), 'a link-local address'); // ECS task metadata
});

test('private ranges, loopback and ordinary names are NOT refused (PBX admins use them)', () => {
  for (const f of ['127.0.0.1', '::1', '10.0.0.5', '192.168.1.10', '172.16.0.1', '100.64.0.1', '100.100.100.201', '8.8.8.8', 'fc00::1', '0.0.0.0', '::',
    'pbx.example.com', 'metadata.example.com', 'localhost', 'a.rtmp.youtube.com', '169.254.example.com']) {
    assert.equal(forbiddenHost(f), undefined, f);
  }
});

test('parseIp: host names and malformed text are not addresses', () => {
  for (const f of ['example.com', '1.2.3.4.5', '256.1.1.1', '1.2.3.256', '4294967296', '0x1FFFFFFFF', '08.1.1.1', '1..2', '', ':::', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '::ffff:1.2.3', '1.2.3.4:80']) {
    assert.equal(parseIp(f), undefined, f);
  }
  assert.deepEqual(parseIp('127.1'), { family: 4, bytes: [127, 0, 0, 1] });
  assert.deepEqual(parseIp('4294967295'), { family: 4, bytes: [255, 255, 255, 255] });
});

test('canonicalIp: one text per address', () => {
  assert.equal(canonicalIp('127.1'), '127.0.0.1');
  assert.equal(canonicalIp('::ffff:7f00:1'), '127.0.0.1');
  assert.equal(canonicalIp('[::FFFF:127.0.0.1]'), '127.0.0.1');
  assert.equal(canonicalIp('0:0:0:0:0:0:0:1'), '::1');
  assert.equal(canonicalIp('2001:DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  assert.equal(canonicalIp('fd00:ec2:0::254'), 'fd00:ec2::254');
  assert.equal(canonicalIp('1:2:3:4:5:6:7:8'), '1:2:3:4:5:6:7:8');
  assert.equal(canonicalIp('example.com'), undefined);
});

test('isLoopback / isUnspecified in any form', () => {
  for (const f of ['127.0.0.1', '127.1', '127.255.255.254', '2130706433', '::1', '[::1]', '::ffff:127.0.0.1']) assert.ok(isLoopback(f), f);
  for (const f of ['128.0.0.1', '::2', '10.0.0.1', 'localhost']) assert.ok(!isLoopback(f), f);
  for (const f of ['0.0.0.0', '0', '::', '[::]', '0.1.2.3']) assert.ok(isUnspecified(f), f);
  assert.ok(!isUnspecified('::1'));
});

test('our parser agrees with the system resolver on inet_aton shorthands (what net.connect and ffmpeg use)', async () => {
  // WHATWG URL leaves an rtmp:// host as written: the shorthand reaches getaddrinfo.
  assert.equal(new URL('rtmp://2852039166/x').hostname, '2852039166');
  for (const f of ['2852039166', '0xA9FEA9FE', '0251.0376.0251.0376', '169.254.43518', '127.1']) {
    const sys = await lookup(f, { family: 4 }).then((r) => r.address, () => undefined);
    if (sys === undefined) continue; // a resolver that refuses shorthands: nothing to agree on
    assert.equal(canonicalIp(f), sys, f);
  }
});

test('hostAllowed: exact (case-insensitive, trailing dot) or *.suffix; empty list allows all', () => {
  assert.ok(hostAllowed('anything', []));
  const list = ['pbx.example.com', '*.sip.example.net'];
  assert.ok(hostAllowed('PBX.example.com.', list));
  assert.ok(hostAllowed('a.sip.example.net', list));
  assert.ok(hostAllowed('a.b.sip.example.net', list));
  assert.ok(!hostAllowed('sip.example.net', list));
  assert.ok(!hostAllowed('evilsip.example.net', list));
  assert.ok(!hostAllowed('pbx.example.com.evil.org', list));
  assert.ok(!hostAllowed('127.0.0.1', list));
});
