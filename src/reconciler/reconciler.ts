// The converge loop. Each pass re-reads desired state, re-observes the
// machine, plans (pure) from what is known now, and hands the actions to the
// executor, which runs them in the background. A pass never waits on the
// world: not on an action (in-flight ones are fed back into the next plan),
// not on a health check (checks run on their own cadence and their results
// come back as a trigger), so one service's trouble never holds another's.
// Passes never overlap (one runs at a time; triggers during a pass make one
// more).
//
// Triggers only say "look again": a store change, an instance exit (driver
// watch), a finished action, a health result, a backoff expiring, and a
// periodic resync that catches anything else (drift).
import { effectivePullPolicy } from '../schema/image-reference.js';
import type { Driver, InstanceSpec, ObservedInstance, SecretVolume } from '../drivers/driver.js';
import { CarteError } from '../errors.js';
import type { SecretReader, SecretValues } from '../model/secrets.js';
import type { Logger } from '../log.js';
import { isManaged, LABELS, type DesiredService, type InstanceHealthRecord, type Membership } from '../model/instances.js';
import type { WaitCause } from '../model/wait.js';
import { DEFAULTS } from '../schema/types.js';
import type { StateData } from '../store/state.js';
import type { Store } from '../store/store.js';
import { recordEvent, scaledReplicas } from '../store/state.js';
import { safeInterval, safeTimeout, sleep } from '../util/timers.js';
import { Executor, type PendingEvent } from './executor.js';
import { HealthMonitor, makeProber } from './health.js';
import { plan } from './plan.js';
import type { Action, InstanceAction, InstanceView } from './types.js';

export { LABELS, isManaged, type InstanceHealthRecord, type Membership } from '../model/instances.js';

/** Periodic resync: catches drift no event reported (a deleted netns), within a few seconds. */
export const DEFAULT_RESYNC_MS = 3000;
/** How often due health checks are looked for: the finest health interval honoured. */
export const HEALTH_TICK_MS = 500;
/** Health-check cadence of a service that connections are waiting for. */
export const HURRY_MS = 25;
/** Events kept for a later write while the store cannot be written (e.g. a full disk). */
const PENDING_EVENT_LIMIT = 1000;

export interface ReconcilerOptions {
  store: Store;
  driver: Driver;
  log: Logger;
  /** Actions doing work at once (creations, removals). */
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
  /**
   * Act on these services only (the CLI's in-process converge: the services
   * a command changed). Others are observed, never touched or probed, except
   * for the health of their dependencies.
   */
  scope?: ReadonlySet<string>;
  /** Stop grace periods of services already deleted from the store (the CLI's delete knows them; the store no longer does). */
  graces?: Readonly<Record<string, number>>;
  /**
   * Host folders a service's Cartefile may `COPY --from=host` from: the
   * policy section of the service's source (read at each build, so a policy
   * reload counts). Absent: the driver's own setting.
   */
  hostCopyPrefixes?: (source: string) => readonly string[];
  /** Where secret values are read at create time (by the digest the store names); absent, services that use secrets cannot start. */
  secrets?: SecretReader;
}

export interface PassResult {
  actions: Action[];
  /** Nothing left to do and nothing in flight (waits may remain, e.g. a crash-loop backoff). */
  settled: boolean;
}

export function desiredServices(data: Readonly<StateData>): DesiredService[] {
  return Object.values(data.services).map((s) => ({
    name: s.name, spec: { ...s.revision.spec, replicas: scaledReplicas(s) }, templateHash: s.revision.templateHash, revision: s.revision.revision, source: s.source, suspended: s.suspended === true, commit: s.revision.commit,
  }));
}

export class Reconciler {
  readonly health: HealthMonitor;
  private readonly executor: Executor;
  private readonly store: Store;
  private readonly driver: Driver;
  private readonly log: Logger;
  private readonly resyncMs: number;
  private readonly clock: () => number;
  private readonly scope: ReadonlySet<string> | null;
  private readonly hostCopyPrefixes: ReconcilerOptions['hostCopyPrefixes'];
  private readonly secrets: SecretReader | undefined;
  private events: PendingEvent[] = [];
  private healthRecords: Record<string, InstanceHealthRecord> = {};
  private healthDirty = false;
  private waiting: Record<string, WaitCause> = {};
  private waitingDirty = false;
  private pendingRollouts: Action[] = [];
  private running = false;
  private dirty = false;
  private stopped = true;
  private timers: NodeJS.Timeout[] = [];
  private wakeTimer: NodeJS.Timeout | null = null;
  private unwatch: (() => void) | null = null;
  private lastObserved: ObservedInstance[] = [];
  private lastDesired = new Map<string, DesiredService>();
  private membershipListeners: Array<(m: Membership) => void> = [];
  private addresses: Record<string, string> = {};
  /** The /etc/hosts entries each instance was last given (JSON), so a changed service set is pushed to running instances. */
  private readonly appliedHosts = new Map<string, string>();
  /** Instances to replace (disk quota), for the life they were judged in. */
  private readonly evictions = new Map<string, { reason: string; startedAt: string | null }>();
  /** Each service's stop grace period as last seen: a deleted service's instances still get theirs. */
  private readonly graces = new Map<string, number>();
  private hurried = new Map<string, number>();
  private hurryTimer: NodeJS.Timeout | null = null;

  constructor(opts: ReconcilerOptions) {
    this.store = opts.store;
    this.driver = opts.driver;
    this.log = opts.log;
    this.resyncMs = opts.resyncMs ?? DEFAULT_RESYNC_MS;
    this.clock = opts.clock ?? Date.now;
    this.scope = opts.scope ?? null;
    this.hostCopyPrefixes = opts.hostCopyPrefixes;
    this.secrets = opts.secrets;
    for (const [service, ms] of Object.entries(opts.graces ?? {})) this.graces.set(service, ms);
    this.health = opts.health ?? new HealthMonitor(makeProber(opts.driver), this.clock);
    this.health.onChange(() => this.onHealthChange());
    this.executor = new Executor({
      driver: opts.driver, log: opts.log, parallelism: opts.parallelism, clock: this.clock, beforeStop: opts.beforeStop,
      specFor: (svc, name, restarts) => this.instanceSpec(svc, name, restarts),
      // Registry images are pulled before a create takes a slot (src/reconciler/executor.ts).
      prepare: async (svc) => {
        const policy = svc.spec.image ? effectivePullPolicy(svc.spec.image, svc.spec.pullPolicy) : null;
        if (policy) await this.driver.pullImage(svc.spec.image!, { policy });
      },
      onDone: () => this.trigger(),
    });
  }

  // ---- health ----

  private specOf = (i: ObservedInstance) => this.lastDesired.get(i.service)?.spec.health ?? null;

  private onHealthChange(): void {
    this.recordHealth(this.lastObserved);
    this.publishMembership();
    this.trigger();
  }

  /** Instances whose health this process checks: all, or those of the scope and what it depends on. */
  private probed(observed: readonly ObservedInstance[]): readonly ObservedInstance[] {
    if (!this.scope) return observed;
    const wanted = new Set<string>();
    const visit = (name: string) => {
      if (wanted.has(name)) return;
      wanted.add(name);
      for (const dep of this.lastDesired.get(name)?.spec.dependsOn ?? []) visit(dep);
    };
    for (const s of this.scope) visit(s);
    return observed.filter((i) => wanted.has(i.service));
  }

  private startDueChecks(): void {
    if (this.lastObserved.length) void this.health.startDue(this.probed(this.lastObserved), this.specOf);
  }

  /**
   * Connections are waiting for `service` (it is starting, or woke from
   * zero): check its not-yet-ready instances every HURRY_MS instead of every
   * health interval, until one is ready or `forMs` passes.
   */
  hurry(service: string, forMs = 30_000): void {
    this.hurried.set(service, this.clock() + forMs);
    if (this.hurryTimer || this.stopped) return;
    this.hurryTimer = setInterval(() => this.hurryTick(), HURRY_MS);
  }

  private hurryTick(): void {
    const now = this.clock();
    for (const [service, until] of this.hurried) {
      const mine = this.lastObserved.filter((i) => i.service === service);
      if (until <= now || !this.lastDesired.has(service) || mine.some((i) => this.health.view(i, this.specOf(i)).ready)) this.hurried.delete(service);
    }
    if (!this.hurried.size || this.stopped) {
      if (this.hurryTimer) clearInterval(this.hurryTimer);
      this.hurryTimer = null;
      return;
    }
    const targets = this.lastObserved.filter((i) => this.hurried.has(i.service) && !this.health.view(i, this.specOf(i)).ready);
    // A hurried check may make an instance ready sooner, never unhealthy sooner: its failures
    // do not count (as in a start period), or a slow starter would be restarted within 100 ms.
    void this.health.startDue(targets, (i) => {
      const spec = this.specOf(i);
      return spec && { ...spec, intervalMs: Math.min(spec.intervalMs, HURRY_MS), startPeriodMs: Number.POSITIVE_INFINITY };
    });
  }

  /**
   * Asks for a running instance to be replaced (a new life under its name),
   * with the reason for its event: the disk quota's way to act, since only
   * the reconciler starts and stops instances. Forgotten once it is replaced.
   */
  evict(instance: string, reason: string): void {
    const i = this.lastObserved.find((o) => o.name === instance);
    if (!i || i.state !== 'running') return;
    this.evictions.set(instance, { reason, startedAt: i.startedAt });
    this.trigger();
  }

  /** Calls `fn` with the membership after every pass and every readiness change. */
  onMembership(fn: (m: Membership) => void): void {
    this.membershipListeners.push(fn);
  }

  private publishMembership(): void {
    if (!this.membershipListeners.length) return;
    const inflight = this.executor.inFlight;
    const instances = this.lastObserved
      .filter((i) => inflight.get(i.name)?.kind !== 'remove')
      .map((i) => ({ name: i.name, service: i.service, ip: i.ip, ready: this.health.view(i, this.specOf(i)).ready && !inflight.has(i.name) }));
    const m: Membership = { services: [...this.lastDesired.values()], instances, addresses: this.addresses };
    for (const fn of this.membershipListeners) fn(m);
  }

  // ---- running ----

  start(): void {
    this.stopped = false;
    this.unwatch = this.driver.watch(() => this.trigger());
    this.timers.push(safeInterval(() => this.trigger(), this.resyncMs));
    // Health checks have their own cadence (their intervals, at a granularity of HEALTH_TICK_MS), independent of passes.
    this.timers.push(setInterval(() => this.startDueChecks(), HEALTH_TICK_MS));
    this.trigger();
  }

  /**
   * Stops triggering passes. With `abandon` (a daemon's shutdown), running
   * checks are ended and in-flight actions are left to the next start;
   * otherwise they are awaited. Instances are left as they are.
   */
  async stop(opts: { abandon?: boolean; flushTimeoutMs?: number } = {}): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.hurryTimer) clearInterval(this.hurryTimer);
    this.hurryTimer = null;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.unwatch?.();
    if (opts.abandon) {
      this.health.abortAll();
      this.executor.abandon();
    } else {
      await this.executor.idle();
    }
    await this.flush([], opts.flushTimeoutMs);
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

  // ---- one pass ----

  private passChain: Promise<unknown> = Promise.resolve();

  /**
   * One reconcile pass: observe, plan, launch. Passes never overlap, however
   * they are called (the loop, the daemon's first pass, the CLI's converge):
   * each waits for the one before it.
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
    for (const d of desired) this.graces.set(d.name, d.spec.stopGracePeriodMs);
    this.addresses = serviceAddresses(data, desired, (n) => this.driver.serviceAddress(n));
    // Actions in flight when the machine is listed: their instances' listed state may be
    // stale by the time this pass plans (an await later), so they count as in flight.
    const busyAtList = new Map(this.executor.inFlight);
    const observed = (await this.driver.list()).filter(isManaged);
    this.lastObserved = observed;
    for (const name of this.evictions.keys()) if (!observed.some((i) => i.name === name)) this.evictions.delete(name);
    this.adoptHealth(data, observed);
    // Checks that are due start now and answer later (a trigger): this pass uses what is known.
    this.startDueChecks();
    this.recordHealth(observed);

    const now = this.clock();
    const inflight = this.executor.inFlight;
    const views: InstanceView[] = [];
    for (const i of observed) {
      const action = inflight.get(i.name) ?? busyAtList.get(i.name);
      if (action && action.kind === 'remove') continue; // going away: as good as gone
      const view = this.view(i);
      views.push(action ? { ...view, ready: false, healthKnown: true, unhealthy: false, broken: false, state: 'created' } : view);
    }
    for (const [name, action] of inflight) {
      if ((action.kind === 'create' || action.kind === 'restart') && !views.some((v) => v.name === name)) {
        views.push(placeholder(action, now));
      }
    }
    const actions = plan({ desired, instances: views, rollouts: data.rollouts ?? {}, createBackoff: this.executor.createBackoff(), now })
      .filter((a) => !this.scope || this.scope.has(a.service))
      .filter((a) => !('name' in a) || !inflight.has(a.name));

    let wakeAt: number | null = null;
    for (const a of actions) {
      switch (a.kind) {
        case 'create':
        case 'remove':
        case 'restart':
          this.executor.submit(a, observed.find((i) => i.name === a.name) ?? null, this.lastDesired.get(a.service), this.graceOf(a.service));
          break;
        case 'rollout':
          this.pendingRollouts.push(a);
          break;
        case 'wait':
          if (a.until !== null) wakeAt = wakeAt === null ? a.until : Math.min(wakeAt, a.until);
          break;
      }
    }
    if (wakeAt !== null) this.wakeAt(wakeAt);
    const waiting: Record<string, WaitCause> = {};
    for (const a of actions) if (a.kind === 'wait' && !waiting[a.service]) waiting[a.service] = a.cause;
    // A scoped converge knows only its own services' waits: keep the others' as stored.
    if (this.scope) for (const [s, c] of Object.entries(storedWaits(data))) if (!this.scope.has(s) && data.services[s]) waiting[s] ??= c;
    if (JSON.stringify(waiting) !== JSON.stringify(this.waiting)) {
      this.waiting = waiting;
      this.waitingDirty = true;
    }
    this.syncHosts(observed);
    this.publishMembership();
    await this.flush();
    const ms = Math.round((performance.now() - started) * 10) / 10;
    if (actions.some((a) => a.kind !== 'wait')) this.log.debug({ ms, actions: actions.length }, 'reconcile pass');
    const busy = [...this.executor.inFlight.values()].some((a) => !this.scope || this.scope.has(a.service));
    return { actions, settled: !busy && actions.every((a) => a.kind === 'wait') };
  }

  /** Instances this process has no health state for yet take over what the store says of the same life. */
  private adoptHealth(data: Readonly<StateData>, observed: readonly ObservedInstance[]): void {
    const records = data.instances as Readonly<Record<string, InstanceHealthRecord | undefined>>;
    for (const i of observed) {
      const r = records[i.name];
      if (i.state === 'running' && i.startedAt && r?.startedAt === i.startedAt && this.specOf(i) && !this.health.get(i.name)) this.health.seed(i.name, i.startedAt, r.ready);
    }
  }

  private view(i: ObservedInstance): InstanceView {
    const { ready, unhealthy, known } = this.health.view(i, this.specOf(i));
    const eviction = this.evictions.get(i.name);
    if (eviction && eviction.startedAt !== i.startedAt) this.evictions.delete(i.name);
    const ordinal = Number(/-(\d+)$/.exec(i.name)?.[1] ?? 0);
    return {
      name: i.name, service: i.service, ordinal, templateHash: i.labels[LABELS.template] ?? '', state: i.state,
      ready, healthKnown: known, unhealthy,
      // `created` but not being created by us: its creator died between runc create and start (a daemon
      // killed mid-create); it will never start by itself, so it is replaced.
      broken: i.problems.length > 0 || i.state === 'created',
      exitCode: i.exitCode, oomKilled: i.oomKilled,
      createdAt: Date.parse(i.createdAt), startedAt: i.startedAt ? Date.parse(i.startedAt) : null,
      finishedAt: i.finishedAt ? Date.parse(i.finishedAt) : null,
      restarts: Number(i.labels[LABELS.restarts] ?? 0),
      evictReason: eviction && eviction.startedAt === i.startedAt ? eviction.reason : null,
    };
  }

  private graceOf(service: string): number {
    return this.lastDesired.get(service)?.spec.stopGracePeriodMs ?? this.graces.get(service) ?? DEFAULTS.stopGracePeriodMs;
  }

  private wakeAt(at: number): void {
    if (this.stopped) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = safeTimeout(() => this.trigger(), at - this.clock() + 10);
  }

  // ---- what actions need ----

  /** Pushes the current service names to running instances created with an older set (or adopted). */
  private syncHosts(observed: readonly ObservedInstance[]): void {
    const json = JSON.stringify(this.addresses);
    const live = new Set(observed.map((i) => i.name));
    for (const name of this.appliedHosts.keys()) if (!live.has(name)) this.appliedHosts.delete(name);
    for (const i of observed) {
      if (this.scope && !this.scope.has(i.service)) continue;
      if (i.state !== 'running' || this.executor.inFlight.has(i.name) || this.appliedHosts.get(i.name) === json) continue;
      this.appliedHosts.set(i.name, json);
      const hosts = { ...this.addresses };
      this.driver.setHosts(i.name, hosts).catch((e: Error) => {
        this.appliedHosts.delete(i.name);
        this.log.warn({ instance: i.name, err: e.message }, 'could not update /etc/hosts');
      });
    }
  }

  private async instanceSpec(svc: DesiredService, name: string, restarts: number): Promise<InstanceSpec> {
    const s = svc.spec;
    const image = await this.image(svc);
    this.appliedHosts.set(name, JSON.stringify(this.addresses));
    return {
      name, service: svc.name, source: svc.source, image, hosts: { ...this.addresses },
      labels: { [LABELS.template]: svc.templateHash, [LABELS.revision]: String(svc.revision), [LABELS.restarts]: String(restarts) },
      spec: { command: s.command, args: s.args, env: s.env, workingDir: s.workingDir, user: s.user, resources: s.resources, volumes: s.volumes, ports: s.ports },
      security: { readOnlyRootfs: s.readOnlyRootfs === true, capAdd: s.capabilities?.add ?? [], capDrop: s.capabilities?.drop ?? [], userns: s.userns === true },
      ...(await this.resolveSecrets(svc)),
    };
  }

  /**
   * The values of the secrets a service uses, as they are now: read from the
   * store's current versions at create time (not the pass's snapshot), so an
   * instance made after `carte secret set` gets the new value. A missing
   * secret or key fails the create (an event and a backoff); messages name
   * secrets and keys, never values.
   */
  private async resolveSecrets(svc: DesiredService): Promise<Pick<InstanceSpec, 'secretEnv' | 'secretVolumes'>> {
    const s = svc.spec;
    const names = [...new Set([...Object.values(s.secretEnv ?? {}).map((r) => r.secret), ...(s.secrets ?? []).map((v) => v.name)])];
    if (!names.length) return {};
    const fail = (message: string) => new CarteError('secret', message);
    if (!this.secrets) throw fail('this carte has no secret key to open secrets with');
    const stored = (await this.store.readShared()).secrets ?? {};
    const values = new Map<string, SecretValues>();
    for (const name of names) {
      const meta = stored[name];
      if (!meta) throw fail(`secret "${name}" does not exist (set it: carte secret set ${name} ...)`);
      values.set(name, await this.secrets.read(name, meta.digest));
    }
    const valueOf = (secret: string, key: string, what: string): Buffer => {
      const v = values.get(secret)![key];
      if (!v) throw fail(`secret "${secret}" has no key "${key}" (${what} needs it)`);
      return v;
    };
    const secretEnv: Record<string, string> = {};
    for (const [env, ref] of Object.entries(s.secretEnv ?? {})) {
      const v = valueOf(ref.secret, ref.key, `env ${env}`);
      // The kernel ends an environment string at its first NUL byte.
      if (v.includes(0)) throw fail(`key "${ref.key}" of secret "${ref.secret}" holds a NUL byte and cannot be the environment variable ${env} (mount it as a file instead)`);
      secretEnv[env] = v.toString('utf8');
    }
    const secretVolumes: SecretVolume[] = (s.secrets ?? []).map((v) => ({
      name: v.name,
      mountPath: v.mountPath,
      files: (v.items ?? Object.keys(values.get(v.name)!).sort().map((key) => ({ key, path: key })))
        .map((item) => ({ path: item.path, data: valueOf(v.name, item.key, `volume ${v.mountPath}`), mode: v.mode })),
    }));
    return { ...(Object.keys(secretEnv).length ? { secretEnv } : {}), ...(secretVolumes.length ? { secretVolumes } : {}) };
  }

  private async image(svc: DesiredService): Promise<string> {
    if (svc.spec.image) return svc.spec.image;
    const tag = `carte-build/${svc.name}:${svc.templateHash.slice(0, 12)}`;
    // Built from the commit's own tree (see sources/git.ts), and tagged with it: `carte images` says which commit made it.
    const alsoTag = svc.commit ? [`carte-build/${svc.name}:${svc.commit.slice(0, 12)}`] : [];
    await this.driver.ensureImage(svc.spec.build!, tag, { hostCopyPrefixes: this.hostCopyPrefixes?.(svc.source), alsoTag });
    return tag;
  }

  /** Resolves when no action is in flight. */
  idle(): Promise<void> {
    return this.executor.idle();
  }

  /**
   * Runs passes until settled, `done` (if given) holds, or `timeoutMs`
   * passes: the CLI's converge without a daemon. Health checks run in
   * between so rollouts can progress; none is waited for.
   */
  async converge(timeoutMs: number, done?: () => Promise<boolean>): Promise<PassResult> {
    const deadline = this.clock() + timeoutMs;
    this.stopped = false;
    const tick = setInterval(() => this.startDueChecks(), HEALTH_TICK_MS);
    try {
      for (;;) {
        const r = await this.pass();
        // Its timer is cancelled once idle: a pending timer would keep the CLI alive until the deadline.
        const cancel = new AbortController();
        await Promise.race([this.idle(), sleep(Math.max(0, deadline - this.clock()), cancel.signal)]);
        cancel.abort();
        if ((r.settled && (!done || (await done()))) || this.clock() >= deadline) {
          await this.flush();
          return r;
        }
        await sleep(200);
      }
    } finally {
      clearInterval(tick);
      this.stopped = true;
      if (this.wakeTimer) clearTimeout(this.wakeTimer);
      this.health.abortAll();
    }
  }

  // ---- recording ----

  private recordHealth(observed: readonly ObservedInstance[]): void {
    const next: Record<string, InstanceHealthRecord> = {};
    for (const i of observed) {
      const view = this.health.view(i, this.specOf(i));
      // One being removed (draining, in its stop grace) takes no traffic: not ready, as the gateway sees it.
      const ready = view.ready && this.executor.inFlight.get(i.name)?.kind !== 'remove';
      const { unhealthy } = view;
      next[i.name] = { service: i.service, restarts: Number(i.labels[LABELS.restarts] ?? 0), ready, unhealthy, lastError: this.health.get(i.name)?.lastError ?? null, startedAt: i.startedAt };
    }
    if (JSON.stringify(next) !== JSON.stringify(this.healthRecords)) {
      this.healthRecords = next;
      this.healthDirty = true;
    }
  }

  /**
   * Writes pending events, rollout marks, readiness and waits in one store
   * update (nothing when there is nothing). A write that fails (a full disk,
   * the lock held too long) loses nothing: all of it is kept for the next one.
   */
  async flush(extra: Action[] = [], lockTimeoutMs?: number): Promise<void> {
    this.events.push(...this.executor.takeEvents());
    this.pendingRollouts.push(...extra);
    if (!this.events.length && !this.pendingRollouts.length && !this.healthDirty && !this.waitingDirty) return;
    const events = this.events.splice(0);
    const rollouts = this.pendingRollouts.splice(0);
    const health = this.healthDirty ? this.healthRecords : null;
    const waiting = this.waitingDirty ? this.waiting : null;
    this.healthDirty = false;
    this.waitingDirty = false;
    const now = new Date(this.clock());
    try {
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
      }, lockTimeoutMs === undefined ? undefined : { timeoutMs: lockTimeoutMs });
    } catch (e) {
      this.log.error({ err: (e as Error).message }, 'failed to record events and status; keeping them for the next write');
      this.events.unshift(...events);
      if (this.events.length > PENDING_EVENT_LIMIT) this.events.splice(0, this.events.length - PENDING_EVENT_LIMIT);
      this.pendingRollouts.unshift(...rollouts);
      if (health) this.healthDirty = true;
      if (waiting) this.waitingDirty = true;
    }
  }
}

/** The waits as stored: typed causes (older carte wrote sentences, which are not kept). */
function storedWaits(data: Readonly<StateData>): Record<string, WaitCause> {
  const out: Record<string, WaitCause> = {};
  for (const [s, w] of Object.entries(data.waiting ?? {})) if (w && typeof w === 'object') out[s] = w;
  return out;
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
function placeholder(a: Extract<InstanceAction, { kind: 'create' | 'restart' }>, now: number): InstanceView {
  return {
    name: a.name, service: a.service, ordinal: Number(/-(\d+)$/.exec(a.name)?.[1] ?? 0), templateHash: a.templateHash,
    state: 'created', ready: false, healthKnown: true, unhealthy: false, broken: false, exitCode: null, oomKilled: false,
    createdAt: now, startedAt: null, finishedAt: null, restarts: 0,
  };
}
