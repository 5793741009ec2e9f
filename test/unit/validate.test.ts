import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateStartup, ValidationError } from '../../plugin/calls/validate.js';

const ok = { callId: 'c1', callee: '1000', sipDomain: 'pbx.example.com', rtmpUrl: 'rtmp://h/live', rtmpStream: 's' };

test('WCS string forms: "true"/"false" and port strings', () => {
  const r = validateStartup({ ...ok, hasVideo: 'true', hasAudio: 'false', sipPort: '5060', sipRegisterRequired: 'false' });
  assert.equal(r.hasVideo, true);
  assert.equal(r.hasAudio, false);
  assert.equal(r.sipPort, 5060);
  assert.equal(validateStartup({ ...ok, sipPort: 5061 }).sipPort, 5061);
  assert.equal(validateStartup(ok).hasAudio, true, 'audio by default');
});

test('a full sip: URI callee supplies the domain', () => {
  const r = validateStartup({ ...ok, callee: 'sip:alice@10.0.0.5:5070', sipDomain: undefined });
  assert.equal(r.callee, 'alice');
  assert.equal(r.sipDomain, '10.0.0.5:5070');
});

function field(body: unknown): string {
  try {
    validateStartup(body);
  } catch (e) {
    assert.ok(e instanceof ValidationError);
    assert.ok(e.message.startsWith(e.field));
    return e.field;
  }
  return 'none';
}

test('each bad field is named', () => {
  assert.equal(field(null), 'body');
  assert.equal(field({ ...ok, callId: '' }), 'callId');
  assert.equal(field({ ...ok, callId: 'a b' }), 'callId');
  assert.equal(field({ ...ok, callee: 'a<b' }), 'callee');
  assert.equal(field({ ...ok, callee: 'x\r\nVia: evil' }), 'callee');
  assert.equal(field({ ...ok, sipDomain: 'bad host!' }), 'sipDomain');
  assert.equal(field({ ...ok, sipLogin: 'a b' }), 'sipLogin');
  assert.equal(field({ ...ok, sipPassword: 'x' }), 'sipLogin');
  assert.equal(field({ ...ok, hasAudio: false, hasVideo: false }), 'hasAudio');
  assert.equal(field({ ...ok, rtmpUrl: 'rtmp://' }), 'rtmpUrl');
  assert.equal(field({ ...ok, rtmpUrl: 'srt://h/x' }), 'rtmpUrl');
  assert.equal(field({ ...ok, callId: { a: 1 } }), 'callId');
  assert.equal(field({ ...ok, rtmpUrl: '', toStream: '' }), 'rtmpUrl');
  assert.equal(field({ ...ok, rtmpTransponderFullUrl: 'maybe' }), 'rtmpTransponderFullUrl');
  assert.equal(field({ ...ok, callee: 'x'.repeat(300) }), 'callee');
});

test('toStream alone is accepted (published later with /push/startup)', () => {
  assert.equal(validateStartup({ ...ok, rtmpUrl: undefined, toStream: 'room1' }).toStream, 'room1');
});
