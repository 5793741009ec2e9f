/**
 * The PBX contract (test/helpers/pbx-contract.ts) against the real AsteriskPbx on the sandbox: the sipp
 * far ends (answer, busy, hangup, dtmf) and the app's own media-leg UAS on a free port. Its own ARI app
 * name, so the dialplan's inbound calls (Stasis(sip-as-rtmp)) never land here.
 */
import { AriClient } from '../../adapters/ari/client.js';
import { AsteriskPbx } from '../../adapters/asterisk/pbx.js';
import { LoopbackSipUas } from '../../adapters/sip/uas.js';
import { createLogger } from '../../plugin/lib/log.js';
import { pbxContract } from '../helpers/pbx-contract.js';
import { sandboxEnv } from '../helpers/sandbox.js';

pbxContract('AsteriskPbx on the sandbox', async () => {
  const env = sandboxEnv();
  const ari = new AriClient({ url: env.ARI_URL!, user: env.ARI_USER!, password: env.ARI_PASSWORD!, app: 'sip-as-rtmp-contract' });
  const socket = ari.eventSocket();
  const pbx = new AsteriskPbx(ari, socket, createLogger({ level: 'silent' }));
  const uas = new LoopbackSipUas({ host: '127.0.0.1', port: 0 });
  await uas.listen();
  await socket.connect();
  const far = (user: string, port: string | undefined) => `sip:${user}@127.0.0.1:${port}`;
  return {
    pbx,
    uas,
    far: {
      answers: far('answer', env.SIPP_ANSWER_PORT),
      busy: far('busy', env.SIPP_BUSY_PORT),
      hangsUp: far('hangup', env.SIPP_HANGUP_PORT),
      sendsDtmf: far('dtmf', env.SIPP_DTMF_PORT),
    },
    timeoutMs: 10_000,
    close: async () => {
      socket.close();
      await uas.close();
    },
  };
});
