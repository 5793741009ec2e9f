/**
 * Hostile input, REST: every request-body validator fed arbitrary values (fc.anything, JSON values) and
 * valid bodies with fields swapped for hostile ones (control characters, huge strings, numbers for strings,
 * nested objects and arrays, "__proto__" keys, odd booleans and ports, URLs that almost parse). Each returns
 * a value or throws ValidationError naming a field; never another exception; what it returns carries no
 * control characters. The same for validateInbound's Stasis arguments and channel variables.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  validateCallId, validateInbound, validateInjectSound, validateMediaSessionId, validatePushStartup,
  validateSendDtmf, validateSoundOn, validateStartup, ValidationError,
} from '../../plugin/calls/validate.js';
import { fuzz, HOSTILE_TOKENS, mutatedText } from '../helpers/fuzz.js';
import { inboundFields, INBOUND_VARIABLES } from '../../adapters/asterisk/inbound.js';

const CONTROL = /[\u0000-\u001f\u007f]/;

/** A validator's verdict: its value, or a ValidationError naming the field (anything else fails the property). */
function verdict<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof ValidationError, `only ValidationError, got ${String(err)}`);
    assert.ok(typeof err.field === 'string' && err.field.length > 0, 'names a field');
    assert.ok(err.message.startsWith(err.field));
    return undefined;
  }
}

/** Every string reachable from a returned value. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) strings(x, out);
  return out;
}

function noControlChars(v: unknown): void {
  for (const s of strings(v)) assert.ok(!CONTROL.test(s), `returned ${JSON.stringify(s)}`);
}

const controlChar = fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)).chain((c) => fc.constantFrom(c, '\u007f'));
const text = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30, unit: 'binary' }) },
  { weight: 2, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), controlChar, fc.string({ maxLength: 10 })).map(([a, c, b]) => a + c + b) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_TOKENS, 'true', 'TRUE', 'True', 'false', ' true', '5060', ' 5060 ', '0', '65535', '65536', '00080', '+80', 'mute', 'sound_on', 'SOUND_ON', 'RFC2833', 'info', '12#*abcd') },
  { weight: 1, arbitrary: fc.constantFrom('rtmp://h/live', 'rtmps://h:443/app/inst', 'rtmp://u:p@h/live/key?x=1', 'rtmp://[::1]:1935/live', 'rtmp://h', 'rtmp:///live', 'rtmp://h:0/x', 'rtmp://%zz@h/a', 'rtmp://h/a b', 'RTMP://H/LIVE/KEY') },
  { weight: 1, arbitrary: fc.constantFrom('sip:alice@10.0.0.5:5070', 'sips:bob@pbx', 'sip:@x', 'sip:a@', 'sip:a@b@c', '1000', 'pbx.example.com', '[::1]:5060', 'a<b', 'x\r\nVia: evil') },
  // Huge: longer than every limit (kept as a length, so a counterexample stays readable).
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(257, 1025, 100_000), fc.constantFrom('a', ' ', '\u0000', 'é')).map(([n, c]) => c.repeat(n)) },
);
/** Values of the wrong type, or of the right type with hostile content. */
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: text },
  { weight: 1, arbitrary: mutatedText(text, 3) },
  { weight: 2, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 1, 5060, 65536, 1e21, NaN, Infinity, -Infinity, 2 ** 53)) },
  { weight: 1, arbitrary: fc.constantFrom(true, false, null, undefined, [], {}, [1], ['a'], { a: 1 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2, withBigInt: true, withDate: true, withMap: true, withNullPrototype: true, withBoxedValues: true, withTypedArray: true, withSparseArray: true }) },
);

/** A valid body with fields replaced, added or removed; keys set as own properties ("__proto__" too, as JSON.parse does). */
function hostileBody(base: Record<string, unknown>, fields: string[]): fc.Arbitrary<Record<string, unknown>> {
  const key = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...fields) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', 'options', '') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
  const edit = fc.oneof({ weight: 5, arbitrary: fc.tuple(key, fieldValue).map(([k, v]) => ({ set: k, v })) }, { weight: 1, arbitrary: key.map((k) => ({ del: k })) });
  return fc.array(edit, { maxLength: 5 }).map((edits) => {
    const b: Record<string, unknown> = { ...base };
    for (const e of edits) {
      if ('del' in e) delete b[e.del];
      else Object.defineProperty(b, e.set, { value: e.v, enumerable: true, writable: true, configurable: true });
    }
    return b;
  });
}

/** Arbitrary values in place of the whole body, or a valid one edited. */
function bodies(base: Record<string, unknown>, fields: string[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.anything({ maxDepth: 2, withNullPrototype: true, withBoxedValues: true, withMap: true, withDate: true }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
    { weight: 1, arbitrary: fc.dictionary(fc.constantFrom(...fields), fieldValue, { maxKeys: fields.length, noNullPrototype: false }) },
    { weight: 5, arbitrary: hostileBody(base, fields) },
  );
}

const STARTUP = { callId: 'c1', callee: '1000', sipDomain: 'pbx.example.com', rtmpUrl: 'rtmp://h/live', rtmpStream: 's' };
const STARTUP_FIELDS = [
  'callId', 'callee', 'sipDomain', 'sipLogin', 'sipAuthenticationName', 'sipPassword', 'sipOutboundProxy', 'sipPort', 'sipRegisterRequired',
  'hasAudio', 'hasVideo', 'rtmpUrl', 'rtmpStream', 'toStream', 'rtmpTransponderFullUrl', 'appKey', 'visibleName',
];

test('fuzz: validateStartup returns a clean value or a ValidationError naming the field', (t) => {
  fuzz(t, bodies(STARTUP, STARTUP_FIELDS), (body) => {
    const r = verdict(() => validateStartup(body));
    if (!r) return;
    noControlChars(r);
    assert.equal(typeof r.hasAudio, 'boolean');
    assert.equal(typeof r.hasVideo, 'boolean');
    assert.ok(r.hasAudio || r.hasVideo);
    assert.ok(r.sipPort === undefined || (Number.isInteger(r.sipPort) && r.sipPort >= 1 && r.sipPort <= 65535));
    assert.ok(r.callId.length > 0 && r.callee.length > 0 && r.sipDomain.length > 0);
    assert.ok(r.rtmpUrl || r.toStream);
  }, 3000);
});

test('fuzz: validatePushStartup returns a clean value or a ValidationError naming the field', (t) => {
  const options = fc.oneof(fieldValue, hostileBody({ action: 'sound_on', soundFile: 'a.wav', loop: 'true' }, ['action', 'soundFile', 'loop']));
  const body = fc.tuple(bodies({ streamName: 's', rtmpUrl: 'rtmp://h/app' }, ['streamName', 'rtmpUrl', 'rtmpTransponderFullUrl', 'options']), fc.option(options, { nil: undefined }))
    .map(([b, o]) => (o !== undefined && b && typeof b === 'object' && !Array.isArray(b) ? { ...(b as object), options: o } : b));
  fuzz(t, body, (b) => {
    const r = verdict(() => validatePushStartup(b));
    if (!r) return;
    noControlChars(r);
    assert.ok(['', 'mute', 'sound_on'].includes(r.action));
    assert.ok(r.action !== 'sound_on' || r.soundFile.length > 0);
    assert.equal(typeof r.loop, 'boolean');
  }, 2000);
});

test('fuzz: the small validators (DTMF, sound, call and media session ids) return clean values or ValidationError', (t) => {
  const which = fc.constantFrom('dtmf', 'soundOn', 'inject', 'callId', 'mediaSessionId');
  const fields = ['callId', 'dtmf', 'type', 'mediaSessionId', 'soundFile', 'loop', 'fileName'];
  const base = { callId: 'c', dtmf: '12#*', type: 'info', mediaSessionId: 'm', soundFile: 'a.wav', loop: false, fileName: 'b.wav' };
  fuzz(t, fc.tuple(which, bodies(base, fields)), ([w, body]) => {
    const r = verdict(() => {
      switch (w) {
        case 'dtmf': return validateSendDtmf(body);
        case 'soundOn': return validateSoundOn(body);
        case 'inject': return validateInjectSound(body);
        case 'callId': return validateCallId(body);
        default: return validateMediaSessionId(body);
      }
    });
    if (r === undefined) return;
    noControlChars(r);
    if (w === 'dtmf') {
      const d = r as ReturnType<typeof validateSendDtmf>;
      assert.match(d.dtmf, /^[0-9A-D*#]+$/);
      assert.ok(d.mode === 'rfc4733' || d.mode === 'info');
    }
    if (typeof r === 'string') assert.ok(r.length > 0);
  }, 3000);
});

test('fuzz: validateInbound on hostile Stasis arguments and channel variables', (t) => {
  const keys = ['hasVideo', 'hasAudio', 'rtmpTransponderFullUrl', 'callId', 'visibleName', 'appKey', 'rtmpUrl', '__proto__', 'constructor', ''];
  const arg = fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...keys), fc.constantFrom('=', ' = ', '=='), text).map(([k, eq, v]) => k + eq + v) },
    { weight: 1, arbitrary: text },
  );
  const args = fc.oneof(
    fc.tuple(fc.oneof(text, fc.constantFrom('rtmp://h/live', 'rtmps://h/app', '')), fc.oneof(text, fc.constantFrom('show', '', 'key?x=1')), fc.array(arg, { maxLength: 4 })).map(([u, s, rest]) => [u, s, ...rest]),
    fc.array(text, { maxLength: 4 }),
  );
  const vars = fc.dictionary(fc.constantFrom(...Object.values(INBOUND_VARIABLES)), fc.oneof(text, fc.constantFrom('rtmp://h/live', 'true')), { maxKeys: 3 });
  // The channel's fields come from ARI, and validateInbound passes them through as they are (caller, caller
  // name, extension: not checked for control characters), so they are generated without any here.
  const ch = fc.record({ channelId: fc.constantFrom('1700000000.1'), caller: fc.stringMatching(/^[ -~]{0,12}$/), callerName: fc.stringMatching(/^[ -~]{0,12}$/), exten: fc.stringMatching(/^[0-9*#a-z]{0,6}$/) });
  fuzz(t, fc.tuple(args, vars, ch), ([a, v, c]) => {
    // The adapter reads the dialplan's arguments into fields; the core validates them.
    const r = verdict(() => validateInbound(inboundFields(a, v), c));
    if (!r) return;
    noControlChars(r);
    assert.match(r.rtmpUrl, /^rtmps?:\/\//i);
    assert.equal(r.rtmpTransponderFullUrl, true);
    assert.ok(r.hasAudio || r.hasVideo);
    assert.ok(r.callId.length > 0);
  }, 2500);
});
