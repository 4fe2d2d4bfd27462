// What the daemon's metrics collector offers its readers (the Prometheus
// endpoint, `carte top`/`carte stats`, the alert rules and the dashboard).
// Counters from the kernel are cumulative; these are already rates per second
// between two samples, so readers never do counter math themselves.

/** One instance at one sampling instant. Rates are null until two samples exist. */
export interface InstanceSample {
  at: number; // ms since the epoch
  instance: string;
  service: string;
  /** CPU in cores (1.0 = one core busy); null on the first sample. */
  cpuCores: number | null;
  /** Share of the last interval the instance was throttled by its CPU limit (0–1). */
  cpuThrottled: number | null;
  cpuLimitCores: number | null;
  memoryWorkingSetBytes: number;
  memoryLimitBytes: number | null;
  netRxBytesPerSec: number | null;
  netTxBytesPerSec: number | null;
  netRxPacketsPerSec: number | null;
  netTxPacketsPerSec: number | null;
  blkReadBytesPerSec: number | null;
  blkWriteBytesPerSec: number | null;
  pids: number;
  restarts: number;
  ready: boolean;
}

/** One service's traffic through the gateway over the last interval. */
export interface ServiceSample {
  at: number;
  service: string;
  /** Open connections now (TCP and HTTP). */
  connections: number;
  requestsPerSec: number;
  /** Responses ≥ 500, upstream failures and refused connections, per second. */
  errorsPerSec: number;
  /** Request latency over the interval (null without requests). */
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  latencyP99Ms: number | null;
}

export interface HostSample {
  at: number;
  /** All CPUs, 0–100 (100 = every core busy). */
  cpuPercent: number | null;
  cores: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
  /** The filesystem holding CARTE_HOME. */
  diskFreeBytes: number;
  diskTotalBytes: number;
}

export interface MetricsSnapshot {
  at: number;
  instances: InstanceSample[];
  services: ServiceSample[];
  host: HostSample | null;
}

export type SeriesKind = 'instance' | 'service' | 'host';

export interface SeriesQuery {
  kind: SeriesKind;
  /** Instance or service name; '' for the host. */
  name: string;
  /** A numeric field of the sample type, e.g. 'cpuCores', 'memoryWorkingSetBytes', 'requestsPerSec'. */
  metric: string;
  fromMs: number;
  toMs: number;
  /** Downsample to at most this many points (averages). */
  maxPoints?: number;
}

export interface Series {
  /** Point times (ms since the epoch), ascending, and their values (null: no reading). */
  t: number[];
  v: Array<number | null>;
  /** The resolution the points come from. */
  stepMs: number;
}

export interface MetricsView {
  latest(): MetricsSnapshot;
  series(q: SeriesQuery): Series;
  /** Names with history (instances include ones that are gone, while their history lasts). */
  known(kind: SeriesKind): string[];
  /** Called after every sampling round. Returns an unsubscribe. */
  onSample(cb: (s: MetricsSnapshot) => void): () => void;
}
