// The alert engine in the daemon: on its own interval it gathers what the
// rules read (the store's snapshot, the collector's latest sample, the disk
// of CARTE_HOME), asks the pure rules what holds (conditions.ts) and the pure
// state machine what changed (machine.ts), and only on a change writes the
// store (active alerts and an AlertFired/AlertResolved event), tells its
// listeners and queues the webhooks. It reads the collector, never waits on
// it; the webhooks never wait on anything here (webhook.ts).
import fs from 'node:fs';
import type { Logger } from '../log.js';
import type { MetricsView } from '../metrics/types.js';
import { formatDuration } from '../schema/units.js';
import { recordEvent, type StateData } from '../store/state.js';
import type { Store } from '../store/store.js';
import type { AlertsConfig } from './config.js';
import { observe, type RuleInputs } from './conditions.js';
import { advance, seed, type Track } from './machine.js';
import type { Alert, AlertsView } from './types.js';
import type { WebhookSender } from './webhook.js';

/** Alerts kept in the state file: firing ones (beyond this many, the oldest are not kept) and resolved ones. */
export const ACTIVE_LIMIT = 200;
export const RESOLVED_LIMIT = 100;

export interface AlertEngineOptions {
  store: Store;
  log: Logger;
  config: AlertsConfig;
  /** The collector; null without one (memory-high then sees nothing, disk-low reads the disk itself). */
  metrics?: MetricsView | null;
  /** The scaler's latest reason per service, for scaled-to-max. */
  scalerReasons?: () => Record<string, string>;
  webhooks?: WebhookSender | null;
  clock?: () => number;
}

/** The alerts as the state file keeps them (what `carte status` and `carte alerts` read without a daemon). */
export function storedAlerts(data: Readonly<StateData>): { active: Alert[]; resolved: Alert[] } {
  return { active: data.alerts?.active ?? [], resolved: data.alerts?.resolved ?? [] };
}

const newestFirst = (a: Alert, b: Alert) => (a.firedAt < b.firedAt ? 1 : a.firedAt > b.firedAt ? -1 : a.id < b.id ? -1 : 1);

/** Firing and recently resolved, newest first. */
export function recentAlerts(s: { active: readonly Alert[]; resolved: readonly Alert[] }): Alert[] {
  return [...s.active, ...s.resolved].sort(newestFirst);
}

export class AlertEngine implements AlertsView {
  private tracks = new Map<string, Track>();
  private resolved: Alert[] = [];
  private readonly listeners = new Set<(a: Alert) => void>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly clock: () => number;

  constructor(private readonly opts: AlertEngineOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  /** Takes over the alerts that were firing when the daemon last ran, then evaluates every interval. */
  async start(): Promise<void> {
    await this.load();
    this.timer = setInterval(() => {
      this.running ??= this.tick().catch((e: Error) => this.opts.log.error({ err: e.message }, 'alert evaluation failed')).finally(() => (this.running = null));
    }, this.opts.config.intervalMs);
  }

  async load(): Promise<void> {
    const stored = storedAlerts(await this.opts.store.readShared());
    this.tracks = seed(stored.active);
    this.resolved = [...stored.resolved];
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  active(): Alert[] {
    return [...this.tracks.values()].flatMap((t) => (t.alert ? [t.alert] : [])).sort(newestFirst);
  }

  recent(): Alert[] {
    return recentAlerts({ active: this.active(), resolved: this.resolved });
  }

  onChange(cb: (a: Alert) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** One evaluation. Writes the store only when an alert fired or resolved. */
  async tick(): Promise<void> {
    const now = this.clock();
    const data = await this.opts.store.readShared();
    const metrics = this.opts.metrics?.latest() ?? null;
    const inputs: RuleInputs = { now, data, metrics, disk: await this.disk(metrics?.host ?? null), scalerReasons: this.opts.scalerReasons?.() };
    const step = advance(this.tracks, observe(inputs, this.opts.config.rules), this.opts.config.rules, now);
    if (step.fired.length === 0 && step.resolved.length === 0) {
      this.tracks = step.tracks;
      return;
    }
    const active = [...step.tracks.values()].flatMap((t) => (t.alert ? [t.alert] : [])).sort(newestFirst).slice(0, ACTIVE_LIMIT);
    const resolved = [...step.resolved, ...this.resolved].sort(newestFirst).slice(0, RESOLVED_LIMIT);
    // Written before anyone is told: a transition the store did not take is evaluated again next round
    // (the tracks stay as they were), so a restart never repeats an alert that was announced.
    await this.opts.store.update((d) => {
      const at = new Date(now);
      for (const a of step.fired) recordEvent(d, at, { type: 'Warning', object: a.object, reason: 'AlertFired', message: `${a.rule}: ${a.message}` });
      for (const a of step.resolved) {
        recordEvent(d, at, { type: 'Normal', object: a.object, reason: 'AlertResolved', message: `${a.rule}: resolved after ${formatDuration(Math.max(0, now - Date.parse(a.firedAt)))} (${a.message})` });
      }
      d.alerts = { active, resolved };
    });
    this.tracks = step.tracks;
    this.resolved = resolved;
    for (const a of step.fired) this.announce('firing', a);
    for (const a of step.resolved) this.announce('resolved', a);
  }

  private announce(status: 'firing' | 'resolved', a: Alert): void {
    this.opts.log[status === 'firing' ? 'warn' : 'info']({ alert: a.id, rule: a.rule, object: a.object, severity: a.severity }, `alert ${status}: ${a.message}`);
    this.opts.webhooks?.send(status, a);
    for (const cb of this.listeners) {
      try {
        cb(a);
      } catch (e) {
        this.opts.log.error({ err: (e as Error).message }, 'an alert listener failed');
      }
    }
  }

  /** The collector's host reading, else statfs of CARTE_HOME (null if even that fails). */
  private async disk(host: { diskFreeBytes: number; diskTotalBytes: number } | null): Promise<RuleInputs['disk']> {
    if (host && host.diskTotalBytes > 0) return { freeBytes: host.diskFreeBytes, totalBytes: host.diskTotalBytes };
    if (!this.opts.config.rules['disk-low'].enabled) return null;
    try {
      const s = await fs.promises.statfs(this.opts.store.home);
      return { freeBytes: Number(s.bavail) * Number(s.bsize), totalBytes: Number(s.blocks) * Number(s.bsize) };
    } catch {
      return null;
    }
  }
}
