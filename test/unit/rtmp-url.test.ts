/** RTMP URLs as users paste them: app / stream split, defaults, credentials, and safe descriptions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeTarget, parseRtmpUrl, RtmpUrlError } from '../../plugin/rtmp/url.js';

test('the last path segment is the stream name when none is given', () => {
  assert.deepEqual(parseRtmpUrl('rtmp://127.0.0.1:1935/live/town-hall'), {
    secure: false,
    host: '127.0.0.1',
    port: 1935,
    app: 'live',
    tcUrl: 'rtmp://127.0.0.1:1935/live',
    streamName: 'town-hall',
  });
  const t = parseRtmpUrl('rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop');
  assert.equal(t.port, 1935);
  assert.equal(t.tcUrl, 'rtmp://a.rtmp.youtube.com/live2', 'no port in tcUrl unless the URL had one');
  const wowza = parseRtmpUrl('rtmp://wowza.example.com/app/instance/stream1');
  assert.equal(wowza.app, 'app/instance');
  assert.equal(wowza.streamName, 'stream1');
});

test('a query string stays with the stream name, byte for byte', () => {
  const fb = parseRtmpUrl('rtmps://live-api-s.facebook.com:443/rtmp/FB-123-0-AbC?s_bl=1&s_psm=1&s_sc=123&s_sw=0&s_vt=api-s&a=Ab%2Fc');
  assert.equal(fb.secure, true);
  assert.equal(fb.port, 443);
  assert.equal(fb.app, 'rtmp');
  assert.equal(fb.tcUrl, 'rtmps://live-api-s.facebook.com:443/rtmp');
  assert.equal(fb.streamName, 'FB-123-0-AbC?s_bl=1&s_psm=1&s_sc=123&s_sw=0&s_vt=api-s&a=Ab%2Fc');
  // a '/' inside the query doesn't move the split
  assert.equal(parseRtmpUrl('rtmp://h/live/key?next=/a/b').streamName, 'key?next=/a/b');
});

test('with a separate stream name the whole path (and its query) is the app', () => {
  const t = parseRtmpUrl('rtmp://127.0.0.1/live', 'inbound-7000');
  assert.equal(t.app, 'live');
  assert.equal(t.streamName, 'inbound-7000');
  assert.equal(t.port, 1935);
  assert.equal(parseRtmpUrl('rtmp://h/app/instance/', 'k').app, 'app/instance');
  const q = parseRtmpUrl('rtmp://h:1936/app?token=t', 'k?x=1');
  assert.equal(q.app, 'app?token=t');
  assert.equal(q.tcUrl, 'rtmp://h:1936/app?token=t');
  assert.equal(q.streamName, 'k?x=1');
});

test('defaults: 1935 for rtmp, 443 for rtmps; scheme is case-insensitive; IPv6 in brackets', () => {
  assert.equal(parseRtmpUrl('rtmps://h/app/s').port, 443);
  assert.equal(parseRtmpUrl('RTMP://h/app/s').port, 1935);
  const v6 = parseRtmpUrl('rtmp://[::1]:1940/live/s');
  assert.equal(v6.host, '::1');
  assert.equal(v6.port, 1940);
  assert.equal(v6.tcUrl, 'rtmp://[::1]:1940/live');
});

test('credentials are taken out of the URL, decoded, and kept out of tcUrl', () => {
  const t = parseRtmpUrl('rtmp://pub%40lisher:p%3Ass@word@example.com/live/secretkey');
  assert.equal(t.user, 'pub@lisher');
  assert.equal(t.password, 'p:ss@word');
  assert.equal(t.host, 'example.com');
  assert.equal(t.tcUrl, 'rtmp://example.com/live');
  assert.ok(!('user' in parseRtmpUrl('rtmp://h/live/s')));
});

test('bad URLs give an RtmpUrlError a user can act on, without echoing secrets', () => {
  const cases: [string, string | undefined, RegExp][] = [
    ['http://h/live/s', undefined, /must start with rtmp:\/\/ or rtmps:\/\//],
    ['rtmpt://h/live/s', undefined, /must start with rtmp/],
    ['rtmp://h/onlykey', undefined, /application and a stream name/],
    ['rtmp://h/', undefined, /no application name/],
    ['rtmp://h', 'key', /no application name/],
    ['rtmp://h/live/', undefined, /stream name is empty/],
    ['rtmp://h/live', '  ', /stream name is empty/],
    ['rtmp://:1935/live/s', undefined, /no host/],
    ['rtmp://h:99999/live/s', undefined, /invalid port/],
    ['rtmp://h:abc/live/s', undefined, /invalid port/],
    ['rtmp://[::1/live/s', undefined, /IPv6/],
    ['rtmp://u:%zz@h/live/s', undefined, /password.*%-escape/],
    ['rtmp://h o/live/s', undefined, /invalid host/],
  ];
  for (const [url, name, re] of cases) {
    assert.throws(() => parseRtmpUrl(url, name), (e: unknown) => e instanceof RtmpUrlError && re.test(e.message), url);
  }
  try {
    parseRtmpUrl('rtmp://user:hunter2@h:0/live/topsecret');
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof RtmpUrlError);
    assert.doesNotMatch(e.message, /hunter2|topsecret|user/);
  }
});

test('describeTarget hides credentials, app queries and most of the stream name', () => {
  const t = parseRtmpUrl('rtmps://user:hunter2@live.example.com/app?token=tok', 'abcdef-secret?x=1');
  const s = describeTarget(t);
  assert.equal(s, 'rtmps://live.example.com:443/app/abcd***');
  assert.doesNotMatch(s, /hunter2|user|tok|secret/);
  assert.equal(describeTarget(parseRtmpUrl('rtmp://[::1]/live', 'ab')), 'rtmp://[::1]:1935/live/***');
});
