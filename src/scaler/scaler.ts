// The scaler: every interval it samples the cgroups of ready instances of
// autoscaled services, decides a replica count per service (decide.ts) and
// writes changes into desired state (`autoscaled` in the store, with an
// event). The reconciler does the rest; the scaler never creates or removes
// instances itself.
import fs from 'node:fs';
import type { Driver } from '../drivers/driver.js';
import type { Activity } from '../gateway/upstreams.js';
import type { Logger } from '../log.js';
import type { Membership } from '../model/instances.js';
import { recordEvent, scaledReplicas, type StateData } from '../store/state.js';
import type { Store } from '../store/store.js';
import { decide, type Decision, type Readings } from './decide.js';
import { average, MetricsRing } from './metrics.js';
import { activeBounds } from './schedule.js';

export const DEFAULT_METRICS_INTERVAL_MS = 2000;
/** CPU is averaged over this many intervals, smoothing one-sample spikes. */
const CPU_WINDOW_INTERVALS = 3;

export interface ScalerOptions {
  store: Store;
  driver: Pick<Driver, 'stats'>;
  log: Logger;
  /** Traffic through the gateway, for idleness; null when no gateway runs. */
  activity: (service: string) => Activity | null;
  /** Asks the reconciler to act now. */
  trigger: () => void;
  intervalMs?: number;
  /**
   * Where the recommendations of the scale-down window are kept across a
   * daemon restart (written on a clean stop, read at start), so a restart
   * never scales down early. Without it the window starts empty.
   */
  windowFile?: string;
  /** Host memory and what stays for the host and carte (instances get the rest). */
  totalMemoryBytes: number;
  memoryReserveBytes: number;
  clock?: () => number;
}

/** The scale-down window as saved by a clean stop. */
interface SavedWindow {
  savedAt: number;
  history: Record<string, Array<{ at: number; replicas: number }>>;
}

export interface ScalerStatus {
  at: number;
  readings: Readings;
  decision: Decision;
}

export class Scaler {
  private readonly ring = new MetricsRing();
  private readonly history = new Map<string, Array<{ at: number; replicas: number }>>();
  private readonly status = new Map<string, ScalerStatus>();
  private membership: Membership | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly clock: () => number;
  private readonly intervalMs: number;
  private readonly startedAt: number;

  constructor(private readonly opts: ScalerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.intervalMs = opts.intervalMs ?? DEFAULT_METRICS_INTERVAL_MS;
    this.startedAt = this.clock();
  }

  observe(m: Membership): void {
    this.membership = m;
  }

  start(): void {
    this.loadWindow();
    this.timer = setInterval(() => {
      if (!this.running) this.running = this.tick().catch((e: Error) => this.opts.log.error({ err: e.message }, 'scaler tick failed')).finally(() => (this.running = null));
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
    this.saveWindow();
  }

  /**
   * The window as it was at the last clean stop. After a crash (no file, or
   * one older than a window) nothing is known of the time before: each
   * autoscaled service starts with its current count as a recommendation,
   * which holds any scale-down back by one window, never makes it early.
   */
  private loadWindow(): void {
    const file = this.opts.windowFile;
    let saved: SavedWindow | null = null;
    if (file) {
      try {
        saved = JSON.parse(fs.readFileSync(file, 'utf8')) as SavedWindow;
        fs.rmSync(file, { force: true }); // used once: a later crash must not reuse it
      } catch {
        saved = null;
      }
    }
    const now = this.clock();
    void this.opts.store.readShared().then((data) => {
      for (const s of Object.values(data.services)) {
        const a = s.revision.spec.autoscale;
        if (!a || this.history.has(s.name)) continue;
        const kept = (saved?.history[s.name] ?? []).filter((h) => Number.isFinite(h.at) && Number.isInteger(h.replicas) && h.at > now - a.scaleDownDelayMs);
        const clean = saved !== null && now - saved.savedAt < a.scaleDownDelayMs;
        this.history.set(s.name, clean ? kept : [...kept, { at: now, replicas: scaledReplicas(s) }]);
      }
    }, (e: Error) => this.opts.log.warn({ err: e.message }, 'could not read state to seed the scale-down window'));
  }

  private saveWindow(): void {
    const file = this.opts.windowFile;
    if (!file) return;
    const saved: SavedWindow = { savedAt: this.clock(), history: Object.fromEntries(this.history) };
    try {
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(saved));
      fs.renameSync(`${file}.tmp`, file);
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message, file }, 'could not save the scale-down window; the next start holds scale-downs back one window');
    }
  }

  /** The latest decision per service, for `carte describe`. */
  current(): Record<string, ScalerStatus> {
    return Object.fromEntries(this.status);
  }

  /** One round: sample, decide, write what changed. */
  async tick(): Promise<void> {
    const m = this.membership;
    if (!m) return;
    const now = this.clock();
    const autoscaled = m.services.filter((s) => s.spec.autoscale && !s.suspended);
    const names = new Set(autoscaled.map((s) => s.name));
    const ready = m.instances.filter((i) => i.ready && names.has(i.service));
    this.ring.retain(new Set(ready.map((i) => i.name)));
    await Promise.all(ready.map(async (i) => {
      const s = await this.opts.driver.stats(i.name).catch(() => null); // gone meanwhile: normal
      if (s) this.ring.add(i.name, s);
    }));

    const data = await this.opts.store.readShared();
    const changes: Array<{ service: string; from: number; decision: Decision }> = [];
    for (const svc of autoscaled) {
      const stored = data.services[svc.name];
      if (!stored) continue;
      const a = svc.spec.autoscale!;
      const mine = ready.filter((i) => i.service === svc.name);
      const window = this.intervalMs * CPU_WINDOW_INTERVALS + this.intervalMs / 2;
      const cpu = mine.map((i) => (a.cpuPercent === null ? null : this.ring.cpuPercent(i.name, window)));
      const memory = mine.map((i) => (a.memoryPercent === null ? null : this.ring.memoryPercent(i.name)));
      // An instance with no reading yet (ready since one sample) is left out, like one not ready.
      const readings: Readings = { cpuPercent: average(cpu), memoryPercent: average(memory), measured: mine.filter((_, k) => cpu[k] !== null || memory[k] !== null).length };
      const current = scaledReplicas(stored);
      const history = (this.history.get(svc.name) ?? []).filter((h) => h.at > now - a.scaleDownDelayMs);
      const decision = decide({
        service: svc.name, autoscale: a, current, readings, bounds: activeBounds(a, now), history, now,
        memory: { perInstanceBytes: svc.spec.resources.memoryBytes, availableBytes: this.availableMemory(data) },
        idleForMs: this.idleFor(svc.name, stored.autoscaled?.at ?? null, now),
      });
      // Only what readings asked for goes into the window: a round without readings (just started,
      // instances not ready) says nothing of the load, and would hold scale-downs back for nothing.
      if (readings.measured > 0) history.push({ at: now, replicas: decision.recommendation });
      this.history.set(svc.name, history);
      this.status.set(svc.name, { at: now, readings, decision });
      if (decision.replicas !== current) changes.push({ service: svc.name, from: current, decision });
    }
    for (const name of this.status.keys()) if (!names.has(name)) this.status.delete(name);
    if (!changes.length) return;
    await this.opts.store.update((d: StateData) => {
      const at = new Date(this.clock());
      for (const c of changes) {
        const s = d.services[c.service];
        // Changed meanwhile (a wake, a new manifest): decide again next round.
        if (!s || s.suspended || !s.revision.spec.autoscale || scaledReplicas(s) !== c.from) continue;
        s.autoscaled = { replicas: c.decision.replicas, at: at.toISOString(), reason: c.decision.reason };
        recordEvent(d, at, { type: 'Normal', object: `service/${c.service}`, reason: c.decision.replicas === 0 ? 'ScaledToZero' : 'Autoscaled', message: c.decision.reason });
      }
    });
    for (const c of changes) this.opts.log.info({ service: c.service, from: c.from, to: c.decision.replicas, reason: c.decision.reason }, 'autoscaled');
    this.opts.trigger();
  }

  /** Bytes the host can still give instances: total − reserve − the memory limits of every desired instance. */
  private availableMemory(data: StateData): number {
    let used = 0;
    for (const s of Object.values(data.services)) {
      const per = s.revision.spec.resources.memoryBytes;
      if (per && !s.suspended) used += per * scaledReplicas(s);
    }
    return this.opts.totalMemoryBytes - this.opts.memoryReserveBytes - used;
  }

  /** How long the service has had no traffic (null while it has some): since its last connection, its last scaling, or the scaler's start. */
  private idleFor(service: string, scaledAt: string | null, now: number): number | null {
    const a = this.opts.activity(service);
    // A connection waiting for the service (it is waking) is traffic too.
    if (!a || a.active > 0 || a.waiting > 0) return null;
    const since = Math.max(a.lastActivityAt ?? 0, scaledAt ? Date.parse(scaledAt) : 0, this.startedAt);
    return now - since;
  }
}
