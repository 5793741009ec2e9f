/**
 * WCS chooses the backend app of an event by the call's `appKey` (each app has its own URL). Events of an
 * appKey listed in HOOK_APPS go to that app's hooks; the others to the default (HOOK_URL). Each app has
 * its own queue: a slow app never holds back another's events.
 */
import type { Hooks, HooksStats } from './hooks.js';

export class RoutedHooks implements Hooks {
  constructor(private readonly byAppKey: ReadonlyMap<string, Hooks>, private readonly fallback: Hooks) {}

  post(method: string, body: Record<string, unknown>): void {
    const key = typeof body.appKey === 'string' ? body.appKey : '';
    (this.byAppKey.get(key) ?? this.fallback).post(method, body);
  }

  async close(timeoutMs?: number): Promise<void> {
    await Promise.all([...this.all()].map((h) => h.close(timeoutMs)));
  }

  /** Summed over the apps; the last error of any. */
  get stats(): HooksStats {
    const out: HooksStats = { queued: 0, delivered: 0, retries: 0, dropped: 0, rejected: 0, inFlight: false };
    for (const h of this.all()) {
      const s = h.stats;
      out.queued += s.queued;
      out.delivered += s.delivered;
      out.retries += s.retries;
      out.dropped += s.dropped;
      out.rejected += s.rejected;
      out.inFlight ||= s.inFlight;
      if (s.lastError !== undefined) out.lastError = s.lastError;
    }
    return out;
  }

  private all(): Set<Hooks> {
    return new Set([this.fallback, ...this.byAppKey.values()]);
  }
}

/** HOOK_APPS: `appKey=url` pairs, comma-separated. Throws naming the bad entry. */
export function parseHookApps(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of text.split(',').map((e) => e.trim()).filter(Boolean)) {
    const eq = entry.indexOf('=');
    const key = eq > 0 ? entry.slice(0, eq).trim() : '';
    const url = eq > 0 ? entry.slice(eq + 1).trim() : '';
    if (!key || !/^https?:\/\//i.test(url)) throw new Error(`HOOK_APPS entry "${entry.replace(/\/\/[^@/]*@/, '//***@')}" must be appKey=http(s)://…`);
    out.set(key, url);
  }
  return out;
}
