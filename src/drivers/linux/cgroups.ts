// Reading an instance's cgroup: CPU time, memory, pids, limits. Works on
// cgroup v1 (one hierarchy per controller, this machine) and v2 (one unified
// tree); the layout is detected once. The root is injectable so both parsers
// are unit-tested on fake files without root.
//
// Files read (kernel docs: Documentation/admin-guide/cgroup-v1 and cgroup-v2.rst):
//   v1 cpuacct/<path>/cpuacct.usage      cumulative CPU ns
//      cpu/<path>/cpu.cfs_quota_us, cpu.cfs_period_us   limit (-1 = none)
//      cpu/<path>/cpu.stat (nr_periods, nr_throttled, throttled_time ns)
//      blkio/<path>/blkio.throttle.io_service_bytes ("8:0 Read N" per device; on v1
//        buffered writes are flushed by the kernel's writeback and counted to the root,
//        so only direct and read I/O shows here)
//      memory/<path>/memory.usage_in_bytes, memory.limit_in_bytes, memory.stat (total_inactive_file)
//      pids/<path>/pids.current
//   v2 <path>/cpu.stat (usage_usec, nr_periods, nr_throttled, throttled_usec), io.stat, cpu.max ("max 100000" or "50000 100000"),
//      memory.current, memory.max, memory.stat (inactive_file), pids.current
import fs from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { InstanceStats } from '../driver.js';

export type CgroupLayout = 'v1' | 'v2';

/** v2 only when the unified tree holds the controllers (hybrid hosts keep them in v1). */
export function detectLayout(root = '/sys/fs/cgroup'): CgroupLayout {
  return existsSync(path.join(root, 'cgroup.controllers')) && !existsSync(path.join(root, 'memory')) ? 'v2' : 'v1';
}

/** Every folder a cgroup path occupies, deepest first (v1: one per controller). */
export function cgroupDirs(cgroupPath: string, layout: CgroupLayout, root = '/sys/fs/cgroup'): string[] {
  const rel = cgroupPath.replace(/^\/+/, '');
  if (layout === 'v2') return [path.join(root, rel)];
  return ['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'blkio', 'pids', 'net_cls', 'net_prio', 'perf_event', 'hugetlb', 'systemd']
    .map((c) => path.join(root, c, rel));
}

// Synchronous on purpose: cgroup files are tiny kernel pseudo-files, never block on a disk, and
// a read through libuv's thread pool costs several times the read itself (the metrics collector
// reads about ten per instance every round: 50 instances went from 107 to 11 ms of CPU a round, bench/metrics.ts).
async function readText(file: string): Promise<string | null> {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENODEV') return null;
    throw e;
  }
}

const num = (s: string | null): number | null => (s === null ? null : Number(s.trim()));

/** `key value` lines (memory.stat, cpu.stat) into a map. */
export function parseFlatKeyed(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, Number(v));
  }
  return m;
}

/** Sums per-device Read and Write bytes of blkio.throttle.io_service_bytes (v1). */
export function parseBlkioServiceBytes(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [dev, op, v] = line.trim().split(/\s+/);
    if (!dev || !dev.includes(':') || v === undefined) continue; // the "Total" line has no device
    if (op === 'Read') read += Number(v);
    else if (op === 'Write') write += Number(v);
  }
  return { read, write };
}

/** Sums rbytes and wbytes of io.stat (v2): "8:0 rbytes=1 wbytes=2 rios=3 ...". */
export function parseIoStat(text: string): { read: number; write: number } {
  let read = 0;
  let write = 0;
  for (const m of text.matchAll(/\b([rw])bytes=(\d+)/g)) {
    if (m[1] === 'r') read += Number(m[2]);
    else write += Number(m[2]);
  }
  return { read, write };
}

// Limits at or above this are "no limit" (v1 reports PAGE_COUNTER_MAX, about 2^63).
const UNLIMITED = 2 ** 62;

/** Reads stats; null when the cgroup does not exist (the instance was removed). */
export async function readStats(cgroupPath: string, layout: CgroupLayout, root = '/sys/fs/cgroup', now = Date.now()): Promise<InstanceStats | null> {
  const rel = cgroupPath.replace(/^\/+/, '');
  if (layout === 'v1') {
    const at = (c: string, f: string) => path.join(root, c, rel, f);
    const [usage, memUsage, memLimit, memStat, quota, period, pids, cpuStat, blkio] = await Promise.all([
      readText(at('cpuacct', 'cpuacct.usage')), readText(at('memory', 'memory.usage_in_bytes')),
      readText(at('memory', 'memory.limit_in_bytes')), readText(at('memory', 'memory.stat')),
      readText(at('cpu', 'cpu.cfs_quota_us')), readText(at('cpu', 'cpu.cfs_period_us')), readText(at('pids', 'pids.current')),
      readText(at('cpu', 'cpu.stat')), readText(at('blkio', 'blkio.throttle.io_service_bytes')),
    ]);
    if (usage === null || memUsage === null) return null;
    const stat = parseFlatKeyed(memStat ?? '');
    const used = num(memUsage)!;
    const inactive = stat.get('total_inactive_file') ?? stat.get('inactive_file') ?? 0;
    const limit = num(memLimit);
    const q = num(quota);
    const p = num(period);
    const cs = cpuStat === null ? null : parseFlatKeyed(cpuStat);
    const io = blkio === null ? null : parseBlkioServiceBytes(blkio);
    return {
      cpuUsageNs: num(usage)!,
      memoryUsageBytes: used,
      memoryWorkingSetBytes: Math.max(0, used - inactive),
      memoryLimitBytes: limit === null || limit >= UNLIMITED ? null : limit,
      cpuLimitMillis: q === null || p === null || q < 0 ? null : Math.round((q / p) * 1000),
      pids: num(pids) ?? 0,
      cpuPeriods: cs?.get('nr_periods') ?? null,
      cpuThrottledPeriods: cs?.get('nr_throttled') ?? null,
      cpuThrottledNs: cs?.get('throttled_time') ?? null,
      blkReadBytes: io?.read ?? null,
      blkWriteBytes: io?.write ?? null,
      net: null,
      at: now,
    };
  }
  const at = (f: string) => path.join(root, rel, f);
  const [cpuStat, memCurrent, memMax, memStat, cpuMax, pids, ioStat] = await Promise.all([
    readText(at('cpu.stat')), readText(at('memory.current')), readText(at('memory.max')),
    readText(at('memory.stat')), readText(at('cpu.max')), readText(at('pids.current')), readText(at('io.stat')),
  ]);
  if (cpuStat === null || memCurrent === null) return null;
  const used = num(memCurrent)!;
  const inactive = parseFlatKeyed(memStat ?? '').get('inactive_file') ?? 0;
  const [quota, period] = (cpuMax ?? 'max 100000').trim().split(/\s+/);
  const cs = parseFlatKeyed(cpuStat);
  const io = ioStat === null ? null : parseIoStat(ioStat);
  const throttledUs = cs.get('throttled_usec');
  return {
    cpuUsageNs: (cs.get('usage_usec') ?? 0) * 1000,
    memoryUsageBytes: used,
    memoryWorkingSetBytes: Math.max(0, used - inactive),
    memoryLimitBytes: memMax === null || memMax.trim() === 'max' ? null : Number(memMax),
    cpuLimitMillis: quota === 'max' || quota === undefined ? null : Math.round((Number(quota) / Number(period)) * 1000),
    pids: num(pids) ?? 0,
    cpuPeriods: cs.get('nr_periods') ?? null,
    cpuThrottledPeriods: cs.get('nr_throttled') ?? null,
    cpuThrottledNs: throttledUs === undefined ? null : throttledUs * 1000,
    blkReadBytes: io?.read ?? null,
    blkWriteBytes: io?.write ?? null,
    net: null,
    at: now,
  };
}

/** Removes a cgroup's folders, sub-cgroups first (a probe's, left by a killed carte); missing ones are fine. Returns the ones that would not go. */
export async function removeCgroup(cgroupPath: string, layout: CgroupLayout, root = '/sys/fs/cgroup'): Promise<string[]> {
  const left: string[] = [];
  const rmTree = async (dir: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await rmTree(path.join(dir, e.name));
    try {
      await fs.rmdir(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') left.push(`${dir} (${code})`);
    }
  };
  for (const dir of cgroupDirs(cgroupPath, layout, root)) await rmTree(dir);
  return left;
}

/**
 * A sub-cgroup of an instance's, for one exec and everything it starts: the
 * kernel keeps every descendant in it, whatever it does (setsid, double
 * fork, reparenting to the container's init), so ending the exec can end
 * them all. On v1 it lives in the pids and freezer hierarchies (memory and
 * CPU stay accounted to the instance); on v2 in the one tree.
 */
export interface ExecCgroup {
  /** `--cgroup` values for runc exec. */
  runcArgs: string[];
  dirs: string[];
  /** cgroup.procs of the sub-cgroup: the processes to end. */
  procs: string;
}

export function execCgroup(cgroupPath: string, layout: CgroupLayout, name: string, root = '/sys/fs/cgroup'): ExecCgroup {
  const rel = cgroupPath.replace(/^\/+/, '');
  if (layout === 'v2') {
    const dir = path.join(root, rel, name);
    return { runcArgs: [`/${name}`], dirs: [dir], procs: path.join(dir, 'cgroup.procs') };
  }
  const dirs = ['pids', 'freezer'].map((c) => path.join(root, c, rel, name));
  return { runcArgs: [`pids:/${name}`, `freezer:/${name}`], dirs, procs: path.join(dirs[0]!, 'cgroup.procs') };
}
