/**
 * The cluster registry on Redis 7 (client: `redis`, the official one). Keys, under `<CLUSTER_NAME>:`:
 *   epoch            a random id set by the first node to find none: a changed epoch means Redis lost its data
 *   nodes            hash  node id → NodeInfo JSON (membership: a node reaped is removed from here)
 *   lease:<node>     '1' with a TTL of the lease (3 s): a heartbeat every lease/3 renews it
 *   live             hash  callId → owner, for the calls holding a place (cluster-wide MAX_CALLS = HLEN)
 *   load             hash  node → its calls in `live` (placement counts what its last report does not show yet)
 *   owners           hash  callId → owner, while the call has a record (callIds unique across the cluster)
 *   calls            hash  callId → CallRecord JSON, written by the owner only
 *   reaped           hash  callId → {node, by, info, at}: a lost node's call, reported FAILED
 *   events           stream of a lost node's calls, read by the group `hooks`: one node posts each hook
 *   startups         the cluster's STARTUP_RATE_PER_SEC bucket
 * The atomic steps are Lua (scripts.ts). A node that cannot renew its lease in time fences itself: its
 * calls are reported by another node's reaper, so it hangs them up and joins again under a new id.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createClient } from 'redis';
import { CALL_CORES, type CallRecord, type ClusterRegistry, type NodeInfo, type Placement, type RegistryEvents, type Reservation } from '../../plugin/cluster/registry.js';
import type { Logger } from '../../plugin/lib/log.js';
import { newNodeId, nodeName } from '../../plugin/cluster/names.js';
import { DROP, HEARTBEAT, LEAVE, PLACE, PUT, REAP, RELEASE, RESERVE, TAKE_TOKEN } from './scripts.js';

export interface RedisRegistryOptions {
  url: string;
  /** Key prefix: clusters sharing one Redis keep apart by name. */
  cluster: string;
  /** NODE_ID: the stable part of this node's id. */
  name: string;
  /** What this node reports with each heartbeat. */
  self: () => Omit<NodeInfo, 'id' | 'name' | 'atMs'>;
  /** Cluster-wide MAX_CALLS. */
  maxCalls: number;
  /** Cluster-wide STARTUP_RATE_PER_SEC (burst: twice that). */
  startupRatePerSec: number;
  leaseMs?: number;
  log: Logger;
}

type Client = ReturnType<typeof createClient>;
type Reply = unknown;

/** Events kept on the stream (approximate, MAXLEN ~). */
const STREAM_MAX = 10000;
/** A hook event a consumer took but did not acknowledge (it died) is taken over after this. */
const CLAIM_IDLE_MS = 15000;
const GROUP = 'hooks';

export class RedisRegistry extends EventEmitter<RegistryEvents> implements ClusterRegistry {
  readonly shared = true;
  nodeId: string;
  private readonly client: Client;
  private readonly leaseMs: number;
  private readonly k: (name: string) => string;
  private readonly sha = new Map<string, string>();
  private epoch = '';
  /** When the last heartbeat that Redis accepted was sent (performance.now()): the lease runs from there. */
  private leaseFromMs = 0;
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private beating = false;

  constructor(private readonly o: RedisRegistryOptions) {
    super();
    this.leaseMs = o.leaseMs ?? 3000;
    this.nodeId = newNodeId(o.name);
    this.k = (name) => `${o.cluster}:${name}`;
    this.client = createClient({
      url: o.url,
      // Fail at once while disconnected: a heartbeat must not wait in a queue past its lease.
      disableOfflineQueue: true,
      socket: { connectTimeout: this.leaseMs, reconnectStrategy: (n) => Math.min(100 * (n + 1), 1000) },
    });
    this.client.on('error', (err: Error) => this.o.log.debug({ err: err.message }, 'redis'));
  }

  async start(): Promise<void> {
    await this.client.connect();
    await this.createGroup('$');
    const first = await this.heartbeat();
    if (first !== 'ok') throw new Error(`could not join the cluster (${first})`);
    const tick = Math.max(100, Math.floor(this.leaseMs / 3));
    this.timers = [
      setInterval(() => void this.heartbeat(), tick),
      // The lease is checked more often than renewed: a node cut off stops its calls as its lease ends.
      setInterval(() => this.checkLease(), this.checkEveryMs),
      setInterval(() => void this.reapLost().catch((err: Error) => this.o.log.warn({ err: err.message }, 'cluster reaper failed')), tick),
      setInterval(() => void this.consume('>').catch(() => {}), 500),
      setInterval(() => void this.consume('claim').catch(() => {}), CLAIM_IDLE_MS / 3),
    ];
    for (const t of this.timers) t.unref();
    this.o.log.info({ node: this.nodeId, cluster: this.o.cluster, leaseMs: this.leaseMs }, 'joined the cluster');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // Leaving on purpose (its calls have ended): the others stop counting it now, not a lease later, and
    // nothing of it stays behind (places, records).
    await this.script(LEAVE, ['nodes', `lease:${this.nodeId}`, 'live', 'load', 'owners', 'calls', 'reaped'].map(this.k), [this.nodeId]).catch(() => {});
    await this.client.close().catch(() => {});
  }

  /** Renew the lease; learn that we were reaped (fence) or that Redis lost its data (put everything back). */
  private async heartbeat(): Promise<'ok' | 'fenced' | 'reset' | 'error'> {
    if (this.beating || this.stopped) return 'error';
    this.beating = true;
    const sentAt = Date.now();
    // The lease is timed on the monotonic clock: a wall-clock step must not stretch or cut it.
    const sentAtMono = performance.now();
    try {
      const info: NodeInfo = { id: this.nodeId, name: this.o.name, atMs: sentAt, ...this.o.self() };
      const [verdict, epoch] = await this.script(HEARTBEAT,
        [this.k('nodes'), this.k(`lease:${this.nodeId}`), this.k('epoch')],
        [this.nodeId, JSON.stringify(info), String(this.leaseMs), this.epoch, randomBytes(8).toString('hex')]) as ['ok' | 'fenced' | 'reset', string];
      // Fenced in the meantime (the lease ran out while this was on its way): the answer is about the old id.
      if (info.id !== this.nodeId) return 'error';
      this.epoch = epoch;
      if (verdict === 'fenced') {
        this.fence('this node was reported lost by the cluster (its lease had run out)');
        return 'fenced';
      }
      this.leaseFromMs = sentAtMono;
      if (verdict === 'reset') {
        this.o.log.warn({ node: this.nodeId }, 'the cluster store lost its data (Redis restarted?): putting back this node\'s calls');
        this.emit('reset');
      }
      return verdict;
    } catch (err) {
      this.o.log.debug({ err: (err as Error).message }, 'cluster heartbeat failed');
      return 'error';
    } finally {
      this.beating = false;
    }
  }

  /** How often the lease is checked: more often than renewed. */
  private get checkEveryMs(): number {
    return Math.max(50, Math.floor(this.leaseMs / 10));
  }

  /**
   * A node cut off ends its calls before its lease can run out in Redis: it gives up one check interval
   * early, so a check that fires late still comes before any reaper can report its calls (never live on
   * two nodes). The lease runs from when the last accepted heartbeat was sent, before Redis saw it.
   */
  private checkLease(): void {
    if (this.stopped || this.leaseFromMs === 0) return;
    const age = performance.now() - this.leaseFromMs;
    if (age >= this.leaseMs - this.checkEveryMs) this.fence(`lease ran out: Redis not reached for ${Math.round(age)} ms`);
  }

  /** Our calls are (or will be) reported lost by another node: drop them all and join again as someone new. */
  private fence(reason: string): void {
    const oldId = this.nodeId;
    this.nodeId = newNodeId(this.o.name);
    this.leaseFromMs = 0;
    this.o.log.error({ oldId, newId: this.nodeId, reason }, 'cluster lease lost: hanging up this node\'s calls and joining again');
    this.emit('fenced', { oldId, newId: this.nodeId, reason });
    // Join again at once (the heartbeat will retry until Redis answers); our old self is reaped by whoever
    // gets there first, this node included, so its calls are still reported once.
    void this.rejoin(oldId);
  }

  private async rejoin(oldId: string): Promise<void> {
    const known = this.epoch;
    this.epoch = '';
    const verdict = await this.heartbeat();
    if (verdict === 'ok' || verdict === 'reset') {
      if (known && this.epoch !== known) return; // a fresh store: nothing of the old id is there to reap
      await this.reap(oldId).catch(() => {});
    }
  }

  /** Every node whose lease is gone, reaped (each by exactly one reaper across the cluster). */
  private async reapLost(): Promise<void> {
    if (this.leaseFromMs === 0) return;
    const ids = await this.command(['HKEYS', this.k('nodes')]) as string[];
    await Promise.all(ids.filter((id) => id !== this.nodeId).map(async (id) => {
      if (await this.command(['EXISTS', this.k(`lease:${id}`)]) === 0) await this.reap(id);
    }));
  }

  private async reap(id: string): Promise<void> {
    const info = `node ${nodeName(id)} (${id}) lost: no heartbeat for over ${this.leaseMs} ms`;
    const calls = await this.script(REAP,
      [this.k('nodes'), this.k(`lease:${id}`), this.k('live'), this.k('calls'), this.k('reaped'), this.k('events'), this.k('load'), this.k('owners')],
      [id, this.nodeId, info, new Date().toISOString(), String(STREAM_MAX)]) as string[] | null;
    if (!calls) return;
    this.o.log.warn({ node: id, calls: calls.length }, 'cluster node lost: its calls reported FAILED');
    this.emit('lost', { node: id, calls: (await Promise.all(calls.map((c) => this.call(c)))).filter((r): r is CallRecord => !!r) });
  }

  /** The hook consumers' group (another node may have made it: fine). */
  private async createGroup(from: '$' | '0'): Promise<void> {
    await this.command(['XGROUP', 'CREATE', this.k('events'), GROUP, from, 'MKSTREAM']).catch((err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    });
  }

  /** Hook events on the stream: new ones ('>'), or those a dead consumer took and never acknowledged. */
  private async consume(which: '>' | 'claim'): Promise<void> {
    try {
      await this.consumeOnce(which);
    } catch (err) {
      // A wiped Redis (restarted without persistence) lost the group: made again, from the stream's start
      // (everything on it was written since the wipe).
      if (/NOGROUP/.test((err as Error).message)) await this.createGroup('0');
      else throw err;
    }
  }

  private async consumeOnce(which: '>' | 'claim'): Promise<void> {
    if (this.stopped || this.leaseFromMs === 0) return;
    const consumer = this.o.name;
    let entries: [string, string[]][];
    if (which === '>') {
      // Answered as { stream: entries } (RESP2 arrays: [[stream, entries]]).
      const r = await this.command(['XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', '100', 'STREAMS', this.k('events'), '>']) as Record<string, [string, string[]][]> | [string, [string, string[]][]][] | null;
      entries = (Array.isArray(r) ? r[0]?.[1] : r ? Object.values(r)[0] : undefined) ?? [];
    } else {
      const r = await this.command(['XAUTOCLAIM', this.k('events'), GROUP, consumer, String(CLAIM_IDLE_MS), '0-0', 'COUNT', '100']) as [string, [string, string[] | null][]];
      entries = (r?.[1] ?? []).filter((e): e is [string, string[]] => Array.isArray(e[1]));
    }
    for (const [id, flat] of entries) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
      if (f.kind === 'lost' && f.record) {
        const rec = JSON.parse(f.record) as CallRecord;
        const view = lostView(rec.view, { node: f.node ?? '', by: f.by ?? '', info: f.info ?? '', at: f.at ?? '' });
        const { events: _e, media: _m, video: _v, ...hookView } = view;
        this.emit('event', { method: 'CallStatusEvent', body: { nodeId: nodeName(f.node ?? ''), ...hookView } });
      }
      await this.command(['XACK', this.k('events'), GROUP, id]);
    }
  }

  async reserve(callId: string, node = this.nodeId): Promise<Reservation> {
    const r = await this.script(RESERVE, [this.k('live'), this.k(`lease:${node}`), this.k('owners'), this.k('load')], [callId, String(this.o.maxCalls), node]) as string;
    switch (r) {
      case 'ok': return { ok: true };
      case 'conflict': return { ok: false, why: 'conflict', message: `callId ${callId} already exists` };
      case 'capacity': return { ok: false, why: 'capacity', message: `at capacity (${this.o.maxCalls} calls across the cluster)` };
      default: return { ok: false, why: 'node', message: `node ${node} is not in the cluster` };
    }
  }

  async place(callId: string, skip: string[] = []): Promise<Placement> {
    const [r, node] = await this.script(PLACE, [this.k('nodes'), this.k('live'), this.k('owners'), this.k('load')],
      [callId, String(this.o.maxCalls), String(CALL_CORES), this.k(''), ...skip]) as [string, string | undefined];
    if (r === 'ok' && node) return { ok: true, node };
    if (r === 'conflict') return { ok: false, why: 'conflict', message: `callId ${callId} already exists` };
    if (r === 'capacity') return { ok: false, why: 'capacity', message: `at capacity (${this.o.maxCalls} calls across the cluster)` };
    return { ok: false, why: 'capacity', message: 'no node of the cluster can take a call now' };
  }

  async release(callId: string, node = this.nodeId, forget = false): Promise<void> {
    await this.script(RELEASE, [this.k('live'), this.k('load'), this.k('owners')], [callId, node, forget ? '1' : '0']);
  }

  async owner(callId: string): Promise<string | undefined> {
    return (await this.command(['HGET', this.k('owners'), callId]) as string | null) ?? undefined;
  }

  async putCalls(records: CallRecord[]): Promise<void> {
    if (records.length === 0) return;
    const args = [this.nodeId];
    for (const r of records) args.push(r.callId, JSON.stringify({ ...r, node: this.nodeId }));
    await this.script(PUT, [this.k('nodes'), this.k('calls'), this.k('owners')], args);
  }

  async dropCalls(callIds: string[], node = this.nodeId): Promise<void> {
    if (callIds.length > 0) await this.script(DROP, [this.k('calls'), this.k('owners'), this.k('reaped')], [node, ...callIds]);
  }

  async calls(): Promise<CallRecord[]> {
    const [calls, lost] = await Promise.all([this.hash('calls'), this.hash('reaped')]);
    return [...calls].map(([id, raw]) => withReap(JSON.parse(raw) as CallRecord, lost.get(id)));
  }

  async call(callId: string): Promise<CallRecord | undefined> {
    const [raw, reaped] = await Promise.all([this.command(['HGET', this.k('calls'), callId]), this.command(['HGET', this.k('reaped'), callId])]) as [string | null, string | null];
    return raw ? withReap(JSON.parse(raw) as CallRecord, reaped ?? undefined) : undefined;
  }

  async nodes(): Promise<NodeInfo[]> {
    const staleMs = Math.max(5000, 2 * this.leaseMs);
    const now = Date.now();
    const [nodes, load] = await Promise.all([this.hash('nodes'), this.hash('load')]);
    return [...nodes.values()].map((raw) => JSON.parse(raw) as NodeInfo).filter((n) => now - n.atMs <= staleMs)
      .map((n) => ({ ...n, load: Number(load.get(n.id) ?? 0) }));
  }

  async takeStartup(): Promise<Reservation> {
    const rate = this.o.startupRatePerSec;
    const wait = await this.script(TAKE_TOKEN, [this.k('startups')], [String(rate), String(rate * 2)]) as number;
    return wait === 0 ? { ok: true } : { ok: false, why: 'rate', message: `too many call or push startups across the cluster (STARTUP_RATE_PER_SEC=${rate}); retry in ${wait} ms`, retryInMs: wait };
  }

  /** A whole hash (the client answers HGETALL as an object). */
  private async hash(name: string): Promise<Map<string, string>> {
    const r = await this.command(['HGETALL', this.k(name)]);
    if (Array.isArray(r)) {
      const m = new Map<string, string>();
      for (let i = 0; i + 1 < r.length; i += 2) m.set(String(r[i]), String(r[i + 1]));
      return m;
    }
    return new Map(Object.entries((r ?? {}) as Record<string, string>));
  }

  /** A command that gives up after half a lease: a cut-off Redis must not stall the caller for a TCP timeout. */
  private command(args: string[]): Promise<Reply> {
    return withTimeout(this.client.sendCommand(args), this.leaseMs / 2);
  }

  /** EVALSHA, loading the script on NOSCRIPT (a restarted Redis forgets them). */
  private async script(src: string, keys: string[], args: string[]): Promise<Reply> {
    let sha = this.sha.get(src);
    if (!sha) this.sha.set(src, sha = createHash('sha1').update(src).digest('hex'));
    try {
      return await this.command(['EVALSHA', sha, String(keys.length), ...keys, ...args]);
    } catch (err) {
      if (!/NOSCRIPT/.test((err as Error).message)) throw err;
      return this.command(['EVAL', src, String(keys.length), ...keys, ...args]);
    }
  }
}

interface Reaped { node: string; by: string; info: string; at: string }

/** A lost node's call as every node shows it: FAILED, with the reason that names the node. */
function lostView(view: Record<string, unknown>, r: Reaped): Record<string, unknown> {
  return { ...view, status: 'FAILED', reason: 'FAILED_BY_ERROR', info: r.info, endedAt: r.at, rtmpStreamStatus: 'FAILED' };
}

function withReap(rec: CallRecord, reaped: string | undefined): CallRecord {
  if (!reaped) return rec;
  return { ...rec, status: 'FAILED', view: lostView(rec.view, JSON.parse(reaped) as Reaped) };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`redis: no answer in ${ms} ms`)), ms); }),
  ]);
}
