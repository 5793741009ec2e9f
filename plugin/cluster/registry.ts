/**
 * The cluster port: which nodes are alive, which call is whose, and the limits that hold for all of
 * them together. One node (the default) uses the in-memory registry below; a fleet uses Redis
 * (adapters/redis/redis-registry.ts), behind the very same calls.
 *
 *   reserve(callId) ─ atomic: callId free across the cluster, fewer than MAX_CALLS live, owner alive
 *   putCalls([...]) ─ the owner's view of its calls, for any node's /call/find
 *   release(callId) ─ the call is over
 *   'lost'   ─ this node's reaper found a node whose lease ran out: its live calls are now FAILED
 *   'fenced' ─ this node lost its own lease (cut off, or reaped): it must hang up its calls
 */
import { EventEmitter } from 'node:events';

/** A node as the others see it. */
export interface NodeInfo {
  /** This incarnation's id: NODE_ID plus a suffix that changes on every (re)join. */
  id: string;
  /** NODE_ID, as hooks name it. */
  name: string;
  /** Where other nodes forward requests for its calls (its REST base URL). */
  url: string;
  /** Spare CPU, in cores (cgroup quota aware), measured over the last seconds. */
  headroom: number;
  /** NODE_MAX_CALLS. */
  max: number;
  /** Its live calls when it reported. */
  calls: number;
  /** Of those, the ones whose cost its headroom shows (up through the whole measurement); default: calls. */
  covered?: number;
  /** Places it holds now (reported and not yet), as the registry counts them. */
  load?: number;
  /** When it last reported (ms since the epoch, its clock). */
  atMs: number;
}

/** A call as the cluster records it: its owner and the owner's view of it (a CallView, JSON). */
export interface CallRecord {
  callId: string;
  node: string;
  status: string;
  view: Record<string, unknown>;
}

/**
 * Cores one call is reckoned to cost until its node's next report shows it: an audio call measured 0.41
 * CPU-s per call-minute (app 0.21, Asterisk 0.20; docs/bench), about 0.007 cores.
 */
export const CALL_CORES = 0.007;

export type Placement = { ok: true; node: string } | { ok: false; why: 'conflict' | 'capacity'; message: string };

export type Reservation =
  | { ok: true }
  | { ok: false; why: 'conflict' | 'capacity' | 'node' | 'rate'; message: string; retryInMs?: number };

export interface LostNode {
  node: string;
  /** Its calls that were live, now recorded FAILED by this node's reaper (each reported by exactly one reaper). */
  calls: CallRecord[];
}

export interface RegistryEvents {
  lost: [LostNode];
  /** This node's lease ran out: its calls are reported FAILED elsewhere; hang them up, a new id follows. */
  fenced: [{ oldId: string; newId: string; reason: string }];
  /** The shared store lost its data (a restarted Redis): put back what is live here. */
  reset: [];
  /** Hook events the cluster asks this node to deliver (a lost node's calls): each to one node only. */
  event: [{ method: string; body: Record<string, unknown> }];
}

export interface ClusterRegistry extends EventEmitter<RegistryEvents> {
  /** This node's current id (changes when it is fenced and rejoins). */
  readonly nodeId: string;
  /** Single node: false (nothing to forward to, nothing to reap). */
  readonly shared: boolean;
  start(): Promise<void>;
  /** Leave: this node's reservations and records go, the others stop counting it. */
  stop(): Promise<void>;
  /** Take a place for callId on `node` (default: this one) under the cluster-wide MAX_CALLS. */
  reserve(callId: string, node?: string): Promise<Reservation>;
  /**
   * Choose the node for a new call (most headroom, less what it was given since it last reported; none of
   * `skip`) and take its place there, in one step.
   */
  place(callId: string, skip?: string[]): Promise<Placement>;
  /** The call is over, or never started (`forget`: its callId is free again): its place goes. */
  release(callId: string, node?: string, forget?: boolean): Promise<void>;
  /** Which node holds callId (a place or a record); undefined: none. */
  owner(callId: string): Promise<string | undefined>;
  /** Record (or update) calls this node owns. Records of a fenced node are refused. */
  putCalls(records: CallRecord[]): Promise<void>;
  /** Forget these calls' records (they left the node's list; `node`: a lost node's, by its reaper). */
  dropCalls(callIds: string[], node?: string): Promise<void>;
  /** Every recorded call, any node's. */
  calls(): Promise<CallRecord[]>;
  call(callId: string): Promise<CallRecord | undefined>;
  /** Nodes with a live lease. */
  nodes(): Promise<NodeInfo[]>;
  /** One node-wide startup token (STARTUP_RATE_PER_SEC, for the whole cluster). */
  takeStartup(): Promise<Reservation>;
}

/** One node, nothing shared: reservations are the node's own MAX_CALLS. */
export class InMemoryRegistry extends EventEmitter<RegistryEvents> implements ClusterRegistry {
  readonly shared = false;
  private readonly live = new Set<string>();
  private readonly records = new Map<string, CallRecord>();

  constructor(readonly nodeId: string, private readonly o: { maxCalls: number; self: () => Omit<NodeInfo, 'id' | 'atMs'> }) {
    super();
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {
    this.live.clear();
    this.records.clear();
  }

  async reserve(callId: string): Promise<Reservation> {
    if (this.live.has(callId)) return { ok: false, why: 'conflict', message: `callId ${callId} already exists` };
    if (this.live.size >= this.o.maxCalls) return { ok: false, why: 'capacity', message: `at capacity (${this.o.maxCalls} calls)` };
    this.live.add(callId);
    return { ok: true };
  }

  async place(callId: string): Promise<Placement> {
    const r = await this.reserve(callId);
    return r.ok ? { ok: true, node: this.nodeId } : { ok: false, why: r.why === 'conflict' ? 'conflict' : 'capacity', message: r.message };
  }

  async release(callId: string): Promise<void> {
    this.live.delete(callId);
  }

  async owner(callId: string): Promise<string | undefined> {
    return this.live.has(callId) || this.records.has(callId) ? this.nodeId : undefined;
  }

  async putCalls(records: CallRecord[]): Promise<void> {
    for (const r of records) this.records.set(r.callId, r);
  }

  async dropCalls(callIds: string[]): Promise<void> {
    for (const id of callIds) this.records.delete(id);
  }

  async calls(): Promise<CallRecord[]> {
    return [...this.records.values()];
  }

  async call(callId: string): Promise<CallRecord | undefined> {
    return this.records.get(callId);
  }

  async nodes(): Promise<NodeInfo[]> {
    return [{ id: this.nodeId, atMs: Date.now(), ...this.o.self() }];
  }

  /** The node's own token bucket (CallService) is the limit. */
  async takeStartup(): Promise<Reservation> {
    return { ok: true };
  }
}
