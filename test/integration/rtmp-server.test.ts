/** The sandbox RTMP server (nginx-rtmp) and its RTMPS front accept a publish and play it back. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { probeStreams, publishTestPattern } from '../helpers/media.js';
import { sandboxEnv, uniqueId } from '../helpers/sandbox.js';

for (const scheme of ['RTMP', 'RTMPS'] as const) {
  test(`${scheme}: a published stream plays back with H.264 and AAC`, { timeout: 30_000 }, async () => {
    const env = sandboxEnv();
    const name = uniqueId('probe');
    const base = scheme === 'RTMP' ? env.RTMP_URL! : env.RTMPS_URL!;
    const pub = publishTestPattern(`${base}/${name}`, 6);
    let stderr = '';
    pub.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      // Played back over plain RTMP: what nginx-rtmp received, through whichever front.
      const streams = await probeStreams(`${env.RTMP_URL}/${name}`);
      const kinds = streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort();
      assert.deepEqual(kinds, ['audio:aac', 'video:h264'], stderr);
    } finally {
      pub.kill('SIGTERM');
      await once(pub, 'exit');
    }
  });
}
