// The host's readings: CPU from /proc/stat (cumulative jiffies of all CPUs:
// busy share between two readings), memory from /proc/meminfo (used = total −
// available, as `free` shows it), and the free space of the filesystem
// holding CARTE_HOME (statfs: what an unprivileged writer can use).
import fs from 'node:fs/promises';
import os from 'node:os';
import type { HostSample } from './types.js';

export interface CpuTimes {
  /** Every jiffy counted (all states), and the idle ones (idle + iowait). */
  total: number;
  idle: number;
}

/** The aggregate `cpu` line of /proc/stat. */
export function parseProcStat(text: string): CpuTimes | null {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return null;
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
  return { total, idle: (f[3] ?? 0) + (f[4] ?? 0) };
}

/** MemTotal and MemAvailable of /proc/meminfo, in bytes. */
export function parseMeminfo(text: string): { totalBytes: number; availableBytes: number } | null {
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  return total === null || available === null ? null : { totalBytes: total, availableBytes: available };
}

/** Busy share of all CPUs between two readings, 0–100; null without a previous one or time between. */
export function cpuPercent(prev: CpuTimes | null, cur: CpuTimes): number | null {
  if (!prev) return null;
  const total = cur.total - prev.total;
  const idle = cur.idle - prev.idle;
  if (total <= 0) return null;
  return Math.min(100, Math.max(0, ((total - idle) * 100) / total));
}

export class HostReader {
  private prev: CpuTimes | null = null;

  constructor(private readonly home: string, private readonly procRoot = '/proc') {}

  async read(at: number): Promise<HostSample> {
    const [stat, meminfo, fsStat] = await Promise.all([
      fs.readFile(`${this.procRoot}/stat`, 'utf8').catch(() => ''),
      fs.readFile(`${this.procRoot}/meminfo`, 'utf8').catch(() => ''),
      fs.statfs(this.home).catch(() => null),
    ]);
    const times = parseProcStat(stat);
    const percent = times ? cpuPercent(this.prev, times) : null;
    if (times) this.prev = times;
    const mem = parseMeminfo(meminfo);
    return {
      at,
      cpuPercent: percent,
      cores: os.availableParallelism(),
      memoryUsedBytes: mem ? mem.totalBytes - mem.availableBytes : os.totalmem() - os.freemem(),
      memoryTotalBytes: mem?.totalBytes ?? os.totalmem(),
      diskFreeBytes: fsStat ? Number(fsStat.bavail) * Number(fsStat.bsize) : 0,
      diskTotalBytes: fsStat ? Number(fsStat.blocks) * Number(fsStat.bsize) : 0,
    };
  }
}
