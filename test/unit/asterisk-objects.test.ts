import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countObjects, objectsSince, parsePjsipEndpoints } from '../../scripts/lib/asterisk-objects.js';

// `pjsip show endpoints` on Asterisk 22 (header, a static endpoint with a channel, a per-call one).
const CLI = `
 Endpoint:  <Endpoint/CID.....................................>  <State.....>  <Channels.>
    I/OAuth:  <AuthId/UserName...........................................................>
==========================================================================================

 Endpoint:  sip-as-rtmp-media                                    In use        1 of inf
    Channel: PJSIP/sip-as-rtmp-media-00000021/Stasis             Up            00:08:41
 Endpoint:  sip-as-rtmp-a1b2-acct/"Front desk" <100>             Not in use    0 of inf
`;

test('PJSIP endpoint names from the CLI: not the header, not channels, without the caller id', () => {
  assert.deepEqual(parsePjsipEndpoints(CLI), ['sip-as-rtmp-media', 'sip-as-rtmp-a1b2-acct']);
});

test('what a run left: new objects kind by kind, counted by a filter', () => {
  const before = { channels: ['c1'], bridges: ['c1'], endpoints: ['media'] };
  const now = { channels: ['c1', 'x-c2'], bridges: ['c1', 'x-b2'], endpoints: ['media', 'x-e'] };
  const left = objectsSince(before, now);
  assert.deepEqual(left, { channels: ['x-c2'], bridges: ['x-b2'], endpoints: ['x-e'] });
  assert.deepEqual(countObjects(now, (id) => id.startsWith('x-')), { channels: 1, bridges: 1, endpoints: 1 });
});
