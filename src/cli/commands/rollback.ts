import { rollbackService } from '../../api/rollback.js';
import { UsageError } from '../../errors.js';
import type { Context } from '../context.js';
import { convergeAfterChange } from '../converge.js';
import { write } from '../output.js';
import { timeoutOf } from './services.js';

export async function rollback(ctx: Context, name: string, opts: { to?: string; wait?: boolean; timeout?: string; start?: boolean }): Promise<void> {
  let to: number | undefined;
  if (opts.to !== undefined) {
    to = Number(opts.to);
    if (!Number.isInteger(to) || to < 1) throw new UsageError(`rollback: --to takes a revision number, got "${opts.to}"`);
  }
  // Admitted again under today's policy: what was allowed when that revision was written may not be now.
  const r = await rollbackService(ctx.store(), name, { to, now: ctx.now, admission: await ctx.admission() });
  write(`service/${name} rolled back to revision ${r.to} (now revision ${r.revision})`);
  if (r.source !== 'cli') {
    ctx.log.warn(`service/${name} belongs to source ${r.source}: its next sync puts the spec of its manifests back; change the manifests there to keep this`);
  }
  if (opts.start === false) return;
  await convergeAfterChange(ctx, { wait: opts.wait === true, timeoutMs: timeoutOf(opts), services: [name] });
}
