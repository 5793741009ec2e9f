/**
 * When something under the calls fails without telling us: the PBX connection dropped (events missed), an
 * earlier run was killed (its objects still in the PBX), or a call's media went silent. Each check ends
 * the affected calls through the one way a call ends, with the reason, so nothing is left as a ghost.
 */
import type { Call } from './call.js';
import type { CallContext } from './context.js';

/** The endpoint AsteriskPbx creates for a moment to learn PJSIP's defaults (adapters/asterisk/pbx.ts). */
export const PROBE_PREFIX = 'sar-defaults-probe-';

/** What recovery uses of the call service's context. */
export type RecoveryDeps = Pick<CallContext, 'pbx' | 'log' | 'calls' | 'end'>;

/**
 * Back from a lost PBX connection: events may have been missed. A call whose channel (or media leg) is
 * gone ended while we weren't listening: it is ended here with that reason, not left as a ghost.
 * Calls whose channels are all there (a mere socket drop) go on untouched.
 */
export async function reconcile(d: RecoveryDeps): Promise<void> {
  const exists = d.pbx.channelExists?.bind(d.pbx);
  if (!exists) return;
  let ended = 0;
  let live = 0;
  for (const call of [...d.calls()]) {
    if (call.final || call.ending) continue;
    live++;
    // A call not dialled (or answered, inbound) yet may have no channel so far: nothing to judge.
    if (!call.events.some((e) => e.type === 'INVITE' || e.type === 'INCOMING')) continue;
    const checks = [call.channelId, ...(call.media ? [call.legChannelId] : [])];
    const gone = [];
    for (const id of checks) if (!(await exists(id).catch(() => true))) gone.push(id === call.channelId ? 'call' : 'media leg');
    if (gone.length === 0) continue;
    ended++;
    void d.end(call, {
      status: 'FAILED', reason: 'FAILED_BY_ERROR', sipStatus: call.sipStatus,
      info: `the ${gone.join(' and ')} channel ended while the connection to Asterisk was down (Asterisk restarted?)`,
    });
  }
  d.log.info({ live: live - ended, ended }, 'calls reconciled after reconnecting to Asterisk');
}

/**
 * An earlier run was killed, or releases failed while Asterisk was away: release what is left in the PBX,
 * that is objects named with this app's key prefix that no call here holds (every PBX object of a call is
 * named from its key: call.ts), and the probe endpoint a killed run may have left. A call whose own release
 * has run (`released`) holds nothing any more, even while /call/find still shows it. Logs, never throws.
 */
export async function releaseLeftovers(d: RecoveryDeps, keyPrefix: string, released: (call: Call) => boolean = () => false): Promise<void> {
  if (!d.pbx.releaseLeftovers) return;
  // Read when asked: a call may start while the PBX is being listed. Every id of a call is its key, or
  // its key and a suffix (call.ts).
  const held = (id: string) => [...d.calls()].some((c) => !released(c) && (id === c.key || id.startsWith(`${c.key}-`)));
  try {
    const n = await d.pbx.releaseLeftovers((id) => (id.startsWith(keyPrefix) || id.startsWith(PROBE_PREFIX)) && !held(id));
    if (n.channels + n.bridges + n.accounts > 0) d.log.info(n, 'released what was left in the PBX (channels, bridges, SIP accounts)');
  } catch (err) {
    d.log.warn({ err: (err as Error).message }, 'could not release what was left in the PBX');
  }
}

/** FAILED_BY_RTP_ACTIVITY for answered calls whose media has been silent (no RTP at all) for `timeoutMs`. */
export function endSilentCalls(d: RecoveryDeps, timeoutMs: number): void {
  for (const call of d.calls()) {
    if (call.ending || call.status !== 'ESTABLISHED' || !call.media) continue;
    const idle = call.media.idleMs();
    if (idle >= timeoutMs) {
      void d.end(call, { status: 'FAILED', reason: 'FAILED_BY_RTP_ACTIVITY', sipStatus: call.sipStatus, info: `no RTP from the call for ${Math.round(idle / 1000)} s (RTP_TIMEOUT_SEC)` });
    }
  }
}
