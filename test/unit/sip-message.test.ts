import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildResponse, headerTag, MAX_MESSAGE, parseSipMessage, quotedDisplayName, SipParseError, SipStreamFramer, uriUser, type SipRequest } from '../../plugin/sip/message.js';

const INVITE = [
  'INVITE sip:sar-abc-leg@127.0.0.1:5090;transport=tcp SIP/2.0',
  'Via: SIP/2.0/TCP 127.0.0.1:5060;rport;branch=z9hG4bKPj1',
  'Via: SIP/2.0/TCP 10.0.0.9:5060;branch=z9hG4bKPj0',
  'f: <sip:asterisk@127.0.0.1>;tag=abc',
  'To: <sip:sar-abc-leg@127.0.0.1>',
  'Call-ID: 42',
  'CSeq: 1 INVITE',
  'Subject: folded',
  ' continuation',
  'Content-Type: application/sdp',
  'Content-Length: 10',
  '',
  'v=0\r\ns=x\r\n',
].join('\r\n');

test('frames messages across arbitrary TCP chunks, skipping CRLF keep-alives', () => {
  const f = new SipStreamFramer();
  const bytes = Buffer.from('\r\n\r\n' + INVITE + '\r\n\r\n' + INVITE);
  const out = [];
  for (let i = 0; i < bytes.length; i += 7) out.push(...f.push(bytes.subarray(i, i + 7)));
  assert.equal(out.length, 2);
  const m = out[0] as SipRequest;
  assert.equal(m.method, 'INVITE');
  assert.equal(m.body, 'v=0\r\ns=x\r\n');
  assert.equal(m.headers.getAll('via').length, 2);
  assert.equal(m.headers.get('from'), '<sip:asterisk@127.0.0.1>;tag=abc', 'compact form f = From');
  assert.equal(m.headers.get('subject'), 'folded continuation');
});

test('framing errors: no Content-Length, oversize head or body', () => {
  assert.throws(() => new SipStreamFramer().push(Buffer.from('OPTIONS sip:x SIP/2.0\r\nVia: a\r\n\r\n')), SipParseError);
  assert.throws(() => new SipStreamFramer().push(Buffer.alloc(MAX_MESSAGE + 10, 'a')), SipParseError);
  assert.throws(() => new SipStreamFramer().push(Buffer.from(`OPTIONS sip:x SIP/2.0\r\nContent-Length: ${MAX_MESSAGE}\r\n\r\n`)), SipParseError);
});

test('bad start lines and missing mandatory headers are rejected', () => {
  assert.throws(() => parseSipMessage('HELLO', ''), SipParseError);
  assert.throws(() => parseSipMessage('INVITE sip:x SIP/2.0\r\nVia: a', ''), /without from/);
  const r = parseSipMessage('SIP/2.0 180 Ringing\r\nVia: a', '');
  assert.equal(r.kind, 'response');
});

test('responses echo Vias, From, Call-ID, CSeq and add our To tag once', () => {
  const req = parseSipMessage(INVITE.split('\r\n\r\n')[0]!, '') as SipRequest;
  const r = buildResponse(req, 200, 'OK', { toTag: 't1', contact: '<sip:x@127.0.0.1>', body: 'v=0\r\n' });
  assert.match(r, /^SIP\/2\.0 200 OK\r\nVia: SIP\/2\.0\/TCP 127\.0\.0\.1:5060;rport;branch=z9hG4bKPj1\r\nVia: SIP\/2\.0\/TCP 10\.0\.0\.9/);
  assert.match(r, /\r\nTo: <sip:sar-abc-leg@127\.0\.0\.1>;tag=t1\r\n/);
  assert.match(r, /\r\nContent-Length: 5\r\n\r\nv=0\r\n$/);
  assert.equal(headerTag('<sip:a@b>;tag=xyz;x=1'), 'xyz');
  assert.equal(headerTag('<sip:a@b>'), undefined);
});

test('uriUser', () => {
  assert.equal(uriUser('sip:sar-1-leg@127.0.0.1:5090;transport=tcp'), 'sar-1-leg');
  assert.equal(uriUser('<sips:bob@example.com>'), 'bob');
  assert.equal(uriUser('sip:127.0.0.1'), undefined);
});

test('quotedDisplayName: an RFC 3261 quoted-string; quotes and backslashes escaped, control characters dropped', () => {
  assert.equal(quotedDisplayName('Alice'), '"Alice"');
  assert.equal(quotedDisplayName('Bob "the builder"'), '"Bob \\"the builder\\""');
  // A trailing backslash can't escape the closing quote.
  assert.equal(quotedDisplayName('C:\\'), '"C:\\\\"');
  assert.equal(quotedDisplayName('a\\"b'), '"a\\\\\\"b"');
  assert.equal(quotedDisplayName('evil\r\nX-Injected: 1\t\u0000\u007f'), '"evilX-Injected: 1"');
  assert.equal(quotedDisplayName(''), '""');
  // Read back as RFC 3261 does (quoted-pair: "\\" then any character): the name comes back, quote balanced.
  for (const name of ['x\\', '\\"', '"\\"\\', 'Ünïcødé "ok"']) {
    const q = quotedDisplayName(name);
    const m = /^"((?:[^"\\]|\\.)*)"$/.exec(q);
    assert.ok(m, q);
    assert.equal(m[1]!.replace(/\\(.)/g, '$1'), name);
  }
});
