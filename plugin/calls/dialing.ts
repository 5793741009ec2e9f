/**
 * Placing an outbound call: the per-call SIP account (and its registration, when asked for), then the
 * INVITE to the callee. Every step registers its own release on the call, so any ending undoes it.
 */
import { quotedDisplayName } from '../sip/message.js';
import type { Call } from './call.js';
import { CallFailure, type CallContext } from './context.js';

export async function placeCall(ctx: CallContext, call: Call): Promise<void> {
  const { pbx } = ctx;
  const r = call.req;
  if (r.sipLogin) await createAccount(ctx, call);
  if (call.ending) return;

  const host = r.sipOutboundProxy ? r.sipDomain : `${r.sipDomain}${r.sipPort && !/:\d+$/.test(r.sipDomain) ? `:${r.sipPort}` : ''}`;
  ctx.watchChannel(call.channelId, call, false);
  call.resources.add('call channel', () => pbx.hangup(call.channelId));
  await pbx.dial({
    channelId: call.channelId,
    // Without a SIP login of its own, the call goes out through the PBX's shared account.
    ...(r.sipLogin ? { accountId: call.accountId } : {}),
    target: `sip:${r.callee}@${host}`,
    video: r.hasVideo,
    timeoutSec: ctx.config.calls.answerTimeoutSec,
    ...(r.visibleName ? { callerId: `${quotedDisplayName(r.visibleName)} <${r.sipLogin || 'sip-as-rtmp'}>` } : {}),
  });
  call.info = 'INVITE sent';
  call.note('INVITE');
}

/** The account from the request's SIP fields; with sipRegisterRequired, registered before dialling. */
async function createAccount(ctx: CallContext, call: Call): Promise<void> {
  const { pbx } = ctx;
  const r = call.req;
  call.resources.add('sip account', () => pbx.deleteAccount(call.accountId));
  const proxy = r.sipOutboundProxy ? `sip:${r.sipOutboundProxy}${r.sipPort ? `:${r.sipPort}` : ''}` : undefined;
  const domain = r.sipDomain.replace(/:\d+$/, '');
  await pbx.createAccount(call.accountId, {
    authUser: r.sipAuthenticationName || r.sipLogin,
    password: r.sipPassword,
    fromUser: r.sipLogin,
    fromDomain: domain,
    ...(proxy ? { outboundProxy: proxy } : {}),
    ...(r.sipRegisterRequired
      ? { registration: { serverUri: `sip:${r.sipDomain}${!proxy && r.sipPort ? `:${r.sipPort}` : ''}`, clientUri: `sip:${r.sipLogin}@${domain}`, expirationSec: 300 } }
      : {}),
  });
  call.note('ACCOUNT_CREATED');
  if (!r.sipRegisterRequired) return;
  if (!pbx.waitRegistered) throw new CallFailure({ status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: null, info: 'SIP registration is not supported by this PBX adapter' });
  call.info = 'Registering';
  try {
    await pbx.waitRegistered(call.accountId, 30_000);
  } catch (err) {
    ctx.hook('RegistrationStatusEvent', { ...registration(call), status: 'AUTHENTICATION_FAIL', info: (err as Error).message });
    throw new CallFailure({ status: 'FAILED', reason: 'AUTHENTICATION_FAIL', sipStatus: null, info: `Registration failed: ${(err as Error).message}` });
  }
  call.note('REGISTERED');
  ctx.hook('RegistrationStatusEvent', { ...registration(call), status: 'REGISTERED' });
  // Deleting the account at the end of the call unregisters it.
  call.resources.add('unregistered hook', () => ctx.hook('RegistrationStatusEvent', { ...registration(call), status: 'UNREGISTERED' }));
}

/** What a RegistrationStatusEvent says about the account (never its password). */
function registration(call: Call): Record<string, unknown> {
  const r = call.req;
  return { callId: r.callId, sipLogin: r.sipLogin, sipDomain: r.sipDomain, appKey: r.appKey };
}
