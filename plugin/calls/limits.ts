/**
 * A call's time limits, for long shows. Its duration limit (maxDuration, else MAX_CALL_DURATION) hangs it
 * up as /call/terminate would; a platform's session limit (media/output/platform-limits.ts) is only warned
 * of, since the platform ends the session itself. Each limit gets one CallLimitWarningEvent hook,
 * LIMIT_WARNING_SEC before it. One timer per call, set to whatever is due next; the call's Disposer clears it.
 */
import { isoOrNull, monotonicNow } from '../lib/clock.js';
import type { Call } from './call.js';
import { answeredOutcome } from './causes.js';
import type { CallContext } from './context.js';
import type { CallPush } from './pushes.js';

export type LimitDeps = Pick<CallContext, 'config' | 'log' | 'hook' | 'end'>;

/** A call's duration limit (s; 0: none): MAX_CALL_DURATION is the admin's ceiling, a call's maxDuration may only shorten it. */
export function durationLimit(own: number | undefined, ceiling: number): number {
  if (!own) return ceiling;
  return ceiling === 0 ? own : Math.min(own, ceiling);
}

/** A Node timer waits at most this long (about 24.8 days); a farther deadline is simply looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One limit the call is under: the call's own, or one output's platform session. */
interface Limit {
  /** The output whose platform session it is; none: the call's own limit. */
  push?: CallPush;
  endsAtMs: number;
  /** The hook's and log's fields that say which limit it is. */
  fields: Record<string, unknown>;
}

export class CallLimits {
  private timer: NodeJS.Timeout | undefined;
  /** Each limit is warned of once (the call's own: under the call). */
  private readonly warned = new WeakSet<Call | CallPush>();
  /** When the timer fires next (monotonic ms); undefined: not set. */
  wakeAtMs: number | undefined;

  constructor(private readonly d: LimitDeps, private readonly call: Call, private readonly now: () => number = monotonicNow) {}

  /** Act on what is due (a warning, the call's end), then sleep until the next. Call again when outputs change. */
  check(): void {
    this.stop();
    const { call } = this;
    if (call.ending || call.final) return;
    const now = this.now();
    const end = call.endsAtMs;
    if (end !== undefined && now >= end) {
      const which = call.maxDurationSec === call.req.maxDuration ? 'its maxDuration' : 'MAX_CALL_DURATION';
      void this.d.end(call, { ...answeredOutcome(true, 16, 'Normal Clearing'), info: `call reached ${which} (${call.maxDurationSec} s)` });
      return;
    }
    let next = end ?? Infinity;
    const warnMs = this.d.config.calls.limitWarningSec * 1000;
    for (const limit of warnMs > 0 ? this.limits() : []) {
      if (this.warned.has(limit.push ?? call)) continue;
      if (now >= limit.endsAtMs - warnMs) this.warn(limit, now);
      else next = Math.min(next, limit.endsAtMs - warnMs);
    }
    if (next === Infinity) return;
    this.wakeAtMs = next;
    this.timer = setTimeout(() => this.check(), Math.min(MAX_TIMER_MS, Math.max(0, next - now))).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.wakeAtMs = undefined;
  }

  private *limits(): Generator<Limit> {
    const { call } = this;
    if (call.endsAtMs !== undefined) {
      yield { endsAtMs: call.endsAtMs, fields: { limit: 'maxCallDuration', limitSec: call.maxDurationSec } };
    }
    for (const cp of call.pushes) {
      const endsAtMs = cp.sessionEndsAtMs;
      if (endsAtMs === undefined || !cp.live || !cp.limit) continue;
      const { platform, limitSec } = cp.limit;
      yield { push: cp, endsAtMs, fields: { limit: 'platformSession', platform, limitSec, mediaSessionId: cp.id } };
    }
  }

  /** One hook and one log line; the push's URL as every answer shows it (no credentials, key masked). */
  private warn(limit: Limit, now: number): void {
    this.warned.add(limit.push ?? this.call);
    const push = limit.push?.view();
    const event = {
      callId: this.call.req.callId,
      ...limit.fields,
      remainingSec: Math.max(0, Math.round((limit.endsAtMs - now) / 1000)),
      endsAt: isoOrNull(limit.endsAtMs),
    };
    this.d.log.info({ ...event, ...(push ? { rtmpUrl: push.rtmpUrl } : {}) }, 'call limit approaching');
    this.d.hook('CallLimitWarningEvent', {
      ...event, appKey: this.call.req.appKey, ...(push ? { streamName: push.streamName, rtmpUrl: push.rtmpUrl } : {}),
    });
  }
}
