/** RFC 4733 DTMF on the media leg: the payload both ways, digits read from a packet stream, and two reporters merged. */
import assert from 'node:assert/strict';
import type { Socket } from 'node:dgram';
import { test } from 'node:test';
import { DtmfDetector, DtmfMerge, dtmfEventCode, parseTelephoneEvent, telephoneEventPayload } from '../../plugin/media/dtmf.js';
import { parseRtp, type RtpPacket } from '../../plugin/media/ingest/rtp.js';
import { CallerFeed } from '../../plugin/media/to-caller/caller-feed.js';

test('telephone-event payload: codes, E bit, volume, duration; round trip', () => {
  assert.deepEqual([..."0189*#AD"].map(dtmfEventCode), [0, 1, 8, 9, 10, 11, 12, 15]);
  assert.equal(dtmfEventCode('x'), undefined);
  assert.equal(dtmfEventCode('b'), 13);
  const p = telephoneEventPayload(11, true, 960);
  assert.deepEqual([...p], [11, 0x8a, 0x03, 0xc0]);
  assert.deepEqual(parseTelephoneEvent(p), { digit: '#', end: true, volume: 10, duration: 960 });
  assert.deepEqual(parseTelephoneEvent(telephoneEventPayload(5, false, 160)), { digit: '5', end: false, volume: 10, duration: 160 });
  assert.equal(parseTelephoneEvent(Buffer.from([1, 2, 3])), undefined);
  assert.equal(parseTelephoneEvent(Buffer.from([16, 0x80, 0, 160]))!.digit, undefined, 'flash: no digit');
});

test('detector: one digit per event (repeated end packets), at its end; an event whose end was lost reports when the next starts', () => {
  const got: [string, number][] = [];
  const d = new DtmfDetector(8000, (digit, ms) => got.push([digit, ms]));
  // "1": 3 updates, end ×3.
  for (const dur of [160, 320, 480]) d.push(1000, telephoneEventPayload(1, false, dur));
  assert.deepEqual(got, []);
  for (let i = 0; i < 3; i++) d.push(1000, telephoneEventPayload(1, true, 960));
  assert.deepEqual(got, [['1', 120]]);
  // "1" again (a new timestamp): a second digit. Its end packets are lost; "#" starts.
  d.push(3000, telephoneEventPayload(1, false, 160));
  d.push(3000, telephoneEventPayload(1, false, 320));
  d.push(5000, telephoneEventPayload(11, false, 160));
  assert.deepEqual(got, [['1', 120], ['1', 40]]);
  d.push(5000, telephoneEventPayload(11, true, 800));
  d.push(5000, Buffer.from([16, 0x80, 0, 160])); // not a digit: ignored
  assert.deepEqual(got, [['1', 120], ['1', 40], ['#', 100]]);
});

test('merge: a digit reported by both counts once; "11" stays two; each reporter alone counts every digit; the window', () => {
  const m = new DtmfMerge();
  assert.equal(m.add('pbx', '1', 0), true);
  assert.equal(m.add('leg', '1', 300), false, 'the leg\'s report of the same digit');
  assert.equal(m.add('leg', '1', 500), true);
  assert.equal(m.add('leg', '1', 700), true);
  assert.equal(m.add('pbx', '1', 800), false);
  assert.equal(m.add('pbx', '1', 900), false);
  assert.equal(m.add('pbx', '1', 1000), true, 'nothing left to pair with');
  for (let i = 0; i < 5; i++) assert.equal(m.add('leg', '5', 10_000 + i * 200), true);
  assert.equal(m.add('pbx', '5', 20_000), true, 'too late to pair: a new digit');
  assert.equal(m.add('pbx', '2', 20_100), true);
  assert.equal(m.add('leg', '3', 20_200), true, 'another digit');
});

function capture() {
  const sent: RtpPacket[] = [];
  const socket = {
    send(buf: Buffer) {
      const r = parseRtp(buf);
      assert.ok(r.ok);
      sent.push(r.packet);
    },
  } as unknown as Socket;
  return { sent, socket };
}

test('caller feed sends digits as RFC 4733 in the audio stream: 120 ms events, end ×3, 80 ms of audio between; resolves when sent; detector reads them back', async () => {
  const a = capture();
  const feed = new CallerFeed({ startMs: 0, alwaysOn: false, audio: { socket: a.socket, target: { address: '127.0.0.1', port: 4000 }, payloadType: 0, encoding: 'PCMU', clockRate: 8000 } });
  feed.tick(0);
  let done = false;
  const sent = feed.sendDigits('1#', 101, 120, 80).then(() => { done = true; });
  for (let t = 20; t <= 1000; t += 20) {
    feed.tick(t);
    await Promise.resolve();
  }
  await sent;
  assert.ok(done);
  const kinds = a.sent.map((p) => (p.payloadType === 101 ? (parseTelephoneEvent(p.payload)!.end ? 'E' : 'e') : 'a')).join('');
  // Digit, end ×3, 4 packets of audio, digit, end ×3, 4 of audio; then nothing (not alwaysOn).
  assert.match(kinds, /^eeeeeEEEaaaaeeeeeEEEaaaa/);
  assert.ok(!kinds.slice(24).includes('e'), kinds);
  for (let i = 1; i < a.sent.length; i++) assert.equal((a.sent[i]!.sequenceNumber - a.sent[i - 1]!.sequenceNumber) & 0xffff, 1, 'one sequence');
  const ev = a.sent.filter((p) => p.payloadType === 101);
  assert.ok(ev[0]!.marker && !ev[1]!.marker, 'marker on an event\'s first packet');
  assert.ok(ev.slice(0, 8).every((p) => p.timestamp === ev[0]!.timestamp), 'one timestamp per event');
  assert.equal((ev[8]!.timestamp - ev[0]!.timestamp) >>> 0, 10 * 160, 'the next event starts 200 ms later');
  assert.deepEqual(ev.slice(0, 8).map((p) => parseTelephoneEvent(p.payload)!.duration), [160, 320, 480, 640, 800, 960, 960, 960]);
  const got: string[] = [];
  const d = new DtmfDetector(8000, (digit, ms) => got.push(`${digit}:${ms}`));
  for (const p of ev) d.push(p.timestamp, p.payload);
  assert.deepEqual(got, ['1:120', '#:120']);
});

test('caller feed: a second request waits for the first; cancelDigits resolves every one', async () => {
  const a = capture();
  const feed = new CallerFeed({ startMs: 0, alwaysOn: false, audio: { socket: a.socket, target: { address: '127.0.0.1', port: 4000 }, payloadType: 0, encoding: 'PCMU', clockRate: 8000 } });
  const order: string[] = [];
  const p1 = feed.sendDigits('1', 101, 120, 80).then(() => order.push('1'));
  const p2 = feed.sendDigits('2', 101, 120, 80).then(() => order.push('2'));
  for (let t = 0; t <= 1000; t += 20) {
    feed.tick(t);
    await Promise.resolve();
  }
  await Promise.all([p1, p2]);
  assert.deepEqual(order, ['1', '2']);
  const digits = a.sent.filter((p) => p.payloadType === 101 && parseTelephoneEvent(p.payload)!.end).map((p) => parseTelephoneEvent(p.payload)!.digit);
  assert.deepEqual(digits, ['1', '1', '1', '2', '2', '2']);
  const p3 = feed.sendDigits('123', 101, 120, 80);
  const p4 = feed.sendDigits('4', 101, 120, 80);
  feed.tick(1020);
  feed.cancelDigits();
  await Promise.all([p3, p4]);
  await assert.rejects(feed.sendDigits('x', 101, 120, 80), /not DTMF digits/);
});
