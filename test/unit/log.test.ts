import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, redactUrl } from '../../plugin/lib/log.js';

test('redactUrl strips credentials and query keys; keeps host and path', () => {
  assert.equal(redactUrl('rtmp://user:pw@a.example:1935/live/key?token=abc'), 'rtmp://***@a.example:1935/live/key?***');
  assert.equal(redactUrl('http://127.0.0.1:8088/ari'), 'http://127.0.0.1:8088/ari');
  assert.equal(redactUrl('not a url'), '[unparseable url]');
});

test('the logger redacts secret keys at any depth up to 3', () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } });
  const log = createLogger({ level: 'info', destination: sink });
  log.info({ sipPassword: 's1', call: { sipPassword: 's2', auth: { password: 's3' } }, ok: 'visible' }, 'hello');
  const out = lines.join('');
  for (const s of ['s1', 's2', 's3']) assert.ok(!out.includes(`"${s}"`), out);
  assert.ok(out.includes('visible'));
});

test('text from the far end (display names, SIP reasons) cannot forge log lines or terminal escapes', () => {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } });
  const log = createLogger({ level: 'info', destination: sink });
  const hostile = 'Bob\r\n{"level":50,"msg":"forged"}\u001b[31mred\u0000';
  log.info({ visibleName: hostile, causeText: hostile }, `call from ${hostile}`);
  const out = lines.join('');
  assert.equal(out.trimEnd().split('\n').length, 1, 'one NDJSON line');
  assert.ok(!/[\u0000-\u0008\u000b-\u001f]/.test(out.trimEnd()), 'no raw control characters');
  const parsed = JSON.parse(out) as { visibleName: string; msg: string };
  assert.equal(parsed.visibleName, hostile, 'the text is kept, escaped');
});
