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
  write(table(AUDIT_HEAD, auditRows(entries)));
}

export const AUDIT_HEAD = ['TIME', 'WHO', 'VIA', 'ACTION', 'TARGET', 'RESULT', 'DETAIL'];
/** The widest a cell prints (the detail may be longer: it is the column that says most). */
export const CELL_MAX = 64;
export const DETAIL_MAX = 200;

/**
 * What a cell prints: the entries come from other people (a name typed at
 * sign-in, a hand-edited log), so control characters print escaped — a line
 * break cannot forge a row, an ESC cannot drive the terminal — and a long
 * text is cut with "…". Pure.
 */
export function cellText(text: string, max = CELL_MAX): string {
  const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
  // C0, DEL, C1, and the Unicode line separators and direction overrides that reorder what is shown.
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.codePointAt(0)!;
    return named[c] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
  });
  const chars = [...escaped];
  return chars.length <= max ? escaped : `${chars.slice(0, max - 1).join('')}…`;
}

/** The table's rows, every cell made safe to print. Pure. */
export function auditRows(entries: readonly AuditEntry[]): string[][] {
  return entries.map((e) => [
    e.at.replace(/\.\d+Z$/, 'Z'), whoText(e), e.via, e.action, e.target, e.result, e.detail ?? '-',
  ].map((cell, i) => cellText(cell, i === 6 ? DETAIL_MAX : CELL_MAX)));
}
