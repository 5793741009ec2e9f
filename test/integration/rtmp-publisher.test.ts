/**
 * Our RTMP publisher against the sandbox's real nginx-rtmp: real AAC (from ffmpeg, ADTS stripped) published
 * at real-time pace over rtmp:// and rtmps://, played back by ffprobe and listed on the stat page while it
 * lasts; and what nginx does with an unknown app, a duplicate stream name and an unverified certificate.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { aacFrame, aacSequenceHeader, onMetaData } from '../../plugin/media/output/flv.js';
import { RtmpError, RtmpPublisher, type RtmpPublisherOptions } from '../../adapters/rtmp/publisher.js';
import { parseRtmpUrl } from '../../plugin/rtmp/url.js';
import { splitAdts, type ProbedStream } from '../helpers/media.js';
import { sandboxEnv, uniqueId } from '../helpers/sandbox.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/**
 * ffprobe a live URL like helpers/media.ts probeStreams, but deciding after 1 s of media: an RTMP player
 * can't know a stream is audio-only, so by default ffprobe waits for 5 s of stream time (measured with an
 * ffmpeg-published audio-only stream too), longer than this test publishes.
 */
async function probeStreams(url: string): Promise<ProbedStream[]> {
  const args = ['-v', 'error', '-rw_timeout', '8000000', '-analyzeduration', '1000000', '-show_streams', '-of', 'json', url];
  const { stdout } = await run('ffprobe', args, { timeout: 15_000 });
  return (JSON.parse(stdout) as { streams: ProbedStream[] }).streams;
}

let aac: Promise<{ asc: Buffer; frames: Buffer[] }> | undefined;
/** 3 s of a 1 kHz tone, AAC-LC 48 kHz mono, made once. */
function tone(): Promise<{ asc: Buffer; frames: Buffer[] }> {
  aac ??= run(
    'ffmpeg',
    ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000', '-t', '3', '-c:a', 'aac', '-f', 'adts', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 16 << 20 },
  ).then(({ stdout }) => splitAdts(stdout));
  return aac;
}

/** Metadata, sequence header, then each frame at its own time (1024 samples at 48 kHz = 21.33 ms). */
async function publishRealtime(p: RtmpPublisher, asc: Buffer, frames: Buffer[]): Promise<void> {
  p.writeMetadata(onMetaData({ duration: 0, audiocodecid: 10, audiosamplerate: 48000, audiosamplesize: 16, stereo: false, encoder: 'sip-as-rtmp' }));
  p.writeAudio(0, aacSequenceHeader(asc));
  const t0 = performance.now();
  for (let i = 0; i < frames.length; i++) {
    const ts = Math.round((i * 1024 * 1000) / 48000);
    const wait = t0 + ts - performance.now();
    if (wait > 1) await sleep(wait);
    p.writeAudio(ts, aacFrame(frames[i]!));
  }
}

/** The <stream> block for a name on nginx-rtmp's stat page, if it is listed. */
async function statStream(name: string): Promise<string | undefined> {
  const xml = await (await fetch(sandboxEnv().RTMP_STAT_URL!)).text();
  return [...xml.matchAll(/<stream>([\s\S]*?)<\/stream>/g)].map((m) => m[1]!).find((s) => s.includes(`<name>${name}</name>`));
}

async function waitGone(name: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if (!(await statStream(name))) return true;
    await sleep(100);
  }
  return false;
}

async function rejection(p: Promise<unknown>): Promise<RtmpError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof RtmpError, `expected RtmpError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

for (const scheme of ['rtmp', 'rtmps'] as const) {
  test(`${scheme}: real AAC at real-time pace plays back as aac 48000 Hz, shows on the stat page, and is gone after close`, { timeout: 40_000 }, async () => {
    const env = sandboxEnv();
    const { asc, frames } = await tone();
    const name = uniqueId(`pub-${scheme}`);
    const base = scheme === 'rtmp' ? env.RTMP_URL! : env.RTMPS_URL!;
    const opts: RtmpPublisherOptions = { target: parseRtmpUrl(`${base}/${name}`) };
    if (scheme === 'rtmps') opts.tls = { ca: readFileSync(env.TLS_CERT!) };
    const p = new RtmpPublisher(opts);
    const closes: unknown[] = [];
    p.on('close', (e) => closes.push(e));
    try {
      await p.start();
      const sending = publishRealtime(p, asc, frames);
      // Meanwhile: a player on plain RTMP (what nginx received, whichever front it came through) and the stat page.
      await sleep(500);
      const probing = probeStreams(`${env.RTMP_URL}/${name}`);
      await sleep(1000);
      const stat = await statStream(name);
      assert.ok(stat, 'listed on the stat page while publishing');
      assert.match(stat, /<publishing\/>/);
      assert.match(stat, /<codec>AAC<\/codec>/);
      assert.match(stat, /<sample_rate>48000<\/sample_rate>/);

      // A second publisher on the same name: nginx refuses it with onStatus error.
      const dup = new RtmpPublisher({ target: parseRtmpUrl(`${env.RTMP_URL}/${name}`) });
      const dupErr = await rejection(dup.start());
      assert.deepEqual([dupErr.stage, dupErr.code, dupErr.description], ['publish', 'NetStream.Publish.BadName', 'Already publishing']);

      const streams = await probing;
      assert.deepEqual(
        streams.map((s) => [s.codec_type, s.codec_name, s.sample_rate, s.channels]),
        [['audio', 'aac', '48000', 1]],
      );
      await sending;
      assert.equal(p.stats.audioMessages, frames.length + 1);
      assert.equal(p.stats.droppedMessages, 0);
    } finally {
      await p.close();
    }
    assert.deepEqual(closes, [{}]);
    assert.ok(await waitGone(name), 'gone from the stat page after close()');
    assert.equal(p.bufferedBytes, 0);
  });
}

test('an unknown application: nginx-rtmp hangs up during connect', { timeout: 15_000 }, async () => {
  const p = new RtmpPublisher({ target: parseRtmpUrl(`rtmp://127.0.0.1:1935/nosuchapp/${uniqueId('x')}`) });
  const e = await rejection(p.start());
  // nginx-rtmp sends no _error for an unknown app: it logs "application not found" and closes the socket.
  assert.equal(e.stage, 'connect');
  assert.equal(e.code, undefined);
  assert.equal(e.message, 'server closed the connection during connect');
  assert.equal(p.state, 'closed');
});

test('rtmps with default verification rejects the self-signed certificate at stage "tls"', { timeout: 15_000 }, async () => {
  const env = sandboxEnv();
  const p = new RtmpPublisher({ target: parseRtmpUrl(`${env.RTMPS_URL}/${uniqueId('tls')}`) });
  const e = await rejection(p.start());
  assert.equal(e.stage, 'tls');
  assert.equal(e.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  assert.match(e.message, /self-signed certificate/);
});
