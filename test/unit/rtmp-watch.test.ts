/**
 * The measuring RTMP player's bookkeeping (StreamClock): drift against the tag timestamps, stalls, key-frame
 * intervals, the initial-burst rule, timestamp wrap, re-publish; the realtime verdict; and RtmpWatcher
 * against a scripted RTMP server on loopback (play, ping, acknowledgements, Stream EOF).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { test } from 'node:test';
import { ChunkReader, ChunkWriter } from '../../plugin/rtmp/chunk.js';
import { buildCommand, buildUserControl, buildWindowAckSize, parseMessage, UserControlEvent, type RtmpMessage } from '../../plugin/rtmp/messages.js';
import { judgeRealtime, RtmpWatcher, StreamClock, type MediaEventKind, type WatchStats } from '../../scripts/lib/rtmp-watch.js';

const U32 = 2 ** 32;

/** Audio frames every `step` ms of timestamp, arriving at arrival(ts) (relative to the first frame's ts). */
function audio(clock: StreamClock, from: number, to: number, step: number, arrival: (t: number) => number, ts0 = 0): void {
  for (let t = from; t < to; t += step) clock.add(arrival(t), (ts0 + t) % U32, 'audio');
}

test('a steady stream: no drift, stalls of one frame, key frames every 2 s, sequence headers counted but off the timeline', () => {
  const c = new StreamClock();
  c.add(100, 0, 'audio-header');
  c.add(100, 0, 'video-header');
  assert.equal(c.stats().firstMediaAt, undefined, 'sequence headers are not media');
  // interleaved as a muxer would send them: by timestamp
  for (let t = 0; t < 10_000; t += 20) {
    c.add(100 + t, t, 'audio');
    if (t % 40 === 0) c.add(100 + t, t, t % 2000 === 0 ? 'keyframe' : 'video');
  }
  const s = c.stats();
  assert.equal(s.firstMediaAt, 100);
  assert.equal(s.lastArrival, 100 + 9980);
  assert.equal(s.audioTags, 501);
  assert.equal(s.videoTags, 251);
  assert.equal(s.keyframes, 5);
  assert.equal(s.maxDriftMs, 0);
  assert.equal(s.maxStallMs, 20);
  assert.equal(s.stalls, 0);
  assert.equal(s.maxKeyframeIntervalMs, 2000);
  assert.equal(s.audioSpanMs, 9980);
  assert.equal(s.videoSpanMs, 9960);
});

test('initial burst: 2 s of buffered media delivered at once is forgiven by the one re-base at the 1 s mark', () => {
  const make = (burstMs?: number) => {
    const c = new StreamClock(burstMs === undefined ? {} : { burstMs });
    c.add(0, 0, 'audio-header');
    // buffered: ts 0..1980 all arrive within 10 ms of joining
    audio(c, 0, 2000, 20, (t) => t / 200);
    // then live: ts 2000 + k*20 arrives at 20 + k*20 (real time from here on)
    audio(c, 2000, 12_000, 20, (t) => t - 1980);
    return c.stats();
  };
  const s = make();
  assert.equal(s.maxDriftMs, 0, 'the base moved to min(arrival - ts) over the first second');
  assert.ok(s.maxStallMs <= 20, `stall ${s.maxStallMs}`);
  assert.equal(judgeRealtime(withWatch(s)).ok, true);

  // Without the window the same stream reads as ~2 s of drift: the rule is what forgives it.
  const raw = make(0);
  assert.ok(raw.maxDriftMs > 1900, `drift without the window ${raw.maxDriftMs}`);
});

test('the re-base only forgives media that came early: a stream late during the first second still shows drift', () => {
  const c = new StreamClock();
  // each frame 10% later than real time for the first 1.2 s (arrival grows faster than ts), then steady
  audio(c, 0, 1200, 20, (t) => t * 1.1);
  audio(c, 1200, 5000, 20, (t) => t + 120);
  const s = c.stats();
  assert.equal(s.maxDriftMs, 120, 'the first frame stays the reference: min(arrival - ts) is its 0');
  assert.equal(judgeRealtime(withWatch(s), { driftMs: 100, stallMs: 200 }).ok, false);
});

test('a 300 ms stall: counted as a stall, and as drift when the held frames then arrive together', () => {
  // frames dropped during the stall: a gap, no drift
  const dropped = new StreamClock();
  audio(dropped, 0, 5000, 20, (t) => t);
  audio(dropped, 5300, 10_000, 20, (t) => t);
  const d = dropped.stats();
  assert.equal(d.maxStallMs, 320);
  assert.equal(d.stalls, 1);
  assert.equal(d.maxDriftMs, 0);
  const v = judgeRealtime(withWatch(d));
  assert.equal(v.ok, false);
  assert.match(v.why!, /stall 320/);

  // frames held back 300 ms and then delivered in one go: the gap, and up to 300 ms of lateness
  const held = new StreamClock();
  audio(held, 0, 10_000, 20, (t) => (t > 5000 && t <= 5300 ? 5300 : t));
  const h = held.stats();
  assert.equal(h.maxStallMs, 300);
  assert.equal(h.maxDriftMs, 280, 'ts 5020 arrived at 5300');
  assert.equal(h.stalls, 1);
});

test('timestamps running 2% fast drift linearly after the 1 s re-base', () => {
  const c = new StreamClock();
  // ts = 1.02 * arrival, 20 s of audio (arrivals every 20 ms)
  for (let a = 0; a <= 20_000; a += 20) c.add(a, Math.round(a * 1.02), 'audio');
  const s = c.stats();
  // base = min(arrival - ts) in the window = -0.02 * 980 ≈ -19.6; at 20 s: -400 → drift ≈ 380
  assert.ok(Math.abs(s.maxDriftMs - 380) <= 1.5, `drift ${s.maxDriftMs}`);
  assert.ok(s.maxStallMs <= 20);
  assert.equal(judgeRealtime(withWatch(s)).ok, false);
  assert.equal(s.audioMaxDriftMs, s.maxDriftMs);
  assert.equal(s.videoMaxDriftMs, 0);
});

test('timestamps wrap at 2^32 without a jump in drift, span or key-frame interval', () => {
  const c = new StreamClock();
  const start = U32 - 3000;
  for (let t = 0; t < 8000; t += 20) {
    c.add(t, (start + t) % U32, 'audio');
    if (t % 40 === 0) c.add(t, (start + t) % U32, t % 2000 === 0 ? 'keyframe' : 'video');
  }
  const s = c.stats();
  assert.equal(s.maxDriftMs, 0);
  assert.equal(s.maxStallMs, 20);
  assert.equal(s.maxKeyframeIntervalMs, 2000, 'the interval across the wrap is 2000, not -2^32 + 2000');
  assert.equal(s.keyframes, 4);
  assert.equal(s.audioSpanMs, 7980);
  assert.equal(s.videoSpanMs, 7960);
});

test('the key-frame interval is the largest tag-timestamp gap between key frames', () => {
  const c = new StreamClock();
  const keys = new Set([0, 2000, 4000, 8000, 10_000]);
  for (let t = 0; t <= 10_000; t += 40) c.add(t, t, (keys.has(t) ? 'keyframe' : 'video') satisfies MediaEventKind);
  assert.equal(c.stats().maxKeyframeIntervalMs, 4000);
  assert.equal(c.stats().keyframes, 5);
});

test('drift is per track: each track is measured against its own first message', () => {
  const c = new StreamClock();
  // video starts 3 s into the call, with timestamps from its own clock: no drift on either track
  audio(c, 0, 10_000, 20, (t) => t);
  for (let t = 0; t < 7000; t += 40) c.add(3000 + t, 50_000 + t, t % 2000 === 0 ? 'keyframe' : 'video');
  assert.equal(c.stats().maxDriftMs, 0);
  // but video that falls behind shows, while audio is fine
  const d = new StreamClock();
  for (let t = 0; t < 10_000; t += 40) {
    d.add(t, t, 'audio');
    d.add(t < 5000 ? t : t + 150, t, 'video');
  }
  assert.equal(d.stats().audioMaxDriftMs, 0);
  assert.equal(d.stats().videoMaxDriftMs, 150);
  assert.equal(d.stats().maxDriftMs, 150);
});

test('a re-publish starts new timelines; the gap before it is a stall', () => {
  const c = new StreamClock();
  audio(c, 0, 5000, 20, (t) => t);
  c.restart();
  // published again 3 s later, timestamps from 0 again, and a small burst at the start
  c.add(8000, 0, 'audio-header');
  audio(c, 0, 5000, 20, (t) => 8000 + Math.max(0, t - 100));
  const s = c.stats();
  assert.equal(s.maxDriftMs, 0);
  assert.equal(s.maxStallMs, 3020);
  assert.equal(s.stalls, 1);
  assert.equal(s.audioSpanMs, 4980 * 2);
});

test('realtime() needs media, and a stream silent while still playing fails', () => {
  const empty = new StreamClock().stats();
  assert.deepEqual(judgeRealtime({ ...withWatch(empty), ended: 'ECONNREFUSED' }), { ok: false, why: 'no media arrived (ended: ECONNREFUSED)' });
  const c = new StreamClock();
  audio(c, 0, 3000, 20, (t) => t);
  const s = withWatch(c.stats());
  assert.equal(judgeRealtime({ ...s, silentMs: 150 }).ok, true);
  assert.equal(judgeRealtime({ ...s, silentMs: 5000 }).ok, false);
  assert.equal(judgeRealtime({ ...s, silentMs: 5000, ended: 'unpublished' }).ok, true, 'after the end, silence is expected');
});

function withWatch(s: ReturnType<StreamClock['stats']>): WatchStats {
  return { ...s, bytes: 0, socketBytes: 0, republished: 0 };
}

// ------------------------------------------------------------------------------ against a fake server

test('RtmpWatcher plays, answers pings, acknowledges each window and records the unpublish', async () => {
  const got: RtmpMessage[] = [];
  let client: Socket | undefined;
  const server = createServer((sock) => {
    client = sock;
    sock.setNoDelay(true);
    const reader = new ChunkReader();
    const writer = new ChunkWriter();
    let hs = Buffer.alloc(0);
    let stage: 'c0c1' | 'c2' | 'chunks' = 'c0c1';
    const send = (csid: number, type: number, sid: number, ts: number, body: Buffer) => sock.write(writer.encode(csid, type, sid, ts, body));
    const media = async () => {
      send(2, 4, 0, 0, buildUserControl(UserControlEvent.StreamBegin, 1));
      send(6, 8, 1, 0, Buffer.from([0xaf, 0, 0x11, 0x90]));
      send(7, 9, 1, 0, Buffer.from([0x17, 0, 0, 0, 0, 1]));
      send(2, 4, 0, 0, buildUserControl(UserControlEvent.PingRequest, 1234));
      for (let i = 0; i < 20; i++) {
        send(6, 8, 1, i * 20, Buffer.alloc(300, 0xaf));
        if (i % 2 === 0) send(7, 9, 1, i * 20, Buffer.from([i === 0 ? 0x17 : 0x27, 1, 0, 0, 0, 9]));
        await new Promise((r) => setTimeout(r, 5));
      }
      send(2, 4, 0, 0, buildUserControl(UserControlEvent.StreamEof, 1));
    };
    sock.on('data', (d: Buffer) => {
      if (stage !== 'chunks') {
        hs = Buffer.concat([hs, d]);
        if (stage === 'c0c1' && hs.length >= 1537) {
          sock.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536, 7), hs.subarray(1, 1537)]));
          hs = hs.subarray(1537);
          stage = 'c2';
        }
        if (stage !== 'c2' || hs.length < 1536) return;
        d = hs.subarray(1536);
        stage = 'chunks';
      }
      for (const raw of reader.push(d)) {
        const m = parseMessage(raw);
        got.push(m);
        if (m.kind !== 'command') continue;
        if (m.name === 'connect') {
          send(2, 5, 0, 0, buildWindowAckSize(2500)); // small, so the media below crosses it
          send(3, 20, 0, 0, buildCommand('_result', m.transactionId, { fmsVer: 'FMS/3,0,1,123' }, { level: 'status', code: 'NetConnection.Connect.Success' }));
        } else if (m.name === 'createStream') {
          send(3, 20, 0, 0, buildCommand('_result', m.transactionId, null, 1));
        } else if (m.name === 'play') {
          send(5, 20, 1, 0, buildCommand('onStatus', 0, null, { level: 'status', code: 'NetStream.Play.Start' }));
          void media();
        }
      }
    });
    sock.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const w = new RtmpWatcher(`rtmp://127.0.0.1:${port}/live`, 'cam1');
  try {
    const playing = once(w, 'playing');
    const ended = once(w, 'end');
    w.start();
    await playing;
    const [reason] = await ended;
    assert.equal(reason, 'unpublished');
    const s = w.stats();
    assert.equal(s.audioTags, 21);
    assert.equal(s.videoTags, 11);
    assert.equal(s.keyframes, 1);
    assert.equal(s.bytes, 4 + 6 + 20 * 300 + 10 * 6);
    assert.ok(s.firstMediaAt !== undefined && s.playingAt !== undefined && s.firstMediaAt >= s.playingAt);
    assert.equal(s.ended, 'unpublished');

    const play = got.find((m): m is Extract<RtmpMessage, { kind: 'command' }> => m.kind === 'command' && m.name === 'play');
    assert.deepEqual(play?.args, ['cam1', -1]);
    assert.equal(play?.streamId, 1);
    assert.ok(got.some((m) => m.kind === 'userControl' && m.event === UserControlEvent.PingResponse && m.value === 1234), 'ping answered');
    const acks = got.filter((m): m is Extract<RtmpMessage, { kind: 'ack' }> => m.kind === 'ack');
    assert.ok(acks.length >= 2, `acks: ${acks.length}`);
    assert.ok(acks.every((a, i) => i === 0 || a.sequence - acks[i - 1]!.sequence >= 2500));

    // the connection stays after an unpublish (the stream may come back); close() ends it and keeps the reason
    w.close();
    assert.equal(w.stats().ended, 'unpublished');
    await once(client!, 'close');
  } finally {
    w.close();
    client?.destroy();
    server.close();
  }
});

test('RtmpWatcher records a refused connection as its error code', async () => {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  server.close();
  await once(server, 'close');
  const w = new RtmpWatcher(`rtmp://127.0.0.1:${port}/live`, 'x');
  const ended = once(w, 'end');
  w.start();
  assert.deepEqual(await ended, ['ECONNREFUSED']);
  assert.equal(w.realtime().ok, false);
});
