import assert from 'node:assert/strict';
import type { RemoteInfo } from 'node:dgram';
import { test } from 'node:test';
import { RtpGate } from '../../plugin/media/ingest/rtp-gate.js';
import { serializeRtp } from '../../plugin/media/ingest/rtp.js';

const from = (address: string, port: number): RemoteInfo => ({ address, port, family: 'IPv4', size: 0 });
const pkt = (pt: number) => serializeRtp({ marker: false, payloadType: pt, sequenceNumber: 1, timestamp: 160, ssrc: 7, csrcs: [], payload: Buffer.alloc(160) });

test('only negotiated payload types from the expected source pass; the rest is counted by reason', () => {
  const g = new RtpGate({ payloadTypes: [118, 101], expectedSource: { address: '127.0.0.1', port: 10010 } });
  assert.equal(g.accept(pkt(118), from('127.0.0.1', 10010))?.payloadType, 118);
  assert.equal(g.accept(pkt(101), from('127.0.0.1', 10010))?.payloadType, 101);
  assert.equal(g.accept(pkt(118), from('127.0.0.1', 9999)), undefined);
  assert.equal(g.accept(pkt(118), from('10.0.0.1', 10010)), undefined);
  assert.equal(g.accept(pkt(0), from('127.0.0.1', 10010)), undefined);
  assert.equal(g.accept(Buffer.from([0x80, 0x76]), from('127.0.0.1', 10010)), undefined);
  assert.equal(g.accept(Buffer.from([0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), from('127.0.0.1', 10010)), undefined);
  assert.deepEqual(g.toJSON(), {
    accepted: 2, bytes: 2 * 172, rejected: 2, rejectedSource: 2, wrongPayloadType: 1, rejectReasons: { 'too-short': 1, 'bad-version': 1 },
  });
});
