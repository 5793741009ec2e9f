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
