// Rollback writes a new revision whose spec is a copy of an earlier one, as
// `kubectl rollout undo` does: history only grows, and a rollback can itself
// be rolled back.
import { CarteError, NotFoundError } from '../errors.js';
import { recordEvent, type Revision, type StateData } from '../store/state.js';
import type { Store } from '../store/store.js';
import { changedFields, pushRevision } from './apply.js';

/** The revision a rollback returns to: `to`, or else the newest earlier one with a different spec. Pure. */
export function rollbackTarget(data: StateData, name: string, to?: number): Revision {
  const s = data.services[name];
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

export async function rollbackService(store: Store, name: string, opts: { to?: number; now?: () => Date } = {}): Promise<{ from: number; to: number; revision: number; source: string }> {
  return store.update((data) => {
    const target = rollbackTarget(data, name, opts.to);
    const s = data.services[name]!;
    const now = (opts.now ?? (() => new Date()))();
    const from = s.revision;
    const number = from.revision + 1;
    const obj = (r: Revision) => ({ name, labels: r.labels, spec: r.spec });
    pushRevision(s, { ...target, revision: number, source: s.source, cause: { kind: 'rollback', to: target.revision }, at: now.toISOString() });
    recordEvent(data, now, {
      type: 'Normal', object: `service/${name}`, reason: 'RolledBack',
      message: `revision ${from.revision} → ${number} (a copy of revision ${target.revision}): ${changedFields(obj(from), obj(target))}`,
    });
    return { from: from.revision, to: target.revision, revision: number, source: s.source };
  });
}
