// Per-service disk quotas (the server policy's disk.perService): what a
// service's instances wrote over their images (their writable layers) and
// the named volumes it mounts, measured on an interval, since this machine's
// filesystem has no project quotas to let the kernel enforce it.
//
// Over its quota, the instance that wrote the most is replaced (a fresh
// writable layer, as Kubernetes evicts a pod over its ephemeral-storage
// limit): the reconciler does it, like any restart, with the reason in the
// event. The volumes count first: the writable layers may use what the
// volumes leave of the quota (none, when they alone are over it), so volumes
// over the quota never shelter a writer — a service could otherwise fill the
// disk through its root filesystem once its volumes passed the quota. What
// only removing volume data can fix is a Warning event saying so.
//
// A service measured over half its quota is measured again sooner
// (nextCheckMs), so a fast writer gets less time between checks.
import type { Driver } from '../drivers/driver.js';
import type { Logger } from '../log.js';
import type { DesiredService, Membership } from '../model/instances.js';
import { formatMemory } from '../schema/units.js';
import { recordEvent } from '../store/state.js';
import type { Store } from '../store/store.js';

export const DEFAULT_DISK_INTERVAL_MS = 30_000;
/** A writable layer this small is not worth a replacement (it frees next to nothing). */
export const EVICT_FLOOR_BYTES = 2 ** 20;
/** Usage over this share of the quota brings the next measurement forward. */
export const NEAR_QUOTA = 0.5;
/** How much sooner the next measurement of a service near its quota comes (never under 1 s). */
const NEAR_QUOTA_SPEEDUP = 6;

export interface ServiceDiskUse {
  service: string;
  quotaBytes: number;
  instances: ReadonlyArray<{ name: string; bytes: number }>;
  volumes: ReadonlyArray<{ name: string; bytes: number }>;
}

export interface DiskVerdict {
  service: string;
  /** The instance to replace, or null when replacing one would not help (volumes alone are over). */
  evict: string | null;
  reason: string;
}

const sum = (xs: ReadonlyArray<{ bytes: number }>) => xs.reduce((n, x) => n + x.bytes, 0);

/** Measured sizes, rounded for people: 16.0Mi, 2.3Gi, 512Ki. */
export function roundBytes(b: number): string {
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(1)}Gi`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(1)}Mi`;
  return `${Math.round(b / 1024)}Ki`;
}

/** Pure: whether a service is over its quota, and what to do about it. */
export function judgeDisk(u: ServiceDiskUse): DiskVerdict | null {
  const layers = sum(u.instances);
  const volumes = sum(u.volumes);
  if (layers + volumes <= u.quotaBytes) return null;
  const head = `${u.service} uses ${roundBytes(layers + volumes)} of its ${formatMemory(u.quotaBytes)} disk quota (writable layers ${roundBytes(layers)}, volumes ${roundBytes(volumes)})`;
  const volumesOver = volumes > u.quotaBytes;
  // What the volumes leave of the quota is the writable layers' budget; over the quota, the
  // layers are over it (by construction), so only a top writer too small to matter is spared.
  const biggest = [...u.instances].sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1))[0];
  if (biggest && biggest.bytes > EVICT_FLOOR_BYTES) {
    const also = volumesOver ? '; its volumes alone are over it too: remove data from them' : '';
    return { service: u.service, evict: biggest.name, reason: `${head}: ${biggest.name} wrote ${roundBytes(biggest.bytes)} and is replaced${also}` };
  }
  if (volumesOver) return { service: u.service, evict: null, reason: `${head}: its volumes alone are over it; remove data from them (replacing an instance would not help)` };
  return { service: u.service, evict: null, reason: `${head}: no instance wrote over ${roundBytes(EVICT_FLOOR_BYTES)}; remove data from its volumes (replacing an instance would free next to nothing)` };
}

/**
 * Pure: when to measure next. A service over NEAR_QUOTA of its quota is
 * measured NEAR_QUOTA_SPEEDUP times as often (5 s for the default 30 s), not
 * under 1 s: measuring is a walk of the writable layers, cheap for one service.
 */
export function nextCheckMs(intervalMs: number, uses: ReadonlyArray<ServiceDiskUse>): number {
  const near = uses.some((u) => sum(u.instances) + sum(u.volumes) > u.quotaBytes * NEAR_QUOTA);
  return near ? Math.min(intervalMs, Math.max(1_000, Math.round(intervalMs / NEAR_QUOTA_SPEEDUP))) : intervalMs;
}

export interface DiskQuotaOptions {
  driver: Pick<Driver, 'diskUsage'>;
  store: Store;
  log: Logger;
  /** A service's quota in bytes (its source's policy section), or null for none. */
  quotaOf: (service: string) => number | null | Promise<number | null>;
  /** Asks the reconciler to replace an instance, with the reason for its event. */
  evict: (instance: string, reason: string) => void;
  intervalMs?: number;
}

export class DiskQuota {
  private membership: Membership | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** The last warning per service, so one condition is one event. */
  private readonly warned = new Map<string, string>();
  /** What the last round measured, for the time of the next one. */
  private lastUses: ServiceDiskUse[] = [];

  constructor(private readonly opts: DiskQuotaOptions) {}

  observe(m: Membership): void {
    this.membership = m;
  }

  start(): void {
    const interval = this.opts.intervalMs ?? DEFAULT_DISK_INTERVAL_MS;
    // A timeout per round, not an interval: rounds never overlap, and the next one's time
    // depends on what this one measured.
    const schedule = (ms: number) => {
      this.timer = setTimeout(() => {
        this.running = this.tick().then(() => undefined, (e: Error) => this.opts.log.error({ err: e.message }, 'disk quota round failed')).finally(() => {
          this.running = null;
          if (this.timer) schedule(nextCheckMs(interval, this.lastUses));
        });
      }, ms);
    };
    schedule(interval);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One round: measure every service that has a quota, act on those over it. */
  async tick(): Promise<DiskVerdict[]> {
    const m = this.membership;
    if (!m) return [];
    const verdicts: DiskVerdict[] = [];
    const uses: ServiceDiskUse[] = [];
    this.lastUses = uses;
    for (const svc of m.services) {
      const quotaBytes = await this.opts.quotaOf(svc.name);
      if (quotaBytes === null) continue;
      const use = await this.measure(svc, m, quotaBytes);
      uses.push(use);
      const verdict = judgeDisk(use);
      if (!verdict) {
        this.warned.delete(svc.name);
        continue;
      }
      verdicts.push(verdict);
      if (verdict.evict) this.opts.evict(verdict.evict, verdict.reason);
      if (this.warned.get(svc.name) !== verdict.reason) {
        this.warned.set(svc.name, verdict.reason);
        this.opts.log.warn({ service: svc.name, instance: verdict.evict }, verdict.reason);
        await this.opts.store.update((d) => {
          recordEvent(d, new Date(), { type: 'Warning', object: `service/${svc.name}`, reason: 'DiskQuotaExceeded', message: verdict.reason });
        }).catch((e: Error) => this.opts.log.error({ err: e.message }, 'could not record a disk quota event'));
      }
    }
    return verdicts;
  }

  private async measure(svc: DesiredService, m: Membership, quotaBytes: number): Promise<ServiceDiskUse> {
    const instances = await Promise.all(m.instances.filter((i) => i.service === svc.name).map(async (i) => ({ name: i.name, bytes: (await this.opts.driver.diskUsage({ instance: i.name })) ?? 0 })));
    const names = [...new Set(svc.spec.volumes.flatMap((v) => (v.kind === 'named' ? [v.name] : [])))];
    const volumes = await Promise.all(names.map(async (name) => ({ name, bytes: (await this.opts.driver.diskUsage({ volume: name })) ?? 0 })));
    return { service: svc.name, quotaBytes, instances, volumes };
  }
}
