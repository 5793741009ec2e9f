/**
 * RtmpPublisher against a small scripted RTMP server on loopback: the command sequence, protocol control
 * answers (acks, ping, peer bandwidth, peer chunk size, abort), every failure stage with the server's
 * reason, Adobe authentication, one socket write per message, and nothing left running afterwards.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { ChunkReader, ChunkWriter } from '../../plugin/rtmp/chunk.js';
import { buildCommand, buildSetChunkSize, buildSetPeerBandwidth, buildUserControl, buildWindowAckSize, parseMessage, type RtmpMessage } from '../../plugin/rtmp/messages.js';
import { RtmpError, RtmpPublisher, type RtmpPublisherOptions } from '../../adapters/rtmp/publisher.js';
import { parseRtmpUrl } from '../../plugin/rtmp/url.js';
import type { Amf0Value } from '../../plugin/rtmp/amf0.js';
import { chunkFlood } from '../helpers/rtmp-flood.js';

type Command = Extract<RtmpMessage, { kind: 'command' }>;

/** One client connection, seen from the server. */
class Conn {
  readonly reader = new ChunkReader();
  readonly writer = new ChunkWriter();
  readonly got: RtmpMessage[] = [];
  readonly timestamps: number[] = [];
  private hs = Buffer.alloc(0);
  private stage: 'c0c1' | 'c2' | 'chunks' = 'c0c1';
  bytesIn = 0;
  /** Bytes sent after the handshake. */
  bytesOut = 0;

  constructor(
    readonly socket: Socket,
    private readonly script: Script,
    readonly index: number,
  ) {
    socket.setNoDelay(true); // else Nagle holds small writes back until the client's delayed ACK
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('end', () => socket.end());
    socket.on('error', () => {});
  }

  private onData(d: Buffer): void {
    if (this.script.handshake === 'silent') return;
    if (this.script.handshake === 'http') {
      this.socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    if (this.stage !== 'chunks') {
      this.hs = Buffer.concat([this.hs, d]);
      if (this.stage === 'c0c1' && this.hs.length >= 1537) {
        if (this.script.handshake === 'close') return void this.socket.destroy();
        const c1 = this.hs.subarray(1, 1537);
        this.socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536, 7), c1]));
        this.hs = this.hs.subarray(1537);
        this.stage = 'c2';
      }
      if (this.stage === 'c2' && this.hs.length >= 1536) {
        d = this.hs.subarray(1536);
        this.stage = 'chunks';
      } else return;
    }
    this.bytesIn += d.length;
    for (const m of this.reader.push(d)) {
      const msg = parseMessage(m);
      this.got.push(msg);
      this.timestamps.push(m.timestamp);
      if (msg.kind === 'command') this.script.onCommand(this, msg);
    }
  }

  send(csid: number, typeId: number, streamId: number, payload: Buffer, ts = 0): void {
    this.raw(this.writer.encode(csid, typeId, streamId, ts, payload));
  }
  raw(bytes: Buffer): void {
    this.bytesOut += bytes.length;
    this.socket.write(bytes);
  }
  command(name: string, tid: number, obj: Amf0Value, ...args: Amf0Value[]): void {
    this.send(3, 20, 0, buildCommand(name, tid, obj, ...args));
  }
  status(streamId: number, level: string, code: string, description: string): void {
    this.send(5, 20, streamId, buildCommand('onStatus', 0, null, { level, code, description }));
  }
  commands(): Command[] {
    return this.got.filter((m): m is Command => m.kind === 'command');
  }
}

interface Script {
  handshake?: 'ok' | 'silent' | 'close' | 'http';
  onCommand(c: Conn, cmd: Command): void;
}

/** What nginx-rtmp does, step by step; tests replace single steps. */
function nginxLike(overrides: Partial<Record<'connect' | 'createStream' | 'publish', (c: Conn, cmd: Command) => void>> = {}): Script {
  return {
    onCommand(c, cmd) {
      const o = overrides[cmd.name as 'connect'];
      if (o) return o(c, cmd);
      if (cmd.name === 'connect') {
        c.send(2, 5, 0, buildWindowAckSize(5_000_000));
        c.send(2, 6, 0, buildSetPeerBandwidth(5_000_000, 2));
        c.send(2, 1, 0, buildSetChunkSize(4096));
        c.writer.chunkSize = 4096;
        c.command('_result', cmd.transactionId, { fmsVer: 'FMS/3,0,1,123', capabilities: 31 }, { level: 'status', code: 'NetConnection.Connect.Success', description: 'Connection succeeded.' });
      } else if (cmd.name === 'createStream') {
        c.command('_result', cmd.transactionId, null, 1);
      } else if (cmd.name === 'publish') {
        c.status(1, 'status', 'NetStream.Publish.Start', 'Start publishing');
      }
    },
  };
}

let server: Server;
let port = 0;
let script: Script = nginxLike();
let conns: Conn[] = [];

before(async () => {
  server = createServer((s) => conns.push(new Conn(s, script, conns.length)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  // A failed test must not leave a connection that keeps the process alive.
  await Promise.all(publishers.map((p) => p.close()));
  for (const c of conns) c.socket.destroy();
  server.close();
});

const publishers: RtmpPublisher[] = [];

const STREAM = 'secret-stream-key';

function publisher(url = `rtmp://127.0.0.1:${port}/live/${STREAM}`, extra: Partial<RtmpPublisherOptions> = {}) {
  const sockets: Socket[] = [];
  let writes = 0;
  const p = new RtmpPublisher({
    target: parseRtmpUrl(url),
    connectTimeoutMs: 2000,
    createSocket: (t) => {
      const s = connect({ host: t.host, port: t.port });
      const write = s.write.bind(s) as (b: Buffer) => boolean;
      (s as unknown as { write: (b: Buffer) => boolean }).write = (b: Buffer) => {
        writes++;
        return write(b);
      };
      sockets.push(s);
      return s;
    },
    ...extra,
  });
  publishers.push(p);
  return { p, sockets, writes: () => writes };
}

function useScript(s: Script): void {
  script = s;
  conns = [];
}

/** Open sockets and timers in this process, by kind. */
function resources(): Record<string, number> {
  const n: Record<string, number> = { TCPSocketWrap: 0, TLSWrap: 0, Timeout: 0 };
  for (const r of process.getActiveResourcesInfo()) if (r in n) n[r]!++;
  return n;
}

/** Everything the publisher (and the server side of its connections) held is gone: no more than before it started. */
async function assertReleased(baseline: Record<string, number>, sockets: Socket[]): Promise<void> {
  const over = () => Object.entries(resources()).filter(([k, v]) => v > baseline[k]!);
  for (let i = 0; i < 100 && (over().length > 0 || sockets.some((s) => !s.destroyed)); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  for (const s of sockets) assert.ok(s.destroyed, 'socket destroyed');
  assert.deepEqual(over(), [], `no sockets or timers left (before: ${JSON.stringify(baseline)})`);
}

async function rejection(p: Promise<unknown>): Promise<RtmpError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RtmpError, `expected RtmpError, got ${String(e)}`);
    assert.doesNotMatch(e.message + (e.description ?? ''), /secret-stream|hunter2/, 'no secrets in errors');
    return e;
  }
  assert.fail('expected a rejection');
}

test('publishes: handshake, Set Chunk Size, connect, releaseStream/FCPublish/createStream, publish; media on the stream', async () => {
  useScript(nginxLike());
  const baseline = resources();
  const { p, sockets, writes } = publisher();
  await p.start();
  assert.equal(p.state, 'publishing');
  const c = conns[0]!;
  // The first message after the handshake is our chunk size; the connect that follows is read with it.
  assert.deepEqual(c.got[0], { kind: 'setChunkSize', size: 4096 });
  const cmds = c.commands();
  assert.deepEqual(cmds.map((m) => m.name), ['connect', 'releaseStream', 'FCPublish', 'createStream', 'publish']);
  assert.deepEqual(cmds[0]!.commandObject, {
    app: 'live',
    type: 'nonprivate',
    flashVer: 'FMLE/3.0 (compatible; sip-as-rtmp)',
    tcUrl: `rtmp://127.0.0.1:${port}/live`,
    fpad: false,
    capabilities: 15,
    audioCodecs: 4071,
    videoCodecs: 252,
    videoFunction: 1,
  });
  assert.deepEqual(cmds[1]!.args, [STREAM]);
  assert.deepEqual(cmds[2]!.args, [STREAM]);
  assert.deepEqual([cmds[4]!.streamId, ...cmds[4]!.args], [1, STREAM, 'live']);
  // The server's Set Peer Bandwidth is answered with our window.
  assert.ok(c.got.some((m) => m.kind === 'windowAckSize' && m.size === 5_000_000));

  const before = { writes: writes(), n: c.got.length };
  p.writeMetadata(buildCommand('@setDataFrame', 0, null)); // any data body
  p.writeAudio(0, Buffer.from([0xaf, 0, 0x11, 0x88]));
  p.writeAudio(21, Buffer.from([0xaf, 1, 1, 2, 3]));
  p.writeVideo(0x1000000 + 40, Buffer.alloc(10_000, 1)); // extended timestamp, 3 chunks of 4096
  p.writeAudio(2 ** 32 + 5, Buffer.from([0xaf, 1, 9])); // wraps
  assert.equal(writes() - before.writes, 5, 'one socket write per message');
  assert.ok(p.bufferedBytes >= 0);
  while (c.got.length < before.n + 5) await new Promise((r) => setTimeout(r, 5));
  const media = c.got.slice(before.n);
  assert.deepEqual(media.map((m) => m.kind), ['data', 'audio', 'audio', 'video', 'audio']);
  assert.deepEqual(c.timestamps.slice(before.n), [0, 0, 21, 0x1000000 + 40, 5]);
  for (const m of media) assert.ok('streamId' in m && m.streamId === 1);
  const video = media[3];
  assert.ok(video?.kind === 'video' && video.payload.length === 10_000);
  assert.equal(p.stats.audioMessages, 3);
  assert.equal(p.stats.videoMessages, 1);

  let closeEvent: unknown;
  p.on('close', (e) => (closeEvent = e));
  const closing = p.close();
  assert.equal(p.close(), closing, 'idempotent');
  await closing;
  assert.deepEqual(closeEvent, {});
  assert.equal(p.state, 'closed');
  assert.deepEqual(c.commands().slice(-2).map((m) => [m.name, ...m.args]), [
    ['FCUnpublish', STREAM],
    ['deleteStream', 1],
  ]);
  p.writeAudio(100, Buffer.from([0xaf, 1]));
  assert.equal(p.stats.droppedMessages, 1, 'writes after close are dropped and counted');
  await p.close();
  await assertReleased(baseline, sockets);
  const json = p.toJSON();
  assert.equal(json.target, `rtmp://127.0.0.1:${port}/live/secr***`);
  assert.doesNotMatch(JSON.stringify(json), /secret-stream/);
});

test('answers the server: peer chunk size, window acknowledgements, ping, abort', async () => {
  useScript(
    nginxLike({
      publish: (c) => {
        c.send(2, 5, 0, buildWindowAckSize(3000)); // ack every 3000 bytes
        c.send(2, 1, 0, buildSetChunkSize(100)); // and smaller chunks from now on
        c.writer.chunkSize = 100;
        c.send(2, 4, 0, buildUserControl(6, 123456)); // PingRequest
        // Abort: the first chunk of a message, then Abort for its chunk stream.
        c.raw(c.writer.encode(7, 18, 1, 0, Buffer.alloc(500)).subarray(0, 112));
        c.send(2, 2, 0, Buffer.from([0, 0, 0, 7]));
        c.status(1, 'status', 'NetStream.Publish.Start', 'go');
      },
    }),
  );
  const { p } = publisher();
  let closeEvent: unknown;
  p.on('close', (e) => (closeEvent = e));
  await p.start();
  const c = conns[0]!;
  // Three bursts of 3500 bytes, each read before the next: each crosses the 3000-byte window once.
  for (let burst = 0; burst < 3; burst++) {
    for (let i = 0; i < 10; i++) c.send(3, 20, 0, buildCommand('onBWDone', 0, null, 'x'.repeat(350 - 31)));
    while (p.stats.bytesIn < 3073 + c.bytesOut) await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, 20)); // let the last ack arrive
  assert.equal(closeEvent, undefined);
  const pong = c.got.find((m) => m.kind === 'userControl');
  assert.deepEqual(pong, { kind: 'userControl', event: 7, value: 123456 });
  const acks = c.got.filter((m): m is Extract<RtmpMessage, { kind: 'ack' }> => m.kind === 'ack').map((m) => m.sequence);
  const sent = c.bytesOut;
  assert.ok(acks.length >= 3, `${acks.length} acks for ${sent} bytes`);
  for (let i = 1; i < acks.length; i++) assert.ok(acks[i]! - acks[i - 1]! >= 3000, 'at most one ack per window');
  assert.ok(acks.at(-1)! <= sent && acks.at(-1)! > sent - 3000, `last ack ${acks.at(-1)} of ${sent} bytes`);
  assert.equal(p.stats.acksSent, acks.length);
  assert.equal(p.stats.pingsAnswered, 1);
  assert.equal(p.toJSON().peerChunkSize, 100);
  await p.close();
});

test('connect rejected: the server code and reason reach the caller (scrubbed of the stream name)', async () => {
  useScript(
    nginxLike({
      connect: (c, cmd) => {
        c.command('_error', cmd.transactionId, null, {
          level: 'error',
          code: 'NetConnection.Connect.Rejected',
          description: `Stream ${STREAM} is not allowed here`,
        });
      },
    }),
  );
  const baseline = resources();
  const { p, sockets } = publisher();
  const e = await rejection(p.start());
  assert.equal(e.stage, 'connect');
  assert.equal(e.code, 'NetConnection.Connect.Rejected');
  assert.equal(e.description, 'Stream *** is not allowed here');
  assert.match(e.message, /rejected connect \(NetConnection\.Connect\.Rejected: Stream \*\*\* is not allowed here\)/);
  assert.equal(p.state, 'closed');
  await assertReleased(baseline, sockets);
});

test('createStream refused and publish refused: stage and server code', async () => {
  useScript(nginxLike({ createStream: (c, cmd) => c.command('_error', cmd.transactionId, null, { level: 'error', code: 'NetConnection.Call.Failed', description: 'no' }) }));
  let e = await rejection(publisher().p.start());
  assert.deepEqual([e.stage, e.code], ['createStream', 'NetConnection.Call.Failed']);

  useScript(nginxLike({ publish: (c) => c.status(1, 'error', 'NetStream.Publish.BadName', 'Already publishing') }));
  e = await rejection(publisher().p.start());
  assert.deepEqual([e.stage, e.code, e.description], ['publish', 'NetStream.Publish.BadName', 'Already publishing']);
});

test('server hangs up or misbehaves at each stage: "server closed the connection during <stage>"; before the protocol, "could not connect to host:port: <class>"', async () => {
  const baseline = resources();
  const all: Socket[] = [];
  const cases: [Script, string, RegExp][] = [
    [{ handshake: 'close', onCommand() {} }, 'handshake', /^could not connect to 127\.0\.0\.1:\d+: connection closed$/],
    [nginxLike({ connect: (c) => c.socket.destroy() }), 'connect', /during connect/],
    [nginxLike({ createStream: (c) => c.socket.end() }), 'createStream', /during createStream/],
    [nginxLike({ publish: (c) => c.socket.destroy() }), 'publish', /during publish/],
    // Not the peer's first bytes ("H"): a port scanner would learn what listens there.
    [{ handshake: 'http', onCommand() {} }, 'handshake', /^could not connect to 127\.0\.0\.1:\d+: not an RTMP server$/],
  ];
  for (const [s, stage, re] of cases) {
    useScript(s);
    const { p, sockets } = publisher();
    all.push(...sockets);
    const e = await rejection(p.start());
    assert.equal(e.stage, stage);
    assert.match(e.message, re);
  }
  await assertReleased(baseline, all);
});

test('connect timeout covers a silent server; no timer or socket survives', async () => {
  useScript({ handshake: 'silent', onCommand() {} });
  const baseline = resources();
  const { p, sockets } = publisher(undefined, { connectTimeoutMs: 150 });
  const t0 = Date.now();
  const e = await rejection(p.start());
  assert.ok(Date.now() - t0 < 1000);
  assert.deepEqual([e.stage, e.code], ['handshake', 'ETIMEDOUT']);
  assert.match(e.message, /^could not connect to 127\.0\.0\.1:\d+: timed out$/);
  await assertReleased(baseline, sockets);

  // nothing listening: stage tcp
  const dead = createServer();
  dead.listen(0, '127.0.0.1');
  await once(dead, 'listening');
  const deadPort = (dead.address() as AddressInfo).port;
  dead.close();
  await once(dead, 'close');
  const refused = await rejection(new RtmpPublisher({ target: parseRtmpUrl(`rtmp://127.0.0.1:${deadPort}/live/${STREAM}`) }).start());
  assert.deepEqual([refused.stage, refused.code], ['tcp', 'ECONNREFUSED']);
  assert.equal(refused.message, `could not connect to 127.0.0.1:${deadPort}: refused`);
});

test('connectAddress: asked at each start; the connection goes to the checked address (TLS name kept), a refusal fails at tcp', async () => {
  useScript(nginxLike());
  const asked: string[] = [];
  const p = new RtmpPublisher({
    target: parseRtmpUrl(`rtmp://rtmp.invalid:${port}/live/${STREAM}`),
    connectAddress: async (host, prt) => {
      asked.push(`${host}:${prt}`);
      return '127.0.0.1';
    },
  });
  publishers.push(p);
  await p.start();
  assert.deepEqual(asked, [`rtmp.invalid:${port}`]);
  await p.close();

  const refusedBy = (code: string, message: string) => new RtmpPublisher({
    target: parseRtmpUrl(`rtmp://evil.invalid:${port}/live/${STREAM}`),
    connectAddress: async () => {
      throw Object.assign(new Error(message), { code });
    },
  }).start();
  let e = await rejection(refusedBy('EFORBIDDEN', "rtmpUrl's host evil.invalid resolves to a link-local address; refused"));
  assert.deepEqual([e.stage, e.code, e.message], ['tcp', 'EFORBIDDEN', "rtmpUrl's host evil.invalid resolves to a link-local address; refused"]);
  e = await rejection(refusedBy('ENOTFOUND', 'no such host'));
  assert.equal(e.message, `could not connect to evil.invalid:${port}: DNS failure`);
});

test('a server flooding 50 MB of never-finished messages over many chunk streams: refused at the reader\'s 8 MiB cap (EPROTO, the reason named), connection closed', async () => {
  let sent = 0;
  let flood: Promise<void> | undefined;
  useScript(nginxLike({
    // Instead of answering connect: the flood, written as fast as the client reads it, until it hangs up.
    connect: (c) => {
      flood = (async () => {
        for (const piece of chunkFlood({ totalBytes: 50 * 1024 * 1024 })) {
          if (c.socket.destroyed || c.socket.writableEnded) return;
          sent += piece.length;
          // (Not events.once: it rejects on the reset the client's hang-up causes.)
          if (!c.socket.write(piece)) await new Promise((r) => c.socket.once('drain', r).once('close', r));
        }
      })();
    },
  }));
  const baseline = resources();
  const rss0 = process.memoryUsage().rss;
  const { p, sockets } = publisher();
  const e = await rejection(p.start());
  assert.deepEqual([e.stage, e.code], ['connect', 'EPROTO']);
  assert.match(e.message, /protocol error from the server: partial messages would hold \d+ bytes across \d+ chunk streams, over the 8388608-byte limit/);
  await flood;
  assert.ok(sent < 50 * 1024 * 1024, `the flood stopped when the client hung up (${sent} bytes sent)`);
  console.log(`# refused after the server had sent ${(sent / 1048576).toFixed(1)} MiB; RSS delta ${((process.memoryUsage().rss - rss0) / 1048576).toFixed(1)} MiB`);
  await assertReleased(baseline, sockets);
});

test('close() during start rejects start with ECANCELED and releases everything', async () => {
  useScript({ handshake: 'silent', onCommand() {} });
  const baseline = resources();
  const { p, sockets } = publisher();
  const started = p.start();
  await new Promise((r) => setTimeout(r, 50));
  await p.close();
  const e = await rejection(started);
  assert.equal(e.code, 'ECANCELED');
  await assertReleased(baseline, sockets);
});

test('the connection dies while publishing: close event with stage "stream"; an onStatus error does the same', async () => {
  useScript(nginxLike());
  const baseline = resources();
  const { p, sockets } = publisher();
  await p.start();
  const closed = once(p, 'close') as Promise<[{ error?: RtmpError }]>;
  conns[0]!.socket.destroy();
  const [{ error }] = await closed;
  assert.ok(error instanceof RtmpError);
  assert.equal(error.stage, 'stream');
  assert.match(error.message, /server closed the connection during stream/);
  p.writeAudio(1, Buffer.from([0xaf, 1]));
  assert.equal(p.stats.droppedMessages, 1);
  await p.close(); // still fine
  await assertReleased(baseline, sockets);

  useScript(nginxLike());
  const second = publisher();
  await second.p.start();
  const closed2 = once(second.p, 'close') as Promise<[{ error?: RtmpError }]>;
  conns[0]!.status(1, 'error', 'NetStream.Publish.Idle', 'idle publisher');
  const [{ error: e2 }] = await closed2;
  assert.deepEqual([e2?.stage, e2?.code, e2?.description], ['stream', 'NetStream.Publish.Idle', 'idle publisher']);
  await assertReleased(baseline, [...sockets, ...second.sockets]);
});

/** The server half of authmod=adobe, as Wowza / FMS do it. */
function adobeServer(user: string, password: string): Script {
  const salt = 'c2FsdA==';
  const challenge = 'Y2hhbGxlbmdl';
  const opaque = 'b3BhcXVl';
  const md5b64 = (s: string) => createHash('md5').update(s).digest('base64');
  return nginxLike({
    connect: (c, cmd) => {
      const app = (cmd.commandObject as { app: string }).app;
      // Raw split, no URL decoding: the base64 response contains '+' and '/' as FFmpeg sends it.
      const q = new Map((app.split('?')[1] ?? '').split('&').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      const reject = (description: string) => {
        c.command('_error', cmd.transactionId, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description });
        setTimeout(() => c.socket.destroy(), 20); // servers hang up soon after
      };
      if (q.get('authmod') !== 'adobe') return reject('[ AccessManager.Reject ] : [ code=403 need auth; authmod=adobe ] : ');
      if (!q.get('response')) {
        return reject(`[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=needauth&user=${q.get('user')}&salt=${salt}&challenge=${challenge}&opaque=${opaque}`);
      }
      const expected = md5b64(md5b64(user + salt + password) + opaque + q.get('challenge'));
      if (q.get('user') !== user || q.get('response') !== expected) return reject('[ AccessManager.Reject ] : [ authmod=adobe ] : ?reason=authfailed&opaque=x');
      nginxLike().onCommand(c, cmd);
    },
  });
}

test('authmod=adobe: three connections, the challenge answered, credentials never in tcUrl or errors', async () => {
  useScript(adobeServer('alice', 'hunter2'));
  const baseline = resources();
  const { p, sockets } = publisher(`rtmp://alice:hunter2@127.0.0.1:${port}/live/${STREAM}`);
  await p.start();
  assert.equal(conns.length, 3);
  assert.equal(p.stats.connections, 3);
  const connects = conns.map((c) => c.commands()[0]!.commandObject as { app: string; tcUrl: string });
  assert.equal(connects[0]!.app, 'live');
  assert.equal(connects[1]!.app, 'live?authmod=adobe&user=alice');
  assert.match(connects[2]!.tcUrl, /^rtmp:\/\/127\.0\.0\.1:\d+\/live\?authmod=adobe&user=alice&challenge=[0-9a-f]{8}&response=.+&opaque=b3BhcXVl$/);
  for (const c of connects) assert.doesNotMatch(JSON.stringify(c), /hunter2/);
  await p.close();
  await assertReleased(baseline, sockets);

  useScript(adobeServer('alice', 'hunter2'));
  const wrong = publisher(`rtmp://alice:wrong-password@127.0.0.1:${port}/live/${STREAM}`);
  const e = await rejection(wrong.p.start());
  assert.equal(e.stage, 'connect');
  assert.match(e.message, /authentication failed: wrong user name or password/);
  assert.doesNotMatch(e.message + e.description, /wrong-password/);

  useScript(adobeServer('alice', 'hunter2'));
  const anonymous = await rejection(publisher().p.start());
  assert.match(anonymous.message, /requires authentication; put user:password@ in the RTMP URL/);
  await assertReleased(baseline, [...sockets, ...wrong.sockets]);
});
