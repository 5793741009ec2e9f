/**
 * Hours of stream time in a unit test. LiveStream's timeOriginMs starts a call's clock right before RTMP's
 * limits (2^24 ms: extended timestamps; 2^32 ms: the wrap), and 5 simulated hours of frames (fake
 * timestamps, no real time) go through a push, RTMP chunking and the console preview with memory checked.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RtmpSink, type FlvPublisher } from '../../adapters/rtmp/rtmp-sink.js';
import { FlvByteSink } from '../../plugin/media/output/flv-stream.js';
import type { ConfigChange, MediaFrame } from '../../plugin/media/frame.js';
import { FlvTagReader } from '../../plugin/media/output/flv-reader.js';
import { FlvFileWriter, flvConfigTags, flvFrameBody, flvTagType } from '../../plugin/media/output/flv.js';
import { LiveStream } from '../../plugin/media/output/live-stream.js';
import { Push } from '../../plugin/media/output/push.js';
import { ChunkReader, ChunkWriter, type ChunkMessage } from '../../plugin/rtmp/chunk.js';
import { Csid, MessageType } from '../../plugin/rtmp/messages.js';

const ASC = Buffer.from([0x11, 0x88]);
const AVCC = Buffer.from([1, 0x42, 0xc0, 0x1e, 0xff]);
const AUDIO = { codec: 'aac', audioSpecificConfig: ASC, sampleRate: 48000, channels: 1, bitrate: 64000 } as const;
const VIDEO = { codec: 'h264', avcConfig: AVCC, width: 640, height: 360 } as const;
const AAC_MS = (1024 * 1000) / 48000;
const FAST_RECONNECT = { reconnect: { initialMs: 1, maxMs: 1, factor: 1, minFraction: 1 } };

/** What a server reads: chunked as RtmpClientSession does it (128-byte chunks, so most media is multi-chunk), read back. */
class ChunkingPublisher extends EventEmitter implements FlvPublisher {
  private readonly writer = new ChunkWriter();
  private readonly reader = new ChunkReader();
  constructor(private readonly onMessage: (m: ChunkMessage) => void) {
    super();
  }
  async start() {}
  async close() {}
  writeMetadata(body: Buffer) {
    this.send(Csid.Stream, MessageType.DataAmf0, 0, body);
  }
  writeAudio(ts: number, body: Buffer) {
    this.send(Csid.Audio, MessageType.Audio, ts, body);
  }
  writeVideo(ts: number, body: Buffer) {
    this.send(Csid.Video, MessageType.Video, ts, body);
  }
  private send(csid: number, typeId: number, ts: number, body: Buffer) {
    for (const m of this.reader.push(this.writer.encode(csid, typeId, 1, ts, body))) this.onMessage(m);
  }
}

/** Frames of `ms` of call time from `fromMs`: AAC every 21.3 ms, 25 fps video with a keyframe every `gop` frames. */
function play(stream: LiveStream, fromMs: number, ms: number, gop = 50, sizes = { audio: 200, video: 600 }): void {
  const audio = Buffer.alloc(sizes.audio, 1);
  const key = Buffer.alloc(sizes.video, 2);
  const inter = Buffer.alloc(sizes.video / 3, 3);
  let a = Math.ceil(fromMs / AAC_MS);
  for (let v = Math.ceil(fromMs / 40); v * 40 < fromMs + ms; v++) {
    for (; a * AAC_MS <= v * 40; a++) stream.audioFrame(Math.round(a * AAC_MS), audio);
    stream.videoFrame(v * 40, v % gop === 0 ? key : inter, v % gop === 0);
  }
}

test('timeOriginMs moves every frame and config by the same amount (A/V unchanged); 0 by default; only whole ms ≥ 0', () => {
  const run = (stream: LiveStream) => {
    const out: string[] = [];
    const sink = {
      config: (c: ConfigChange) => out.push(`cfg ${c.tracks.map((t) => `${t}@${c.dts[t]}`).join(' ')}`),
      frame: (f: MediaFrame) => out.push(`${f.track} ${f.dts}/${f.pts}${f.track === 'video' && f.keyframe ? ' K' : ''}`),
    };
    stream.addSink(sink);
    stream.setAudioFormat(AUDIO); // before any frame: at the origin
    stream.audioFrame(0, ASC);
    stream.videoFrame(0, AVCC, true);
    stream.audioFrame(21, ASC);
    stream.setVideoFormat(VIDEO); // mid-stream: at the video track's last time
    stream.videoFrame(2000, AVCC, true);
    stream.removeSink(sink);
    stream.addSink(sink); // a join (a reconnect): both configs at their tracks' last times
    return { out, keyframeIntervalMs: stream.stats.keyframeIntervalMs };
  };
  const origin = 2 ** 24 - 5;
  const plain = run(new LiveStream());
  assert.deepEqual(plain.out, ['cfg audio@0', 'audio 0/0', 'video 0/0 K', 'audio 21/21', 'cfg video@0', 'video 2000/2000 K', 'cfg audio@21 video@2000']);
  const shifted = run(new LiveStream({ timeOriginMs: origin }));
  assert.deepEqual(shifted.out, plain.out.map((l) => l.replace(/\d+/g, (n) => String(Number(n) + origin))), 'every time (all the numbers here) + origin');
  assert.equal(shifted.keyframeIntervalMs, 2000);
  for (const bad of [-1, 0.5, Number.NaN, 2 ** 53]) assert.throws(() => new LiveStream({ timeOriginMs: bad }), RangeError);
});

/** One connection's messages as the server reads them: 'meta', 'cfg' (a sequence header) or 'frame', type and time. */
type Got = { kind: 'meta' | 'cfg' | 'frame'; typeId: number; ts: number }[];
const kindOf = (m: ChunkMessage): Got[number]['kind'] => (m.typeId === MessageType.DataAmf0 ? 'meta' : m.payload[1] === 0 ? 'cfg' : 'frame');

test('a stream starting 2 s before 2^24 ms, or 2^32 ms: the RTMP server, the output health, the preview and an FLV file read it right, across a reconnect', async () => {
  for (const origin of [2 ** 24 - 2000, 2 ** 32 - 2000]) {
    const stream = new LiveStream({ timeOriginMs: origin });
    stream.setAudioFormat(AUDIO);
    stream.setVideoFormat(VIDEO);
    const frames: [number, number][] = []; // [type, dts] of every frame, unwrapped
    stream.addSink({ config() {}, frame: (f) => frames.push([flvTagType(f.track), f.dts]) });
    const conns: Got[] = [];
    const pubs: ChunkingPublisher[] = [];
    const connect = () => {
      const got: Got = [];
      conns.push(got);
      pubs.push(new ChunkingPublisher((m) => got.push({ kind: kindOf(m), typeId: m.typeId, ts: m.timestamp })));
      return new RtmpSink(pubs.at(-1)!);
    };
    const push = new Push(stream, connect, FAST_RECONNECT);
    await push.start();
    const preview: Buffer[] = [];
    stream.addSink(new FlvByteSink({ write: (b) => preview.push(b) > 0, writableLength: 0 }, { hasAudio: true, hasVideo: true }));
    // A recording that keeps the stream's own times (FLV file framing: 24 bits + the TimestampExtended byte).
    const file = new FlvFileWriter();
    const recording = [file.header(true, true)];
    stream.addSink({
      config: (c) => flvConfigTags(c).forEach((t) => t.timestampMs !== undefined && recording.push(file.tag(t.type, t.timestampMs, t.body))),
      frame: (f) => recording.push(file.tag(flvTagType(f.track), f.dts, flvFrameBody(f))),
    });

    play(stream, 0, 3000, 25);
    pubs[0]!.emit('close', { error: new Error('dropped') }); // after the crossing
    await new Promise((r) => push.once('state', r)); // PUBLISHING again
    play(stream, 3000, 2000, 25);
    await push.close();

    const media = (g: Got) => g.filter((m) => m.kind === 'frame').map((m) => [m.typeId, m.ts]);
    const wire = (from: number, to: number) => frames.filter(([, t]) => t >= origin + from && t < origin + to).map(([k, t]) => [k, t >>> 0]);
    const [first, second] = conns as [Got, Got];
    assert.deepEqual(media(first), wire(0, 3000), `origin ${origin}: every frame at its time + origin (mod 2^32)`);
    const limit = origin < 2 ** 31 ? 0xffffff : 2 ** 31; // 2^32: wrapped from the top of the range to its bottom
    assert.ok(first.some((m) => m.ts < limit) && first.some((m) => m.ts >= limit), 'the crossing happened on one connection');
    // The new connection: metadata and both sequence headers at their tracks' last times, then from a keyframe on.
    const lastA = frames.filter(([k, t]) => k === 8 && t < origin + 3000).at(-1)![1];
    const lastV = frames.filter(([k, t]) => k === 9 && t < origin + 3000).at(-1)![1];
    assert.deepEqual(second.slice(0, 3).map((m) => [m.kind, m.ts]), [['meta', 0], ['cfg', lastA >>> 0], ['cfg', lastV >>> 0]]);
    assert.deepEqual(media(second), wire(3000, 5000));
    assert.deepEqual(push.health.view().keyframeIntervalMs, 1000);
    assert.deepEqual(push.health.view().maxKeyframeIntervalMs, 1000);

    // The preview starts its viewer's clock at 0: call time, whatever the origin.
    const tags = new FlvTagReader().push(Buffer.concat(preview));
    assert.deepEqual(tags.filter((t) => t.type !== 18).slice(2).map((t) => [t.type, t.timestampMs]), frames.map(([k, t]) => [k, t - origin]));
    // The recording: every tag at the stream's time, mod 2^32.
    const recorded = new FlvTagReader().push(Buffer.concat(recording)).map((t) => [t.type, t.timestampMs]);
    assert.deepEqual(recorded.slice(2), frames.map(([k, t]) => [k, t >>> 0]));
  }
});

test('5 simulated hours through a push (dropped and reconnected every hour), RTMP chunking and a preview viewer: times pass 2^24 ms on the wire, memory stays flat', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const HOUR = 3_600_000;
  const stream = new LiveStream();
  stream.setAudioFormat(AUDIO);
  stream.setVideoFormat(VIDEO);
  let pub: ChunkingPublisher | undefined;
  const seen = { frames: 0, backwards: 0, extended: 0, last: 0 };
  const push = new Push(
    stream,
    () => {
      const last = new Map<number, number>(); // per connection: each track's times go forward
      return new RtmpSink((pub = new ChunkingPublisher((m) => {
        if (kindOf(m) !== 'frame') return;
        seen.frames++;
        if (m.timestamp < (last.get(m.typeId) ?? 0)) seen.backwards++;
        if (m.timestamp >= 0xffffff) seen.extended++;
        last.set(m.typeId, (seen.last = m.timestamp));
      })));
    },
    FAST_RECONNECT,
  );
  await push.start();
  let previewBytes = 0;
  const preview = new FlvByteSink({ write: (b) => (previewBytes += b.length) > 0, writableLength: 0 }, { hasAudio: true, hasVideo: true });
  stream.addSink(preview);
  const heap: number[] = [];
  const cpu = process.cpuUsage();
  for (let h = 0; h < 5; h++) {
    play(stream, h * HOUR, HOUR, 50, { audio: 12, video: 30 });
    pub!.emit('close', { error: new Error('dropped') });
    await new Promise((r) => push.once('state', r));
    gc();
    heap.push(process.memoryUsage().heapUsed);
  }
  const used = process.cpuUsage(cpu);
  const cpuS = (used.user + used.system) / 1e6;
  console.log(`# 5 h: ${seen.frames} frames, heap after each hour (MB) ${heap.map((b) => (b / 2 ** 20).toFixed(1)).join(' ')}, ${cpuS.toFixed(1)} CPU-s`);
  const frames = stream.stats.audioFrames + stream.stats.videoFrames;
  assert.ok(frames > 1_290_000);
  assert.equal(seen.frames, frames, 'every frame reached the server (each hour starts on a keyframe, so no reconnect cost video)');
  assert.equal(seen.backwards, 0);
  assert.ok(seen.extended > 0.06 * frames && seen.last === 5 * HOUR - 40, 'the last 20 min went with times ≥ 0xFFFFFF');
  assert.equal(push.stats.reconnects, 5);
  assert.equal(preview.stats.tags, 3 + frames, 'the preview got metadata, both sequence headers and every frame');
  assert.deepEqual(push.health.view().maxKeyframeIntervalMs, 2000);
  // The heap after hour 1 (everything warmed up) against after hour 5: nothing kept per frame.
  assert.ok(heap[4]! - heap[0]! < 1024 * 1024, `heap grew ${heap[4]! - heap[0]!} bytes from hour 1 to hour 5`);
});
