/**
 * H.264 RTP depacketizer (RFC 6184 modes 0 and 1): hand-built packets for each rule, and real ffmpeg RTP
 * whose reassembled access units must equal ffmpeg's own Annex B output and decode without an error.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { H264Depacketizer, startsAccessUnit, type AccessUnit, type H264Packet } from '../../plugin/media/ingest/h264-depacketizer.js';
import { joinAnnexB, nalType, splitAnnexB } from '../../plugin/media/encode/h264/nal.js';
import { parseRtp } from '../../plugin/media/ingest/rtp.js';
import { captureFfmpegRtp } from '../helpers/rtp-capture.js';
import { prng } from '../helpers/prng.js';

const run = promisify(execFile);

// ---- hand-built NAL units and packets ----

/** A NAL unit of `type` and `size` bytes (NRI 3). Slices start with first_mb_in_slice = 0 unless `firstSlice` is false. */
function nal(type: number, size = 12, fill = type, firstSlice = true): Buffer {
  const b = Buffer.alloc(size, fill);
  b[0] = 0x60 | type;
  if (type === 1 || type === 5) b[1] = firstSlice ? 0x88 : 0x08;
  return b;
}
const SPS = nal(7, 10);
const PPS = nal(8, 4);
const IDR = nal(5, 40);
const P = nal(1, 20);

function stapA(...units: Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x78])];
  for (const u of units) parts.push(Buffer.from([u.length >> 8, u.length & 0xff]), u);
  return Buffer.concat(parts);
}

/** FU-A payloads for one NAL unit, `chunk` bytes of it per fragment. */
function fuA(unit: Buffer, chunk: number): Buffer[] {
  const body = unit.subarray(1);
  const out: Buffer[] = [];
  for (let o = 0; o < body.length; o += chunk) {
    const s = o === 0 ? 0x80 : 0;
    const e = o + chunk >= body.length ? 0x40 : 0;
    out.push(Buffer.concat([Buffer.from([(unit[0]! & 0xe0) | 28, s | e | (unit[0]! & 0x1f)]), body.subarray(o, o + chunk)]));
  }
  return out;
}

/** Packets for consecutive payloads of one access unit; the marker on the last unless `marker` is false. */
class Sender {
  constructor(public seq = 1000, public ts = 90_000) {}
  au(payloads: Buffer[], marker = true, tsStep = 3600): H264Packet[] {
    const out = payloads.map((payload, i) => ({
      sequenceNumber: this.seq++ & 0xffff, timestamp: this.ts >>> 0, marker: marker && i === payloads.length - 1, payload,
    }));
    this.ts += tsStep;
    return out;
  }
}

function feed(d: H264Depacketizer, packets: H264Packet[]): AccessUnit[] {
  return packets.flatMap((p) => d.push(p));
}

const types = (au: AccessUnit) => au.nalus.map(nalType);

test('single NAL unit packets: SPS, PPS, IDR make a keyframe; a P slice a plain access unit', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  const [key] = feed(d, s.au([SPS, PPS, IDR]));
  assert.ok(key);
  assert.deepEqual(key.nalus, [SPS, PPS, IDR]);
  assert.equal(key.keyframe, true);
  assert.equal(key.timestamp, 90_000);
  assert.equal(key.sps, SPS);
  assert.equal(key.pps, PPS);
  assert.equal(d.waitingForKeyframe, false);
  const [p] = feed(d, s.au([P]));
  assert.deepEqual(p, { timestamp: 93_600, nalus: [P], keyframe: false });
  assert.deepEqual(d.toJSON(), {
    packets: 4, accessUnits: 2, keyframes: 1, droppedAccessUnits: 0, fuErrors: 0, stapA: 0, fuA: 0, single: 4,
    unsupported: 0, malformed: 0, gaps: 0, outOfOrder: 0, oversized: 0, idrWithoutParameterSets: 0, keyframeWaits: 0,
    waitingForKeyframe: false, maxAccessUnitBytes: 2 * 1024 * 1024,
  });
});

test('STAP-A with SPS, PPS and IDR inside: units are views of the packet', () => {
  const d = new H264Depacketizer();
  const payload = stapA(SPS, PPS, IDR);
  const [au] = d.push({ sequenceNumber: 1, timestamp: 5, marker: true, payload });
  assert.ok(au);
  assert.deepEqual(au.nalus, [SPS, PPS, IDR]);
  assert.equal(au.keyframe, true);
  assert.deepEqual([au.sps, au.pps], [SPS, PPS]);
  assert.equal(au.nalus[2]!.buffer, payload.buffer, 'no copy');
  assert.equal(d.stats.stapA, 1);
});

test('FU-A start, middles, end reassemble the NAL unit (one copy); mixed with STAP-A in one access unit', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  const big = nal(5, 1000, 0x5a);
  const frags = fuA(big, 300);
  assert.equal(frags.length, 4);
  const [au] = feed(d, s.au([stapA(SPS, PPS), ...frags]));
  assert.ok(au);
  assert.deepEqual(au.nalus, [SPS, PPS, big]);
  assert.equal(au.keyframe, true);
  // Two fragmented slices in one picture, then a P frame of two fragmented slices.
  const a = nal(1, 500, 1);
  const b = nal(1, 400, 2, false);
  const [p] = feed(d, s.au([...fuA(a, 200), ...fuA(b, 200)]));
  assert.deepEqual(p?.nalus, [a, b]);
  assert.deepEqual([d.stats.fuA, d.stats.stapA, d.stats.fuErrors, d.stats.accessUnits], [9, 1, 0, 2]);
});

test('FU-A with a missing middle: that access unit and the following ones are dropped until the next IDR', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  assert.equal(feed(d, s.au([SPS, PPS, IDR])).length, 1);
  const frags = fuA(nal(1, 900), 300);
  const lossy = s.au(frags);
  lossy.splice(1, 1); // the middle fragment
  assert.deepEqual(feed(d, lossy), []);
  assert.equal(d.waitingForKeyframe, true, 'the caller now asks for a keyframe');
  assert.deepEqual(feed(d, [...s.au([P]), ...s.au(fuA(nal(1, 700), 300))]), [], 'P frames predicted from a lost one');
  const [key] = feed(d, s.au([stapA(SPS, PPS), ...fuA(nal(5, 900), 300)]));
  assert.equal(key?.keyframe, true);
  assert.equal(d.waitingForKeyframe, false);
  assert.equal(feed(d, s.au([P])).length, 1);
  const st = d.stats;
  assert.deepEqual([st.gaps, st.droppedAccessUnits, st.fuErrors, st.keyframeWaits, st.accessUnits], [1, 3, 0, 1, 3]);
});

test('FU-A with a missing end, then a new timestamp: dropped; an end never sent (no gap) is an FU error', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  feed(d, s.au([SPS, PPS, IDR]));
  const lossy = s.au(fuA(nal(1, 900), 300));
  lossy.pop(); // the end, which carried the marker
  assert.deepEqual(feed(d, lossy), []);
  assert.deepEqual(feed(d, s.au([P])), [], 'the gap is seen here; this P is dropped too');
  assert.deepEqual([d.stats.gaps, d.stats.droppedAccessUnits, d.waitingForKeyframe], [1, 2, true]);
  const [key] = feed(d, s.au([SPS, PPS, IDR]));
  assert.equal(key?.keyframe, true);

  // A sender bug: start, middle, then the next picture with no sequence gap.
  const unfinished = s.au(fuA(nal(1, 900), 300));
  unfinished.pop();
  s.seq--;
  assert.deepEqual(feed(d, [...unfinished, ...s.au([P])]), []);
  assert.equal(d.stats.fuErrors, 1);
  assert.equal(d.stats.gaps, 1);
  assert.equal(d.waitingForKeyframe, true);
});

test('FU-A structure errors: middle without start, start before end, fragment of another type', () => {
  const frags = fuA(nal(5, 900), 300);
  const cases: Buffer[][] = [
    [frags[1]!, frags[2]!], // a middle and end without the start (no sequence gap)
    [frags[0]!, frags[1]!, frags[0]!, frags[1]!, frags[2]!], // a second start before the end
    [frags[0]!, fuA(nal(1, 900), 300)[1]!, frags[2]!], // a middle of a type 1 inside a type 5 unit
    [frags[0]!, P, frags[2]!], // a single NAL unit inside a fragmented one
  ];
  for (const payloads of cases) {
    const d = new H264Depacketizer({ parameterSets: { sps: SPS, pps: [PPS] } });
    assert.deepEqual(feed(d, new Sender().au(payloads)), []);
    assert.ok(d.stats.fuErrors >= 1);
    assert.equal(d.stats.droppedAccessUnits, 1);
  }
});

test('reordered input is not this stage\'s job: a packet behind the last one is dropped and its access unit lost', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  feed(d, s.au([SPS, PPS, IDR]));
  const ps = s.au(fuA(nal(1, 900), 300));
  assert.deepEqual(feed(d, [ps[0]!, ps[2]!, ps[1]!]), []);
  assert.deepEqual([d.stats.outOfOrder, d.stats.gaps, d.stats.droppedAccessUnits, d.waitingForKeyframe], [1, 1, 1, true]);
  // A duplicate is dropped the same way.
  feed(d, s.au([SPS, PPS, IDR]));
  const [dup] = s.au([P]);
  assert.equal(d.push(dup!).length, 1);
  assert.deepEqual(d.push(dup!), []);
  assert.equal(d.stats.outOfOrder, 2);
  // Far behind is a restarted sequence space, not a late packet: a gap, resumed at the next IDR.
  const restarted = new Sender(s.seq - 20_000, s.ts);
  assert.equal(feed(d, restarted.au([SPS, PPS, IDR])).length, 1);
  assert.equal(d.stats.gaps, 2);
});

test('marker missing: a timestamp change closes the access unit; flush() closes the last', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  assert.deepEqual(feed(d, s.au([SPS, PPS, ...fuA(nal(5, 500), 200)], false)), []);
  const second = s.au([P], false);
  const [key] = feed(d, second);
  assert.deepEqual(types(key!), [7, 8, 5]);
  assert.equal(key?.timestamp, 90_000);
  const [p] = feed(d, s.au([nal(1, 30)], false));
  assert.deepEqual(p?.nalus, [P]);
  assert.equal(p?.timestamp, 93_600);
  const [last] = d.flush();
  assert.equal(last?.timestamp, 97_200);
  assert.deepEqual(d.flush(), []);
  assert.equal(d.stats.accessUnits, 3);
});

test('a timestamp change and a marker in one push give two access units', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  feed(d, s.au([SPS, PPS, IDR], false));
  const out = feed(d, s.au([P], true));
  assert.deepEqual(out.map((a) => a.timestamp), [90_000, 93_600]);
});

test('sequence wrap 65535 → 0 inside an FU-A is not a gap; a gap across the wrap is', () => {
  const d = new H264Depacketizer();
  const s = new Sender(65_533, 0xffff_f000);
  const big = nal(5, 1000);
  const ps = s.au([stapA(SPS, PPS), ...fuA(big, 300)]);
  assert.deepEqual(ps.map((p) => p.sequenceNumber), [65_533, 65_534, 65_535, 0, 1]);
  const [au] = feed(d, ps);
  assert.deepEqual(au?.nalus, [SPS, PPS, big]);
  assert.equal(d.stats.gaps, 0);
  // The RTP timestamp wraps too: only equality matters here.
  s.ts = 0xffff_ffff;
  assert.equal(feed(d, s.au([P])).length, 1);
  assert.equal(feed(d, s.au([P])).length, 1);

  const d2 = new H264Depacketizer();
  const s2 = new Sender(65_534);
  assert.equal(feed(d2, [...s2.au([stapA(SPS, PPS, IDR)]), ...s2.au([P])]).length, 2);
  s2.seq++; // 0 lost
  assert.equal(s2.seq & 0xffff, 1);
  assert.deepEqual(feed(d2, s2.au([P])), []);
  assert.deepEqual([d2.stats.gaps, d2.waitingForKeyframe], [1, true]);
});

test('lostBefore from the jitter buffer is a gap even when the sequence numbers look continuous', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  feed(d, s.au([SPS, PPS, IDR]));
  const [p] = s.au([P]);
  assert.deepEqual(d.push(p!, 2), []);
  assert.deepEqual([d.stats.gaps, d.waitingForKeyframe], [1, true]);
});

test('at the start: P frames wait for the first IDR; a stream joined mid-IDR waits for the next', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  assert.deepEqual(feed(d, [...s.au([P]), ...s.au([P])]), []);
  assert.equal(d.waitingForKeyframe, true);
  assert.equal(d.stats.keyframeWaits, 0, 'the initial wait is not a break');
  const idr = s.au([stapA(SPS, PPS), ...fuA(nal(5, 900), 300)]);
  assert.equal(feed(d, idr).length, 1);

  const late = new H264Depacketizer();
  const s2 = new Sender();
  const joined = s2.au([stapA(SPS, PPS), ...fuA(nal(5, 900), 300)]).slice(2); // first packets missed
  assert.deepEqual(feed(late, [...joined, ...s2.au([P])]), []);
  assert.equal(late.stats.droppedAccessUnits, 2);
  assert.equal(feed(late, s2.au([SPS, PPS, IDR])).length, 1);
});

test('after a gap, a next access unit that visibly starts (SPS, AUD, first slice) is kept if it is an IDR', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  feed(d, s.au([SPS, PPS, IDR]));
  s.seq += 3; // a whole P frame lost
  assert.equal(feed(d, s.au([SPS, PPS, IDR])).length, 1);
  s.seq += 3;
  // An IDR whose head was lost: its next slice (first_mb_in_slice > 0) does not start a picture.
  assert.deepEqual(feed(d, s.au([nal(5, 30, 5, false)])), []);
  assert.equal(d.stats.keyframeWaits, 2);
  assert.equal(startsAccessUnit(Buffer.from([0x09, 0xf0])), true, 'AUD');
  assert.equal(startsAccessUnit(fuA(nal(5, 900), 300)[0]!), true);
  assert.equal(startsAccessUnit(fuA(nal(5, 900), 300)[1]!), false);
  assert.equal(startsAccessUnit(stapA(SPS, PPS)), true);
  assert.equal(startsAccessUnit(Buffer.alloc(0)), false);
});

test('an IDR without known SPS/PPS is not a starting point, unless the SDP gave them', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  assert.deepEqual(feed(d, s.au([IDR])), []);
  assert.equal(d.stats.idrWithoutParameterSets, 1);
  assert.equal(feed(d, s.au([SPS, PPS, IDR])).length, 1);
  assert.equal(feed(d, s.au([IDR])).length, 1, 'known from an earlier access unit');

  const withSdp = new H264Depacketizer({ parameterSets: { sps: SPS, pps: [PPS] } });
  assert.equal(feed(withSdp, new Sender().au([IDR])).length, 1);
});

test('SPS/PPS sent with a marker (or their own timestamp) join the picture that follows', () => {
  const d = new H264Depacketizer();
  const s = new Sender();
  const [au] = feed(d, [...s.au([stapA(SPS, PPS)], true, 0), ...s.au([IDR])]);
  assert.deepEqual(au?.nalus, [SPS, PPS, IDR]);
  const [au2] = feed(d, [...s.au([SPS, PPS], true, 1800), ...s.au([IDR])]);
  assert.deepEqual(au2?.nalus, [SPS, PPS, IDR]);
  assert.equal(au2?.timestamp, 90_000 + 3600 + 1800);
});

test('mode 2 structures (STAP-B, MTAP16/24, FU-B) and undefined types are counted and dropped', () => {
  for (const type of [25, 26, 27, 29, 0, 30, 31]) {
    const d = new H264Depacketizer();
    const s = new Sender();
    feed(d, s.au([SPS, PPS, IDR]));
    assert.deepEqual(feed(d, s.au([Buffer.from([0x60 | type, 1, 2, 3, 4])])), []);
    assert.equal(d.stats.unsupported, 1, `type ${type}`);
    assert.equal(d.waitingForKeyframe, true);
  }
});

test('malformed STAP-A and FU-A are counted, and break their access unit', () => {
  const bad = [
    Buffer.from([0x78]), // no units
    Buffer.from([0x78, 0x00, 0x05, 0x67, 1]), // size overruns
    Buffer.from([0x78, 0x00, 0x00]), // empty unit
    Buffer.concat([stapA(SPS), Buffer.from([0x00])]), // a stray byte after the units
    stapA(SPS, Buffer.from([0x78, 0x67])), // nested aggregation
    Buffer.from([0x7c, 0x85]), // FU-A without payload
    Buffer.from([0x7c, 0x98, 1]), // FU-A of type 24
    Buffer.from([0xe7, 1, 2]), // forbidden bit
    Buffer.alloc(0),
  ];
  for (const payload of bad) {
    const d = new H264Depacketizer({ parameterSets: { sps: SPS, pps: [PPS] } });
    assert.deepEqual(feed(d, new Sender().au([payload, IDR])), [], payload.toString('hex'));
    assert.equal(d.stats.malformed, 1, payload.toString('hex'));
  }
});

test('maxAccessUnitBytes bounds memory: a larger access unit is dropped and counted', () => {
  const d = new H264Depacketizer({ maxAccessUnitBytes: 1000 });
  const s = new Sender();
  assert.deepEqual(feed(d, s.au([stapA(SPS, PPS), ...fuA(nal(5, 1200), 300)])), []);
  assert.deepEqual(feed(d, s.au([SPS, PPS, nal(5, 1200)])), []);
  assert.equal(d.stats.oversized, 2);
  assert.equal(feed(d, s.au([SPS, PPS, nal(5, 900)])).length, 1);
  assert.throws(() => new H264Depacketizer({ maxAccessUnitBytes: 0 }), RangeError);
});

test('fuzz: random payloads, sequence numbers and markers never throw; what comes out is well-formed; it recovers', () => {
  const rnd = prng(1234);
  const d = new H264Depacketizer({ maxAccessUnitBytes: 4000 });
  let seq = 0;
  let ts = 0;
  let out = 0;
  const N = 30_000;
  for (let i = 0; i < N; i++) {
    const r = rnd();
    seq = r < 0.9 ? seq + 1 : r < 0.95 ? seq + Math.floor(rnd() * 5) : Math.floor(rnd() * 65536);
    if (rnd() < 0.3) ts += Math.floor(rnd() * 6000);
    const payload = Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256)));
    // Bias the first bytes toward the structures that have state: STAP-A and FU-A with S/E bits.
    if (payload.length > 0 && rnd() < 0.6) payload[0] = (payload[0]! & 0x60) | [24, 28, 28, 5, 7, 8, 1][Math.floor(rnd() * 7)]!;
    if (payload.length > 1 && payload[0] === 28 && rnd() < 0.7) payload[1] = (payload[1]! & 0xc0) | 5;
    const aus = d.push({ sequenceNumber: seq & 0xffff, timestamp: ts >>> 0, marker: rnd() < 0.2, payload }, rnd() < 0.01 ? 1 : 0);
    for (const au of aus) {
      out++;
      assert.ok(au.nalus.length > 0);
      for (const n of au.nalus) {
        assert.ok(n.length > 0 && (n[0]! & 0x80) === 0 && (n[0]! & 0x1f) >= 1 && (n[0]! & 0x1f) <= 23);
      }
      assert.equal(au.keyframe, au.nalus.some((n) => nalType(n) === 5));
    }
  }
  const st = d.stats;
  assert.equal(st.packets, N);
  assert.equal(st.accessUnits, out);
  assert.ok(st.malformed > 0 && st.unsupported > 0 && st.fuErrors > 0 && st.gaps > 0 && st.droppedAccessUnits > 0, JSON.stringify(st));
  // Whatever state the garbage left, a clean keyframe after a gap starts the stream again.
  const s = new Sender(seq + 10, ts + 100_000);
  assert.equal(feed(d, s.au([stapA(SPS, PPS), ...fuA(nal(5, 900), 300)])).length, 1);
  assert.equal(feed(d, s.au([P])).length, 1);
});

// ---- real ffmpeg RTP ----

const SOURCE = ['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-t', '2', '-pix_fmt', 'yuv420p'];
// One thread: libx264 is then deterministic, so the RTP run and the Annex B run encode the same bits.
const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-bf', '0', '-threads', '1'];

async function rtpPackets(args: string[], query: string): Promise<H264Packet[]> {
  const { media } = await captureFfmpegRtp([...SOURCE, ...args, '-payload_type', '99'], query);
  const packets = media.map((m) => {
    const r = parseRtp(m);
    assert.ok(r.ok);
    return r.packet;
  });
  for (let i = 1; i < packets.length; i++) {
    assert.equal((packets[i]!.sequenceNumber - packets[i - 1]!.sequenceNumber) & 0xffff, 1, 'loopback UDP lost or reordered nothing');
  }
  return packets;
}

async function ffmpegAnnexB(args: string[]): Promise<Buffer[]> {
  const { stdout } = await run('ffmpeg', ['-nostdin', '-loglevel', 'error', ...SOURCE, ...args, '-f', 'h264', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 16 << 20 });
  return splitAnnexB(stdout);
}

/** Decode an Annex B file with ffmpeg: returns its error output (empty = clean) and the frames ffprobe counts. */
async function decode(aus: AccessUnit[]): Promise<{ errors: string; frames: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'h264-depack-'));
  try {
    const file = join(dir, 'out.h264');
    writeFileSync(file, Buffer.concat(aus.map((a) => joinAnnexB(a.nalus))));
    const { stderr } = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-']);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file]);
    return { errors: stderr.trim(), frames: Number(stdout.trim()) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('real ffmpeg RTP, packetization-mode 1 (STAP-A + FU-A at pkt_size=1200): every access unit, equal to ffmpeg\'s Annex B, decodes clean', { timeout: 60_000 }, async () => {
  const [packets, reference] = await Promise.all([rtpPackets(X264, '&pkt_size=1200'), ffmpegAnnexB(X264)]);
  const d = new H264Depacketizer();
  const aus = feed(d, packets);
  assert.equal(aus.length, 50);
  assert.deepEqual(aus.map((a) => a.keyframe).flatMap((k, i) => (k ? [i] : [])), [0, 25]);
  assert.deepEqual(types(aus[0]!), [7, 8, 6, 5], 'SPS, PPS, x264\'s SEI, IDR');
  assert.ok(d.stats.fuA > 0 && d.stats.stapA > 0 && d.stats.single > 0, JSON.stringify(d.stats));
  assert.deepEqual([d.stats.droppedAccessUnits, d.stats.fuErrors, d.stats.gaps, d.stats.malformed], [0, 0, 0, 0]);
  // 90 kHz timestamps 3600 apart (25 fps).
  for (let i = 1; i < aus.length; i++) assert.equal((aus[i]!.timestamp - aus[i - 1]!.timestamp) >>> 0, 3600);
  assert.deepEqual(aus.flatMap((a) => a.nalus).map((n) => n.toString('hex')), reference.map((n) => n.toString('hex')));
  assert.deepEqual(await decode(aus), { errors: '', frames: 50 });
});

test('real ffmpeg RTP, packetization-mode 0 (single NAL units only, several slices a picture) decodes clean', { timeout: 60_000 }, async () => {
  const args = [...X264, '-x264-params', 'slice-max-size=1100'];
  const [packets, reference] = await Promise.all([rtpPackets([...args, '-rtpflags', 'h264_mode0'], '&pkt_size=1200'), ffmpegAnnexB(args)]);
  const d = new H264Depacketizer();
  const aus = feed(d, packets);
  assert.equal(aus.length, 50);
  assert.deepEqual([d.stats.single, d.stats.fuA, d.stats.stapA], [packets.length, 0, 0]);
  assert.ok(aus[0]!.nalus.filter((n) => nalType(n) === 5).length > 1, 'the IDR is cut into slices');
  assert.deepEqual(aus.flatMap((a) => a.nalus).map((n) => n.toString('hex')), reference.map((n) => n.toString('hex')));
  assert.deepEqual(await decode(aus), { errors: '', frames: 50 });
});

test('real ffmpeg RTP with a lost fragment in frame 10: frames 10-24 dropped, resumes at the IDR of frame 25, decodes clean', { timeout: 60_000 }, async () => {
  const packets = await rtpPackets(X264, '&pkt_size=300');
  const timestamps = [...new Set(packets.map((p) => p.timestamp))];
  const frame10 = packets.filter((p) => p.timestamp === timestamps[10]);
  assert.ok(frame10.length >= 2, 'small packets: frame 10 is fragmented');
  const lossy = packets.filter((p) => p !== frame10[1]);
  const d = new H264Depacketizer();
  const aus: AccessUnit[] = [];
  const waiting: boolean[] = [];
  for (const p of lossy) {
    aus.push(...d.push(p));
    waiting.push(d.waitingForKeyframe);
  }
  assert.equal(aus.length, 35);
  assert.deepEqual(aus.map((a) => timestamps.indexOf(a.timestamp)), [...Array(10).keys(), ...Array.from({ length: 25 }, (_, i) => 25 + i)]);
  assert.deepEqual([d.stats.gaps, d.stats.droppedAccessUnits, d.stats.keyframeWaits], [1, 15, 1]);
  assert.ok(waiting.includes(true) && !waiting.at(-1));
  assert.deepEqual(await decode(aus), { errors: '', frames: 35 });
});

test('fuzz: real packets with random bytes flipped never throw', { timeout: 60_000 }, async () => {
  const packets = await rtpPackets(X264, '&pkt_size=400');
  const rnd = prng(42);
  const d = new H264Depacketizer();
  for (let round = 0; round < 20; round++) {
    for (const p of packets) {
      const payload = Buffer.from(p.payload);
      for (let k = Math.floor(rnd() * 3); k > 0; k--) payload[Math.floor(rnd() * payload.length)] = Math.floor(rnd() * 256);
      d.push({ ...p, sequenceNumber: (p.sequenceNumber + round * packets.length) & 0xffff, payload });
    }
  }
  assert.equal(d.stats.packets, 20 * packets.length);
});
