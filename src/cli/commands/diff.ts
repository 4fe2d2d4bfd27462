import { planApply } from '../../api/apply.js';
import { diffServices, formatChange } from '../../api/diff.js';
import { ManifestError } from '../../errors.js';
import { loadManifestSet } from '../../schema/load.js';
import { readVolumeOwners, volumesDirOf } from '../../util/volume-owners.js';
import type { Context } from '../context.js';
import { write } from '../output.js';

export interface DiffOptions {
  filename: string[];
  prune?: boolean;
}

export async function diff(ctx: Context, opts: DiffOptions): Promise<void> {
  const { services, sealedSecrets } = loadManifestSet(opts.filename);
  const admission = await ctx.admission();
  // SealedSecrets count by their keys (references to them resolve); their values are not opened here,
  // so whether a stored one would change is not known: only new and pruned ones are shown.
  const sealed = sealedSecrets.map((s) => ({
    name: s.name, keys: Object.keys(s.data).sort(), values: {}, changed: false, changedKeys: null, origin: s.origin, locate: s.locate,
  }));
  const plan = planApply(await ctx.store().read(), { services, source: 'cli', prune: opts.prune === true, admission, volumeOwners: await readVolumeOwners(volumesDirOf(ctx.home)) }, sealed);
  if (plan.problems.length) throw new ManifestError(plan.problems, 'nothing would be applied');
  const lines: string[] = plan.secretChanges.filter((c) => c.action === 'created' || c.action === 'pruned').map((c) => `secret/${c.name} ${c.action}`);
  for (const c of plan.changes) {
    if (c.action === 'unchanged') continue;
    lines.push(`service/${c.name} ${c.action}`);
    for (const change of diffServices(c.before, c.after)) lines.push(`  ${formatChange(change)}`);
  }
  write(lines.length ? lines.join('\n') : 'no changes');
}
