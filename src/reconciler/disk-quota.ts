// Per-service disk quotas (the server policy's disk.perService): what a
// service's instances wrote over their images (their writable layers) and
// the named volumes it mounts, measured on an interval, since this machine's
// filesystem has no project quotas to let the kernel enforce it.
//
// Over its quota, the instance that wrote the most is replaced (a fresh
// writable layer, as Kubernetes evicts a pod over its ephemeral-storage
// limit): the reconciler does it, like any restart, with the reason in the
// event. Volumes alone over the quota cannot be fixed by a replacement: that
// is a Warning event, once, saying what to remove.
import type { Driver } from '../drivers/driver.js';
import type { Logger } from '../log.js';
import type { DesiredService, Membership } from '../model/instances.js';
import { formatMemory } from '../schema/units.js';
import { recordEvent } from '../store/state.js';
import type { Store } from '../store/store.js';

export const DEFAULT_DISK_INTERVAL_MS = 30_000;

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
  const biggest = [...u.instances].sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1))[0];
  if (!biggest || biggest.bytes === 0 || volumes > u.quotaBytes) {
    return { service: u.service, evict: null, reason: `${head}: its volumes alone are over it; remove data from them (replacing an instance would not help)` };
  }
  return { service: u.service, evict: biggest.name, reason: `${head}: ${biggest.name} wrote ${roundBytes(biggest.bytes)} and is replaced` };
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

  constructor(private readonly opts: DiskQuotaOptions) {}

  observe(m: Membership): void {
    this.membership = m;
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.tick().then(() => undefined, (e: Error) => this.opts.log.error({ err: e.message }, 'disk quota round failed')).finally(() => (this.running = null));
    }, this.opts.intervalMs ?? DEFAULT_DISK_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One round: measure every service that has a quota, act on those over it. */
  async tick(): Promise<DiskVerdict[]> {
    const m = this.membership;
    if (!m) return [];
    const verdicts: DiskVerdict[] = [];
    for (const svc of m.services) {
      const quotaBytes = await this.opts.quotaOf(svc.name);
      if (quotaBytes === null) continue;
      const use = await this.measure(svc, m, quotaBytes);
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
