/**
 * Hostile input, SDP: the offer parser and the media leg's offer/answer fed arbitrary text, SDP-shaped
 * lines with hostile tokens, and real Asterisk offers with edits. parseSdp returns a session or throws
 * SdpError (nothing else); what it returns agrees with the text; answerLegOffer answers or rejects with a
 * status, never throws, and an answer only names payload types the offer's m-line listed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { answerLegOffer, type LegAnswerOptions } from '../../plugin/sip/negotiate.js';
import { chooseFormats, parseSdp, SdpError, type SdpSession } from '../../plugin/sip/sdp.js';
import { fuzz, HOSTILE_TOKENS, mutatedText } from '../helpers/fuzz.js';
import { ASTERISK_OFFER } from '../helpers/sdp-fixtures.js';

const TWO_AUDIO = ASTERISK_OFFER.replace('m=video 10012 RTP/AVP 99\r\na=rtpmap:99 H264/90000', 'm=audio 10014 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000');
const VIDEO_FIRST = [
  'v=0', 'o=- 1 2 IN IP4 10.0.0.2', 's=-', 't=0 0',
  'm=video 4002 RTP/AVP 96 97', 'c=IN IP4 10.0.0.3', 'a=rtpmap:96 VP8/90000', 'a=rtpmap:97 H264/90000', 'a=fmtp:97 profile-level-id=42e01f;packetization-mode=1', 'a=recvonly',
  'm=audio 4000 RTP/AVP 8 9 0 101', 'a=rtcp:4001 IN IP4 10.0.0.3', 'a=rtpmap:101 telephone-event/8000', 'a=sendonly', '',
].join('\n');
const OFFERS = [ASTERISK_OFFER, TWO_AUDIO, VIDEO_FIRST];

const tok = (...common: string[]) => fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...common) }, { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_TOKENS) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
const pt = tok('0', '8', '9', '96', '99', '101', '118', '127', '128', '-1');
const sdpLine = fc.oneof(
  fc.tuple(tok('audio', 'video', 'application'), tok('0', '4000', '10010', '65535', '65536', '10010/2'), tok('RTP/AVP', 'RTP/SAVP', 'UDP/TLS/RTP/SAVPF'), fc.array(pt, { maxLength: 6 }), fc.constantFrom(' ', '  '))
    .map(([k, p, proto, fmts, sep]) => `m=${k} ${p} ${proto} ${fmts.join(sep)}`),
  fc.tuple(pt, tok('L16', 'PCMU', 'PCMA', 'G722', 'H264', 'telephone-event', 'opus'), tok('8000', '16000', '48000', '90000', '0', '99999999999999999999'), fc.option(tok('1', '2'), { nil: undefined }))
    .map(([p, enc, rate, ch]) => `a=rtpmap:${p} ${enc}/${rate}${ch === undefined ? '' : `/${ch}`}`),
  fc.tuple(pt, fc.string({ maxLength: 20 })).map(([p, f]) => `a=fmtp:${p} ${f}`),
  tok('4001', '4001 IN IP4 10.0.0.3', 'x', '').map((v) => `a=rtcp:${v}`),
  fc.constantFrom('a=sendrecv', 'a=sendonly', 'a=recvonly', 'a=inactive', 'a=ptime:20', 'a=', 'a=rtpmap:', 'a=fmtp:', 'a=rtpmap: ', 't=0 0', 's=-', 'v=0', 'v=1', 'm=', 'm= ', 'c=', '=', 'x', ''),
  tok('IN IP4 127.0.0.1', 'IN IP6 ::1', 'IN IP4', '').map((v) => `c=${v}`),
  fc.string({ maxLength: 30 }),
);
/** SDP-shaped text: mostly v=0 first, lines of hostile tokens, CRLF or LF or CR endings. */
const sdpText = fc.tuple(fc.oneof({ weight: 5, arbitrary: fc.constant('v=0') }, { weight: 1, arbitrary: fc.string({ maxLength: 5 }) }), fc.array(fc.tuple(sdpLine, fc.constantFrom('\r\n', '\n', '\r', '\r\n\r\n')), { maxLength: 20, size: 'max' }))
  .map(([first, lines]) => first + '\r\n' + lines.map(([l, eol]) => l + eol).join(''));
/** Real offers with their lines dropped, repeated, swapped or replaced, then character-level edits. */
const lineEdited = fc.tuple(fc.constantFrom(...OFFERS), fc.array(fc.tuple(fc.constantFrom('drop', 'dup', 'swap', 'replace'), fc.nat(), fc.nat(), sdpLine), { maxLength: 4 }))
  .map(([offer, edits]) => {
    const lines = offer.split(/\r?\n/);
    for (const [op, i, j, line] of edits) {
      const a = i % lines.length;
      const b = j % lines.length;
      if (op === 'drop') lines.splice(a, 1);
      else if (op === 'dup') lines.splice(a, 0, lines[a] ?? '');
      else if (op === 'swap') [lines[a], lines[b]] = [lines[b] ?? '', lines[a] ?? ''];
      else lines[a] = line;
      if (lines.length === 0) lines.push('');
    }
    return lines.join('\r\n');
  });
const anySdp = fc.oneof(
  fc.string({ maxLength: 200, size: 'max', unit: 'binary' }),
  sdpText,
  fc.constantFrom(...OFFERS),
  lineEdited,
  mutatedText(fc.constantFrom(...OFFERS)),
  mutatedText(lineEdited),
);

/** The m= lines as written: parseSdp makes one SdpMedia per line starting "m=" (or throws). */
function mLines(text: string): string[][] {
  return text.split(/\r?\n/).filter((l) => l.startsWith('m=')).map((l) => l.slice(2).split(' '));
}
/** Payload types a reader takes from an m= line's format list: decimal numbers 0-127. */
const listedPts = (m: string[]) => m.slice(3).filter((f) => /^\d+$/.test(f) && Number(f) <= 127).map(Number);

/** parseSdp, allowing only its documented failure. */
function parse(text: string): SdpSession | undefined {
  try {
    return parseSdp(text);
  } catch (err) {
    if (err instanceof SdpError) return undefined;
    throw err;
  }
}

function checkSession(text: string, s: SdpSession): void {
  const written = mLines(text);
  assert.ok(s.media.length >= 1);
  assert.equal(s.media.length, written.length, 'one media section per m= line');
  s.media.forEach((m, i) => {
    assert.ok(m.kind.length > 0 && !m.kind.includes(' '));
    assert.ok(Number.isInteger(m.port) && m.port >= 0 && m.port <= 65535, `port ${m.port}`);
    assert.ok(m.protocol.length > 0);
    assert.ok(['sendrecv', 'sendonly', 'recvonly', 'inactive'].includes(m.direction));
    assert.equal(typeof m.address, 'string');
    if (m.rtcpPort !== undefined) assert.ok(Number.isInteger(m.rtcpPort));
    for (const f of m.formats) {
      assert.ok(Number.isInteger(f.payloadType) && f.payloadType >= 0 && f.payloadType <= 127);
      assert.equal(typeof f.encoding, 'string');
    }
    assert.deepEqual(m.formats.map((f) => f.payloadType), listedPts(written[i]!), `formats are the listed payload types: "m=${written[i]!.join(' ')}"`);
  });
}

test('fuzz: parseSdp returns a session that agrees with the text, or throws SdpError', (t) => {
  fuzz(t, anySdp, (text) => {
    const s = parse(text);
    if (s) checkSession(text, s);
  }, 3000);
});

const PREFS = [
  { encoding: 'L16', clockRate: 16000 }, { encoding: 'PCMU', clockRate: 8000 }, { encoding: 'PCMA', clockRate: 8000 },
  { encoding: 'G722', clockRate: 8000 }, { encoding: 'opus', clockRate: 48000 }, { encoding: 'H264', clockRate: 90000 },
];
const options: fc.Arbitrary<LegAnswerOptions> = fc.record({
  audioPrefs: fc.shuffledSubarray(PREFS),
  audioPort: fc.integer({ min: 1024, max: 65535 }),
  videoPort: fc.option(fc.integer({ min: 1024, max: 65535 }), { nil: undefined }),
  address: fc.constant('127.0.0.1'),
  sessionId: fc.nat(),
  version: fc.nat(),
}, { noNullPrototype: true });

test('fuzz: answerLegOffer answers or rejects with a status, never throws; answers only name offered payload types', (t) => {
  fuzz(t, fc.tuple(anySdp, options), ([text, o]) => {
    const offer = parse(text);
    if (!offer) return;
    const written = mLines(text);
    const a = answerLegOffer(offer, o);
    if (!('sdp' in a)) {
      assert.deepEqual(a, { status: 488, reason: 'Not Acceptable Here' });
      for (const m of offer.media) if (m.kind === 'audio' && m.port !== 0) assert.deepEqual(chooseFormats(m, o.audioPrefs), []);
      return;
    }
    // The chosen formats are the offer's, from an audio (video) m-line that listed them.
    const from = (f: object) => offer.media.findIndex((m) => m.formats.includes(f as never));
    const ai = from(a.media.audio);
    assert.ok(ai >= 0 && offer.media[ai]!.kind === 'audio' && listedPts(written[ai]!).includes(a.media.audio.payloadType));
    if (a.media.dtmf) {
      assert.ok(offer.media[ai]!.formats.includes(a.media.dtmf));
      assert.equal(a.media.dtmf.encoding, 'TELEPHONE-EVENT');
      assert.equal(a.media.dtmf.clockRate, a.media.audio.clockRate);
    }
    if (a.media.video) {
      assert.ok(o.videoPort !== undefined);
      const vi = from(a.media.video.format);
      assert.ok(vi >= 0 && offer.media[vi]!.kind === 'video' && a.media.video.format.encoding === 'H264');
    }
    // The answer: one m-line per offered one, in order; those we take carry only that m-line's payload types.
    const answer = parseSdp(a.sdp);
    assert.equal(answer.media.length, offer.media.length);
    answer.media.forEach((m, i) => {
      assert.equal(m.kind, offer.media[i]!.kind);
      if (m.port === 0) return;
      assert.ok(m.port === o.audioPort || m.port === o.videoPort);
      for (const f of m.formats) assert.ok(listedPts(written[i]!).includes(f.payloadType), `answer PT ${f.payloadType} was offered on m-line ${i}`);
    });
    assert.equal(answer.media.filter((m) => m.port === o.audioPort && m.kind === 'audio').length >= 1, true);
  }, 2000);
});
