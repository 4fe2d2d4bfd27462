// Counter math, pure: two readings of cumulative counters (kernel cgroup and
// /proc counters, the gateway's) become per-second rates and percentiles. A
// counter that went down was reset (the instance restarted under the same
// name, the daemon restarted, an interface was made again): as Prometheus
// does, the new value is then taken as the increase since the reset.
import type { InstanceStats } from '../drivers/driver.js';
import type { ServiceTraffic } from '../gateway/gateway.js';
import { LATENCY_BUCKETS_MS } from '../gateway/stats.js';
import type { InstanceSample, ServiceSample } from './types.js';

/** The increase of a counter between two readings; null when either is unknown. */
export function increase(prev: number | null | undefined, cur: number | null | undefined): number | null {
  if (prev === null || prev === undefined || cur === null || cur === undefined) return null;
  return cur >= prev ? cur - prev : cur;
}

/** Per second over `dtMs`; null when unknown or no time passed. */
export function rate(prev: number | null | undefined, cur: number | null | undefined, dtMs: number): number | null {
  const inc = increase(prev, cur);
  return inc === null || dtMs <= 0 ? null : (inc * 1000) / dtMs;
}

export interface InstanceMeta {
  instance: string;
  service: string;
  restarts: number;
  ready: boolean;
}

/** One instance's sample from its reading now and the one before (null on the first). */
export function instanceSample(prev: InstanceStats | null, cur: InstanceStats, meta: InstanceMeta): InstanceSample {
  const dt = prev ? cur.at - prev.at : 0;
  const r = (f: (s: InstanceStats) => number | null | undefined) => (prev ? rate(f(prev), f(cur), dt) : null);
  const cpuNsPerSec = r((s) => s.cpuUsageNs);
  const periods = prev ? increase(prev.cpuPeriods, cur.cpuPeriods) : null;
  const throttled = prev ? increase(prev.cpuThrottledPeriods, cur.cpuThrottledPeriods) : null;
  return {
    at: cur.at,
    instance: meta.instance,
    service: meta.service,
    cpuCores: cpuNsPerSec === null ? null : cpuNsPerSec / 1e9,
    // Share of the CFS periods in which it ran that it was held back in (as cAdvisor's throttled ratio).
    cpuThrottled: periods === null || throttled === null ? null : periods === 0 ? 0 : Math.min(1, throttled / periods),
    cpuLimitCores: cur.cpuLimitMillis === null ? null : cur.cpuLimitMillis / 1000,
    memoryWorkingSetBytes: cur.memoryWorkingSetBytes,
    memoryLimitBytes: cur.memoryLimitBytes,
    netRxBytesPerSec: r((s) => s.net?.rxBytes),
    netTxBytesPerSec: r((s) => s.net?.txBytes),
    netRxPacketsPerSec: r((s) => s.net?.rxPackets),
    netTxPacketsPerSec: r((s) => s.net?.txPackets),
    blkReadBytesPerSec: r((s) => s.blkReadBytes),
    blkWriteBytesPerSec: r((s) => s.blkWriteBytes),
    pids: cur.pids,
    restarts: meta.restarts,
    ready: meta.ready,
  };
}

/**
 * The q-quantile (0–1) of the latencies counted in `buckets` (per bucket of
 * LATENCY_BUCKETS_MS, then the open one), interpolated linearly within its
 * bucket as Prometheus's histogram_quantile does; one in the open bucket
 * reads as the last finite bound. Null without any count.
 */
export function histogramQuantile(q: number, buckets: readonly number[], bounds: readonly number[] = LATENCY_BUCKETS_MS): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i]!;
    if (n > 0 && seen + n >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1]!;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      return lower + (bounds[i]! - lower) * ((rank - seen) / n);
    }
    seen += n;
  }
  return bounds[bounds.length - 1]!;
}

/** One service's sample from its traffic counters now and the ones `dtMs` before (null on the first: rates 0). */
export function serviceSample(service: string, at: number, prev: ServiceTraffic | null, cur: ServiceTraffic, dtMs: number): ServiceSample {
  const reset = prev !== null && (cur.requests < prev.requests || cur.latencyCount < prev.latencyCount);
  const base = prev === null || reset ? null : prev;
  const buckets = cur.latencyBuckets.map((n, i) => (base ? n - base.latencyBuckets[i]! : prev === null ? 0 : n));
  const perSec = (p: number | undefined, c: number) => (prev === null || dtMs <= 0 ? 0 : (((base ? c - p! : c) * 1000) / dtMs));
  return {
    at,
    service,
    connections: cur.connections,
    requestsPerSec: perSec(base?.requests, cur.requests),
    errorsPerSec: perSec(base?.errors, cur.errors),
    latencyP50Ms: histogramQuantile(0.5, buckets),
    latencyP95Ms: histogramQuantile(0.95, buckets),
    latencyP99Ms: histogramQuantile(0.99, buckets),
  };
}
