import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answeredOutcome, unansweredOutcome } from '../../plugin/calls/causes.js';

test('busy: Q.850 17 or SIP 486/600', () => {
  assert.equal(unansweredOutcome(17, 'User busy', 486).status, 'BUSY');
  assert.equal(unansweredOutcome(21, 'Call Rejected', 600).status, 'BUSY');
  assert.equal(unansweredOutcome(17, 'User busy').sipStatus, 486);
});

test('failures carry the SIP code, a WCS reason and a readable info', () => {
  const forbidden = unansweredOutcome(21, 'Call Rejected', 403);
  assert.deepEqual([forbidden.status, forbidden.reason, forbidden.sipStatus], ['FAILED', 'FAILED_BY_SESSION_CREATION', 403]);
  assert.match(forbidden.info, /SIP 403 Forbidden .*password/);
  assert.equal(unansweredOutcome(19, 'No answer').reason, 'FAILED_BY_REQUEST_TIMEOUT');
  assert.equal(unansweredOutcome(16, 'Normal Clearing', 408).reason, 'FAILED_BY_REQUEST_TIMEOUT');
  assert.equal(unansweredOutcome(88, 'Incompatible destination', 488).reason, 'NO_COMMON_CODECS');
  assert.equal(unansweredOutcome(0, 'Unknown').sipStatus, null);
});

test('answered calls FINISH normally whoever hangs up', () => {
  assert.equal(answeredOutcome(true, 16, 'Normal Clearing').info, 'Terminated');
  assert.match(answeredOutcome(false, 16, 'Normal Clearing').info, /callee/);
  assert.equal(answeredOutcome(false, 0, 'Unknown').status, 'FINISH');
});
