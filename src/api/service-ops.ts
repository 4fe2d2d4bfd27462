// Operations on one stored service that are not an apply: stop and start
// (suspend to zero and resume, remembered), a rolling restart, scaling.
// Each is a store update; the reconciler does the rest.
import { createHash } from 'node:crypto';
import { CarteError, NotFoundError } from '../errors.js';
import { recordEvent, type StateData, type StoredService } from '../store/state.js';
import type { Store } from '../store/store.js';
import { specHash } from '../schema/canonical.js';
import { peakReplicas } from '../policy/admit.js';
import { pushRevision } from './apply.js';
import { storedService } from './lookup.js';

function find(data: StateData, name: string): StoredService {
  const s = storedService(data, name);
  if (!s) throw new NotFoundError(`service "${name}" not found`);
  return s;
}

/** `by`: who asked, for the event (`cli`, or `dashboard (alice)`). */
export async function setSuspended(store: Store, name: string, suspended: boolean, now = new Date(), by = 'cli'): Promise<boolean> {
  return store.update((data) => {
    const s = find(data, name);
    if ((s.suspended === true) === suspended) return false;
    s.suspended = suspended;
    recordEvent(data, now, { type: 'Normal', object: `service/${name}`, reason: suspended ? 'Stopped' : 'Started', message: suspended ? `stopped by ${by}: held at zero instances` : `started by ${by}` });
    return true;
  });
}

/**
 * A rolling restart: a new revision with the same spec and a new template
 * hash, so every instance is replaced under the update strategy (what
 * `kubectl rollout restart` does with a template annotation).
 */
export async function restartService(store: Store, name: string, now = new Date()): Promise<number> {
  return store.update((data) => {
    const s = find(data, name);
    const r = s.revision;
    const templateHash = createHash('sha256').update(`${r.templateHash}:restart:${now.toISOString()}`).digest('hex').slice(0, 16);
    pushRevision(s, { ...r, revision: r.revision + 1, templateHash, cause: { kind: 'restart' }, at: now.toISOString() });
    recordEvent(data, now, { type: 'Normal', object: `service/${name}`, reason: 'RestartRequested', message: `revision ${r.revision + 1}: every instance is replaced, one by one` });
    return r.revision + 1;
  });
}

/** The server policy's replica limits for whoever scales (`carte scale` is the CLI source). */
export interface ReplicaLimits {
  perService: number;
  total: number;
}

/**
 * `limits`: the policy's replica limits, or a function giving them for the
 * service's source (its section: a class's service is held to the class's
 * limits even when the administrator scales it).
 */
export async function scaleService(store: Store, name: string, replicas: number, now = new Date(), limits?: ReplicaLimits | ((source: string) => ReplicaLimits)): Promise<{ from: number; source: string } | null> {
  return store.update((data) => {
    const s = find(data, name);
    const r = s.revision;
    const a = r.spec.autoscale;
    if (a) {
      throw new CarteError('conflict', `service "${name}" is autoscaled (${a.min}–${a.max} replicas): change autoscale.min/max in its manifest instead`);
    }
    if (r.spec.replicas === replicas) return null;
    if (limits) checkScale(data, name, replicas, typeof limits === 'function' ? limits(s.source) : limits);
    const spec = { ...r.spec, replicas };
    pushRevision(s, { ...r, revision: r.revision + 1, spec, hash: specHash({ name, labels: r.labels, spec }), cause: { kind: 'scale', from: r.spec.replicas }, at: now.toISOString() });
    recordEvent(data, now, { type: 'Normal', object: `service/${name}`, reason: 'Scaled', message: `${r.spec.replicas} → ${replicas} replicas (revision ${r.revision + 1})` });
    return { from: r.spec.replicas, source: s.source };
  });
}

/** Scaling is admitted like an apply: within the policy's replicas per service and in total (a scale-down always is). */
function checkScale(data: StateData, name: string, replicas: number, limits: ReplicaLimits): void {
  const current = find(data, name).revision.spec.replicas;
  if (replicas <= current) return;
  if (replicas > limits.perService) {
    throw new CarteError('conflict', `cannot scale service "${name}" to ${replicas}: above the server policy's maximum of ${limits.perService} replicas per service`);
  }
  const others = Object.values(data.services).filter((s) => s.name !== name).reduce((n, s) => n + peakReplicas(s.revision.spec), 0);
  if (others + replicas > limits.total) {
    throw new CarteError('conflict', `cannot scale service "${name}" to ${replicas}: the services would have ${others + replicas} replicas in all, above the server policy's total of ${limits.total}`);
  }
}
