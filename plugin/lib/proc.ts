/**
 * Process and machine accounting from /proc (Linux), for the measuring scripts and /metrics: CPU time is read from
 * the kernel's counters, never inferred from wall time.
 */
import { readdirSync, readFileSync } from 'node:fs';

const HZ = 100; // USER_HZ on Linux
const PAGE = 4096;

function statFields(pid: number): string[] | undefined {
  return procStat(pid)?.fields;
}

/**
 * One process's /proc/<pid>/stat: its command name, state, parent, process group, and the raw fields
 * after the name (fields[0] = state, as in proc(5) from field 3 on). Undefined once it is gone.
 */
export function procStat(pid: number): { comm: string; state: string; ppid: number; pgrp: number; fields: string[] } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone
  }
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return { comm: stat.slice(stat.indexOf('(') + 1, close), state: fields[0]!, ppid: Number(fields[1]), pgrp: Number(fields[2]), fields };
}

/** Every live process id. */
export function pids(): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

/** utime + stime of a live process, in seconds (0 if it is gone). */
export function cpuSeconds(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) / HZ : 0;
}

/** Resident set size in MB (0 if gone). */
export function rssMb(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[21]) * PAGE) / 1e6 : 0;
}

/** Proportional set size in MB: shared pages (libraries) divided among the processes that map them. */
export function pssMb(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) / 1000 : 0;
  } catch {
    return 0;
  }
}

/** Every live descendant of `pid` (children, grandchildren...). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number[]>();
  for (const p of pids()) {
    const st = procStat(p);
    if (!st) continue;
    const list = parent.get(st.ppid) ?? [];
    list.push(p);
    parent.set(st.ppid, list);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of parent.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Jiffies of the whole machine: busy and total, from the first line of /proc/stat. */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}
