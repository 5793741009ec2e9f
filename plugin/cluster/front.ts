/**
 * Any node answers for any call: the REST side of the cluster.
 *   /call/startup  placed on the node with the most headroom (registry.place, atomic), forwarded there;
 *                  a node that refuses (503, unreachable) gives its place back and the next is tried
 *   /call/<control>, /push/<control>  forwarded to the call's owner
 *   /call/find*    read from the registry (this node's own calls from memory); /push/find* asked of every node
 * A forwarded request carries FORWARDED, so the node that receives it answers it itself.
 */
import type { CallService } from '../calls/call-service.js';
import { ConflictError, UnavailableError } from '../calls/errors.js';
import type { CallView } from '../calls/types.js';
import type { Logger } from '../lib/log.js';
import { urlHash, type CallRecordView } from './member.js';
import { nodeName } from './names.js';
import type { ClusterRegistry, NodeInfo } from './registry.js';

/** Set on a request one node sends another: answer it here, do not place or forward it again. */
export const FORWARDED = 'x-sar-forwarded';
/** Set on a /call/startup sent to the node it was placed on: the place is taken already. */
export const PLACED = 'x-sar-placed';

export interface Answer { status: number; body: unknown }

/** The adapter that carries a request to another node (adapters/cluster/http-forwarder.ts). */
export interface Forwarder {
  /** POST a JSON body to `<baseUrl><path>`; rejects when the node can't be reached or doesn't answer in time. */
  post(baseUrl: string, path: string, body: unknown, headers: Record<string, string>): Promise<Answer>;
}

type Headers = Record<string, string | string[] | undefined>;

/** The client's credentials go along: every node checks the same API_TOKEN. */
const PASSED_HEADERS = ['x-api-token', 'authorization'];

export class ClusterFront {
  constructor(private readonly d: { registry: ClusterRegistry; forwarder: Forwarder; calls: CallService; log: Logger }) {}

  isForwarded(h: Headers): boolean {
    return typeof h[FORWARDED] === 'string';
  }

  isPlaced(h: Headers): boolean {
    return this.isForwarded(h) && h[PLACED] === '1';
  }

  /**
   * Place a new call and start it where it lands: `local` runs it here (the place taken), else the request
   * goes to its node and that node's answer is returned. Throws as startup does (409, 429, 503).
   */
  async placeStartup(callId: string, body: unknown, h: Headers, local: () => Promise<void>): Promise<Answer | undefined> {
    const { registry, calls, log } = this.d;
    await calls.takeStartup();
    const skip: string[] = [];
    let lastRefusal = '';
    for (;;) {
      const p = await registry.place(callId, skip);
      if (!p.ok) {
        if (p.why === 'conflict') throw new ConflictError(p.message, 'callId');
        throw new UnavailableError(lastRefusal ? `${p.message} (last refusal: ${lastRefusal})` : p.message);
      }
      if (p.node === registry.nodeId) {
        try {
          await local();
          return undefined;
        } catch (err) {
          await calls.unreserve(callId);
          if (!(err instanceof UnavailableError)) throw err;
          lastRefusal = err.message;
          skip.push(p.node);
          continue;
        }
      }
      const node = (await registry.nodes()).find((n) => n.id === p.node);
      try {
        if (!node) throw new Error('left the cluster');
        const a = await this.forward(node, '/call/startup', body, h, { [PLACED]: '1' });
        if (a.status !== 503) return a;
        lastRefusal = `${nodeName(p.node)}: ${(a.body as { error?: string } | undefined)?.error ?? 'unavailable'}`;
      } catch (err) {
        lastRefusal = `${nodeName(p.node)}: ${(err as Error).message}`;
        log.warn({ node: p.node, callId, err: (err as Error).message }, 'cluster: the node a call was placed on did not answer; trying the next');
      }
      await registry.release(callId, p.node, true);
      skip.push(p.node);
    }
  }

  /** The node that owns a call, when it is another live node (undefined: answer here). */
  async callOwner(callId: string): Promise<NodeInfo | undefined> {
    if (this.d.calls.get(callId)) return undefined;
    return this.liveNode(await this.d.registry.owner(callId));
  }

  /** Does this node hold the output (a push's mediaSessionId)? */
  hasPush(mediaSessionId: string): boolean {
    return this.d.calls.pushFind({}).some((p) => p.mediaSessionId === mediaSessionId);
  }

  /** The node whose call has this output, as its record shows (a push just made may not be there yet). */
  async pushOwner(mediaSessionId: string): Promise<NodeInfo | undefined> {
    if (this.hasPush(mediaSessionId)) return undefined;
    const rec = (await this.d.registry.calls()).find((r) => (r.view as CallRecordView).pushIds?.includes(mediaSessionId));
    return this.liveNode(rec?.node);
  }

  private async liveNode(id: string | undefined): Promise<NodeInfo | undefined> {
    if (!id || id === this.d.registry.nodeId) return undefined;
    return (await this.d.registry.nodes()).find((n) => n.id === id);
  }

  forward(node: NodeInfo, path: string, body: unknown, h: Headers, extra: Record<string, string> = {}): Promise<Answer> {
    const headers: Record<string, string> = { [FORWARDED]: this.d.registry.nodeId, ...extra };
    for (const name of PASSED_HEADERS) if (typeof h[name] === 'string') headers[name] = h[name];
    return this.d.forwarder.post(node.url, path, body, headers);
  }

  /** Every call of the cluster that matches, with the node that holds it (`nodeId`). */
  async findCalls(filter: { callId?: string; callee?: string; rtmpUrl?: string; status?: string }): Promise<CallView[]> {
    const { registry, calls } = this.d;
    const self = registry.nodeId;
    const local = calls.find(filter).map((v) => ({ ...v, nodeId: nodeName(self) }));
    const seen = new Set(local.map((v) => v.callId));
    const hash = filter.rtmpUrl ? urlHash(filter.rtmpUrl) : '';
    const remote: CallView[] = [];
    for (const r of await registry.calls()) {
      if (seen.has(r.callId)) continue;
      const { pushIds: _p, rtmpUrlHash, sessionId: _s, ...view } = r.view as CallRecordView;
      if (filter.callId && r.callId !== filter.callId) continue;
      if (filter.callee && view.callee !== filter.callee) continue;
      if (filter.status && r.status !== filter.status.toUpperCase()) continue;
      if (hash && rtmpUrlHash !== hash) continue;
      remote.push({ ...(view as unknown as CallView), nodeId: nodeName(r.node) } as CallView);
    }
    return [...local, ...remote];
  }

  /** Every other live node's answer to the same request (a node that fails is left out). */
  private async askOthers(path: string, body: unknown, h: Headers): Promise<Answer[]> {
    const others = (await this.d.registry.nodes()).filter((n) => n.id !== this.d.registry.nodeId);
    const answers = await Promise.all(others.map((n) => this.forward(n, path, body, h).catch((err: Error) => {
      this.d.log.warn({ node: n.id, path, err: err.message }, 'cluster: a node did not answer');
      return undefined;
    })));
    return answers.filter((a): a is Answer => a !== undefined);
  }

  /** A /push/find asked of every other node: their lists, concatenated. */
  async fanOut(path: string, body: unknown, h: Headers): Promise<unknown[]> {
    return (await this.askOthers(path, body, h)).flatMap((a) => (a.status === 200 && Array.isArray(a.body) ? a.body as unknown[] : []));
  }

  /**
   * A request for a call or output this node doesn't hold and the records don't place (/push/startup by
   * stream name, a push made a moment ago): only the node that holds it acts, the others answer 404.
   * That node's answer; undefined when none holds it.
   */
  async askAround(path: string, body: unknown, h: Headers): Promise<Answer | undefined> {
    return (await this.askOthers(path, body, h)).find((a) => a.status !== 404);
  }
}
