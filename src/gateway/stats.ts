// Per-service traffic counters of the gateway, cumulative since the daemon
// started: requests, errors, and a latency histogram for HTTP services. The
// collector turns two readings into rates and percentiles (src/metrics/).
// Cheap on the hot path: a map lookup, two increments, a scan of a dozen
// bucket bounds per request; nothing is allocated per request.

/** Upper bounds (ms) of the latency buckets; a last, open bucket takes the rest. */
export const LATENCY_BUCKETS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000];

export interface TrafficCounters {
  /** HTTP requests (and upgrades) received, and TCP connections accepted. */
  requests: number;
  /** Responses ≥ 500, upstream failures, connections refused or with no instance to take them. */
  errors: number;
  /** Requests per latency bucket (LATENCY_BUCKETS_MS, then the open one), non-cumulative. */
  latencyBuckets: number[];
  latencySumMs: number;
  latencyCount: number;
}

export class TrafficStats {
  private readonly byService = new Map<string, TrafficCounters>();

  private of(service: string): TrafficCounters {
    let c = this.byService.get(service);
    if (!c) {
      c = { requests: 0, errors: 0, latencyBuckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0), latencySumMs: 0, latencyCount: 0 };
      this.byService.set(service, c);
    }
    return c;
  }

  request(service: string): void {
    this.of(service).requests++;
  }

  error(service: string): void {
    this.of(service).errors++;
  }

  /** One request answered after `ms` (whatever its status). */
  latency(service: string, ms: number): void {
    const c = this.of(service);
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++;
    c.latencyBuckets[i]!++;
    c.latencySumMs += ms;
    c.latencyCount++;
  }

  /** A copy of a service's counters (zeros for one never seen). */
  read(service: string): TrafficCounters {
    const c = this.byService.get(service);
    return c ? { ...c, latencyBuckets: [...c.latencyBuckets] } : { requests: 0, errors: 0, latencyBuckets: new Array<number>(LATENCY_BUCKETS_MS.length + 1).fill(0), latencySumMs: 0, latencyCount: 0 };
  }

  /** Forgets services that are gone (their counters restart at zero if they come back: a counter reset). */
  retain(live: ReadonlySet<string>): void {
    for (const s of this.byService.keys()) if (!live.has(s)) this.byService.delete(s);
  }
}
