// `carte audit`: who did what, through which door, and how it went — read
// from CARTE_HOME/audit.log (src/audit/log.ts), oldest of the shown first.
import { FileAuditLog } from '../../audit/log.js';
import type { AuditEntry } from '../../audit/types.js';
import { UsageError } from '../../errors.js';
import type { Context } from '../context.js';
import { table, write } from '../output.js';

export const AUDIT_DEFAULT_LIMIT = 50;

/** How an entry's principal reads in the WHO column: user/alice, token/ci, root/root (a local root, or the sudo user). */
export const whoText = (e: AuditEntry) => `${e.who.kind}/${e.who.name}`;

export async function audit(ctx: Context, opts: { limit?: string; output?: string }): Promise<void> {
  if (opts.output !== undefined && opts.output !== 'json') throw new UsageError(`audit: unknown output format "${opts.output}" (use json)`);
  let limit = AUDIT_DEFAULT_LIMIT;
  if (opts.limit !== undefined) {
    limit = Number(opts.limit);
    if (!/^\d+$/.test(opts.limit) || limit < 1) throw new UsageError(`audit: --limit takes a whole number above 0, got "${opts.limit}"`);
  }
  const entries = await new FileAuditLog(ctx.home).list({ limit });
  if (opts.output === 'json') return write(JSON.stringify({ items: entries }, null, 2));
  if (!entries.length) {
    process.stderr.write('no audit entries\n');
    return;
  }
  write(table(['TIME', 'WHO', 'VIA', 'ACTION', 'TARGET', 'RESULT', 'DETAIL'], entries.map((e) => [
    e.at.replace(/\.\d+Z$/, 'Z'), whoText(e), e.via, e.action, e.target, e.result, e.detail ?? '-',
  ])));
}
