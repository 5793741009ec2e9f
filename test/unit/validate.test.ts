import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inboundFields } from '../../adapters/asterisk/inbound.js';
import { validateInbound, validatePushStartup, validateSendDtmf, validateStartup, ValidationError } from '../../plugin/calls/validate.js';

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
  assert.equal(r.sipDomainFromCallee, true, 'errors about that host name callee');
  assert.equal(validateStartup({ ...ok, callee: 'sip:alice@10.0.0.5', sipDomain: 'pbx' }).sipDomainFromCallee, undefined);
  assert.equal(validateStartup(ok).sipDomainFromCallee, undefined);
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

test('maxDuration: whole seconds 0-604800 (0: no limit), number or string; absent: MAX_CALL_DURATION applies', () => {
  assert.equal(validateStartup(ok).maxDuration, undefined);
  assert.equal(validateStartup({ ...ok, maxDuration: 7200 }).maxDuration, 7200);
  assert.equal(validateStartup({ ...ok, maxDuration: '0' }).maxDuration, 0);
  for (const bad of [-1, 1.5, '2h', 604801, true]) assert.equal(field({ ...ok, maxDuration: bad }), 'maxDuration', String(bad));
  const inbound = validateInbound({ rtmpUrl: 'rtmp://h/app/key', maxDuration: '3600' }, { channelId: 'ch', caller: '1', callerName: '', exten: '7000' });
  assert.equal(inbound.maxDuration, 3600);
});

test('toStream alone is accepted (published later with /push/startup)', () => {
  assert.equal(validateStartup({ ...ok, rtmpUrl: undefined, toStream: 'room1' }).toStream, 'room1');
});

test('push/startup: streamName and rtmpUrl required; options.action mute|sound_on; sound_on needs soundFile', () => {
  const ok = validatePushStartup({ streamName: 's', rtmpUrl: 'rtmp://h/app', options: { action: 'SOUND_ON', soundFile: 'a.wav', loop: 'true' } }, { streamPrefix: 'rtmp_' });
  const { target, ...rest } = ok;
  assert.deepEqual(rest, { streamName: 's', rtmpUrl: 'rtmp://h/app', rtmpTransponderFullUrl: false, action: 'sound_on', soundFile: 'a.wav', loop: true });
  // Parsed once, here: the server's prefix goes before the stream name (WCS's rule).
  assert.deepEqual([target.kind, target.key, target.display], ['rtmp', 'h:1935/app/rtmp_s', 'rtmp://h:1935/app/***']);
  const field = (b: unknown) => {
    try {
      validatePushStartup(b);
      return 'ok';
    } catch (e) {
      return (e as ValidationError).field;
    }
  };
  assert.equal(field({ rtmpUrl: 'rtmp://h/app' }), 'streamName');
  assert.equal(field({ streamName: 's' }), 'rtmpUrl');
  assert.equal(field({ streamName: 's', rtmpUrl: 'http://h/app' }), 'rtmpUrl');
  assert.equal(field({ streamName: 's', rtmpUrl: 'rtmp://h/app', options: 'mute' }), 'options');
  assert.equal(field({ streamName: 's', rtmpUrl: 'rtmp://h/app', options: { action: 'jump' } }), 'options.action');
  assert.equal(field({ streamName: 's', rtmpUrl: 'rtmp://h/app', options: { action: 'sound_on' } }), 'options.soundFile');
  assert.equal(field({ streamName: 's', rtmpUrl: 'rtmp://h/app', options: null }), 'ok');
});

test('send_dtmf: digits 0-9 * # A-D (upper-cased), type RFC2833 (default) or INFO', () => {
  assert.deepEqual(validateSendDtmf({ callId: 'c', dtmf: '12#*abcd' }), { callId: 'c', dtmf: '12#*ABCD', mode: 'rfc4733' });
  assert.deepEqual(validateSendDtmf({ callId: 'c', dtmf: '5', type: 'info' }), { callId: 'c', dtmf: '5', mode: 'info' });
  assert.throws(() => validateSendDtmf({ callId: 'c', dtmf: '1e' }), (e: ValidationError) => e.field === 'dtmf');
  assert.throws(() => validateSendDtmf({ callId: 'c', dtmf: '1', type: 'INBAND' }), (e: ValidationError) => e.field === 'type');
});

test('inbound: Stasis(app, url, stream, key=value...) or channel variables; the stream name as written', () => {
  const ch = { channelId: '1700.1', caller: '100', callerName: 'Desk', exten: '7000' };
  // What the Asterisk adapter reads from the dialplan, validated by the core.
  const inbound = (args: string[], vars: Record<string, string>, c: typeof ch) => validateInbound(inboundFields(args, vars), c);
  const r = inbound(['rtmp://h:1935/live', 'show', 'hasVideo=true', 'appKey=k'], {}, ch);
  assert.equal(r.rtmpUrl, 'rtmp://h:1935/live/show');
  assert.equal(r.rtmpTransponderFullUrl, true, 'published as written: no rtmp_ prefix');
  assert.deepEqual([r.callId, r.callee, r.sipLogin, r.visibleName, r.hasVideo, r.appKey], ['1700.1', '7000', '100', 'Desk', true, 'k']);
  const v = inbound([], { SIP_AS_RTMP_URL: 'rtmps://h/app', SIP_AS_RTMP_STREAM: 'key?x=1', SIP_AS_RTMP_VIDEO: 'true' }, ch);
  assert.deepEqual([v.rtmpUrl, v.hasVideo], ['rtmps://h/app/key?x=1', true]);
  assert.throws(() => inbound([], {}, ch), (e: ValidationError) => e.field === 'rtmpUrl');
  assert.throws(() => inbound(['ftp://h/x', 's'], {}, ch), (e: ValidationError) => e.field === 'rtmpUrl');
  assert.throws(() => inbound(['rtmp://h/app', 's', 'video'], {}, ch), /key=value/);
  assert.throws(() => inbound(['rtmp://h/app', 's', 'hasVideo=maybe'], {}, ch), (e: ValidationError) => e.field === 'hasVideo');
});

test('SRT wherever RTMP goes: /call/startup, /push/startup and the dialplan; the stream name becomes the streamid; bad options are 400s naming rtmpUrl', () => {
  const call = validateStartup({ callId: 'c', callee: '1', sipDomain: 'h', rtmpUrl: 'srt://cdn:9000?passphrase=0123456789', rtmpStream: 'show' }, { streamPrefix: 'rtmp_' });
  assert.equal(call.target?.kind, 'srt');
  assert.equal(call.target?.kind === 'srt' && call.target.srt.streamId, 'rtmp_show', 'the prefix rule, as for RTMP');
  const full = validatePushStartup({ streamName: 'show', rtmpUrl: 'srt://cdn:9000?streamid=live/k', rtmpTransponderFullUrl: 'true' });
  assert.equal(full.target.kind === 'srt' && full.target.srt.streamId, 'live/k');
  const inbound = validateInbound({ rtmpUrl: 'srt://cdn:9000', rtmpStream: 'in-1' }, { channelId: 'ch', caller: '1', callerName: '', exten: '7000' });
  assert.equal(inbound.target?.kind === 'srt' && inbound.target.srt.streamId, 'in-1');
  assert.equal(inbound.rtmpUrl, 'srt://cdn:9000?streamid=in-1');
  assert.throws(() => validatePushStartup({ streamName: 's', rtmpUrl: 'srt://cdn:9000?foo=1', rtmpTransponderFullUrl: 'true' }), (e: unknown) => e instanceof ValidationError && e.field === 'rtmpUrl' && /"foo" is not supported/.test(e.message));
  assert.throws(() => validateStartup({ callId: 'c', callee: '1', sipDomain: 'h', rtmpUrl: 'http://h/x', rtmpStream: 's' }), /rtmpUrl must start with rtmp:\/\/, rtmps:\/\/ or srt:\/\//);
});
