/**
 * A node's spare CPU, in cores, as placement compares them (LiveKit's workers do the same). Inside a
 * CPU-limited cgroup (a container, a systemd unit with CPUQuota=, the cluster sandbox's nodes) it is the
 * quota less the group's use; otherwise the machine's idle cores, from /proc/stat, since everything on
 * the box (Asterisk, other apps) competes for them. cgroup v2 and v1 are both read.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

interface Source {
  /** Cores this node may use. */
  cores: number;
  /** CPU time used so far (s), by the group or by the whole machine. */
  usedSeconds(): number;
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
};

/** The cgroup this process is in, per controller ('' for v2's unified one). */
function cgroupPaths(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (read('/proc/self/cgroup') ?? '').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined) continue;
    for (const c of controllers.split(',')) out.set(c, path);
  }
  return out;
}

/** A quota'd cgroup, if this process is in one. */
function cgroupSource(root = '/sys/fs/cgroup'): Source | undefined {
  const paths = cgroupPaths();
  const v2 = paths.get('');
  if (v2 !== undefined) {
    const [quota, period] = (read(`${root}${v2}/cpu.max`) ?? 'max').split(' ');
    if (quota && quota !== 'max') {
      return {
        cores: Number(quota) / Number(period || 100000),
        usedSeconds: () => Number(/usage_usec (\d+)/.exec(read(`${root}${v2}/cpu.stat`) ?? '')?.[1] ?? 0) / 1e6,
      };
    }
  }
  const cpu = paths.get('cpu');
  const acct = paths.get('cpuacct') ?? cpu;
  if (cpu !== undefined && acct !== undefined) {
    const quota = Number(read(`${root}/cpu${cpu === '/' ? '' : cpu}/cpu.cfs_quota_us`) ?? -1);
    const period = Number(read(`${root}/cpu${cpu === '/' ? '' : cpu}/cpu.cfs_period_us`) ?? 100000);
    if (quota > 0) {
      return { cores: quota / period, usedSeconds: () => Number(read(`${root}/cpuacct${acct === '/' ? '' : acct}/cpuacct.usage`) ?? 0) / 1e9 };
    }
  }
  return undefined;
}

/** The whole machine: busy time across all cores, from /proc/stat (USER_HZ = 100). */
function machineSource(): Source {
  return {
    cores: availableParallelism(),
    usedSeconds: () => {
      const f = (read('/proc/stat') ?? '').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
      const busy = f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0);
      return busy / 100;
    },
  };
}

export class CpuHeadroom {
  private readonly src: Source;
  private last: { at: number; used: number };
  private value: number;

  constructor(now: () => number = () => performance.now()) {
    this.now = now;
    this.src = cgroupSource() ?? machineSource();
    this.last = { at: now(), used: this.src.usedSeconds() };
    this.value = this.src.cores;
  }

  private readonly now: () => number;

  get cores(): number {
    return this.src.cores;
  }

  /**
   * Spare cores over the time since the last sample (sampled at most once a second; ≥ 0). `calls`: the
   * node's live calls now, for covered().
   */
  sample(calls = 0): number {
    const at = this.now();
    this.fewestCalls = Math.min(this.fewestCalls, calls);
    if (at - this.last.at < 1000) return this.value;
    const used = this.src.usedSeconds();
    const busy = (used - this.last.used) / ((at - this.last.at) / 1000);
    this.last = { at, used };
    this.value = Math.max(0, Math.round((this.src.cores - busy) * 1000) / 1000);
    this.covered = this.fewestCalls;
    this.fewestCalls = calls;
    return this.value;
  }

  /**
   * The calls whose cost the last value shows: those up through its whole window (the fewest seen in it).
   * Placement counts the others as still to come (CALL_CORES each): a node that reported its new calls
   * with a headroom measured before they started would otherwise look as free as before and take a whole
   * burst alone.
   */
  coveredCalls(): number {
    return this.covered;
  }

  private fewestCalls = 0;
  private covered = 0;
}
