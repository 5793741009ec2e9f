/**
 * AriEventSocket against a local WebSocket server standing in for Asterisk's /ari/events endpoint:
 * typed events, garbage counted, reconnect with backoff after drops and refusals, close() is final.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { AriEventSocket } from '../../adapters/ari/events.js';
import type { StasisStart } from '../../adapters/ari/types.js';

let http: Server;
let wss: WebSocketServer;
let url: string;
const upgrades: IncomingMessage[] = [];
/** When set, the next upgrades are refused with this HTTP status. */
let refuseWith: number | undefined;

before(async () => {
  http = createServer();
  wss = new WebSocketServer({ noServer: true });
  http.on('upgrade', (req, socket, head) => {
    upgrades.push(req);
    if (refuseWith) {
      socket.end(`HTTP/1.1 ${refuseWith} Refused\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

after(() => {
  wss.close();
  http.close();
});

const fast = { initialMs: 20, maxMs: 80, factor: 2, minFraction: 1 };

function nextConnection(): Promise<WebSocket> {
  return new Promise((resolve) => wss.once('connection', (ws: WebSocket) => resolve(ws)));
}

const stasisStart = (id: string): StasisStart => ({
  type: 'StasisStart', application: 'app', timestamp: 't', args: ['a'],
  channel: { id, name: 'PJSIP/x', state: 'Up', caller: { name: '', number: '' }, connected: { name: '', number: '' },
    accountcode: '', dialplan: { context: 'c', exten: 's', priority: 1 }, creationtime: 't', language: 'en' },
});

test('connects with credentials in a header and the app in the query; emits typed events', async () => {
  const sock = new AriEventSocket({ url, user: 'u', password: 'secret', app: 'my app', backoff: fast });
  const conn = nextConnection();
  await sock.connect();
  const server = await conn;
  const req = upgrades.at(-1)!;
  assert.equal(req.url, '/ari/events?app=my+app');
  assert.equal(req.headers.authorization, 'Basic ' + Buffer.from('u:secret').toString('base64'));
  assert.ok(!req.url?.includes('secret'));

  const typed = once(sock, 'StasisStart');
  const any = once(sock, 'event');
  server.send(JSON.stringify(stasisStart('c1')));
  const [e] = (await typed) as [StasisStart];
  assert.equal(e.channel.id, 'c1');
  assert.deepEqual(e.args, ['a']);
  assert.equal(((await any) as [StasisStart])[0].type, 'StasisStart');

  // Garbage and unmodelled events are counted, never thrown.
  const ignored: string[] = [];
  sock.on('ignored', ({ reason }) => ignored.push(reason));
  server.send('not json');
  server.send('{"no":"type"}');
  server.send('{"type":"DeviceStateChanged"}');
  server.send(Buffer.from([1, 2, 3]), { binary: true });
  server.send(JSON.stringify(stasisStart('c2')));
  await once(sock, 'StasisStart');
  assert.deepEqual(ignored, ['not JSON', 'no event type', 'unmodelled event DeviceStateChanged', 'binary message']);
  assert.equal(sock.stats.ignored, 4);
  assert.equal(sock.stats.events, 2);
  sock.close();
});

test('reconnects after the server drops the connection, with backoff, and keeps delivering', async () => {
  const sock = new AriEventSocket({ url, user: 'u', password: 'p', app: 'a', backoff: fast });
  let conn = nextConnection();
  await sock.connect();
  const closes: (number | undefined)[] = [];
  const opens: boolean[] = [];
  sock.on('close', ({ retryInMs }) => closes.push(retryInMs));
  sock.on('open', ({ reconnect }) => opens.push(reconnect));

  for (let i = 0; i < 3; i++) {
    const server = await conn;
    conn = nextConnection();
    server.terminate(); // abrupt drop, as when Asterisk dies
    await once(sock, 'open');
  }
  const server = await conn;
  assert.deepEqual(opens, [true, true, true]);
  // Each drop follows a successful open, so the attempt counter restarts: first delay every time.
  assert.deepEqual(closes, [20, 20, 20]);
  assert.equal(sock.stats.opens, 4);
  assert.equal(sock.state, 'open');

  const got = once(sock, 'StasisStart');
  server.send(JSON.stringify(stasisStart('after-reconnect')));
  assert.equal(((await got) as [StasisStart])[0].channel.id, 'after-reconnect');
  sock.close();
});

test('backs off further while the server refuses, and recovers when it accepts again', async () => {
  const sock = new AriEventSocket({ url, user: 'u', password: 'p', app: 'a', backoff: fast });
  let conn = nextConnection();
  await sock.connect();
  await conn;
  const closes: { code: number; retryInMs: number | undefined }[] = [];
  sock.on('close', ({ code, retryInMs }) => closes.push({ code, retryInMs }));

  refuseWith = 503; // Asterisk restarting: HTTP up, ARI not yet
  const before = upgrades.length;
  for (const c of wss.clients) c.terminate();
  while (closes.length < 4) await once(sock, 'close');
  assert.deepEqual(closes.map((c) => c.retryInMs), [20, 40, 80, 80]);
  assert.equal(closes[1]!.code, 4503, 'the refusal status is visible in the close code');
  assert.ok(upgrades.length - before >= 3);

  refuseWith = undefined;
  conn = nextConnection();
  await sock.waitOpen(2000);
  await conn;
  sock.close();
});

test('close() is final: no reconnect, no timers left', async () => {
  const sock = new AriEventSocket({ url, user: 'u', password: 'p', app: 'a', backoff: fast, pingIntervalMs: 10 });
  const conn = nextConnection();
  await sock.connect();
  const server = await conn;
  const count = upgrades.length;
  sock.close();
  await once(server, 'close');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(upgrades.length, count, 'no new connection after close()');
  assert.equal(sock.state, 'closed');
  await assert.rejects(sock.connect(), /closed/);
});

test('a server that stops answering pings is dropped and reconnected', async () => {
  const sock = new AriEventSocket({ url, user: 'u', password: 'p', app: 'a', backoff: fast, pingIntervalMs: 30 });
  const conn = nextConnection();
  await sock.connect();
  const server = await conn;
  // Stop the server side from answering pings (ws auto-pongs; pausing the socket stops that).
  (server as unknown as { _socket: import('node:net').Socket })._socket.pause();
  const next = nextConnection();
  await once(sock, 'close');
  await next;
  await sock.waitOpen(1000);
  sock.close();
  server.terminate();
});
