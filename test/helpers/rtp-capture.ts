/** Real RTP/RTCP for parser tests: ffmpeg sends to two local UDP sockets; returns what arrived. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';

/** `ffmpegArgs`: input and codec options; `query`: extra rtp:// URL options (e.g. "&pkt_size=172"). */
export async function captureFfmpegRtp(ffmpegArgs: string[], query = ''): Promise<{ media: Buffer[]; control: Buffer[] }> {
  const rtp = dgram.createSocket('udp4');
  const rtcp = dgram.createSocket('udp4');
  rtp.bind(0, '127.0.0.1');
  rtcp.bind(0, '127.0.0.1');
  await Promise.all([once(rtp, 'listening'), once(rtcp, 'listening')]);
  const media: Buffer[] = [];
  const control: Buffer[] = [];
  rtp.on('message', (m) => media.push(m));
  rtcp.on('message', (m) => control.push(m));
  try {
    const ff = spawn('ffmpeg', ['-nostdin', '-loglevel', 'error', ...ffmpegArgs, '-f', 'rtp',
      `rtp://127.0.0.1:${rtp.address().port}?rtcpport=${rtcp.address().port}${query}`], { stdio: 'ignore' });
    const [code] = await once(ff, 'exit');
    assert.equal(code, 0);
    await new Promise((r) => setTimeout(r, 100)); // the last datagrams
  } finally {
    rtp.close();
    rtcp.close();
  }
  return { media, control };
}
