// The converge loop. Each pass re-reads desired state and re-observes the
// machine, plans (pure), and launches the actions in the background with
// bounded parallelism. Passes never overlap (one runs at a time; triggers
// during a pass make one more). Actions of one service never hold up another:
// an in-flight action is fed back into the next plan (a create as a
// not-ready instance, a remove as already gone) instead of being awaited.
//
// Triggers only say "look again": a store change, an instance exit (driver
// watch), a finished action, a readiness change, a backoff expiring, and a
// periodic resync that catches anything else (drift).
import type { Driver, InstanceSpec, ObservedInstance } from '../drivers/driver.js';
import type { Logger } from '../log.js';
import type { CarteEvent, StateData } from '../store/state.js';
import type { Store } from '../store/store.js';
import { recordEvent, scaledReplicas } from '../store/state.js';
import { HealthMonitor, makeProber } from './health.js';
import { plan, restartDelay } from './plan.js';
import type { Action, DesiredService, InstanceView } from './types.js';

/** Labels carte puts on the instances it manages; they carry what must survive a daemon restart. */
export const LABELS = {
  template: 'carte.template',
  revision: 'carte.revision',
  restarts: 'carte.restarts',
} as const;

/** Periodic resync: catches drift no event reported (a deleted netns), within a few seconds. */
export const DEFAULT_RESYNC_MS = 3000;
/** How often due health checks are looked for: the finest health interval honoured. */
export const HEALTH_TICK_MS = 500;
/** Health-check cadence of a service that connections are waiting for. */
export const HURRY_MS = 25;

export interface ReconcilerOptions {
  store: Store;
  driver: Driver;
  log: Logger;
  /** Actions running at once (creations, removals). */
  parallelism?: number;
  /** Periodic resync, catching drift no event reported. */
  resyncMs?: number;
  clock?: () => number;
  health?: HealthMonitor;
  /**
   * Called before a running instance is stopped on purpose (scale-down,
   * rolling update, deletion): the gateway drains it here, up to graceMs.
   */
  beforeStop?: (instance: string, graceMs: number) => Promise<void>;
}

/** Who serves what, after every pass and readiness change: what the gateway routes by. */
export interface Membership {
  services: readonly DesiredService[];
  /** Instances that exist and are not being removed; `ready` ones receive traffic. */
  instances: ReadonlyArray<{ name: string; service: string; ip: string | null; ready: boolean }>;
  /** Service name → its stable address on the instance network (services with ports). */
  addresses: Readonly<Record<string, string>>;
}

export interface PassResult {
  actions: Action[];
  /** Nothing left to do and nothing in flight (waits may remain, e.g. a crash-loop backoff). */
  settled: boolean;
}

type PendingEvent = Omit<CarteEvent, 'seq' | 'at'>;

/** Readiness as written to the store for the CLI and `carte describe`. */
export interface InstanceHealthRecord {
  service: string;
  restarts: number;
  ready: boolean;
  unhealthy: boolean;
  lastError: string | null;
}

export function desiredServices(data: Readonly<StateData>): DesiredService[] {
  return Object.values(data.services).map((s) => ({
    name: s.name, spec: { ...s.revision.spec, replicas: scaledReplicas(s) }, templateHash: s.revision.templateHash, revision: s.revision.revision, suspended: s.suspended === true,
  }));
}

/** An instance of a service managed by the reconciler (not, e.g., one made by `carte run`). */
export function isManaged(i: ObservedInstance): boolean {
  return i.labels[LABELS.template] !== undefined;
}

export class Reconciler {
  readonly health: HealthMonitor;
  private readonly store: Store;
  private readonly driver: Driver;
  private readonly log: Logger;
  private readonly parallelism: number;
  private readonly resyncMs: number;
  private readonly clock: () => number;
  private readonly inflight = new Map<string, Action>();
  private readonly queue: Array<() => Promise<void>> = [];
  private active = 0;
  private readonly createFailures = new Map<string, { count: number; until: number }>();
  private events: PendingEvent[] = [];
  private healthRecords: Record<string, InstanceHealthRecord> = {};
  private healthDirty = false;
  private waiting: Record<string, string> = {};
  private waitingDirty = false;
  private running = false;
  private dirty = false;
  private stopped = true;
  private timers: NodeJS.Timeout[] = [];
  private wakeTimer: NodeJS.Timeout | null = null;
  private unwatch: (() => void) | null = null;
  private lastObserved: ObservedInstance[] = [];
  private lastDesired = new Map<string, DesiredService>();
  private idleWaiters: Array<() => void> = [];
  private readonly beforeStop: ReconcilerOptions['beforeStop'];
  private membershipListeners: Array<(m: Membership) => void> = [];
  private addresses: Record<string, string> = {};
  /** The /etc/hosts entries each instance was last given (JSON), so a changed service set is pushed to running instances. */
  private readonly appliedHosts = new Map<string, string>();

  constructor(opts: ReconcilerOptions) {
    this.store = opts.store;
    this.driver = opts.driver;
    this.log = opts.log;
    this.parallelism = opts.parallelism ?? 8;
    this.resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.clock = opts.clock ?? Date.now;
    this.health = opts.health ?? new HealthMonitor(makeProber(opts.driver), this.clock);
    this.beforeStop = opts.beforeStop;
  }

  private hurried = new Map<string, number>();
  private hurryTimer: NodeJS.Timeout | null = null;

  /**
   * Connections are waiting for `service` (it is starting, or woke from
   * zero): check its not-yet-ready instances every HURRY_MS instead of every
   * health interval, until one is ready or `forMs` passes.
   */
  hurry(service: string, forMs = 30_000): void {
    this.hurried.set(service, this.clock() + forMs);
    if (this.hurryTimer || this.stopped) return;
    this.hurryTimer = setInterval(() => void this.hurryTick(), HURRY_MS);
  }

  private async hurryTick(): Promise<void> {
    const now = this.clock();
    for (const [service, until] of this.hurried) {
      const mine = this.lastObserved.filter((i) => i.service === service);
      const spec = this.lastDesired.get(service)?.spec.health ?? null;
      if (until <= now || !this.lastDesired.has(service) || mine.some((i) => this.health.view(i, spec).ready)) this.hurried.delete(service);
    }
    if (!this.hurried.size || this.stopped) {
      if (this.hurryTimer) clearInterval(this.hurryTimer);
      this.hurryTimer = null;
      return;
    }
    const specOf = (i: ObservedInstance) => this.lastDesired.get(i.service)?.spec.health ?? null;
    const targets = this.lastObserved.filter((i) => this.hurried.has(i.service) && !this.health.view(i, specOf(i)).ready);
    // A hurried check may make an instance ready sooner, never unhealthy sooner: its failures
    // do not count (as in a start period), or a slow starter would be restarted within 100 ms.
    const changed = await this.health.checkDue(targets, (i) => {
      const spec = specOf(i);
      return spec && { ...spec, intervalMs: Math.min(spec.intervalMs, HURRY_MS), startPeriodMs: Number.POSITIVE_INFINITY };
    });
    if (changed) {
      this.recordHealth(this.lastObserved);
      this.publishMembership();
      this.trigger();
    }
  }

  /** Calls `fn` with the membership after every pass and every readiness change. */
  onMembership(fn: (m: Membership) => void): void {
    this.membershipListeners.push(fn);
  }

  private publishMembership(): void {
    if (!this.membershipListeners.length) return;
    const instances = this.lastObserved
      .filter((i) => this.inflight.get(i.name)?.kind !== 'remove')
      .map((i) => ({ name: i.name, service: i.service, ip: i.ip, ready: this.health.view(i, this.lastDesired.get(i.service)?.spec.health ?? null).ready && !this.inflight.has(i.name) }));
    const m: Membership = { services: [...this.lastDesired.values()], instances, addresses: this.addresses };
    for (const fn of this.membershipListeners) fn(m);
  }

  // ---- running ----

  start(): void {
    this.stopped = false;
    this.unwatch = this.driver.watch(() => this.trigger());
    this.timers.push(setInterval(() => this.trigger(), this.resyncMs));
    // Health checks have their own cadence (their intervals, at a granularity of HEALTH_TICK_MS), independent of passes.
    this.timers.push(setInterval(() => void this.healthTick(), HEALTH_TICK_MS));
    this.trigger();
  }

  /** Stops triggering passes; running actions finish. Instances are left as they are. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.hurryTimer) clearInterval(this.hurryTimer);
    this.hurryTimer = null;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.unwatch?.();
    await this.idle();
    await this.flush();
  }

  /** Asks for a pass soon. Cheap and safe to call from anywhere, any number of times. */
  trigger(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (!this.running) setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        await this.pass().catch((e: Error) => this.log.error({ err: e.message }, 'reconcile pass failed; retrying on the next trigger'));
      }
    } finally {
      this.running = false;
    }
  }

  private async healthTick(): Promise<void> {
    if (this.stopped || !this.lastObserved.length) return;
    const changed = await this.health.checkDue(this.lastObserved, (i) => this.lastDesired.get(i.service)?.spec.health ?? null);
    if (changed) {
      this.recordHealth(this.lastObserved);
      this.publishMembership();
      this.trigger();
    }
  }

  // ---- one pass ----

  private passChain: Promise<unknown> = Promise.resolve();

  /**
   * One reconcile pass: observe, plan, launch. Passes never overlap, however
   * they are called (the loop, the daemon's first pass, the CLI's converge):
   * each waits for the one before it. Two passes at once would each see the
   * other's health checks as missing and plan from half the truth.
   */
  pass(): Promise<PassResult> {
    const next = this.passChain.then(() => this.passOnce());
    this.passChain = next.catch(() => undefined);
    return next;
  }

  private async passOnce(): Promise<PassResult> {
    const started = performance.now();
    const data = await this.store.readShared();
    const desired = desiredServices(data);
    this.lastDesired = new Map(desired.map((d) => [d.name, d]));
    this.addresses = serviceAddresses(data, desired, (n) => this.driver.serviceAddress(n));
    // Actions in flight when the machine is listed: their instances' listed state may be
    // stale by the time this pass plans (an await later), so they count as in flight.
    const busyAtList = new Map(this.inflight);
    const observed = (await this.driver.list()).filter(isManaged);
    this.lastObserved = observed;
    // Instances never checked (just adopted after a daemon restart, or new) are checked before planning,
    // so healthy adopted instances count as ready on the first pass.
    await this.health.checkDue(observed, (i) => this.lastDesired.get(i.service)?.spec.health ?? null);
    this.recordHealth(observed);

    const now = this.clock();
    const views: InstanceView[] = [];
    for (const i of observed) {
      const action = this.inflight.get(i.name) ?? busyAtList.get(i.name);
      if (action && action.kind === 'remove') continue; // going away: as good as gone
      const view = this.view(i);
      views.push(action ? { ...view, ready: false, unhealthy: false, broken: false, state: 'created' } : view);
    }
    for (const [name, action] of this.inflight) {
      if ((action.kind === 'create' || action.kind === 'restart') && !views.some((v) => v.name === name)) {
        views.push(placeholder(action, now));
      }
    }
    const actions = plan({ desired, instances: views, rollouts: data.rollouts ?? {}, now })
      .filter((a) => !('name' in a) || !this.inflight.has(a.name))
      .map((a) => this.applyCreateBackoff(a, now));

    const rollouts: Action[] = [];
    let wakeAt: number | null = null;
    for (const a of actions) {
      switch (a.kind) {
        case 'create':
        case 'remove':
        case 'restart':
          this.launch(a, observed.find((i) => i.name === a.name) ?? null);
          break;
        case 'rollout':
          rollouts.push(a);
          break;
        case 'wait':
          if (a.until !== null) wakeAt = wakeAt === null ? a.until : Math.min(wakeAt, a.until);
          break;
      }
    }
    if (wakeAt !== null) this.wakeAt(wakeAt);
    const waiting: Record<string, string> = {};
    for (const a of actions) if (a.kind === 'wait' && !waiting[a.service]) waiting[a.service] = a.reason;
    if (JSON.stringify(waiting) !== JSON.stringify(this.waiting)) {
      this.waiting = waiting;
      this.waitingDirty = true;
    }
    this.syncHosts(observed);
    this.publishMembership();
    await this.flush(rollouts);
    const ms = Math.round((performance.now() - started) * 10) / 10;
    if (actions.some((a) => a.kind !== 'wait')) this.log.debug({ ms, actions: actions.length }, 'reconcile pass');
    return { actions, settled: this.inflight.size === 0 && actions.every((a) => a.kind === 'wait') };
  }

  private view(i: ObservedInstance): InstanceView {
    const spec = this.lastDesired.get(i.service)?.spec.health ?? null;
    const { ready, unhealthy } = this.health.view(i, spec);
    const ordinal = Number(/-(\d+)$/.exec(i.name)?.[1] ?? 0);
    return {
      name: i.name, service: i.service, ordinal, templateHash: i.labels[LABELS.template] ?? '', state: i.state,
      ready, unhealthy,
      // `created` but not being created by us: its creator died between runc create and start (a daemon
      // killed mid-create); it will never start by itself, so it is replaced.
      broken: i.problems.length > 0 || i.state === 'created',
      exitCode: i.exitCode, oomKilled: i.oomKilled,
      createdAt: Date.parse(i.createdAt), startedAt: i.startedAt ? Date.parse(i.startedAt) : null,
      finishedAt: i.finishedAt ? Date.parse(i.finishedAt) : null,
      restarts: Number(i.labels[LABELS.restarts] ?? 0),
    };
  }

  /** A service whose creates keep failing waits with backoff instead of retrying every pass. */
  private applyCreateBackoff(a: Action, now: number): Action {
    if (a.kind !== 'create') return a;
    const f = this.createFailures.get(a.service);
    if (!f || f.until <= now) return a;
    return { kind: 'wait', service: a.service, reason: `creating instances failed ${f.count} times; retrying in ${Math.ceil((f.until - now) / 1000)}s`, until: f.until };
  }

  private wakeAt(at: number): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = setTimeout(() => this.trigger(), Math.max(0, at - this.clock()) + 10);
  }

  // ---- actions ----

  private launch(a: Extract<Action, { kind: 'create' | 'remove' | 'restart' }>, observed: ObservedInstance | null): void {
    this.inflight.set(a.name, a);
    this.queue.push(async () => {
      const t = performance.now();
      try {
        await this.run(a, observed);
        if (a.kind !== 'remove') this.createFailures.delete(a.service);
      } catch (e) {
        const message = (e as Error).message;
        this.log.warn({ service: a.service, instance: a.name, action: a.kind, err: message }, 'action failed');
        if (a.kind !== 'remove') {
          const count = (this.createFailures.get(a.service)?.count ?? 0) + 1;
          this.createFailures.set(a.service, { count, until: this.clock() + restartDelay(count - 1) });
        }
        this.events.push({ type: 'Warning', object: `service/${a.service}`, reason: a.kind === 'remove' ? 'RemoveFailed' : 'CreateFailed', message: `${a.name}: ${message}` });
      } finally {
        this.log.debug({ service: a.service, instance: a.name, action: a.kind, ms: Math.round(performance.now() - t) }, 'action done');
        this.inflight.delete(a.name);
        this.trigger();
        if (this.inflight.size === 0) for (const w of this.idleWaiters.splice(0)) w();
      }
    });
    this.drain();
  }

  private drain(): void {
    while (this.active < this.parallelism && this.queue.length) {
      const job = this.queue.shift()!;
      this.active++;
      void job().finally(() => {
        this.active--;
        this.drain();
      });
    }
  }

  /** Pushes the current service names to running instances created with an older set (or adopted). */
  private syncHosts(observed: readonly ObservedInstance[]): void {
    const json = JSON.stringify(this.addresses);
    const live = new Set(observed.map((i) => i.name));
    for (const name of this.appliedHosts.keys()) if (!live.has(name)) this.appliedHosts.delete(name);
    for (const i of observed) {
      if (i.state !== 'running' || this.inflight.has(i.name) || this.appliedHosts.get(i.name) === json) continue;
      this.appliedHosts.set(i.name, json);
      const hosts = { ...this.addresses };
      this.driver.setHosts(i.name, hosts).catch((e: Error) => {
        this.appliedHosts.delete(i.name);
        this.log.warn({ instance: i.name, err: e.message }, 'could not update /etc/hosts');
      });
    }
  }

  private instanceSpec(svc: DesiredService, name: string, restarts: number, image: string): InstanceSpec {
    const s = svc.spec;
    this.appliedHosts.set(name, JSON.stringify(this.addresses));
    return {
      name, service: svc.name, image, hosts: { ...this.addresses },
      labels: { [LABELS.template]: svc.templateHash, [LABELS.revision]: String(svc.revision), [LABELS.restarts]: String(restarts) },
      spec: { command: s.command, args: s.args, env: s.env, workingDir: s.workingDir, user: s.user, resources: s.resources, volumes: s.volumes, ports: s.ports },
    };
  }

  private async image(svc: DesiredService): Promise<string> {
    if (svc.spec.image) return svc.spec.image;
    const tag = `carte-build/${svc.name}:${svc.templateHash.slice(0, 12)}`;
    await this.driver.ensureImage(svc.spec.build!, tag);
    return tag;
  }

  private async run(a: Extract<Action, { kind: 'create' | 'remove' | 'restart' }>, observed: ObservedInstance | null): Promise<void> {
    const svc = this.lastDesired.get(a.service);
    const grace = svc?.spec.stopGracePeriodMs ?? 10_000;
    const removeInstance = async () => {
      if (observed?.state === 'running') {
        // Draining is best effort: a failure must not keep an instance alive.
        if (this.beforeStop) await this.beforeStop(a.name, grace).catch((e: Error) => this.log.warn({ instance: a.name, err: e.message }, 'drain failed'));
        await this.driver.stop(a.name, grace);
      }
      const report = await this.driver.remove(a.name);
      if (report.failures.length) throw new Error(report.failures.map((f) => `${f.step} ${f.resource}: ${f.error}`).join('; '));
    };
    switch (a.kind) {
      case 'create': {
        if (!svc) return;
        await this.driver.create(this.instanceSpec(svc, a.name, 0, await this.image(svc)));
        this.events.push({ type: 'Normal', object: `service/${a.service}`, reason: 'InstanceCreated', message: `${a.name} created (revision ${a.revision}): ${a.reason}` });
        return;
      }
      case 'remove':
        await removeInstance();
        this.events.push({ type: 'Normal', object: `service/${a.service}`, reason: 'InstanceRemoved', message: `${a.name} removed: ${a.reason}` });
        return;
      case 'restart': {
        if (!svc) return;
        const restarts = Number(observed?.labels[LABELS.restarts] ?? 0) + 1;
        await removeInstance();
        await this.driver.create(this.instanceSpec(svc, a.name, restarts, await this.image(svc)));
        this.events.push({ type: 'Warning', object: `service/${a.service}`, reason: 'InstanceRestarted', message: `${a.name} restarted (${restarts}): ${a.reason}` });
      }
    }
  }

  /** Resolves when no action is in flight. */
  idle(): Promise<void> {
    if (this.inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Runs passes until settled or `timeoutMs` passes (the CLI's converge
   * without a daemon). Health checks run in between so rollouts can progress.
   */
  async converge(timeoutMs: number): Promise<PassResult> {
    const deadline = this.clock() + timeoutMs;
    for (;;) {
      const r = await this.pass();
      await this.idle();
      if ((r.settled && this.inflight.size === 0) || this.clock() >= deadline) {
        await this.flush();
        return r;
      }
      await new Promise((res) => setTimeout(res, 200));
      await this.health.checkDue(this.lastObserved, (i) => this.lastDesired.get(i.service)?.spec.health ?? null);
    }
  }

  // ---- recording ----

  private recordHealth(observed: readonly ObservedInstance[]): void {
    const next: Record<string, InstanceHealthRecord> = {};
    for (const i of observed) {
      const { ready, unhealthy } = this.health.view(i, this.lastDesired.get(i.service)?.spec.health ?? null);
      next[i.name] = { service: i.service, restarts: Number(i.labels[LABELS.restarts] ?? 0), ready, unhealthy, lastError: this.health.get(i.name)?.lastError ?? null };
    }
    if (JSON.stringify(next) !== JSON.stringify(this.healthRecords)) {
      this.healthRecords = next;
      this.healthDirty = true;
    }
  }

  /** Writes pending events, rollout marks and readiness in one store update (nothing when there is nothing). */
  async flush(rollouts: Action[] = []): Promise<void> {
    if (!this.events.length && !rollouts.length && !this.healthDirty && !this.waitingDirty) return;
    const events = this.events.splice(0);
    const health = this.healthDirty ? this.healthRecords : null;
    const waiting = this.waitingDirty ? this.waiting : null;
    this.healthDirty = false;
    this.waitingDirty = false;
    const now = new Date(this.clock());
    await this.store.update((data) => {
      for (const e of events) recordEvent(data, now, e);
      for (const r of rollouts) {
        if (r.kind !== 'rollout') continue;
        data.rollouts ??= {};
        if (r.templateHash === null) {
          delete data.rollouts[r.service];
          recordEvent(data, now, { type: 'Normal', object: `service/${r.service}`, reason: 'RolloutComplete', message: 'every instance runs the current revision' });
        } else {
          data.rollouts[r.service] = { templateHash: r.templateHash, startedAt: r.at };
          recordEvent(data, now, { type: 'Normal', object: `service/${r.service}`, reason: 'RolloutStarted', message: `replacing instances with template ${r.templateHash.slice(0, 8)}` });
        }
      }
      if (health) data.instances = { ...health };
      if (waiting) data.waiting = { ...waiting };
    }).catch((e: Error) => this.log.error({ err: e.message }, 'failed to record events'));
  }
}

/** Stable addresses of the services that have ports, from their slots in the store. */
export function serviceAddresses(data: Readonly<StateData>, desired: readonly DesiredService[], addressOf: (index: number) => string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of desired) {
    const index = data.serviceIndex?.[d.name];
    const ip = index === undefined || !d.spec.ports.length ? null : addressOf(index);
    if (ip) out[d.name] = ip;
  }
  return out;
}

/** An instance being created right now: not ready, holds its name and slot. */
function placeholder(a: Extract<Action, { kind: 'create' | 'restart' }>, now: number): InstanceView {
  return {
    name: a.name, service: a.service, ordinal: Number(/-(\d+)$/.exec(a.name)?.[1] ?? 0), templateHash: a.templateHash,
    state: 'created', ready: false, unhealthy: false, broken: false, exitCode: null, oomKilled: false,
    createdAt: now, startedAt: null, finishedAt: null, restarts: 0,
  };
}
