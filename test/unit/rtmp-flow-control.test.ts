import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientFlowControl } from '../../plugin/rtmp/flow-control.js';
import { MessageType, UserControlEvent } from '../../plugin/rtmp/messages.js';

test('flow control: one Acknowledgement per window crossed, our window announced once per change, pings answered', () => {
  const f = new ClientFlowControl();
  assert.equal(f.received(10_000), undefined, 'no window yet: no acks');
  assert.equal(f.onMessage({ kind: 'windowAckSize', size: 2500 } as never), undefined);
  const ack = f.received(1000);
  assert.equal(ack?.typeId, MessageType.Acknowledgement);
  assert.equal(ack!.body.readUInt32BE(0), 11_000, 'the total received so far');
  assert.equal(f.received(2000), undefined);
  assert.equal(f.received(600)?.typeId, MessageType.Acknowledgement);
  const bw = f.onMessage({ kind: 'setPeerBandwidth', size: 5000, limitType: 2 } as never);
  assert.equal(bw?.typeId, MessageType.WindowAckSize);
  assert.equal(bw!.body.readUInt32BE(0), 5000);
  assert.equal(f.onMessage({ kind: 'setPeerBandwidth', size: 5000, limitType: 2 } as never), undefined, 'same size: announced already');
  const pong = f.onMessage({ kind: 'userControl', event: UserControlEvent.PingRequest, value: 42 } as never);
  assert.equal(pong?.typeId, MessageType.UserControl);
  assert.equal(f.onMessage({ kind: 'userControl', event: UserControlEvent.StreamBegin, value: 1 } as never), undefined);
  f.onMessage({ kind: 'ack', sequence: 1 } as never);
  assert.deepEqual(f.counters, { acksSent: 2, acksReceived: 1, pingsAnswered: 1 });
  assert.equal(f.peerWindow, 2500);
});
