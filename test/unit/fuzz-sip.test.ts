/**
 * Hostile input, SIP: the loopback UAS's stream framer and message parser fed arbitrary TCP segments
 * (garbage, CRLF keep-alives, heads without an end, huge and missing Content-Length, valid messages cut
 * anywhere), plus the URI and tag helpers it applies to each request. The framer returns messages or throws
 * SipParseError (the UAS then closes the connection), never anything else; it never buffers more than
 * MAX_MESSAGE; and valid messages come out identical however the stream is cut.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { headerTag, MAX_MESSAGE, parseSipMessage, SipParseError, SipStreamFramer, uriUser, type SipMessage } from '../../plugin/sip/message.js';
import { fuzz, HOSTILE_TOKENS, mutated, peek, splitAt } from '../helpers/fuzz.js';

/** RFC 3261 §7.3.3 compact forms. */
const COMPACT: Record<string, string> = {
  i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length', c: 'content-type',
  f: 'from', s: 'subject', k: 'supported', t: 'to', v: 'via',
};

interface Wire {
  start: string;
  /** As written: name, value, optional folded continuation. */
  headers: [string, string, string | undefined][];
  body: string;
}

const token = fc.stringMatching(/^[A-Za-z0-9.!%*_+`'~-]{1,12}$/);
/** Header names: real ones, compact ones, and names that are also Object.prototype properties. */
const headerName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('Subject', 'Contact', 'X-Leg', 'Max-Forwards', 'User-Agent', 'Allow', 'Supported', 's', 'm', 'k', 'c', 'e') },
  { weight: 1, arbitrary: fc.constantFrom('constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf') },
  { weight: 2, arbitrary: token.filter((n) => !/^(content-length|l)$/i.test(n)) },
);
/**
 * Header values: any text without CR or LF (SIP's TEXT-UTF8), assembled from pieces that trip line-based
 * parsing: the other Unicode line terminators, a Content-Length look-alike, separators, non-ASCII.
 */
const valuePiece = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[ -~]{0,12}$/) },
  { weight: 1, arbitrary: fc.constantFrom('\u2028', '\u2029', '\u0085', 'Content-Length: 0', 'l:1', 'l: 99999') },
  { weight: 1, arbitrary: fc.constantFrom(';tag=x', ' ', '\t', 'é', '\u{1F600}', ...HOSTILE_TOKENS.filter((x) => !/[\r\n]/.test(x))) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6, unit: 'grapheme' }).map((s) => s.replace(/[\r\n]/g, '')) },
);
/** Text as it can travel in UTF-8 (a lone surrogate becomes U+FFFD). */
const wellFormed = (s: string) => Buffer.from(s, 'utf8').toString('utf8');
const headerValue = fc.array(valuePiece, { maxLength: 5 }).map((p) => wellFormed(p.join(''))).filter((v) => v.trim().length > 0);

const mandatory = fc.tuple(
  fc.constantFrom('Via', 'v', 'VIA'), fc.constantFrom('From', 'f'), fc.constantFrom('To', 't'), fc.constantFrom('Call-ID', 'i', 'call-id'), fc.constantFrom('CSeq'),
  token, token, fc.integer({ min: 1, max: 2 ** 31 - 1 }),
).map(([v, f, to, i, c, tag, callId, cseq]) => [
  [v, `SIP/2.0/TCP 127.0.0.1:5060;rport;branch=z9hG4bK${tag}`, undefined],
  [f, `<sip:asterisk@127.0.0.1>;tag=${tag}`, undefined],
  [to, `<sip:leg@127.0.0.1>`, undefined],
  [i, callId, undefined],
  [c, `${cseq} INVITE`, undefined],
] as [string, string, string | undefined][]);

const wireMessage: fc.Arbitrary<Wire> = fc.record({
  start: fc.oneof(
    fc.tuple(fc.oneof(fc.constantFrom('INVITE', 'ACK', 'BYE', 'CANCEL', 'INFO', 'OPTIONS', 'UPDATE', 'NOTIFY'), fc.stringMatching(/^[A-Z]{1,10}$/)), token)
      .map(([m, user]) => `${m} sip:${user}@127.0.0.1:5090;transport=tcp SIP/2.0`),
    fc.tuple(fc.integer({ min: 100, max: 699 }), fc.stringMatching(/^[ -~]{0,20}$/)).map(([code, reason]) => `SIP/2.0 ${code} ${reason}`),
  ),
  mandatory,
  extra: fc.array(fc.tuple(headerName, headerValue, fc.option(headerValue.map((v) => ' ' + v.trim()), { nil: undefined, freq: 6 })), { maxLength: 6 }),
  body: fc.oneof(fc.constant(''), fc.string({ maxLength: 120, unit: 'binary' }).map(wellFormed), fc.constantFrom('v=0\r\ns=x\r\n', '\r\n\r\n', 'INVITE sip:x SIP/2.0\r\nl: 5\r\n\r\n')),
  clName: fc.constantFrom('Content-Length', 'content-length', 'l', 'CONTENT-LENGTH', 'Content-Length '),
  /** Where Content-Length goes among the other headers (any order is valid). */
  clAt: fc.nat(),
}).map(({ start, mandatory, extra, body, clName, clAt }) => {
  const headers = [...mandatory, ...extra];
  headers.splice(clAt % (headers.length + 1), 0, [clName, String(Buffer.byteLength(body)), undefined]);
  return { start, headers, body };
});

function encode(m: Wire): Buffer {
  const lines = [m.start];
  for (const [n, v, fold] of m.headers) lines.push(`${n}: ${v}`, ...(fold === undefined ? [] : [fold]));
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n' + m.body, 'utf8');
}

/** What the parser must make of a message we wrote: names lower-cased and expanded, values trimmed, folds joined. */
function expected(m: Wire) {
  const headers = m.headers.map(([n, v, fold]) => {
    const name = n.trim().toLowerCase();
    return [Object.hasOwn(COMPACT, name) ? COMPACT[name]! : name, v.trim() + (fold === undefined ? '' : ' ' + fold.trim())];
  });
  const resp = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(m.start);
  if (resp) return { kind: 'response', status: Number(resp[1]), reason: resp[2], headers, body: m.body };
  const [method, uri] = m.start.split(' ');
  return { kind: 'request', method, uri, headers, body: m.body };
}
const actual = (m: SipMessage) => ({ ...m, headers: m.headers.list.map(([n, v]) => [n, v]) });

const buffered = (f: SipStreamFramer) => peek<Buffer>(f, 'buf').length;

/** Keep-alives and stray line ends between messages (RFC 5626 sends CRLFCRLF; the framer skips any CR/LF). */
const keepAlive = fc.constantFrom('', '', '\r\n', '\r\n\r\n', '\n', '\r\n\r\n\r\n\r\n');

test('fuzz: valid messages with keep-alives, cut at any points, come out identical', (t) => {
  const input = fc.record({
    messages: fc.array(fc.tuple(keepAlive, wireMessage), { minLength: 1, maxLength: 4 }),
    cuts: fc.array(fc.nat(), { maxLength: 30, size: 'max' }),
    trailing: keepAlive,
  });
  fuzz(t, input, ({ messages, cuts, trailing }) => {
    const stream = Buffer.concat([...messages.flatMap(([ka, m]) => [Buffer.from(ka), encode(m)]), Buffer.from(trailing)]);
    const f = new SipStreamFramer();
    const out: SipMessage[] = [];
    for (const seg of splitAt(stream, cuts)) {
      out.push(...f.push(seg));
      assert.ok(buffered(f) <= MAX_MESSAGE);
    }
    assert.deepEqual(out.map(actual), messages.map(([, m]) => expected(m)));
    assert.equal(buffered(f), 0, 'nothing left over');
  }, 1500);
});

/** Segments a hostile peer might send. */
const hostileSegment = fc.oneof(
  { weight: 3, arbitrary: fc.uint8Array({ maxLength: 64, size: 'max' }).map((b) => Buffer.from(b)) },
  { weight: 2, arbitrary: fc.constantFrom('\r\n', '\r\n\r\n', '\n', '\r').map((s) => Buffer.from(s)) },
  { weight: 3, arbitrary: wireMessage.map(encode) },
  { weight: 3, arbitrary: mutated(wireMessage.map(encode)) },
  // A head with a huge or odd Content-Length, and possibly no end.
  {
    weight: 2,
    arbitrary: fc.tuple(fc.oneof(fc.integer({ min: MAX_MESSAGE - 200, max: MAX_MESSAGE + 10 }).map(String), fc.constantFrom('99999999999999999999999', '1e9', '-1', '', ' 5', '0x10')), fc.boolean())
      .map(([n, end]) => Buffer.from(`INVITE sip:a@b SIP/2.0\r\nVia: x\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: ${n}${end ? '\r\n\r\n' : '\r\n'}`)),
  },
  // Big: a head that never ends, right around the cap (kept as its length, so a counterexample stays readable).
  { weight: 1, arbitrary: fc.integer({ min: MAX_MESSAGE - 64, max: MAX_MESSAGE + 64 }).map((n) => ({ fill: n })) },
);
const bytesOf = (s: Buffer | { fill: number }) => (Buffer.isBuffer(s) ? s : Buffer.alloc(s.fill, 'a'));

test('fuzz: arbitrary segments: messages or SipParseError, never another exception, never more than MAX_MESSAGE buffered', (t) => {
  fuzz(t, fc.array(hostileSegment, { minLength: 1, maxLength: 12 }), (segments) => {
    const f = new SipStreamFramer();
    for (const seg of segments) {
      let msgs: SipMessage[];
      try {
        msgs = f.push(bytesOf(seg));
      } catch (err) {
        assert.ok(err instanceof SipParseError, `only SipParseError: ${String(err)}`);
        return; // the UAS closes the connection
      }
      assert.ok(buffered(f) <= MAX_MESSAGE, `buffers ${buffered(f)} bytes`);
      for (const m of msgs) {
        assert.ok(m.kind === 'request' || m.kind === 'response');
        for (const [name, value] of m.headers.list) assert.ok(typeof name === 'string' && typeof value === 'string');
        if (m.kind === 'request') for (const h of ['via', 'from', 'to', 'call-id', 'cseq']) assert.ok(m.headers.get(h));
        else assert.ok(m.status >= 0 && m.status <= 999);
      }
    }
  }, 1200);
});

test('fuzz: a Content-Length the cap cannot hold is refused at once', (t) => {
  fuzz(t, fc.tuple(fc.integer({ min: 0, max: 2 ** 53 }), fc.nat({ max: 200 })), ([len, pad]) => {
    const head = `OPTIONS sip:x@y SIP/2.0\r\nVia: a\r\nFrom: b\r\nTo: c\r\nCall-ID: d\r\nCSeq: 1 OPTIONS\r\nX-Pad: ${'p'.repeat(pad)}\r\nContent-Length: ${len}\r\n\r\n`;
    const f = new SipStreamFramer();
    if (head.length + len > MAX_MESSAGE) {
      assert.throws(() => f.push(Buffer.from(head)), SipParseError);
    } else {
      assert.deepEqual(f.push(Buffer.from(head)).length, len === 0 ? 1 : 0);
      assert.ok(buffered(f) <= MAX_MESSAGE);
    }
  }, 500);
});

test('fuzz: parseSipMessage on arbitrary heads: a message or SipParseError', (t) => {
  const head = fc.oneof(fc.string({ maxLength: 200, unit: 'binary' }), mutated(wireMessage.map(encode)).map((b) => b.toString('utf8').split('\r\n\r\n')[0]!));
  fuzz(t, head, (h) => {
    try {
      const m = parseSipMessage(h, '');
      for (const [name, value] of m.headers.list) assert.ok(typeof name === 'string' && typeof value === 'string', `header name ${String(name)}`);
    } catch (err) {
      assert.ok(err instanceof SipParseError, `only SipParseError: ${String(err)}`);
    }
  }, 1500);
});

test('fuzz: the UAS\'s Request-URI and tag helpers never throw', (t) => {
  const uri = fc.oneof(
    fc.string({ maxLength: 60, unit: 'binary' }),
    fc.tuple(fc.constantFrom('sip:', 'sips:', '<sip:', 'SIP:'), fc.array(fc.oneof(fc.constantFrom('%', '%2', '%zz', '%E0', '%C3%A9', '%F0%9F', '@', ';', '>', 'a', '1'), token), { maxLength: 6 }), fc.constantFrom('@127.0.0.1', '@h;transport=tcp', '', '>'))
      .map(([s, parts, host]) => s + parts.join('') + host),
  );
  fuzz(t, fc.tuple(uri, fc.string({ maxLength: 12 }).map((s) => s.replace(/[%@;>]/g, ''))), ([u, user]) => {
    const got = uriUser(u);
    assert.ok(got === undefined || typeof got === 'string');
    const tag = headerTag(u);
    assert.ok(tag === undefined || (typeof tag === 'string' && tag.length > 0));
    if (user.trim() && !/\s/.test(user)) assert.equal(uriUser(`sip:${encodeURIComponent(user)}@127.0.0.1:5090;transport=tcp`), user);
  }, 2000);
});
