import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Disposer } from '../../plugin/lib/disposer.js';
import { MediaTicker } from '../../plugin/media/timeline/ticker.js';

test('disposer releases newest first, survives failures, runs late additions at once', async () => {
  const d = new Disposer();
  const order: string[] = [];
  d.add('a', () => order.push('a'));
  d.add('b', async () => {
    order.push('b');
    throw new Error('boom');
  });
  d.add('c', () => order.push('c'));
  assert.deepEqual(d.held, ['a', 'b', 'c']);
  const failures = await d.dispose();
  assert.deepEqual(order, ['c', 'b', 'a']);
  assert.deepEqual(failures.map((f) => f.name), ['b']);
  assert.deepEqual(await d.dispose(), failures, 'idempotent');
  let late = false;
  d.add('late', () => (late = true));
  await new Promise((r) => setImmediate(r));
  assert.ok(late, 'a resource acquired after the end is released at once');
});

test('ticker: one timer for all subscribers, stopped when none is left; a throwing subscriber harms none', async () => {
  const t = new MediaTicker(5);
  let a = 0;
  let b = 0;
  const offA = t.subscribe(() => a++);
  const offB = t.subscribe(() => {
    b++;
    throw new Error('x');
  });
  const offC = t.subscribe(() => {});
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(a >= 3 && b >= 3, `${a} ${b}`);
  offA();
  offB();
  offC();
  assert.equal(t.size, 0);
  const before = a;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(a, before);
});
