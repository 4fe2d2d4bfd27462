// plan(desired, observed, now) → actions. Pure: no I/O, no clock reads, no
// randomness; the same input always gives the same actions. It is called on
// every pass with a fresh observation (level-based, as controller-runtime
// does), so a missed or repeated event can never leave things wrong: the
// next pass sees the world and plans again.
import { resolveIntOrPercent } from '../schema/units.js';
import type { WaitCause } from '../model/wait.js';
import type { Action, DesiredService, InstanceView, PlanInput } from './types.js';

/** Crash-loop backoff: 1 s doubling to 5 min; a run of 10 min without crashing resets it. */
export const BACKOFF = { baseMs: 1_000, maxMs: 300_000, stableMs: 600_000 };

export function restartDelay(restarts: number): number {
  return Math.min(BACKOFF.maxMs, BACKOFF.baseMs * 2 ** Math.max(0, restarts));
}

/** Restarts that count for the backoff: none if the last run was long and stable. */
export function effectiveRestarts(i: InstanceView): number {
  if (i.startedAt !== null && i.finishedAt !== null && i.finishedAt - i.startedAt >= BACKOFF.stableMs) return 0;
  return i.restarts;
}

export function instanceName(service: string, ordinal: number): string {
  return `${service}-${ordinal}`;
}

/** Whether an exited instance is to be started again under its restart policy. */
function wantsRestart(svc: DesiredService, i: InstanceView): boolean {
  switch (svc.spec.restart) {
    case 'always':
      return true;
    case 'on-failure':
      return i.oomKilled || (i.exitCode ?? 1) !== 0;
    case 'never':
      return false;
  }
}

/** Removal order when there are too many: not ready first, then newest, then highest ordinal. */
function removalOrder(a: InstanceView, b: InstanceView): number {
  return Number(a.ready) - Number(b.ready) || b.createdAt - a.createdAt || b.ordinal - a.ordinal;
}

const describeExit = (i: InstanceView) => (i.oomKilled ? 'OOM-killed' : `exited with code ${i.exitCode ?? '?'}`);

const wait = (service: string, cause: WaitCause, until: number | null = null): Action => ({ kind: 'wait', service, cause, until });

export function plan(input: PlanInput): Action[] {
  const actions: Action[] = [];
  const desired = new Map(input.desired.map((d) => [d.name, d]));
  const byService = new Map<string, InstanceView[]>();
  for (const i of input.instances) {
    const list = byService.get(i.service) ?? [];
    list.push(i);
    byService.set(i.service, list);
  }
  for (const [service, list] of [...byService].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (desired.has(service)) continue;
    for (const i of list.sort((a, b) => a.ordinal - b.ordinal)) actions.push({ kind: 'remove', service, name: i.name, reason: 'its service was deleted' });
  }
  for (const svc of [...desired.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    actions.push(...planService(svc, byService.get(svc.name) ?? [], input, byService, desired));
  }
  return actions;
}

function dependenciesReady(svc: DesiredService, byService: Map<string, InstanceView[]>, desired: Map<string, DesiredService>): string[] {
  const waiting: string[] = [];
  for (const dep of svc.spec.dependsOn) {
    const d = desired.get(dep);
    // A dependency scaled to zero (idle) is woken by traffic; it does not hold its dependents back.
    if (d && (d.suspended || d.spec.replicas === 0)) continue;
    if (!(byService.get(dep) ?? []).some((i) => i.ready)) waiting.push(dep);
  }
  return waiting;
}

function planService(
  svc: DesiredService,
  mine: InstanceView[],
  input: PlanInput,
  byService: Map<string, InstanceView[]>,
  desired: Map<string, DesiredService>,
): Action[] {
  const actions: Action[] = [];
  const service = svc.name;
  const sorted = [...mine].sort((a, b) => a.ordinal - b.ordinal);
  if (svc.suspended) {
    for (const i of sorted) actions.push({ kind: 'remove', service, name: i.name, reason: 'the service is stopped' });
    return actions;
  }
  const blockedBy = dependenciesReady(svc, byService, desired);
  const gate = (what: Action): void => {
    if (blockedBy.length === 0) actions.push(what);
  };
  const replicas = svc.spec.replicas;

  // 1. Instances that cannot serve as they are: lost (gone behind our back), broken, failing liveness, exited.
  const holders: InstanceView[] = []; // instances that keep their slot
  for (const i of sorted) {
    const current = i.templateHash === svc.templateHash;
    if (i.state === 'lost') {
      actions.push({ kind: 'remove', service, name: i.name, reason: 'it was removed behind carte\'s back; cleaning up' });
      continue;
    }
    if (!current && i.state !== 'running') {
      actions.push({ kind: 'remove', service, name: i.name, reason: 'an old revision that is not running' });
      continue;
    }
    if (i.evictReason && i.state === 'running' && !i.broken && !i.unhealthy) {
      // Replaced on request (its disk quota), paced like a crash loop: an instance that passes its
      // quota again right after each start is replaced after 1 s, 2 s, 4 s … not every second.
      const due = (i.startedAt ?? input.now) + restartDelay(effectiveRestarts(i));
      if (due <= input.now) gate({ kind: 'restart', service, name: i.name, templateHash: svc.templateHash, revision: svc.revision, reason: i.evictReason });
      else actions.push(wait(service, { kind: 'crash-loop', instance: i.name, exit: 'was replaced for its disk use', restarts: i.restarts, until: due }, due));
      holders.push(i);
      continue;
    }
    if (i.broken || i.unhealthy) {
      const why = i.broken ? (i.state === 'created' ? 'it was made but never started (its creator stopped half-way)' : 'the machine shows a problem with it') : 'its health check keeps failing';
      gate({ kind: 'restart', service, name: i.name, templateHash: svc.templateHash, revision: svc.revision, reason: why });
      holders.push(i);
      continue;
    }
    if (i.state === 'exited') {
      if (!wantsRestart(svc, i)) {
        holders.push(i); // finished for good under its policy: keeps its slot, is not replaced
        continue;
      }
      const due = (i.finishedAt ?? input.now) + restartDelay(effectiveRestarts(i));
      if (due <= input.now) gate({ kind: 'restart', service, name: i.name, templateHash: svc.templateHash, revision: svc.revision, reason: `it ${describeExit(i)}` });
      else actions.push(wait(service, { kind: 'crash-loop', instance: i.name, exit: describeExit(i), restarts: i.restarts, until: due }, due));
      holders.push(i);
      continue;
    }
    holders.push(i);
  }

  // 2. Scaling and rolling update over the instances that hold slots.
  const current = holders.filter((i) => i.templateHash === svc.templateHash);
  const old = holders.filter((i) => i.templateHash !== svc.templateHash);
  const used = new Set(sorted.map((i) => i.ordinal));
  const nextNames = (n: number): string[] => {
    const names: string[] = [];
    for (let ordinal = 1; names.length < n; ordinal++) {
      if (!used.has(ordinal)) {
        used.add(ordinal);
        names.push(instanceName(service, ordinal));
      }
    }
    return names;
  };
  // A backoff earned by another template does not hold back this one: a fixed revision starts at once.
  const earned = input.createBackoff?.[service];
  const backoff = earned && (earned.templateHash === undefined || earned.templateHash === svc.templateHash) ? earned : undefined;
  const create = (n: number, reason: string) => {
    if (n <= 0) return;
    if (blockedBy.length) return;
    // Creates that keep failing wait with backoff instead of being retried every pass.
    if (backoff && backoff.until > input.now) {
      actions.push(wait(service, { kind: 'create-backoff', failures: backoff.failures, until: backoff.until }, backoff.until));
      return;
    }
    for (const name of nextNames(n)) actions.push({ kind: 'create', service, name, templateHash: svc.templateHash, revision: svc.revision, reason });
  };
  const rollout = input.rollouts[service];

  if (old.length === 0) {
    if (rollout) actions.push({ kind: 'rollout', service, templateHash: null, at: input.now });
    create(replicas - current.length, `scaling to ${replicas}`);
    for (const i of [...current].sort(removalOrder).slice(0, Math.max(0, current.length - replicas))) {
      actions.push({ kind: 'remove', service, name: i.name, reason: `scaling down to ${replicas}` });
    }
  } else {
    let startedAt = rollout?.startedAt ?? input.now;
    if (!rollout || rollout.templateHash !== svc.templateHash) {
      startedAt = input.now;
      actions.push({ kind: 'rollout', service, templateHash: svc.templateHash, at: input.now });
    }
    const currentReady = current.filter((i) => i.ready).length;
    const deadline = startedAt + svc.spec.update.progressDeadlineMs;
    if (input.now >= deadline && currentReady < Math.min(replicas, Math.max(current.length, 1))) {
      actions.push(wait(service, { kind: 'rollout-failed', revision: svc.revision, ready: currentReady, replicas, deadlineMs: svc.spec.update.progressDeadlineMs }));
    } else {
      const surge = resolveIntOrPercent(svc.spec.update.maxSurge, replicas, 'up');
      const unavailable = resolveIntOrPercent(svc.spec.update.maxUnavailable, replicas, 'down');
      const minAvailable = replicas - unavailable;
      let total = current.length + old.length;
      let available = holders.filter((i) => i.ready).length;
      // Old ones go first when they are known not to be ready (no loss), then while availability
      // allows. One whose health is not known yet (adopted after a daemon restart) is not taken
      // for a failed one: it stays until its first check says.
      for (const i of [...old].sort(removalOrder)) {
        if (!i.ready && !i.healthKnown) continue;
        if (!i.ready) {
          actions.push({ kind: 'remove', service, name: i.name, reason: `replaced by revision ${svc.revision} (it was not ready)` });
          total--;
        } else if (available - 1 >= minAvailable) {
          actions.push({ kind: 'remove', service, name: i.name, reason: `replaced by revision ${svc.revision}` });
          available--;
          total--;
        }
      }
      create(Math.min(replicas - current.length, replicas + surge - total), `rolling update to revision ${svc.revision}`);
    }
  }
  if (blockedBy.length && !actions.some((a) => a.kind === 'wait')) {
    const wanted = replicas - holders.length;
    if (wanted > 0 || holders.some((i) => i.state === 'exited' || i.broken || i.unhealthy)) {
      actions.push(wait(service, { kind: 'dependencies', on: blockedBy }));
    }
  }
  return actions;
}
