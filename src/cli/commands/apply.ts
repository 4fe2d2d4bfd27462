import { applyManifests } from '../../api/apply.js';
import { ManifestError } from '../../errors.js';
import { loadManifestSet } from '../../schema/load.js';
import { openSealedSecrets } from '../../secrets/sealed.js';
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
  const { services, sealedSecrets } = loadManifestSet(opts.filename);
  // SealedSecrets are opened with the server's key before anything is planned: one that does not open refuses the set.
  const opened = sealedSecrets.length ? await openSealedSecrets(sealedSecrets, await ctx.vault().key(), 'cli') : { secrets: [], problems: [] };
  if (opened.problems.length) throw new ManifestError(opened.problems, opts.dryRun ? 'nothing would be applied' : undefined);
  const admission = await ctx.admission();
  const { changes, secrets } = await applyManifests(ctx.store(), { services, secrets: opened.secrets, source: 'cli', prune: opts.prune === true, admission }, { dryRun: opts.dryRun, now: ctx.now, vault: ctx.vault() });
  const suffix = opts.dryRun ? ' (dry run)' : '';
  const lines = [...secrets.map((c) => `secret/${c.name} ${c.action}${suffix}`), ...changes.map((c) => `service/${c.name} ${c.action}${suffix}`)];
  write(lines.join('\n') || `nothing to apply${suffix}`);
  if (opts.dryRun || opts.start === false) return;
  await convergeAfterChange(ctx, {
    wait: opts.wait === true, timeoutMs: timeoutOf(opts),
    services: changes.filter((c) => c.action !== 'pruned').map((c) => c.name),
    // Every service of these manifests (unchanged ones too: a by-hand apply repairs them), and those pruned.
    scope: changes.map((c) => c.name),
  });
}
