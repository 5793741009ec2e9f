/**
 * This node's part in the cluster: what its calls look like goes to the registry (for any node's
 * /call/find), a lost lease ends its calls (fencing), a wiped store gets them back, and hook events the
 * cluster hands it (a lost node's calls) go to the backend.
 */
import { createHash } from 'node:crypto';
import type { Call } from '../calls/call.js';
import type { CallService } from '../calls/call-service.js';
import type { Hooks } from '../hooks/hooks.js';
import type { Logger } from '../lib/log.js';
import type { CallRecord, ClusterRegistry } from './registry.js';

/** A call's record: its view (as /call/find shows it), its WCS sessionId and outputs, and what finds match on. */
export interface CallRecordView extends Record<string, unknown> {
  sessionId: string;
  /** The call's outputs (their mediaSessionIds), so a /push/* by id finds the owner. */
  pushIds: string[];
  /** sha256 of the raw rtmpUrl (it may carry a stream key): /call/find by rtmpUrl matches it. */
  rtmpUrlHash: string;
}

export function urlHash(raw: string): string {
  return createHash('sha256').update(raw).digest('hex');
}

export class ClusterMember {
  private readonly dirty = new Set<Call>();
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(private readonly d: { registry: ClusterRegistry; calls: CallService; hooks: Hooks; log: Logger; endedTtlSec: number; flushMs?: number }) {}

  start(): void {
    const { registry, calls, log } = this.d;
    calls.changes.on('changed', (c) => this.dirty.add(c));
    calls.changes.on('released', (c) => this.dirty.add(c));
    calls.changes.on('removed', (c) => {
      this.dirty.delete(c);
      void registry.dropCalls([c.req.callId]).catch(() => {});
    });
    registry.on('fenced', ({ reason }) => {
      this.dirty.clear();
      void calls.fence(`this node lost its place in the cluster (${reason})`);
    });
    registry.on('reset', () => void this.putBack());
    registry.on('event', ({ method, body }) => this.d.hooks.post(method, body));
    registry.on('lost', ({ node, calls: lost }) => {
      for (const r of lost) log.warn({ callId: r.callId, node }, 'call FAILED: its node was lost');
      // Shown as FAILED for ENDED_CALL_TTL_SEC, like any ended call, then forgotten.
      setTimeout(() => void registry.dropCalls(lost.map((r) => r.callId), node).catch(() => {}), this.d.endedTtlSec * 1000).unref();
    });
    this.timer = setInterval(() => void this.flush(), this.d.flushMs ?? 300);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The records of the calls that changed since the last flush, in one round trip. */
  async flush(): Promise<void> {
    if (this.flushing || this.dirty.size === 0) return;
    this.flushing = true;
    const batch = [...this.dirty];
    this.dirty.clear();
    try {
      await this.d.registry.putCalls(batch.map((c) => this.record(c)));
    } catch (err) {
      for (const c of batch) this.dirty.add(c); // next time
      this.d.log.debug({ err: (err as Error).message }, 'cluster: writing call records failed');
    } finally {
      this.flushing = false;
    }
  }

  private record(c: Call): CallRecord {
    const view: CallRecordView = {
      ...c.view(),
      sessionId: c.key,
      pushIds: c.pushes.map((p) => p.id),
      rtmpUrlHash: c.req.rtmpUrl ? urlHash(c.req.rtmpUrl) : '',
    };
    return { callId: c.req.callId, node: this.d.registry.nodeId, status: c.status, view };
  }

  /** Redis came back empty: this node's live calls take their places again and their records go back. */
  private async putBack(): Promise<void> {
    for (const c of this.d.calls.list()) {
      if (c.final) continue;
      const r = await this.d.registry.reserve(c.req.callId).catch((err: Error) => ({ ok: false, message: err.message }));
      if (!r.ok) this.d.log.warn({ callId: c.req.callId, why: r.message }, 'cluster: a live call could not take its place back');
      this.dirty.add(c);
    }
    await this.flush();
  }
}
