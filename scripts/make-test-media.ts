/**
 * node dist/scripts/make-test-media.js DIR [SECONDS] — the "beep/flash" far-end media for A/V sync tests
 * (scripts/sandbox makes them once into $SANDBOX_CACHE/media for the sipp-video far end):
 *
 *   beep-flash.ulaw        8 kHz μ-law, raw (sipp rtp_stream): a 1 kHz beep every 2 s, silence otherwise
 *   beep-flash-h264.pcap   H.264 RTP (PT 99, packetization-mode 1) in a pcap (sipp play_pcap_video):
 *                          640x360, 25 fps, an IDR every 1 s with SPS/PPS in band; white frames exactly
 *                          when the beeps sound, black otherwise (a small moving test pattern in a corner
 *                          makes IDRs larger than one packet, so FU-A is exercised)
 *
 *   beep-flash-gop10s-h264.pcap  the same video signal at 352x288 with an IDR only every 10 s (the "stubborn" sipp
 *                          far end: keyframes as rare as a real phone's, and it ignores keyframe requests)
 *   beep-flash-352x288.mkv the video signal for a real softphone (baresip's avformat video source): H.264
 *                          352x288, 25 fps, video only, 600 s
 *   beep-flash-8k.wav      the audio for it (baresip's aufile source: avformat as an audio source crashes
 *                          baresip 1.0): the samples of beep-flash.ulaw, decoded, 16-bit 8 kHz mono, 600 s.
 *                          Both files start at t = 0; the phone starts both as the call starts
 *
 * Both start at t = 0: byte 0 of the audio and the first video packet are the same instant, so when sipp
 * starts both on the ACK, the far end is in sync. Onsets are on a frame and a 20 ms packet boundary
 * (0.48 s + 2k s), so neither side has to round.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { linearToUlaw, ulawToPcm } from '../plugin/media/encode/g711.js';
import { writeUdpPcap, type UdpDatagram } from './lib/pcap.js';

export const BEEP_FLASH = {
  /** A beep + flash every periodSec, the first at firstOnsetSec, each durationSec long. */
  periodSec: 2,
  firstOnsetSec: 0.48,
  durationSec: 0.12,
  toneHz: 1000,
  sampleRate: 8000,
  fps: 25,
  width: 640,
  height: 360,
  /** Frames between IDRs (1 s). */
  gop: 25,
  payloadType: 99,
  /** Default length of both files (sipp loops the audio; it plays the pcap once). */
  seconds: 60,
  /** RTP packets at most this large (sipp's PCAP_MAXPACKET is 1500 for the whole UDP datagram). */
  rtpMaxSize: 1200,
  /** pcap time of the first packet. Not 0: sipp's pacing treats a zero timestamp as "no previous packet". */
  pcapEpoch: 1_700_000_000,
} as const;

export const BEEP_FLASH_FILES = { audio: 'beep-flash.ulaw', video: 'beep-flash-h264.pcap' } as const;

/** The far-end media beyond the two above, made by makeFarEndMedia(). */
export const FAR_END_MEDIA = {
  /** The stubborn far end's video (sipp play_pcap_video): beep/flash, 352x288, 25 fps, IDR every 10 s. */
  stubbornPcap: 'beep-flash-gop10s-h264.pcap',
  stubbornWidth: 352,
  stubbornHeight: 288,
  /** Frames between IDRs (10 s, as baresip's own encoder). */
  stubbornGop: 250,
  /** The baresip-video softphone's sources (one file each: avformat reads the video, aufile the audio). */
  softphoneVideo: 'beep-flash-352x288.mkv',
  softphoneAudio: 'beep-flash-8k.wav',
  softphoneWidth: 352,
  softphoneHeight: 288,
  /** baresip ends the call when its audio file ends (aufile "end of file"); avformat loops the video. */
  softphoneSeconds: 600,
} as const;

/** Size and GOP of an encoded beep/flash video (the defaults are BEEP_FLASH's). */
export interface VideoShape {
  width: number;
  height: number;
  /** Frames between IDRs. */
  gop: number;
}

/** Onset times (s) of the beeps/flashes within `seconds`. */
export function beepFlashOnsets(seconds: number): number[] {
  const out: number[] = [];
  for (let t = BEEP_FLASH.firstOnsetSec; t < seconds - 1e-9; t += BEEP_FLASH.periodSec) out.push(Math.round(t * 1000) / 1000);
  return out;
}

/** Whether video frame `n` is a white one. */
export function isFlashFrame(n: number): boolean {
  const { fps, periodSec, firstOnsetSec, durationSec } = BEEP_FLASH;
  const inPeriod = n % Math.round(periodSec * fps);
  const first = Math.round(firstOnsetSec * fps);
  return inPeriod >= first && inPeriod < first + Math.round(durationSec * fps);
}

/** The audio: μ-law, 8 kHz, `seconds` long; the beeps start at zero phase on their exact sample. */
export function makeBeepUlaw(seconds: number = BEEP_FLASH.seconds): Buffer {
  const { sampleRate, periodSec, firstOnsetSec, durationSec, toneHz } = BEEP_FLASH;
  const n = Math.round(seconds * sampleRate);
  const period = Math.round(periodSec * sampleRate);
  const first = Math.round(firstOnsetSec * sampleRate);
  const len = Math.round(durationSec * sampleRate);
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    const k = (i - first) % period;
    const inBeep = i >= first && k < len;
    // -6 dBFS: loud, and clear of clipping in any resampler on the way.
    out[i] = linearToUlaw(inBeep ? Math.round(16384 * Math.sin((2 * Math.PI * toneHz * k) / sampleRate)) : 0);
  }
  return out;
}

/** ffmpeg's lavfi graph: black, a test pattern in a corner, white over everything on flash frames. */
function videoGraph(seconds: number, width: number = BEEP_FLASH.width, height: number = BEEP_FLASH.height): string {
  const { fps, periodSec, firstOnsetSec, durationSec } = BEEP_FLASH;
  const period = Math.round(periodSec * fps);
  const first = Math.round(firstOnsetSec * fps);
  const last = first + Math.round(durationSec * fps) - 1;
  // Frame numbers (n), not t: exact integers, so no frame lands on the wrong side of a boundary.
  return `color=c=black:s=${width}x${height}:r=${fps}:d=${seconds}[bg];testsrc=s=160x90:r=${fps}:d=${seconds}[p];` +
    `[bg][p]overlay=16:16:shortest=1,format=yuv420p,` +
    `drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='between(mod(n,${period}),${first},${last})'[out0]`;
}

export interface RtpCapture {
  packets: Buffer[];
  /** pcap time of each packet (s), from its RTP timestamp. */
  times: number[];
}

/**
 * ffmpeg encodes the video and sends it as RTP (its own H.264 packetizer: single NAL units, FU-A for
 * NALs over the packet size) to a local UDP socket; packets are checked for loss and timed from their
 * RTP timestamps (90 kHz), so the pcap plays at exactly 25 fps whatever the capture's arrival jitter.
 */
export async function captureH264Rtp(seconds: number, shape: Partial<VideoShape> = {}): Promise<RtpCapture> {
  const { fps, payloadType, rtpMaxSize, pcapEpoch } = BEEP_FLASH;
  const { width = BEEP_FLASH.width, height = BEEP_FLASH.height, gop = BEEP_FLASH.gop } = shape;
  const rtp = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  const rtcp = dgram.createSocket('udp4');
  rtp.bind(0, '127.0.0.1');
  rtcp.bind(0, '127.0.0.1');
  await Promise.all([once(rtp, 'listening'), once(rtcp, 'listening')]);
  const packets: Buffer[] = [];
  rtp.on('message', (m) => packets.push(m));
  rtcp.on('message', () => {});
  try {
    const args = ['-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', videoGraph(seconds, width, height),
      '-frames:v', String(Math.round(seconds * fps)), '-an',
      '-c:v', 'libx264', '-profile:v', 'baseline', '-level:v', '3.0', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
      // IDR exactly every `gop` frames (1 s by default; no scene-cut IDRs on the flashes), no B-frames (RTP timestamps rise),
      // SPS/PPS before every IDR so a receiver can join at any keyframe.
      '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', '0',
      '-x264-params', 'repeat-headers=1:scenecut=0',
      '-f', 'rtp', '-payload_type', String(payloadType),
      `rtp://127.0.0.1:${rtp.address().port}?rtcpport=${rtcp.address().port}&pkt_size=${rtpMaxSize}`];
    const ff = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    ff.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const [code] = (await once(ff, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`ffmpeg exited with ${code}: ${err.trim()}`);
    await new Promise((r) => setTimeout(r, 200)); // the last datagrams
  } finally {
    rtp.close();
    rtcp.close();
  }
  if (packets.length === 0) throw new Error('ffmpeg sent no RTP');
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!;
    // No CSRCs or extension: the payload starts at byte 12 (splitStapA relies on it).
    if (p.length < 13 || p[0] !== 0x80 || (p[1]! & 0x7f) !== payloadType) throw new Error(`packet ${i} is not plain H.264 RTP with PT ${payloadType}`);
    if (i > 0 && p.readUInt16BE(2) !== ((packets[i - 1]!.readUInt16BE(2) + 1) & 0xffff)) throw new Error(`RTP packet lost before #${i}: capture again`);
  }
  const out = splitStapA(packets);
  const ts0 = out[0]!.readUInt32BE(4);
  const times = out.map((p) => pcapEpoch + ((p.readUInt32BE(4) - ts0) >>> 0) / 90000);
  return { packets: out, times };
}

/**
 * ffmpeg aggregates the small NALs before an IDR (SPS, PPS, SEI) into one STAP-A. Most SIP phones send
 * them as single NAL unit packets, and that is the plainest case for a receiver: split them, keep the
 * marker on the last, renumber the sequence.
 */
function splitStapA(packets: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const p of packets) {
    if ((p[12]! & 0x1f) !== 24) {
      out.push(Buffer.from(p));
      continue;
    }
    const nals: Buffer[] = [];
    for (let o = 13; o + 2 <= p.length;) {
      const size = p.readUInt16BE(o);
      if (size === 0 || o + 2 + size > p.length) throw new Error('malformed STAP-A from ffmpeg');
      nals.push(p.subarray(o + 2, o + 2 + size));
      o += 2 + size;
    }
    const marker = p[1]! & 0x80;
    nals.forEach((nal, i) => {
      const q = Buffer.concat([p.subarray(0, 12), nal]);
      q[1] = (q[1]! & 0x7f) | (i === nals.length - 1 ? marker : 0);
      out.push(q);
    });
  }
  const seq0 = out[0]!.readUInt16BE(2);
  out.forEach((q, i) => q.writeUInt16BE((seq0 + i) & 0xffff, 2));
  return out;
}

/** The video pcap: ffmpeg's RTP, framed as UDP from 192.0.2.1 to 192.0.2.2 (sipp rewrites both). */
export async function makeBeepFlashPcap(seconds: number = BEEP_FLASH.seconds, shape: Partial<VideoShape> = {}): Promise<Buffer> {
  const { packets, times } = await captureH264Rtp(seconds, shape);
  const datagrams: UdpDatagram[] = packets.map((payload, i) => ({
    time: times[i]!, src: '192.0.2.1', dst: '192.0.2.2', srcPort: 16602, dstPort: 20002, payload,
  }));
  return writeUdpPcap(datagrams);
}

function writeAtomically(file: string, data: Buffer): void {
  // A half-written file would look "present" to scripts/sandbox forever.
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

export async function makeTestMedia(dir: string, seconds: number = BEEP_FLASH.seconds): Promise<{ audio: string; video: string }> {
  // sipp loops the audio: a whole number of periods keeps the beeps every 2 s across the loop.
  if (!Number.isInteger(seconds / BEEP_FLASH.periodSec)) throw new Error(`seconds must be a multiple of ${BEEP_FLASH.periodSec}`);
  mkdirSync(dir, { recursive: true });
  const audio = join(dir, BEEP_FLASH_FILES.audio);
  const video = join(dir, BEEP_FLASH_FILES.video);
  writeAtomically(video, await makeBeepFlashPcap(seconds));
  writeAtomically(audio, makeBeepUlaw(seconds));
  return { audio, video };
}

/** Runs ffmpeg; rejects with its error output. */
async function ffmpeg(args: string[]): Promise<void> {
  const ff = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  ff.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(ff, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`ffmpeg exited with ${code}: ${err.trim()}`);
}

/**
 * The beep/flash video as a file a softphone plays (baresip's avformat video source): H.264, 25 fps, an IDR
 * every second (so a decoder can start anywhere; the phone re-encodes it anyway), video only, in Matroska.
 * One 60 s stretch is encoded and repeated without re-encoding (the signal's period divides it): 600 s
 * take under 2 s to make.
 */
export async function makeBeepFlashVideoFile(file: string, seconds: number = FAR_END_MEDIA.softphoneSeconds,
  width: number = FAR_END_MEDIA.softphoneWidth, height: number = FAR_END_MEDIA.softphoneHeight): Promise<void> {
  const { fps, gop } = BEEP_FLASH;
  const piece = BEEP_FLASH.seconds;
  if (!Number.isInteger(seconds / piece)) throw new Error(`seconds must be a multiple of ${piece}`);
  const tmp = `${file}.tmp-${process.pid}.mkv`;
  const one = `${file}.piece-${process.pid}.mkv`;
  try {
    await ffmpeg(['-f', 'lavfi', '-i', videoGraph(piece, width, height), '-frames:v', String(Math.round(piece * fps)),
      '-c:v', 'libx264', '-profile:v', 'baseline', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
      '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', '0', '-an', '-y', one]);
    await ffmpeg(['-stream_loop', String(seconds / piece - 1), '-i', one, '-c', 'copy', '-y', tmp]);
    renameSync(tmp, file);
  } finally {
    rmSync(one, { force: true });
    rmSync(tmp, { force: true });
  }
}

/** The beep audio as a WAV (16-bit PCM, 8 kHz, mono): makeBeepUlaw's samples, decoded, so every far end sends the same. */
export function makeBeepWav(seconds: number = FAR_END_MEDIA.softphoneSeconds): Buffer {
  const pcm = ulawToPcm(makeBeepUlaw(seconds));
  const rate = BEEP_FLASH.sampleRate;
  const data = pcm.length * 2;
  const out = Buffer.alloc(44 + data);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + data, 4);
  out.write('WAVEfmt ', 8, 'ascii');
  out.writeUInt32LE(16, 16); // fmt chunk size
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(1, 22); // mono
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 2, 28); // byte rate
  out.writeUInt16LE(2, 32); // block align
  out.writeUInt16LE(16, 34); // bits per sample
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(data, 40);
  for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i]!, 44 + 2 * i);
  return out;
}

/**
 * The far ends' media beyond makeTestMedia's (FAR_END_MEDIA): the stubborn far end's 10 s GOP pcap and the
 * video softphone's two files. With `onlyMissing`, files already there are kept.
 */
export async function makeFarEndMedia(dir: string, onlyMissing = false): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const made: string[] = [];
  const pcap = join(dir, FAR_END_MEDIA.stubbornPcap);
  if (!(onlyMissing && existsSync(pcap))) {
    writeAtomically(pcap, await makeBeepFlashPcap(BEEP_FLASH.seconds, {
      width: FAR_END_MEDIA.stubbornWidth, height: FAR_END_MEDIA.stubbornHeight, gop: FAR_END_MEDIA.stubbornGop,
    }));
    made.push(pcap);
  }
  const video = join(dir, FAR_END_MEDIA.softphoneVideo);
  if (!(onlyMissing && existsSync(video))) {
    await makeBeepFlashVideoFile(video);
    made.push(video);
  }
  const wav = join(dir, FAR_END_MEDIA.softphoneAudio);
  if (!(onlyMissing && existsSync(wav))) {
    writeAtomically(wav, makeBeepWav());
    made.push(wav);
  }
  return made;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  // --missing: make only the files that are not there yet (scripts/sandbox), at the default lengths.
  const onlyMissing = process.argv[2] === '--missing';
  const [dir, secs] = process.argv.slice(onlyMissing ? 3 : 2);
  if (!dir) {
    console.error('usage: node dist/scripts/make-test-media.js [--missing] DIR [SECONDS]');
    process.exit(2);
  }
  const seconds = secs ? Number(secs) : BEEP_FLASH.seconds;
  if (!(seconds > 0)) {
    console.error(`bad SECONDS ${secs}`);
    process.exit(2);
  }
  const base = [join(dir, BEEP_FLASH_FILES.audio), join(dir, BEEP_FLASH_FILES.video)];
  if (!onlyMissing || !base.every((f) => existsSync(f))) {
    const out = await makeTestMedia(dir, seconds);
    console.log(`wrote ${out.audio} and ${out.video} (${seconds} s)`);
  }
  for (const f of await makeFarEndMedia(dir, onlyMissing)) console.log(`wrote ${f}`);
}
