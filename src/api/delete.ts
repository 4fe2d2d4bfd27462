// Deleting services from desired state, all or nothing: every name must
// exist, belong to the source asking, and not be needed by a service that stays.
import { ConflictError, NotFoundError } from '../errors.js';
import { recordEvent, syncServiceIndexes, type SourceId, type StateData } from '../store/state.js';
import type { Store } from '../store/store.js';
import { storedService } from './lookup.js';

/** Throws if the deletion cannot happen; pure. */
export function checkDelete(data: StateData, names: readonly string[], source: SourceId, force = false): void {
  const missing = names.filter((n) => !storedService(data, n));
  if (missing.length) throw new NotFoundError(`${missing.map((n) => `service "${n}"`).join(', ')} not found; nothing was deleted`);
  const problems: string[] = [];
  for (const name of names) {
    const owner = data.services[name]!.source;
    if (owner !== source && !force) problems.push(`service "${name}" belongs to source ${owner}: remove its manifest there (or stop that source and use --force)`);
  }
  const deleting = new Set(names);
  for (const s of Object.values(data.services)) {
    if (deleting.has(s.name)) continue;
    for (const dep of s.revision.spec.dependsOn) {
      if (deleting.has(dep)) problems.push(`service "${s.name}" depends on "${dep}": delete both together, or remove the dependency first`);
    }
  }
  if (problems.length) throw new ConflictError('cannot delete; nothing was deleted', problems);
}

export async function deleteServices(store: Store, names: readonly string[], opts: { source: SourceId; dryRun?: boolean; force?: boolean; now?: () => Date }): Promise<string[]> {
  const unique = [...new Set(names)];
  if (opts.dryRun) {
    checkDelete(await store.read(), unique, opts.source, opts.force);
    return unique;
  }
  return store.update((data) => {
    checkDelete(data, unique, opts.source, opts.force);
    const now = (opts.now ?? (() => new Date()))();
    for (const name of unique) {
      delete data.services[name];
      recordEvent(data, now, { type: 'Normal', object: `service/${name}`, reason: 'Deleted', message: `deleted by ${opts.source}` });
    }
    syncServiceIndexes(data);
    return unique;
  });
}
