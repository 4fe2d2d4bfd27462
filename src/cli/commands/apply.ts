import { applyServices } from '../../api/apply.js';
import { loadManifests } from '../../schema/load.js';
import type { Context } from '../context.js';
import { convergeAfterChange } from '../converge.js';
import { write } from '../output.js';
import { timeoutOf } from './services.js';

export interface ApplyOptions {
  filename: string[];
  dryRun?: boolean;
  prune?: boolean;
  wait?: boolean;
  timeout?: string;
  /** commander's --no-start: false when given. */
  start?: boolean;
}

export async function apply(ctx: Context, opts: ApplyOptions): Promise<void> {
  const services = loadManifests(opts.filename);
  const admission = await ctx.admission();
  const changes = await applyServices(ctx.store(), { services, source: 'cli', prune: opts.prune === true, admission }, { dryRun: opts.dryRun, now: ctx.now });
  const suffix = opts.dryRun ? ' (dry run)' : '';
  write(changes.map((c) => `service/${c.name} ${c.action}${suffix}`).join('\n') || `nothing to apply${suffix}`);
  if (opts.dryRun || opts.start === false) return;
  await convergeAfterChange(ctx, {
    wait: opts.wait === true, timeoutMs: timeoutOf(opts),
    services: changes.filter((c) => c.action !== 'pruned').map((c) => c.name),
    // Every service of these manifests (unchanged ones too: a by-hand apply repairs them), and those pruned.
    scope: changes.map((c) => c.name),
  });
}
