import { planApply } from '../../api/apply.js';
import { diffServices, formatChange } from '../../api/diff.js';
import { ManifestError } from '../../errors.js';
import { loadManifests } from '../../schema/load.js';
import type { Context } from '../context.js';
import { write } from '../output.js';

export interface DiffOptions {
  filename: string[];
  prune?: boolean;
}

export async function diff(ctx: Context, opts: DiffOptions): Promise<void> {
  const services = loadManifests(opts.filename);
  const admission = await ctx.admission();
  const plan = planApply(await ctx.store().read(), { services, source: 'cli', prune: opts.prune === true, admission });
  if (plan.problems.length) throw new ManifestError(plan.problems, 'nothing would be applied');
  const lines: string[] = [];
  for (const c of plan.changes) {
    if (c.action === 'unchanged') continue;
    lines.push(`service/${c.name} ${c.action}`);
    for (const change of diffServices(c.before, c.after)) lines.push(`  ${formatChange(change)}`);
  }
  write(lines.length ? lines.join('\n') : 'no changes');
}
