// The metrics collector: the daemon's MetricsView. Every interval (10 s by
// default) it reads each instance's counters from the driver, each service's
// from the gateway and the host's, turns them into rates against the round
// before (rates.ts), keeps them (history.ts) and tells its listeners. Each
// instance is read on its own with a deadline, all at once: one that is slow
// or failing is left out of that round, never holding up the others. The
// history is saved rarely (persist.ts) and loaded at start.
import type { InstanceStats } from '../drivers/driver.js';
import type { ServiceTraffic } from '../gateway/gateway.js';
import type { Logger } from '../log.js';
import { safeInterval, withDeadline } from '../util/timers.js';
import { History, defaultTiers, valuesOf } from './history.js';
import { loadHistory, saveHistory } from './persist.js';
import { instanceSample, serviceSample } from './rates.js';
import type { HostSample, InstanceSample, MetricsSnapshot, MetricsView, Series, SeriesKind, SeriesQuery, ServiceSample } from './types.js';

export const DEFAULT_INTERVAL_MS = 10_000;
/** Once an hour (and at every stop): SD cards and small disks see a few hundred KB an hour; a crash loses at most this much history. */
export const DEFAULT_PERSIST_EVERY_MS = 60 * 60_000;

/** What to sample this round: the instances carte manages (with what the store says of them) and the services. */
export interface CollectorTargets {
  instances: Array<{ name: string; service: string; restarts: number; ready: boolean }>;
  services: string[];
}

export interface CollectorOptions {
  log: Logger;
  /** The driver's stats (null: the instance does not run). */
  stats(instance: string): Promise<InstanceStats | null>;
  targets(): Promise<CollectorTargets>;
  /** The gateway's counters of a service. */
  traffic?(service: string): ServiceTraffic;
  host?: { read(at: number): Promise<HostSample> } | null;
  intervalMs?: number;
  /** How long one instance's reading may take before it is left out of the round (default: a quarter of the interval, at most 2 s). */
  statsTimeoutMs?: number;
  history?: History;
  /** Where the history is saved (null: never). */
  persistFile?: string | null;
  persistEveryMs?: number;
  clock?: () => number;
}

/** The last round's raw cumulative readings (for Prometheus counters, which are cumulative). */
export interface RawReadings {
  instances: Array<{ instance: string; service: string; restarts: number; ready: boolean; stats: InstanceStats }>;
  services: Array<{ service: string; traffic: ServiceTraffic }>;
}

const EMPTY: MetricsSnapshot = { at: 0, instances: [], services: [], host: null };
const TIMED_OUT = Symbol('timed out');

export class Collector implements MetricsView {
  readonly intervalMs: number;
  readonly history: History;
  private readonly clock: () => number;
  private snapshot: MetricsSnapshot = EMPTY;
  private rawReadings: RawReadings = { instances: [], services: [] };
  private readonly prevStats = new Map<string, InstanceStats>();
  private readonly prevTraffic = new Map<string, { at: number; traffic: ServiceTraffic }>();
  private readonly listeners = new Set<(s: MetricsSnapshot) => void>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastSaved = 0;
  private saving: Promise<void> | null = null;
  private reportedDrops = 0;
  /** Bytes of the last save (for the benchmark and the logs). */
  lastSavedBytes = 0;

  constructor(private readonly opts: CollectorOptions) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.history = opts.history ?? new History({ tiers: defaultTiers(this.intervalMs) });
    this.clock = opts.clock ?? Date.now;
  }

  /** Loads the saved history, samples at once, then every interval. */
  async start(): Promise<void> {
    if (this.opts.persistFile) {
      const loaded = await loadHistory(this.opts.persistFile, this.history);
      if (loaded.problem) this.opts.log.warn({ file: this.opts.persistFile, problem: loaded.problem }, 'metrics history file ignored; history starts empty');
      else if (loaded.restored) this.opts.log.info({ series: loaded.restored }, 'metrics history loaded');
    }
    this.lastSaved = this.clock();
    const round = () => {
      this.running ??= this.sample().then(() => undefined, (e: Error) => this.opts.log.error({ err: e.message }, 'metrics sampling failed')).finally(() => (this.running = null));
    };
    round();
    this.timer = safeInterval(round, this.intervalMs);
  }

  /** Stops sampling and saves the history (a round in flight is not waited for: it only adds a sample). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.saving;
    if (this.opts.persistFile) await this.save();
  }

  /** One sampling round. */
  async sample(): Promise<MetricsSnapshot> {
    const at = this.clock();
    const targets = await this.opts.targets();
    const timeout = this.opts.statsTimeoutMs ?? Math.min(2000, Math.max(50, this.intervalMs / 4));
    const [readings, host] = await Promise.all([
      Promise.allSettled(targets.instances.map((i) => withDeadline<InstanceStats | null | typeof TIMED_OUT>(this.opts.stats(i.name), timeout, TIMED_OUT))),
      this.opts.host ? this.opts.host.read(at).catch((e: Error) => (this.opts.log.warn({ err: e.message }, 'could not read the host'), null)) : Promise.resolve(null),
    ]);
    const instances: InstanceSample[] = [];
    const raw: RawReadings = { instances: [], services: [] };
    const live = new Set<string>();
    targets.instances.forEach((meta, i) => {
      const r = readings[i]!;
      live.add(meta.name);
      if (r.status === 'rejected' || r.value === TIMED_OUT) {
        this.opts.log.debug({ instance: meta.name, err: r.status === 'rejected' ? String(r.reason) : `no answer within ${timeout} ms` }, 'instance left out of this metrics round');
        return;
      }
      if (r.value === null) {
        this.prevStats.delete(meta.name); // not running: the next life starts its rates afresh
        return;
      }
      instances.push(instanceSample(this.prevStats.get(meta.name) ?? null, r.value, { instance: meta.name, service: meta.service, restarts: meta.restarts, ready: meta.ready }));
      this.prevStats.set(meta.name, r.value);
      raw.instances.push({ instance: meta.name, service: meta.service, restarts: meta.restarts, ready: meta.ready, stats: r.value });
    });
    for (const name of this.prevStats.keys()) if (!live.has(name)) this.prevStats.delete(name);

    const services: ServiceSample[] = [];
    if (this.opts.traffic) {
      for (const service of targets.services) {
        const traffic = this.opts.traffic(service);
        const prev = this.prevTraffic.get(service) ?? null;
        services.push(serviceSample(service, at, prev?.traffic ?? null, traffic, prev ? at - prev.at : 0));
        this.prevTraffic.set(service, { at, traffic });
        raw.services.push({ service, traffic });
      }
      const wanted = new Set(targets.services);
      for (const s of this.prevTraffic.keys()) if (!wanted.has(s)) this.prevTraffic.delete(s);
    }

    // History: every sample, and what is gone closes its last steps.
    for (const s of instances) this.history.append('instance', s.instance, at, valuesOf('instance', s));
    for (const s of services) this.history.append('service', s.service, at, valuesOf('service', s));
    if (host) this.history.append('host', '', at, valuesOf('host', host));
    const sampledServices = new Set(services.map((s) => s.service));
    for (const name of this.snapshot.instances.map((s) => s.instance)) if (!live.has(name)) this.history.finish('instance', name);
    for (const name of this.snapshot.services.map((s) => s.service)) if (!sampledServices.has(name)) this.history.finish('service', name);
    this.history.prune(at);
    if (this.history.dropped > this.reportedDrops) {
      this.reportedDrops = this.history.dropped;
      this.opts.log.warn({ maxBytes: this.history.maxBytes, dropped: this.history.dropped }, 'metrics history is at its memory cap; the oldest series were dropped');
    }

    instances.sort((a, b) => (a.instance < b.instance ? -1 : 1));
    this.snapshot = { at, instances, services, host };
    this.rawReadings = raw;
    for (const cb of this.listeners) {
      try {
        cb(this.snapshot);
      } catch (e) {
        this.opts.log.error({ err: (e as Error).message }, 'a metrics listener failed');
      }
    }
    if (this.opts.persistFile && this.timer && at - this.lastSaved >= (this.opts.persistEveryMs ?? DEFAULT_PERSIST_EVERY_MS)) {
      this.lastSaved = at;
      this.saving ??= this.save().finally(() => (this.saving = null));
    }
    return this.snapshot;
  }

  private async save(): Promise<void> {
    try {
      this.lastSavedBytes = await saveHistory(this.opts.persistFile!, this.history);
    } catch (e) {
      this.opts.log.warn({ file: this.opts.persistFile, err: (e as Error).message }, 'could not save the metrics history');
    }
  }

  raw(): RawReadings {
    return this.rawReadings;
  }

  latest(): MetricsSnapshot {
    return this.snapshot;
  }

  series(q: SeriesQuery): Series {
    return this.history.query(q, Math.max(this.clock(), this.snapshot.at));
  }

  known(kind: SeriesKind): string[] {
    return this.history.known(kind);
  }

  onSample(cb: (s: MetricsSnapshot) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
}
