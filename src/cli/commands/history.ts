import { changedFields } from '../../api/apply.js';
import { NotFoundError } from '../../errors.js';
import type { Revision } from '../../store/state.js';
import type { Context } from '../context.js';
import { age, table, write } from '../output.js';
import { storedService } from '../../api/lookup.js';

const asObject = (name: string, r: Revision) => ({ name, labels: r.labels, spec: r.spec });

/** What a revision changed compared with the one before it, in a few words. */
export function changeCause(name: string, r: Revision, previous: Revision | undefined): string {
  if (r.cause.kind === 'rollback') return `rollback to ${r.cause.to}`;
  if (r.cause.kind === 'restart') return 'restart';
  if (r.cause.kind === 'secret') return `secret ${r.cause.name} changed`;
  if (r.cause.kind === 'scale') return `scale ${r.cause.from} → ${r.spec.replicas}`;
  if (!previous) return 'created';
  return changedFields(asObject(name, previous), asObject(name, r), 3) || 'no change';
}

export function revisionRows(name: string, history: readonly Revision[], now: Date): string[][] {
  return history.map((r, i) => [
    String(r.revision),
    age(r.at, now),
    r.source,
    r.commit ? r.commit.slice(0, 12) : '-',
    r.origin ?? '-',
    changeCause(name, r, history[i - 1]),
  ]);
}

export const REVISION_HEAD = ['REVISION', 'AGE', 'SOURCE', 'COMMIT', 'ORIGIN', 'CHANGE'];

export async function history(ctx: Context, name: string): Promise<void> {
  const s = storedService(await ctx.store().read(), name);
  if (!s) throw new NotFoundError(`service "${name}" not found`);
  write(table(REVISION_HEAD, revisionRows(name, s.history, ctx.now())));
}
