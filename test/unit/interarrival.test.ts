import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InterarrivalJitter } from '../../plugin/media/ingest/interarrival.js';

test('a steady 20 ms stream has no jitter', () => {
  const j = new InterarrivalJitter(8000);
  for (let i = 0; i < 100; i++) j.add(i * 160, 1000 + i * 20);
  assert.equal(j.ms, 0);
});

test('alternating ±5 ms arrivals converge on RFC 3550\'s running mean of |D| (10 ms)', () => {
  const j = new InterarrivalJitter(8000);
  for (let i = 0; i < 400; i++) j.add(i * 160, i * 20 + (i % 2 ? 5 : -5));
  assert.ok(Math.abs(j.ms - 10) < 0.01, String(j.ms));
});

test('timestamp wrap is one step; a restart is not counted as jitter', () => {
  const j = new InterarrivalJitter(90_000);
  const start = 2 ** 32 - 3000 * 5;
  for (let i = 0; i < 20; i++) j.add((start + i * 3000) >>> 0, i * (1000 / 30));
  assert.ok(j.ms < 1e-6, String(j.ms));
  j.add(2_000_000_000, 700); // a new source: its timestamps are hours away
  assert.ok(j.ms < 1e-6);
});
