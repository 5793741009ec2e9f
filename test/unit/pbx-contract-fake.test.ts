/**
 * The PBX contract (test/helpers/pbx-contract.ts) against FakePbx: the fake the call core's unit tests
 * use behaves as the contract says Asterisk does. Its far ends are scripted by target user:
 * answer (rings, then answers), busy (486), hangup (answers, then hangs up), dtmf (answers, then sends 1).
 */
import { pbxContract } from '../helpers/pbx-contract.js';
import { FakePbx } from '../helpers/fake-pbx.js';

pbxContract('FakePbx', async () => {
  const pbx = new FakePbx();
  pbx.onDial = (ch) => {
    const user = /^sips?:([^@]+)@/.exec(ch.target)?.[1];
    // A moment after the answer, as sipp's far ends do (seconds there).
    const later = (fn: () => void) => setTimeout(() => pbx.channel(ch.id) && fn(), 50);
    switch (user) {
      case 'answer':
        pbx.far.ring(ch.id);
        pbx.far.answer(ch.id);
        break;
      case 'busy':
        pbx.far.reject(ch.id, 486);
        break;
      case 'hangup':
        pbx.far.answer(ch.id);
        later(() => pbx.far.hangup(ch.id));
        break;
      case 'dtmf':
        pbx.far.answer(ch.id);
        later(() => pbx.far.dtmf(ch.id, '1', 120));
        break;
    }
  };
  return {
    pbx,
    uas: pbx.uas,
    far: { answers: 'sip:answer@127.0.0.1:5070', busy: 'sip:busy@127.0.0.1:5071', hangsUp: 'sip:hangup@127.0.0.1:5073', sendsDtmf: 'sip:dtmf@127.0.0.1:5076' },
    timeoutMs: 2000,
    close: async () => {
      pbx.close();
      // Everything the contract made, it released.
      if (pbx.objects().length) throw new Error(`FakePbx still holds ${pbx.objects().join(', ')}`);
    },
  };
});
