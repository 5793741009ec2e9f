/**
 * scripts/lib/pcap.ts (the pcap writer/reader) and what scripts/make-test-media.ts builds with it: the
 * beep/flash μ-law file and the H.264 RTP pcap sipp's play_pcap_video replays (checked by parsing it
 * back, depacketizing it and decoding it with ffmpeg).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { ulawToPcm } from '../../plugin/media/encode/g711.js';
import { LINKTYPE_ETHERNET, parseUdpFrame, readPcap, udpFrame, writePcap, writeUdpPcap } from '../../scripts/lib/pcap.js';
import { BEEP_FLASH, beepFlashOnsets, isFlashFrame, makeBeepFlashPcap, makeBeepUlaw } from '../../scripts/make-test-media.js';

describe('pcap writer/reader', () => {
  test('global header: little-endian magic, v2.4, snaplen 65535, Ethernet', () => {
    const f = writePcap([]);
    assert.equal(f.length, 24);
    assert.equal(f.subarray(0, 4).toString('hex'), 'd4c3b2a1');
    assert.deepEqual([f.readUInt16LE(4), f.readUInt16LE(6), f.readUInt32LE(16), f.readUInt32LE(20)], [2, 4, 65535, 1]);
  });

  test('an IPv4 header checksum matches a known vector', () => {
    // The textbook header 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7 (total length 0x73 = 115).
    const f = udpFrame({ src: '192.168.0.1', dst: '192.168.0.199', srcPort: 1, dstPort: 2, payload: Buffer.alloc(115 - 28) });
    assert.equal(f.subarray(14, 34).toString('hex'), '450000730000400040 11b861c0a80001c0a800c7'.replace(/ /g, ''));
    assert.equal(f.readUInt16BE(12), 0x0800);
  });

  test('records round-trip: times to the microsecond, frames with valid checksums', () => {
    const payloads = [Buffer.from('hello'), Buffer.alloc(1200, 7), Buffer.from([0x80, 99, 0, 1])];
    const times = [1_700_000_000, 1_700_000_000.04, 1_700_000_000.9999996];
    const file = writeUdpPcap(payloads.map((payload, i) => ({ time: times[i]!, src: '192.0.2.1', dst: '192.0.2.2', srcPort: 16602, dstPort: 20002, payload })));
    const { linkType, records } = readPcap(file);
    assert.equal(linkType, LINKTYPE_ETHERNET);
    assert.equal(records.length, 3);
    assert.deepEqual(records.map((r) => [r.sec - 1_700_000_000, r.usec]), [[0, 0], [0, 40000], [1, 0]], 'rounding carries into seconds');
    records.forEach((r, i) => {
      const d = parseUdpFrame(r.data);
      assert.deepEqual([d.src, d.dst, d.srcPort, d.dstPort], ['192.0.2.1', '192.0.2.2', 16602, 20002]);
      assert.deepEqual(d.payload, payloads[i]);
      assert.equal(r.data.length, 14 + 20 + 8 + payloads[i]!.length);
    });
  });

  test('damage is detected: UDP checksum, truncation, bad magic', () => {
    const f = udpFrame({ src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5, dstPort: 6, payload: Buffer.from('payload!') });
    const bad = Buffer.from(f);
    bad[bad.length - 1]! ^= 1;
    assert.throws(() => parseUdpFrame(bad), /UDP checksum/);
    const ipBad = Buffer.from(f);
    ipBad[14 + 8] = 1; // TTL
    assert.throws(() => parseUdpFrame(ipBad), /IPv4 header checksum/);
    const file = writePcap([{ time: 1, data: f }]);
    assert.throws(() => readPcap(file.subarray(0, file.length - 1)), /truncated/);
    const magic = Buffer.from(file);
    magic[0] = 0;
    assert.throws(() => readPcap(magic), /magic/);
  });
});

interface Rtp {
  time: number;
  marker: boolean;
  pt: number;
  seq: number;
  ts: number;
  ssrc: number;
  payload: Buffer;
  udpLength: number;
}

function parseCapture(file: Buffer): Rtp[] {
  return readPcap(file).records.map((r) => {
    const { payload: p } = parseUdpFrame(r.data);
    assert.equal(p[0]! >> 6, 2, 'RTP v2');
    return { time: r.time, marker: (p[1]! & 0x80) !== 0, pt: p[1]! & 0x7f, seq: p.readUInt16BE(2), ts: p.readUInt32BE(4), ssrc: p.readUInt32BE(8), payload: p.subarray(12), udpLength: p.length + 8 };
  });
}

/** RFC 6184 packetization mode 1 (single NAL + FU-A; STAP-A refused: the pcap must not have any) to Annex B. */
function depacketize(packets: Rtp[]): { annexB: Buffer; nalTypesPerFrame: number[][]; fuA: number } {
  const out: Buffer[] = [];
  const perFrame: number[][] = [];
  let fuA = 0;
  let lastTs = -1;
  let fu: Buffer[] = [];
  for (const p of packets) {
    if (p.ts !== lastTs) perFrame.push([]);
    lastTs = p.ts;
    const type = p.payload[0]! & 0x1f;
    const start = Buffer.from([0, 0, 0, 1]);
    if (type >= 1 && type <= 23) {
      out.push(start, p.payload);
      perFrame.at(-1)!.push(type);
    } else if (type === 28) {
      fuA++;
      const fh = p.payload[1]!;
      if (fh & 0x80) fu = [Buffer.from([(p.payload[0]! & 0xe0) | (fh & 0x1f)])];
      fu.push(p.payload.subarray(2));
      if (fh & 0x40) {
        out.push(start, Buffer.concat(fu));
        perFrame.at(-1)!.push(fh & 0x1f);
      }
    } else {
      assert.fail(`NAL packet type ${type} in the pcap`);
    }
  }
  return { annexB: Buffer.concat(out), nalTypesPerFrame: perFrame, fuA };
}

/** Mean luma of each decoded frame (ffmpeg: H.264 Annex B on stdin, 32x18 gray raw frames on stdout). */
async function decodeLuma(annexB: Buffer): Promise<number[]> {
  const ff = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', '-f', 'h264', '-i', 'pipe:0', '-vf', 'scale=32:18,format=gray', '-fps_mode', 'passthrough', '-f', 'rawvideo', 'pipe:1']);
  const chunks: Buffer[] = [];
  let err = '';
  ff.stdout.on('data', (d: Buffer) => chunks.push(d));
  ff.stderr.on('data', (d: Buffer) => (err += d.toString()));
  ff.stdin.end(annexB);
  const [code] = (await once(ff, 'exit')) as [number | null];
  assert.equal(code, 0, err);
  assert.equal(err, '', 'no decode errors');
  const raw = Buffer.concat(chunks);
  const size = 32 * 18;
  const lumas: number[] = [];
  for (let o = 0; o + size <= raw.length; o += size) lumas.push(raw.subarray(o, o + size).reduce((a, b) => a + b, 0) / size);
  return lumas;
}

describe('beep/flash test media', () => {
  const seconds = 4;

  test('audio: 8 kHz μ-law, a 1 kHz beep exactly at 0.48 s + 2k s for 120 ms, silence otherwise', () => {
    const ulaw = makeBeepUlaw(seconds);
    assert.equal(ulaw.length, seconds * 8000);
    const pcm = ulawToPcm(ulaw);
    const loud = (from: number, to: number) => pcm.subarray(from, to).reduce((m, s) => Math.max(m, Math.abs(s)), 0);
    assert.deepEqual(beepFlashOnsets(seconds), [0.48, 2.48]);
    for (const t of beepFlashOnsets(seconds)) {
      const i = Math.round(t * 8000);
      assert.equal(loud(i - 3800, i), 0, `silent before ${t}`);
      assert.ok(loud(i, i + 960) > 15000, `beep at ${t}`);
      assert.equal(loud(i + 960, i + 960 + 3000), 0, `silent after ${t}`);
      // Zero phase at the onset, 8 samples a cycle: sample 2 is the crest.
      assert.ok(Math.abs(pcm[i]!) < 100 && pcm[i + 2]! > 15000);
    }
  });

  test('video pcap: H.264 RTP PT 99, mode 1, IDR + SPS/PPS every 25 frames, 25 fps timing, white on the beeps', async () => {
    const packets = parseCapture(await makeBeepFlashPcap(seconds));
    const frames = seconds * BEEP_FLASH.fps;
    // One stream, contiguous, one destination port (sipp maps it to the answered video port).
    assert.ok(packets.every((p) => p.pt === 99 && p.ssrc === packets[0]!.ssrc));
    packets.forEach((p, i) => i === 0 || assert.equal(p.seq, (packets[i - 1]!.seq + 1) & 0xffff));
    assert.ok(packets.every((p) => p.udpLength <= 1500), 'sipp takes UDP datagrams up to 1500 bytes');
    // pcap time = first time + RTP time: 40 ms a frame, the first at a non-zero epoch (sipp pacing).
    assert.equal(packets[0]!.time, BEEP_FLASH.pcapEpoch);
    for (const p of packets) {
      const rtpSec = ((p.ts - packets[0]!.ts) >>> 0) / 90000;
      assert.ok(Math.abs(p.time - BEEP_FLASH.pcapEpoch - rtpSec) < 1e-6);
    }
    const tss = [...new Set(packets.map((p) => p.ts))];
    assert.equal(tss.length, frames);
    tss.forEach((ts, n) => assert.equal((ts - tss[0]!) >>> 0, n * 3600));
    // The marker ends each frame, and only there.
    packets.forEach((p, i) => assert.equal(p.marker, packets[i + 1]?.ts !== p.ts, `marker on packet ${i}`));

    const { annexB, nalTypesPerFrame, fuA } = depacketize(packets);
    assert.ok(fuA > 0, 'IDRs are larger than one packet: FU-A');
    nalTypesPerFrame.forEach((types, n) => {
      if (n % BEEP_FLASH.gop === 0) {
        const idr = types.indexOf(5);
        assert.ok(idr > 0 && types.indexOf(7) < types.indexOf(8) && types.indexOf(8) < idr && types.indexOf(7) >= 0, `frame ${n}: SPS, PPS, IDR (${types})`);
      } else {
        assert.deepEqual(types, [1], `frame ${n}: one non-IDR slice`);
      }
    });

    const lumas = await decodeLuma(annexB);
    assert.equal(lumas.length, frames);
    lumas.forEach((y, n) => {
      if (isFlashFrame(n)) assert.ok(y > 200, `frame ${n} white: ${y}`);
      else assert.ok(y < 60, `frame ${n} dark: ${y}`);
    });
    assert.deepEqual(lumas.flatMap((_, n) => (isFlashFrame(n) ? [n] : [])), [12, 13, 14, 62, 63, 64]);
  });
});
