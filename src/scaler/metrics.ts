// Per-instance readings kept in memory: a short ring of cgroup samples per
// instance (no disk write per sample). CPU is a rate between samples (the
// cgroup counter is cumulative), as a percentage of the instance's CPU limit;
// memory is the working set (usage minus inactive file cache) as a
// percentage of its memory limit.
import type { InstanceStats } from '../drivers/driver.js';

export const RING_SIZE = 16;

export class MetricsRing {
  private readonly samples = new Map<string, InstanceStats[]>();

  add(instance: string, s: InstanceStats): void {
    const ring = this.samples.get(instance) ?? [];
    ring.push(s);
    if (ring.length > RING_SIZE) ring.shift();
    this.samples.set(instance, ring);
  }

  /** Forgets instances that no longer exist. */
  retain(live: ReadonlySet<string>): void {
    for (const name of this.samples.keys()) if (!live.has(name)) this.samples.delete(name);
  }

  /** CPU use over the last `windowMs` (at least two samples), % of the CPU limit; null without a limit or samples. */
  cpuPercent(instance: string, windowMs: number): number | null {
    const ring = this.samples.get(instance) ?? [];
    const last = ring.at(-1);
    if (!last || last.cpuLimitMillis === null) return null;
    const first = ring.find((s) => s.at >= last.at - windowMs && s !== last) ?? null;
    if (!first || last.at <= first.at) return null;
    const cores = Math.max(0, last.cpuUsageNs - first.cpuUsageNs) / ((last.at - first.at) * 1e6);
    return (cores * 1000 * 100) / last.cpuLimitMillis;
  }

  /** The latest working set, % of the memory limit; null without a limit or a sample. */
  memoryPercent(instance: string): number | null {
    const last = this.samples.get(instance)?.at(-1);
    if (!last || !last.memoryLimitBytes) return null;
    return (last.memoryWorkingSetBytes * 100) / last.memoryLimitBytes;
  }
}

/** The mean of the non-null values, or null when there are none. */
export function average(values: ReadonlyArray<number | null>): number | null {
  const xs = values.filter((v): v is number => v !== null);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}
