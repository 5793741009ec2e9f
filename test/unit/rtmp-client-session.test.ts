/**
 * RtmpClientSession with plain bytes, no sockets: the server's side is built with the same message
 * builders as the scripted server of rtmp-publisher.test.ts, and what the session sends is read back
 * with a ChunkReader.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkReader, ChunkWriter } from '../../plugin/rtmp/chunk.js';
import { RtmpClientSession, type ClientSessionOptions } from '../../plugin/rtmp/client-session.js';
import { RtmpError } from '../../plugin/rtmp/errors.js';
import { HANDSHAKE_SIZE } from '../../plugin/rtmp/handshake.js';
import {
  buildCommand,
  buildSetChunkSize,
  buildSetPeerBandwidth,
  buildUserControl,
  buildWindowAckSize,
  MessageType,
  parseMessage,
  UserControlEvent,
  type RtmpMessage,
} from '../../plugin/rtmp/messages.js';
import { parseRtmpUrl } from '../../plugin/rtmp/url.js';
import type { Amf0Value } from '../../plugin/rtmp/amf0.js';

type Command = Extract<RtmpMessage, { kind: 'command' }>;

const STREAM = 'secret-stream-key';

/** A session, everything it reports, and the server's half: what it sent (parsed) and builders to answer. */
function harness(opts: Partial<ClientSessionOptions> = {}, url = `rtmp://example.com/live/${STREAM}`) {
  const writes: { bytes: Buffer; messages: number }[] = [];
  const published: number[] = [];
  const failures: RtmpError[] = [];
  const reconnects: string[] = [];
  const session = new RtmpClientSession(
    { target: parseRtmpUrl(url), ...opts },
    {
      send: (bytes, messages) => writes.push({ bytes, messages }),
      published: (id) => published.push(id),
      reconnect: (p) => reconnects.push(p),
      failed: (e) => failures.push(e),
    },
  );
  const reader = new ChunkReader();
  const writer = new ChunkWriter();
  let handshakeLeft = 1 + 2 * HANDSHAKE_SIZE; // C0 + C1, then C2
  let readUpTo = 0;
  let fed = 0; // chunk-stream bytes given to the session
  /** Messages the session has sent since the last call (handshake bytes skipped). */
  const sent = (): RtmpMessage[] => {
    const out: RtmpMessage[] = [];
    for (; readUpTo < writes.length; readUpTo++) {
      let b = writes[readUpTo]!.bytes;
      const skip = Math.min(handshakeLeft, b.length);
      handshakeLeft -= skip;
      b = b.subarray(skip);
      if (b.length > 0) out.push(...reader.push(b).map(parseMessage));
    }
    return out;
  };
  const server = {
    /** One message from the server, handed to the session whole. */
    send(csid: number, typeId: number, streamId: number, payload: Buffer): void {
      const bytes = writer.encode(csid, typeId, streamId, 0, payload);
      fed += bytes.length;
      session.receive(bytes);
    },
    command(name: string, tid: number, obj: Amf0Value, ...args: Amf0Value[]): void {
      server.send(3, MessageType.CommandAmf0, 0, buildCommand(name, tid, obj, ...args));
    },
    status(level: string, code: string, description: string): void {
      server.send(5, MessageType.CommandAmf0, 1, buildCommand('onStatus', 0, null, { level, code, description }));
    },
    /** S0 + S1 + S2, split in two reads to show that reads need not match the handshake's parts. */
    handshake(): void {
      const s = Buffer.concat([Buffer.from([3]), Buffer.alloc(HANDSHAKE_SIZE, 7), writes[0]!.bytes.subarray(1)]);
      session.receive(s.subarray(0, 1000));
      session.receive(s.subarray(1000));
    },
  };
  return { session, writes, published, failures, reconnects, sent, server, fed: () => fed };
}

const commands = (ms: RtmpMessage[]): Command[] => ms.filter((m): m is Command => m.kind === 'command');

/** Up to the publish command, the way nginx-rtmp answers. */
function toPublish(h: ReturnType<typeof harness>): void {
  h.session.hello();
  h.server.handshake();
  h.sent();
  h.server.command('_result', 1, { fmsVer: 'FMS/3,0,1,123' }, { level: 'status', code: 'NetConnection.Connect.Success' });
  h.server.command('_result', 4, null, 1); // createStream is the 4th transaction
  assert.equal(h.session.stage, 'publish');
}

test('the command sequence up to publish, one write per step, then media and unpublish on the stream', () => {
  const h = harness({ chunkSize: 4096 });
  const { session, server, writes } = h;
  assert.equal(session.stage, 'handshake');
  session.hello();
  assert.equal(writes.length, 1);
  assert.equal(writes[0]!.bytes.length, 1 + HANDSHAKE_SIZE);
  assert.deepEqual([writes[0]!.bytes[0], writes[0]!.messages], [3, 0], 'C0 (version 3) + C1, no RTMP message');

  server.handshake();
  assert.equal(session.stage, 'connect');
  assert.equal(writes.length, 2, 'C2, Set Chunk Size and connect in one write');
  assert.equal(writes[1]!.messages, 2);
  assert.deepEqual(writes[1]!.bytes.subarray(8, HANDSHAKE_SIZE), Buffer.alloc(HANDSHAKE_SIZE - 8, 7), 'C2 echoes S1 (but its time field)');
  const first = h.sent();
  assert.deepEqual(first[0], { kind: 'setChunkSize', size: 4096 });
  const connect = commands(first)[0]!;
  assert.equal(connect.name, 'connect');
  assert.equal(connect.transactionId, 1);
  assert.deepEqual(
    [(connect.commandObject as { app: string }).app, (connect.commandObject as { tcUrl: string }).tcUrl],
    ['live', 'rtmp://example.com/live'],
  );

  server.send(2, MessageType.SetPeerBandwidth, 0, buildSetPeerBandwidth(5_000_000, 2));
  server.send(2, MessageType.SetChunkSize, 0, buildSetChunkSize(4096));
  server.command('_result', 1, { fmsVer: 'FMS/3,0,1,123' }, { level: 'status', code: 'NetConnection.Connect.Success' });
  assert.equal(session.stage, 'createStream');
  assert.equal(session.peerChunkSize, 4096);
  const afterConnect = h.sent();
  assert.deepEqual(afterConnect[0], { kind: 'windowAckSize', size: 5_000_000 }, 'peer bandwidth answered with our window');
  assert.deepEqual(commands(afterConnect).map((c) => [c.name, c.transactionId, ...c.args]), [
    ['releaseStream', 2, STREAM],
    ['FCPublish', 3, STREAM],
    ['createStream', 4],
  ]);
  assert.equal(writes.at(-1)!.messages, 3, 'the three commands in one write');

  server.command('_error', 2, null, { level: 'error', code: 'NetConnection.Call.Failed' }); // releaseStream: harmless
  server.command('_result', 4, null, 1);
  assert.equal(session.stage, 'publish');
  const publish = commands(h.sent());
  assert.deepEqual(publish.map((c) => [c.name, c.streamId, ...c.args]), [['publish', 1, STREAM, 'live']]);
  assert.deepEqual(h.published, []);

  server.status('status', 'NetStream.Publish.Start', 'Start publishing');
  assert.deepEqual(h.published, [1]);
  assert.equal(session.stage, 'stream');
  assert.equal(session.streamId, 1);
  assert.deepEqual(h.failures, []);

  const n = writes.length;
  session.writeMetadata(buildCommand('@setDataFrame', 0, null));
  session.writeAudio(21, Buffer.from([0xaf, 1, 1, 2, 3]));
  session.writeVideo(40, Buffer.alloc(10_000, 1)); // 3 chunks, still one write
  assert.equal(writes.length - n, 3);
  const media = h.sent();
  assert.deepEqual(media.map((m) => m.kind), ['data', 'audio', 'video']);
  for (const m of media) assert.ok('streamId' in m && m.streamId === 1);

  session.unpublish();
  assert.equal(writes.at(-1)!.messages, 2);
  assert.deepEqual(commands(h.sent()).map((c) => [c.name, ...c.args]), [
    ['FCUnpublish', STREAM],
    ['deleteStream', 1],
  ]);
});

test('a refused publish fails at stage "publish" with the server code and its reason, scrubbed of the stream key', () => {
  const h = harness();
  toPublish(h);
  h.server.status('error', 'NetStream.Publish.BadName', `Stream ${STREAM} is already publishing`);
  assert.deepEqual(h.published, []);
  assert.equal(h.failures.length, 1);
  const e = h.failures[0]!;
  assert.ok(e instanceof RtmpError);
  assert.deepEqual([e.stage, e.code, e.description], ['publish', 'NetStream.Publish.BadName', 'Stream *** is already publishing']);
  assert.match(e.message, /the server refused the publish \(NetStream\.Publish\.BadName: Stream \*\*\* is already publishing\)/);
  assert.doesNotMatch(e.message, /secret-stream/);
});

test('protocol control: a ping answered with its value, one acknowledgement per window crossed', () => {
  const counters = { messagesIn: 0, acksSent: 0, acksReceived: 0, pingsAnswered: 0 };
  const h = harness({ counters });
  toPublish(h);
  h.server.status('status', 'NetStream.Publish.Start', 'go');
  h.sent();

  h.server.send(2, MessageType.UserControl, 0, buildUserControl(UserControlEvent.PingRequest, 123456));
  assert.deepEqual(h.sent(), [{ kind: 'userControl', event: UserControlEvent.PingResponse, value: 123456 }]);
  assert.equal(h.writes.at(-1)!.messages, 1);

  h.server.send(2, MessageType.WindowAckSize, 0, buildWindowAckSize(1000));
  assert.equal(h.session.peerWindow, 1000);
  const acks: number[] = [];
  for (let i = 0; i < 10; i++) {
    h.server.command('onBWDone', 0, null, 'x'.repeat(400)); // ~430 bytes, so a window is crossed every 2 or 3
    for (const m of h.sent()) {
      assert.equal(m.kind, 'ack', 'nothing else to answer');
      if (m.kind === 'ack') acks.push(m.sequence);
      assert.equal(acks.at(-1), h.fed(), 'the acknowledgement counts every chunk-stream byte received');
    }
  }
  assert.ok(acks.length >= 3, `${acks.length} acks for ${h.fed()} bytes`);
  for (let i = 1; i < acks.length; i++) assert.ok(acks[i]! - acks[i - 1]! >= 1000, 'at most one ack per window');
  assert.ok(acks.at(-1)! > h.fed() - 1000);
  assert.deepEqual({ acksSent: counters.acksSent, pingsAnswered: counters.pingsAnswered }, { acksSent: acks.length, pingsAnswered: 1 });
  assert.ok(counters.messagesIn >= 7);
});

test('Adobe auth: a challenge asks for a new connection; a second challenge after our response fails', () => {
  const url = `rtmp://alice:hunter2@example.com/live/${STREAM}`;
  const reject = (h: ReturnType<typeof harness>, description: string) => {
    h.session.hello();
    h.server.handshake();
    h.server.command('_error', 1, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description });
  };
  const first = harness({}, url);
  reject(first, '[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ');
  assert.deepEqual(first.reconnects, ['?authmod=adobe&user=alice']);

  const second = harness({ authParams: first.reconnects[0]! }, url);
  reject(second, '[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=needauth&user=alice&salt=c2FsdA==&challenge=Y2g=&opaque=b3A=');
  assert.match(second.reconnects[0] ?? '', /^\?authmod=adobe&user=alice&challenge=[0-9a-f]{8}&response=.+&opaque=b3A=$/);

  const third = harness({ authParams: second.reconnects[0]! }, url);
  reject(third, '[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=needauth&user=alice&salt=c2FsdA==&challenge=Y2g=&opaque=b3A=');
  assert.deepEqual(third.reconnects, []);
  assert.equal(third.failures[0]?.stage, 'connect');
  assert.match(third.failures[0]!.message, /authentication failed: authentication failed/);
  assert.doesNotMatch(third.failures[0]!.message, /hunter2/);
});

test('not an RTMP server: a protocol error at stage "handshake"; after detach() nothing is read', () => {
  const h = harness();
  h.session.hello();
  h.session.receive(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
  assert.equal(h.failures.length, 1);
  assert.deepEqual([h.failures[0]!.stage, h.failures[0]!.code], ['handshake', 'EPROTO']);
  assert.match(h.failures[0]!.message, /not an RTMP server/);
  assert.doesNotMatch(h.failures[0]!.message, /72|"H"|HTTP/, 'never the peer\'s own bytes');

  const d = harness();
  toPublish(d);
  d.session.detach();
  d.server.status('status', 'NetStream.Publish.Start', 'go');
  assert.deepEqual(d.published, []);
});
