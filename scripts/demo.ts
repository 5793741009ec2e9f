/**
 * npm run demo — the main job on the sandbox.
 * Today (foundation): brings the sandbox up (npm script), places one call through ARI to the sandbox
 * softphone (baresip, which answers and sends a 1 kHz tone), and prints the call's state as it changes.
 * Ctrl-C hangs up and exits cleanly. The relay to RTMP comes with the call pipeline.
 */
import { readFileSync } from 'node:fs';
import { AriClient } from '../adapters/ari/client.js';
import type { AriEvent } from '../adapters/ari/types.js';

const SANDBOX_RUN = process.env.SANDBOX_RUN ?? '/var/tmp/sip-as-rtmp-sandbox';
const env = Object.fromEntries(
  readFileSync(`${SANDBOX_RUN}/sandbox.env`, 'utf8')
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
) as Record<string, string>;

const ari = new AriClient({ url: env.ARI_URL!, user: env.ARI_USER!, password: env.ARI_PASSWORD!, app: 'sip-as-rtmp-demo' });
const events = ari.eventSocket();
const channelId = `demo-${Date.now().toString(36)}`;
const t0 = Date.now();
const say = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(2)} s] ${s}`);

let ending = false;
async function end(code: number): Promise<never> {
  if (!ending) {
    ending = true;
    await ari.channels.hangup(channelId).catch(() => {});
    events.close();
  }
  process.exit(code);
}

events.on('event', (e: AriEvent) => {
  if (!('channel' in e) || e.channel?.id !== channelId) return;
  switch (e.type) {
    case 'ChannelStateChange':
      say(`call state: ${e.channel.state}`);
      break;
    case 'StasisStart':
      say(`call answered (${e.channel.state}); the softphone is sending a 1 kHz tone. Ctrl-C hangs up.`);
      break;
    case 'ChannelDestroyed':
      say(`call ended: ${e.cause_txt} (Q.850 ${e.cause})`);
      void end(e.cause === 16 ? 0 : 1);
      break;
    default:
      break;
  }
});
events.on('close', ({ retryInMs }) => retryInMs !== undefined && say(`ARI socket lost; reconnecting in ${retryInMs} ms`));
process.on('SIGINT', () => {
  say('Ctrl-C: hanging up');
  void end(0);
});

await events.connect();
say(`Asterisk ${(await ari.asterisk.info()).system?.version}: calling the sandbox softphone (PJSIP/softphone)`);
await ari.channels.originate({ endpoint: 'PJSIP/softphone', channelId, callerId: 'sip-as-rtmp demo <1000>', timeout: 20 });
say('INVITE sent');
