// Rollback writes a new revision whose spec is a copy of an earlier one, as
// `kubectl rollout undo` does: history only grows, and a rollback can itself
// be rolled back.
import { CarteError, NotFoundError } from '../errors.js';
import type { AdmissionContext } from '../policy/admit.js';
import { readmitRevision } from '../policy/recheck.js';
import { specHash, stableJson, templateHash } from '../schema/canonical.js';
import { recordEvent, type Revision, type StateData } from '../store/state.js';
import type { Store } from '../store/store.js';
import { changedFields, pushRevision } from './apply.js';
import { storedService } from './lookup.js';

/** The revision a rollback returns to: `to`, or else the newest earlier one with a different spec. Pure. */
export function rollbackTarget(data: StateData, name: string, to?: number): Revision {
  const s = storedService(data, name);
  if (!s) throw new NotFoundError(`service "${name}" not found`);
  const current = s.revision;
  if (to !== undefined) {
    const target = s.history.find((r) => r.revision === to);
    if (!target) {
      throw new NotFoundError(`service "${name}" has no revision ${to} (kept: ${s.history.map((r) => r.revision).join(', ')})`);
    }
    if (target.hash === current.hash) throw new CarteError('conflict', `service "${name}" revision ${to} has the same spec as the current revision ${current.revision}; nothing to do`);
    return target;
  }
  const earlier = [...s.history].reverse().find((r) => r.revision < current.revision && r.hash !== current.hash);
  if (!earlier) throw new CarteError('conflict', `service "${name}" has no earlier revision to roll back to`);
  return earlier;
}

export async function rollbackService(store: Store, name: string, opts: { to?: number; now?: () => Date; admission?: AdmissionContext } = {}): Promise<{ from: number; to: number; revision: number; source: string }> {
  return store.update((data) => {
    const target = rollbackTarget(data, name, opts.to);
    const s = data.services[name]!;
    const now = (opts.now ?? (() => new Date()))();
    const from = s.revision;
    const number = from.revision + 1;
    const obj = (r: Revision) => ({ name, labels: r.labels, spec: r.spec });
    // Admitted again under today's policy: a revision written under an older, looser one
    // (a host folder since withdrawn, a higher limit) must not come back through a rollback.
    let spec = target.spec;
    if (opts.admission) {
      const again = readmitRevision(data, name, target, opts.admission);
      if (!again.spec) {
        throw new CarteError('conflict', `service "${name}" was not rolled back: the server policy refuses revision ${target.revision} now; apply a manifest that fits the policy instead`, { details: again.problems });
      }
      spec = again.spec;
    }
    const hashes = stableJson(spec) === stableJson(target.spec) ? {} : { hash: specHash({ name, labels: target.labels, spec }), templateHash: templateHash(spec) };
    pushRevision(s, { ...target, spec, ...hashes, revision: number, source: s.source, cause: { kind: 'rollback', to: target.revision }, at: now.toISOString() });
    recordEvent(data, now, {
      type: 'Normal', object: `service/${name}`, reason: 'RolledBack',
      message: `revision ${from.revision} → ${number} (a copy of revision ${target.revision}): ${changedFields(obj(from), obj(target))}`,
    });
    return { from: from.revision, to: target.revision, revision: number, source: s.source };
  });
}
