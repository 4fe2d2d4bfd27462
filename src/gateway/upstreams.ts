// The gateway's view of who can take traffic: the ready instances of each
// service (from the reconciler's membership), the connections open to each,
// draining, holding connections while a service starts or wakes from zero,
// and the activity counters the scaler reads.
import type { DesiredService, Membership } from '../model/instances.js';
import { safeTimeout } from '../util/timers.js';
import { choose, type Candidate } from './balance.js';
import type { Target } from './listeners.js';
import { TrafficStats } from './stats.js';

/** One connection's claim on an instance; release() exactly once when it ends. */
export interface Lease {
  instance: string;
  ip: string;
  port: number;
  service: string;
  release(): void;
}

export interface Activity {
  /** Connections (TCP, HTTP requests, UDP flows) open right now. */
  active: number;
  /** Connections waiting for an instance right now (the service is starting or waking). */
  waiting: number;
  /** Accepted since the daemon started. */
  connections: number;
  /** HTTP requests since the daemon started (HTTP mode only). */
  requests: number;
  /** Last time a connection, request or flow started or ended (ms), or null if never. */
  lastActivityAt: number | null;
}

/** How long a refused instance is avoided. */
const FAILED_MS = 1000;

interface Waiter {
  wake: () => void;
}

export interface UpstreamOptions {
  /** Ask for an instance of a service at zero (activation). */
  wake(service: string): void;
  /** Connections started waiting for `service` (so its readiness can be checked more often). */
  waiting?(service: string): void;
  clock?: () => number;
}

export class Upstreams {
  /** Requests, errors and latencies per service (read by the metrics collector). */
  readonly traffic = new TrafficStats();
  private services = new Map<string, DesiredService>();
  /** Ready, not draining, per service. */
  private ready = new Map<string, Array<{ name: string; ip: string }>>();
  private readonly active = new Map<string, number>();
  private readonly failedUntil = new Map<string, number>();
  private readonly cursors = new Map<string, number>();
  private readonly draining = new Set<string>();
  private readonly drainWaiters = new Map<string, Array<() => void>>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly activity = new Map<string, Activity>();
  private readonly clock: () => number;
  private lastMembership: Membership | null = null;
  private closed = false;
  /** Instances' addresses → their services (every instance with an address, ready or not). */
  private serviceAt = new Map<string, string>();
  /** Services only some services may connect to (allowFrom) → those services. */
  private restrictions = new Map<string, ReadonlySet<string>>();
  /** Waiting to learn whose an address is: woken by the next membership. */
  private addressWaiters: Array<() => void> = [];

  constructor(private readonly opts: UpstreamOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  /**
   * Follows a membership; `restricted` (from the access decided for it)
   * says which services take connections only from some services, kept
   * until given again.
   */
  update(m: Membership, restricted?: ReadonlyArray<{ service: string; from: readonly string[] }>): void {
    this.lastMembership = m;
    if (restricted) this.restrictions = new Map(restricted.map((r) => [r.service, new Set([r.service, ...r.from])]));
    this.serviceAt = new Map(m.instances.filter((i) => i.ip).map((i) => [i.ip!, i.service]));
    for (const w of this.addressWaiters.splice(0)) w();
    this.services = new Map(m.services.map((s) => [s.name, s]));
    this.traffic.retain(new Set(this.services.keys()));
    const ready = new Map<string, Array<{ name: string; ip: string }>>();
    for (const i of m.instances) {
      if (!i.ready || !i.ip || this.draining.has(i.name)) continue;
      const list = ready.get(i.service) ?? [];
      list.push({ name: i.name, ip: i.ip });
      ready.set(i.service, list);
    }
    for (const list of ready.values()) list.sort((a, b) => (a.name < b.name ? -1 : 1));
    this.ready = ready;
    const live = new Set(m.instances.map((i) => i.name));
    for (const name of this.draining) if (!live.has(name)) this.draining.delete(name);
    for (const [service, waiting] of this.waiters) {
      if (this.ready.get(service)?.length || !this.holdable(service)) {
        this.waiters.delete(service);
        for (const w of waiting) w.wake();
      }
    }
  }

  /**
   * Whether a client at `ip` may connect to `service` (its allowFrom): an
   * instance's address by its service; an address no instance is known to
   * hold yet (one that started a moment before the reconciler's next pass)
   * waits for the next membership, until `deadline`, then is refused.
   */
  async admits(service: string, ip: string, deadline: number): Promise<boolean> {
    for (;;) {
      const allowed = this.restrictions.get(service);
      if (!allowed) return true;
      const from = this.serviceAt.get(ip);
      if (from !== undefined) return allowed.has(from);
      const now = this.clock();
      if (this.closed || now >= deadline) return false;
      await new Promise<void>((resolve) => {
        const timer = safeTimeout(done, deadline - now);
        const waiters = this.addressWaiters;
        function done() {
          clearTimeout(timer);
          resolve();
        }
        waiters.push(done);
      });
    }
  }

  /** A service's desired state (null once deleted). */
  service(name: string): DesiredService | null {
    return this.services.get(name) ?? null;
  }

  /** Connections may wait for a service that will have a ready instance: starting, or asleep at zero with idleToZero. */
  private holdable(service: string): boolean {
    const s = this.services.get(service);
    if (!s || s.suspended) return false;
    return s.spec.replicas > 0 || (s.spec.autoscale?.idleToZeroMs ?? null) !== null;
  }

  private candidates(service: string): Candidate[] {
    return (this.ready.get(service) ?? []).map((b) => ({ name: b.name, ip: b.ip, active: this.active.get(b.name) ?? 0, failedUntil: this.failedUntil.get(b.name) ?? 0 }));
  }

  /**
   * A lease on a ready instance for `target`, waiting until `deadline` (ms)
   * when the service has none yet but will (starting, or woken from zero);
   * null when there is none to have.
   */
  async acquire(target: Target, deadline: number, exclude: ReadonlySet<string> = new Set()): Promise<Lease | null> {
    for (;;) {
      const now = this.clock();
      const chosen = choose(this.candidates(target.service), target.balance, this.cursors.get(target.service) ?? 0, now, exclude);
      if (chosen) {
        this.cursors.set(target.service, chosen.cursor);
        return this.lease(target, chosen.pick);
      }
      if (this.closed || !this.holdable(target.service) || now >= deadline) return null;
      const s = this.services.get(target.service)!;
      if (s.spec.replicas === 0) this.opts.wake(target.service);
      this.opts.waiting?.(target.service);
      await new Promise<void>((resolve) => {
        const timer = safeTimeout(done, deadline - now);
        const list = this.waiters.get(target.service) ?? [];
        function done() {
          clearTimeout(timer);
          resolve();
        }
        list.push({ wake: done });
        this.waiters.set(target.service, list);
      });
      // Woken by a membership change or the deadline: look again (excluded ones may be all there is).
      if (exclude.size && !this.candidates(target.service).some((c) => !exclude.has(c.name))) exclude = new Set();
    }
  }

  /** Whether every ready instance of a service is in `tried` (time to start over, after a pause). */
  allTried(service: string, tried: ReadonlySet<string>): boolean {
    return this.candidates(service).every((c) => tried.has(c.name));
  }

  private lease(target: Target, c: Candidate): Lease {
    this.active.set(c.name, (this.active.get(c.name) ?? 0) + 1);
    this.touch(target.service, 1);
    let released = false;
    return {
      instance: c.name, ip: c.ip, port: target.port, service: target.service,
      release: () => {
        if (released) return;
        released = true;
        const left = (this.active.get(c.name) ?? 1) - 1;
        if (left > 0) this.active.set(c.name, left);
        else {
          this.active.delete(c.name);
          for (const w of this.drainWaiters.get(c.name)?.splice(0) ?? []) w();
        }
        this.touch(target.service, -1);
      },
    };
  }

  /** The instance refused or reset a connection: avoid it for a moment. */
  failed(lease: Lease): void {
    this.failedUntil.set(lease.instance, this.clock() + FAILED_MS);
    lease.release();
  }

  private touch(service: string, delta: 1 | -1): void {
    const a = this.activity.get(service) ?? { active: 0, waiting: 0, connections: 0, requests: 0, lastActivityAt: null };
    a.active += delta;
    if (delta > 0) a.connections++;
    a.lastActivityAt = this.clock();
    this.activity.set(service, a);
  }

  countRequest(service: string): void {
    const a = this.activity.get(service) ?? { active: 0, waiting: 0, connections: 0, requests: 0, lastActivityAt: null };
    a.requests++;
    a.lastActivityAt = this.clock();
    this.traffic.request(service);
    this.activity.set(service, a);
  }

  activityOf(service: string): Activity {
    const a = this.activity.get(service);
    return { active: a?.active ?? 0, waiting: this.waitingFor(service), connections: a?.connections ?? 0, requests: a?.requests ?? 0, lastActivityAt: a?.lastActivityAt ?? null };
  }

  /** Connections waiting for an instance of `service` (activation in progress). */
  waitingFor(service: string): number {
    return this.waiters.get(service)?.length ?? 0;
  }

  /**
   * Takes an instance out of rotation and resolves when its open connections
   * have ended, or after graceMs, whichever comes first.
   */
  drain(instance: string, graceMs: number): Promise<void> {
    this.draining.add(instance);
    if (this.lastMembership) this.update(this.lastMembership);
    if (!this.active.get(instance)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = safeTimeout(finish, graceMs);
      const list = this.drainWaiters.get(instance) ?? [];
      function finish() {
        clearTimeout(timer);
        resolve();
      }
      list.push(finish);
      this.drainWaiters.set(instance, list);
    });
  }

  isDraining(instance: string): boolean {
    return this.draining.has(instance);
  }

  /** Ends every wait (the gateway is closing). */
  close(): void {
    this.closed = true;
    for (const w of this.addressWaiters.splice(0)) w();
    for (const list of this.waiters.values()) for (const w of list) w.wake();
    this.waiters.clear();
    for (const list of this.drainWaiters.values()) for (const w of list) w();
    this.drainWaiters.clear();
  }
}
