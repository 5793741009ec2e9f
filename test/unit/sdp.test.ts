import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerLegOffer } from '../../plugin/sip/negotiate.js';
import { answerDirection, buildSdp, chooseFormats, parseSdp, SdpError } from '../../plugin/sip/sdp.js';
import { ASTERISK_OFFER } from '../helpers/sdp-fixtures.js';


test('parses Asterisk\'s media-leg offer', () => {
  const s = parseSdp(ASTERISK_OFFER);
  assert.equal(s.media.length, 2);
  const [a, v] = s.media;
  assert.equal(a!.kind, 'audio');
  assert.equal(a!.port, 10010);
  assert.equal(a!.address, '127.0.0.1');
  assert.deepEqual(a!.formats.map((f) => `${f.payloadType} ${f.encoding}/${f.clockRate}`), ['118 L16/16000', '0 PCMU/8000', '101 TELEPHONE-EVENT/16000', '102 TELEPHONE-EVENT/8000']);
  assert.equal(a!.formats[2]!.fmtp, '0-16');
  assert.equal(v!.formats[0]!.encoding, 'H264');
});

test('static payload types without rtpmap are known', () => {
  const s = parseSdp('v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 8\r\n');
  assert.deepEqual(s.media[0]!.formats.map((f) => f.encoding), ['PCMU', 'PCMA']);
  assert.equal(s.media[0]!.address, '10.0.0.1');
});

test('chooses the preferred codec with the offer\'s payload type, plus DTMF at the same rate', () => {
  const a = parseSdp(ASTERISK_OFFER).media[0]!;
  const wide = chooseFormats(a, [{ encoding: 'L16', clockRate: 16000 }, { encoding: 'PCMU', clockRate: 8000 }]);
  assert.deepEqual(wide.map((f) => f.payloadType), [118, 101]);
  const narrow = chooseFormats(a, [{ encoding: 'PCMU', clockRate: 8000 }]);
  assert.deepEqual(narrow.map((f) => f.payloadType), [0, 102]);
  assert.deepEqual(chooseFormats(a, [{ encoding: 'PCMA', clockRate: 8000 }]), []);
});

test('answer: every m-line in order, rejected ones with port 0; offer PTs kept', () => {
  const offer = parseSdp(ASTERISK_OFFER);
  const audio = chooseFormats(offer.media[0]!, [{ encoding: 'L16', clockRate: 16000 }]);
  const sdp = buildSdp({ address: '127.0.0.1', sessionId: 7, version: 1, media: [
    { kind: 'audio', protocol: 'RTP/AVP', port: 20000, formats: audio, direction: 'sendrecv' },
    { kind: 'video', protocol: 'RTP/AVP', port: 0, formats: offer.media[1]!.formats, direction: 'sendrecv' },
  ] });
  assert.match(sdp, /\r\nm=audio 20000 RTP\/AVP 118 101\r\na=rtpmap:118 L16\/16000\r\na=rtpmap:101 telephone-event\/16000\r\na=fmtp:101 0-16\r\n/);
  assert.match(sdp, /\r\nm=video 0 RTP\/AVP 99\r\n$/);
  const back = parseSdp(sdp);
  assert.equal(back.media[0]!.formats[0]!.payloadType, 118);
});

test('directions mirror; malformed SDP is an SdpError', () => {
  assert.equal(answerDirection('sendonly'), 'recvonly');
  assert.equal(answerDirection('recvonly'), 'sendonly');
  assert.equal(answerDirection('inactive'), 'inactive');
  for (const bad of ['', 'v=1\r\n', 'v=0\r\nm=audio x RTP/AVP 0\r\n', 'v=0\r\nbogus\r\n', 'v=0\r\ns=-\r\n', 'v=0\r\n' + 'a=x\r\n'.repeat(5000)]) {
    assert.throws(() => parseSdp(bad), SdpError, JSON.stringify(bad.slice(0, 30)));
  }
});

test('leg negotiation: first usable audio m-line only; others rejected in order; 488 when nothing fits', () => {
  const twoAudio = ASTERISK_OFFER.replace('m=video 10012 RTP/AVP 99\r\na=rtpmap:99 H264/90000', 'm=audio 10014 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000');
  const a = answerLegOffer(parseSdp(twoAudio), { audioPrefs: [{ encoding: 'L16', clockRate: 16000 }, { encoding: 'PCMU', clockRate: 8000 }], audioPort: 20000, address: '127.0.0.1', sessionId: 1, version: 1 });
  assert.ok('sdp' in a);
  assert.equal(a.media.audio.payloadType, 118);
  assert.equal(a.media.dtmf?.payloadType, 101);
  assert.deepEqual(a.media.source, { address: '127.0.0.1', port: 10010 });
  assert.deepEqual([...a.sdp.matchAll(/^m=\S+ (\d+)/gm)].map((m) => m[1]), ['20000', '0']);
  const none = answerLegOffer(parseSdp(ASTERISK_OFFER), { audioPrefs: [{ encoding: 'PCMA', clockRate: 8000 }], audioPort: 20000, address: '127.0.0.1', sessionId: 1, version: 1 });
  assert.deepEqual(none, { status: 488, reason: 'Not Acceptable Here' });
});

test('leg negotiation with video: H.264 with the offer\'s payload type on our video port', () => {
  const a = answerLegOffer(parseSdp(ASTERISK_OFFER), { audioPrefs: [{ encoding: 'L16', clockRate: 16000 }], audioPort: 20000, videoPort: 20002, address: '127.0.0.1', sessionId: 1, version: 1 });
  assert.ok('sdp' in a);
  assert.equal(a.media.video?.format.payloadType, 99);
  assert.deepEqual(a.media.video?.source, { address: '127.0.0.1', port: 10012 });
  assert.match(a.sdp, /\r\nm=video 20002 RTP\/AVP 99\r\na=rtpmap:99 H264\/90000\r\n/);
  // Without a video port, video is declined.
  const noVideo = answerLegOffer(parseSdp(ASTERISK_OFFER), { audioPrefs: [{ encoding: 'L16', clockRate: 16000 }], audioPort: 20000, address: '127.0.0.1', sessionId: 1, version: 1 });
  assert.ok('sdp' in noVideo && noVideo.media.video === undefined && /m=video 0 /.test(noVideo.sdp));
});
