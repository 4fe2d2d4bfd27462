// Runs the plan's instance actions through the driver, in the background.
//
// Slots: at most `parallelism` creates and removals do work at once (they
// cost CPU, I/O and processes), taken in turn across services (round-robin),
// so twenty queued creates of one service never starve another's one.
// Waiting is not work: draining an instance and its stop grace period (which
// a SIGTERM-ignoring instance can stretch to its stopGracePeriod) happen
// before a removal asks for a slot, so a slow stop never holds one.
//
// Each action is in flight from submit() until it ended either way; the
// loop feeds in-flight actions back into the next plan instead of waiting
// for them. Failed creates are counted per service and become a backoff the
// plan reads.
import type { Driver, InstanceSpec, ObservedInstance } from '../drivers/driver.js';
import { CarteError } from '../errors.js';
import type { Logger } from '../log.js';
import { LABELS, type DesiredService } from '../model/instances.js';
import type { CarteEvent } from '../store/state.js';
import { restartDelay } from './plan.js';
import type { CreateBackoff, InstanceAction } from './types.js';

export type PendingEvent = Omit<CarteEvent, 'seq' | 'at'>;

export interface ExecutorOptions {
  driver: Driver;
  log: Logger;
  /** Creations and removals doing work at once. */
  parallelism?: number;
  clock?: () => number;
  /** Builds what the driver needs to make an instance (image, hosts, labels). */
  specFor: (svc: DesiredService, name: string, restarts: number) => Promise<InstanceSpec>;
  /**
   * Work before a create that needs no slot (waiting on a registry: a pull):
   * a slow registry then holds up no other service's creates.
   */
  prepare?: (svc: DesiredService) => Promise<void>;
  /** Called before a running instance is stopped on purpose: the gateway drains it, up to graceMs. */
  beforeStop?: (instance: string, graceMs: number) => Promise<void>;
  /** An action ended (either way): look again. */
  onDone: () => void;
}

export class Executor {
  private readonly inflight = new Map<string, InstanceAction>();
  private readonly queues = new Map<string, Array<() => void>>();
  /** Services with queued work, in the order they get their next turn. */
  private readonly turn: string[] = [];
  private active = 0;
  private readonly failures = new Map<string, CreateBackoff>();
  private events: PendingEvent[] = [];
  private idleWaiters: Array<() => void> = [];
  private abandoned = false;
  private readonly parallelism: number;
  private readonly clock: () => number;

  constructor(private readonly opts: ExecutorOptions) {
    this.parallelism = opts.parallelism ?? 8;
    this.clock = opts.clock ?? Date.now;
  }

  /** Actions running now, by instance name. */
  get inFlight(): ReadonlyMap<string, InstanceAction> {
    return this.inflight;
  }

  /** Services whose creates failed recently, for the plan. */
  createBackoff(): Record<string, CreateBackoff> {
    return Object.fromEntries(this.failures);
  }

  /** Events of ended actions, handed over once. */
  takeEvents(): PendingEvent[] {
    return this.events.splice(0);
  }

  /**
   * Starts an action in the background. `svc` is the service as desired when
   * the action was planned (absent when it was deleted); `observed` the
   * instance as listed then (absent for a create); `graceMs` its stop grace
   * period (a deleted service's last one).
   */
  submit(a: InstanceAction, observed: ObservedInstance | null, svc: DesiredService | undefined, graceMs: number): void {
    if (this.abandoned) return;
    this.inflight.set(a.name, a);
    const started = performance.now();
    void this.run(a, observed, svc, graceMs)
      .then(() => {
        if (a.kind !== 'remove') this.failures.delete(a.service);
      }, (e: Error) => {
        this.opts.log.warn({ service: a.service, instance: a.name, action: a.kind, err: e.message }, 'action failed');
        if (a.kind !== 'remove') {
          const before = this.failures.get(a.service);
          const same = before?.templateHash === a.templateHash;
          const failures = (same ? before!.failures : 0) + 1;
          this.failures.set(a.service, { failures, until: this.clock() + restartDelay(failures - 1), templateHash: a.templateHash });
        }
        this.events.push({ type: 'Warning', object: `service/${a.service}`, reason: a.kind === 'remove' ? 'RemoveFailed' : e instanceof CarteError && e.code === 'registry' ? 'PullFailed' : 'CreateFailed', message: `${a.name}: ${e.message}` });
      })
      .finally(() => {
        this.opts.log.debug({ service: a.service, instance: a.name, action: a.kind, ms: Math.round(performance.now() - started) }, 'action done');
        this.inflight.delete(a.name);
        if (this.abandoned) return;
        this.opts.onDone();
        if (this.inflight.size === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
  }

  /** Resolves when no action is in flight. */
  idle(): Promise<void> {
    if (this.inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Shutdown: starts nothing more and reports nothing more. Actions half-way
   * are left as they are; the next start sees their instances and finishes
   * the job (a created but never started instance is replaced, a half-removed
   * one is removed again).
   */
  abandon(): void {
    this.abandoned = true;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async run(a: InstanceAction, observed: ObservedInstance | null, svc: DesiredService | undefined, grace: number): Promise<void> {
    const { driver } = this.opts;
    switch (a.kind) {
      case 'create': {
        if (!svc) return;
        await this.opts.prepare?.(svc);
        await this.slot(a.service, async () => driver.create(await this.opts.specFor(svc, a.name, 0)));
        this.events.push({ type: 'Normal', object: `service/${a.service}`, reason: 'InstanceCreated', message: `${a.name} created (revision ${a.revision}): ${a.reason}` });
        return;
      }
      case 'remove':
        await this.stopGently(a.name, observed, grace);
        await this.slot(a.service, () => this.remove(a.name));
        this.events.push({ type: 'Normal', object: `service/${a.service}`, reason: 'InstanceRemoved', message: `${a.name} removed: ${a.reason}` });
        return;
      case 'restart': {
        if (!svc) return;
        const restarts = Number(observed?.labels[LABELS.restarts] ?? 0) + 1;
        await this.opts.prepare?.(svc);
        await this.stopGently(a.name, observed, grace);
        await this.slot(a.service, async () => {
          await this.remove(a.name);
          await driver.create(await this.opts.specFor(svc, a.name, restarts));
        });
        this.events.push({ type: 'Warning', object: `service/${a.service}`, reason: 'InstanceRestarted', message: `${a.name} restarted (${restarts}): ${a.reason}` });
      }
    }
  }

  /** Drain, then SIGTERM and the grace period: waiting only, so outside a slot. */
  private async stopGently(name: string, observed: ObservedInstance | null, graceMs: number): Promise<void> {
    if (observed?.state !== 'running') return;
    // Draining is best effort: a failure must not keep an instance alive.
    if (this.opts.beforeStop) await this.opts.beforeStop(name, graceMs).catch((e: Error) => this.opts.log.warn({ instance: name, err: e.message }, 'drain failed'));
    await this.opts.driver.stop(name, graceMs);
  }

  private async remove(name: string): Promise<void> {
    const report = await this.opts.driver.remove(name);
    if (report.failures.length) throw new Error(report.failures.map((f) => `${f.step} ${f.resource}: ${f.error}`).join('; '));
  }

  /** Runs `work` when a slot is free and it is `service`'s turn. */
  private slot<T>(service: string, work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const queue = this.queues.get(service) ?? [];
      if (!this.queues.has(service)) {
        this.queues.set(service, queue);
        this.turn.push(service);
      }
      queue.push(() => {
        this.active++;
        work().then(resolve, reject).finally(() => {
          this.active--;
          this.dispatch();
        });
      });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (!this.abandoned && this.active < this.parallelism && this.turn.length) {
      const service = this.turn.shift()!;
      const queue = this.queues.get(service)!;
      const job = queue.shift()!;
      // Back of the line if it has more: the next service goes first.
      if (queue.length) this.turn.push(service);
      else this.queues.delete(service);
      job();
    }
  }
}
