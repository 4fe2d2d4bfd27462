import { deleteServices } from '../../api/delete.js';
import { UsageError } from '../../errors.js';
import { loadManifests } from '../../schema/load.js';
import type { Context } from '../context.js';
import { convergeAfterChange } from '../converge.js';
import { write } from '../output.js';
import { timeoutOf } from './services.js';
import { SERVICE_WORDS } from './get.js';
import { storedService } from '../../api/lookup.js';

export interface DeleteOptions {
  filename?: string[];
  dryRun?: boolean;
  wait?: boolean;
  timeout?: string;
  start?: boolean;
  force?: boolean;
}

export async function del(ctx: Context, words: string[], opts: DeleteOptions): Promise<void> {
  let names: string[];
  if (opts.filename?.length) {
    if (words.length) throw new UsageError('delete: give service names or -f, not both');
    names = loadManifests(opts.filename).map((s) => s.object.name);
  } else {
    // `delete service a b` and `delete a b` both work.
    names = words[0] !== undefined && SERVICE_WORDS.includes(words[0]) ? words.slice(1) : words;
    if (!names.length) throw new UsageError('delete: name the services to delete, or give -f FILE');
  }
  const before = opts.dryRun ? null : await ctx.store().read();
  const deleted = await deleteServices(ctx.store(), names, { source: 'cli', dryRun: opts.dryRun, force: opts.force === true, now: ctx.now });
  const suffix = opts.dryRun ? ' (dry run)' : '';
  write(deleted.map((n) => `service/${n} deleted${suffix}`).join('\n'));
  if (opts.dryRun || opts.start === false) return;
  const graces = Object.fromEntries(deleted.flatMap((n) => {
    const spec = before ? storedService(before, n)?.revision.spec : undefined;
    return spec ? [[n, spec.stopGracePeriodMs]] : [];
  }));
  await convergeAfterChange(ctx, { wait: opts.wait === true, timeoutMs: timeoutOf(opts), services: [], scope: deleted, graces });
}
