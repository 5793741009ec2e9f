import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shutdownOnSignal, type Held } from '../../plugin/lib/shutdown.js';

/** A fake app: `items` things to release, one every `stepMs` (a slow Asterisk), and what was logged and exited. */
function fakeApp(o: { items: number; stepMs: number; timeoutMs: number; failWith?: Error; leaveBehind?: number }) {
  let held = o.items;
  const logs: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const exits: { code: number; at: number }[] = [];
  const t0 = Date.now();
  let stopCalls = 0;
  const rec = (level: string) => (obj: Record<string, unknown>, msg: string) => logs.push({ level, obj, msg });
  const onSignal = shutdownOnSignal({
    async stop() {
      stopCalls++;
      // (Ends with the fake process: after its exit, nothing runs on.)
      while (held > (o.leaveBehind ?? 0) && exits.length === 0) {
        await new Promise((r) => setTimeout(r, o.stepMs));
        held--;
      }
      if (o.failWith) throw o.failWith;
    },
    timeoutMs: o.timeoutMs,
    held: (): Held => ({ calls: held, channels: 2 * held, bridges: held, pjsipObjects: 0, children: 0 }),
    log: { info: rec('info'), warn: rec('warn'), error: rec('error') } as never,
    exit: (code) => exits.push({ code, at: Date.now() - t0 }),
  });
  return { onSignal, logs, exits, stopCalls: () => stopCalls, held: () => held };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('everything released within the bound: exit 0, once', async () => {
  const app = fakeApp({ items: 5, stepMs: 5, timeoutMs: 5000 });
  app.onSignal('SIGTERM');
  await settle(300);
  assert.deepEqual(app.exits.map((e) => e.code), [0]);
  assert.equal(app.held(), 0);
  assert.ok(app.logs.some((l) => l.level === 'info' && /everything released/.test(l.msg)));
});

test('a slow release past the bound: exit 1 at the bound, and the log says what is left by kind', async () => {
  const app = fakeApp({ items: 1000, stepMs: 20, timeoutMs: 300 });
  app.onSignal('SIGTERM');
  await settle(1000);
  assert.equal(app.exits.length, 1);
  assert.equal(app.exits[0]!.code, 1);
  assert.ok(app.exits[0]!.at >= 250 && app.exits[0]!.at < 900, `exited after ${app.exits[0]!.at} ms`);
  const report = app.logs.find((l) => l.level === 'error' && /bound passed/.test(l.msg));
  assert.ok(report);
  const held = report.obj.held as Held;
  // Only the kinds with something left; the counts are those at the bound.
  assert.deepEqual(Object.keys(held).sort(), ['bridges', 'calls', 'channels']);
  assert.ok(held.calls! > 900 && held.calls! < 1000, `calls left: ${held.calls}`);
  assert.equal(held.channels, 2 * held.calls!);
});

test('a second signal exits at once; the bound then exits no more', async () => {
  const app = fakeApp({ items: 1000, stepMs: 20, timeoutMs: 200 });
  app.onSignal('SIGTERM');
  await settle(50);
  assert.equal(app.exits.length, 0);
  app.onSignal('SIGINT');
  assert.deepEqual(app.exits.map((e) => e.code), [1]); // synchronously, in the handler
  assert.ok(app.logs.some((l) => l.level === 'warn' && /second signal/.test(l.msg) && (l.obj.held as Held).calls! > 0));
  await settle(400);
  assert.equal(app.exits.length, 1);
  assert.equal(app.stopCalls(), 1);
});

test('stop() failing, or leaving something held, exits 1 with the report', async () => {
  const failing = fakeApp({ items: 2, stepMs: 5, timeoutMs: 5000, failWith: new Error('ARI gone') });
  failing.onSignal('SIGTERM');
  const leaving = fakeApp({ items: 3, stepMs: 5, timeoutMs: 5000, leaveBehind: 1 });
  leaving.onSignal('SIGTERM');
  await settle(300);
  assert.deepEqual(failing.exits.map((e) => e.code), [1]);
  assert.ok(failing.logs.some((l) => l.level === 'error' && l.obj.err === 'ARI gone'));
  assert.deepEqual(leaving.exits.map((e) => e.code), [1]);
  const report = leaving.logs.find((l) => l.level === 'error' && /could not be released/.test(l.msg));
  assert.deepEqual(report?.obj.held, { calls: 1, channels: 2, bridges: 1 });
});
