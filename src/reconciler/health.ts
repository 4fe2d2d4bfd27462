// Health state per instance, and when to check. Checks run in the
// background on their own cadence, at most one per instance at a time, each
// bounded by its timeout (probes.ts); their results come back as a change
// notice. Nothing waits on them: a reconcile pass plans from the last known
// results, so one probe that hangs for its whole timeout holds up no pass,
// no other instance and no other service.
//   ready      the last check passed (readiness: the gateway sends traffic);
//   unhealthy  failureThreshold checks in a row failed after the start period
//              (liveness: the reconciler replaces the instance);
//   known      a check has answered since the instance (re)started; until
//              then it is neither ready nor failing.
// An instance without a health check is ready while it runs.
import type { ObservedInstance } from '../drivers/driver.js';
import type { HealthSpec } from '../schema/types.js';
import type { Prober } from './probes.js';

export { makeProber, type Prober } from './probes.js';

export interface HealthState {
  ready: boolean;
  unhealthy: boolean;
  consecutiveFailures: number;
  lastCheckAt: number | null;
  lastError: string | null;
  /** The instance start this state belongs to; a restarted instance starts over. */
  startedAt: string | null;
}

export interface HealthView {
  ready: boolean;
  unhealthy: boolean;
  known: boolean;
}

/** Pure: the next state after a check result. */
export function nextHealth(prev: HealthState, error: string | null, spec: HealthSpec, now: number, startedAt: number): HealthState {
  if (error === null) return { ...prev, ready: true, unhealthy: false, consecutiveFailures: 0, lastCheckAt: now, lastError: null };
  const inStartPeriod = now - startedAt < spec.startPeriodMs;
  const failures = inStartPeriod ? 0 : prev.consecutiveFailures + 1;
  return {
    ...prev,
    // Not ready until a check passes; once ready, it takes failureThreshold failures to lose readiness.
    ready: prev.ready && failures < spec.failureThreshold,
    unhealthy: failures >= spec.failureThreshold,
    consecutiveFailures: failures,
    lastCheckAt: now,
    lastError: error,
  };
}

const fresh = (startedAt: string | null): HealthState => ({ ready: false, unhealthy: false, consecutiveFailures: 0, lastCheckAt: null, lastError: null, startedAt });

export class HealthMonitor {
  private readonly states = new Map<string, HealthState>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly listeners: Array<() => void> = [];
  private abort = new AbortController();

  constructor(private readonly probe: Prober, private readonly clock: () => number = Date.now) {}

  get(name: string): HealthState | undefined {
    return this.states.get(name);
  }

  /** Calls `fn` when a check changed an instance's readiness or liveness (or gave its first answer). */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** Readiness as the plan and the gateway see it. */
  view(i: ObservedInstance, spec: HealthSpec | null): HealthView {
    if (i.state !== 'running') return { ready: false, unhealthy: false, known: true };
    if (!spec) return { ready: true, unhealthy: false, known: true };
    const s = this.states.get(i.name);
    return s && s.startedAt === i.startedAt && s.lastCheckAt !== null
      ? { ready: s.ready, unhealthy: s.unhealthy, known: true }
      : { ready: false, unhealthy: false, known: false };
  }

  /**
   * Takes over what an earlier daemon knew of an instance's life (its last
   * readiness, from the store), so a restarted daemon neither routes away
   * from a healthy instance nor counts it as not ready until its first check.
   * The check is due at once; the usual thresholds apply from there.
   */
  seed(name: string, startedAt: string, ready: boolean): void {
    if (this.states.has(name)) return;
    this.states.set(name, { ...fresh(startedAt), ready, lastCheckAt: Number.NEGATIVE_INFINITY });
  }

  /** Checks now running, by instance. */
  get running(): number {
    return this.inFlight.size;
  }

  /**
   * Starts the checks that are due (or never ran) for running instances and
   * returns at once; forgets instances no longer listed. Resolves to the
   * checks started, for callers that want to wait (tests, `checkDue`).
   */
  startDue(instances: readonly ObservedInstance[], specOf: (i: ObservedInstance) => HealthSpec | null): Promise<boolean> {
    const now = this.clock();
    const live = new Set(instances.map((i) => i.name));
    for (const name of this.states.keys()) if (!live.has(name)) this.states.delete(name);
    const started: Array<Promise<boolean>> = [];
    for (const i of instances) {
      const spec = specOf(i);
      if (!spec || i.state !== 'running' || this.inFlight.has(i.name)) continue;
      let prev = this.states.get(i.name);
      if (!prev || prev.startedAt !== i.startedAt) prev = fresh(i.startedAt);
      if (prev.lastCheckAt !== null && now - prev.lastCheckAt < spec.intervalMs) continue;
      started.push(this.check(i, spec, prev));
    }
    return Promise.all(started).then((changes) => changes.some(Boolean));
  }

  /** Starts due checks and waits for them: true if any readiness changed. */
  checkDue(instances: readonly ObservedInstance[], specOf: (i: ObservedInstance) => HealthSpec | null): Promise<boolean> {
    return this.startDue(instances, specOf);
  }

  private check(i: ObservedInstance, spec: HealthSpec, before: HealthState): Promise<boolean> {
    let changed = false;
    const run = (async () => {
      const error = await this.probe(spec.check, { name: i.name, ip: i.ip }, spec.timeoutMs, this.abort.signal);
      if (this.abort.signal.aborted) return;
      const next = nextHealth(before, error, spec, this.clock(), Date.parse(i.startedAt ?? i.createdAt));
      changed = next.ready !== before.ready || next.unhealthy !== before.unhealthy || before.lastCheckAt === null;
      // The instance may have been restarted meanwhile: a result for an older life than the one
      // recorded is dropped (ISO times compare as strings); the state of an older life is replaced.
      const current = this.states.get(i.name);
      if (current?.startedAt && i.startedAt && current.startedAt > i.startedAt) return;
      this.states.set(i.name, next);
    })().catch(() => undefined).finally(() => this.inFlight.delete(i.name));
    this.inFlight.set(i.name, run);
    return run.then(() => {
      if (changed) for (const fn of this.listeners) fn();
      return changed;
    });
  }

  /** Resolves when every check running now has ended. */
  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight.values()]);
  }

  /** Ends every running check at once (exec probes are killed); later checks run normally. */
  abortAll(): void {
    this.abort.abort();
    this.abort = new AbortController();
  }
}
