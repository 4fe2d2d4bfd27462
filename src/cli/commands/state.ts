// `carte state verify` and `carte state restore`: look at state.json and the
// generations the store keeps of it, and put one back by hand. Recovery of a
// damaged state.json is automatic (any command does it); these are for
// seeing what is kept and for undoing a change that was valid but wrong.
import path from 'node:path';
import { UsageError } from '../../errors.js';
import type { FileCheck } from '../../store/generations.js';
import type { Context } from '../context.js';
import { table, write } from '../output.js';

/** Prints state.json and each generation, ok or damaged; exit 1 when state.json is damaged. */
export async function verify(ctx: Context): Promise<number> {
  const store = ctx.store();
  const { current, generations } = await store.verify();
  const rel = (p: string) => path.relative(ctx.home, p);
  const row = (c: FileCheck): string[] => [
    rel(c.path), c.generation === null ? '-' : String(c.generation), c.writtenAt ?? '-', String(c.size), c.problem === null ? 'ok' : `damaged: ${c.problem}`,
  ];
  const rows = [current ? row(current) : [rel(store.file), '-', '-', '0', 'absent (carte starts empty)'], ...generations.map(row)];
  write(table(['FILE', 'GENERATION', 'WRITTEN', 'SIZE', 'STATUS'], rows));
  if (!current || current.problem === null) return 0;
  const good = generations.find((g) => g.problem === null);
  write(good
    ? `state.json is damaged: the next carte command restores generation ${good.generation} (or run "carte state restore")`
    : 'state.json is damaged and no generation is good: restore a copy you trust with "carte state restore FILE", or move state.json away to start empty');
  return 1;
}

/** Makes a generation (default: the newest good one) or a given state file the current state. */
export async function restore(ctx: Context, target: string | undefined): Promise<void> {
  let from: number | string | undefined;
  if (target === undefined) from = undefined;
  else if (/^\d+$/.test(target)) from = Number(target);
  else if (target.includes('/') || target.endsWith('.json')) from = target;
  else throw new UsageError(`state restore: "${target}" is neither a generation number nor a state file path (see "carte state verify")`);
  const r = await ctx.store().restore(from);
  const what = typeof from === 'string' ? `${r.from.path} (generation ${r.from.generation ?? '?'})` : `generation ${r.from.generation}`;
  write(`state restored from ${what} written at ${r.from.writtenAt ?? 'an unknown time'}; it is now generation ${r.generation}`);
  if (r.damagedFile) write(`the damaged state.json is kept at ${r.damagedFile}`);
}
