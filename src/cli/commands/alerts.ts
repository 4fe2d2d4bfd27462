// `carte alerts` and the ALERTS section of `carte status`: read from the state
// file, where the daemon's alert engine keeps firing and recently resolved
// alerts, so both work without a daemon (they then show what it last saw).
import { recentAlerts, storedAlerts } from '../../alerts/engine.js';
import type { Alert } from '../../alerts/types.js';
import { UsageError } from '../../errors.js';
import type { StateData } from '../../store/state.js';
import type { Context } from '../context.js';
import { age, table, write } from '../output.js';

export interface AlertsOptions {
  all?: boolean;
  output?: string;
}

/** Resolved alerts shown without --all: those resolved this recently. */
export const RECENT_MS = 24 * 3_600_000;

const state = (a: Alert, now: Date) => (a.resolvedAt === null ? 'firing' : `resolved ${age(a.resolvedAt, now)} ago`);

/** The table of `carte status` (firing alerts only). */
export function activeAlertsTable(data: Readonly<StateData>, now: Date): string {
  const active = storedAlerts(data).active;
  if (!active.length) return '<none>';
  return table(['SINCE', 'SEVERITY', 'RULE', 'OBJECT', 'MESSAGE'], recentAlerts({ active, resolved: [] }).map((a) => [
    `${age(a.firedAt, now)} ago`, a.severity, a.rule, a.object, a.message,
  ]));
}

export async function alerts(ctx: Context, opts: AlertsOptions): Promise<void> {
  if (opts.output !== undefined && opts.output !== 'json') throw new UsageError(`alerts: unknown output format "${opts.output}" (use json)`);
  const data = await ctx.store().read();
  const now = ctx.now();
  const list = recentAlerts(storedAlerts(data)).filter((a) => opts.all || a.resolvedAt === null || now.getTime() - Date.parse(a.resolvedAt) < RECENT_MS);
  if (opts.output === 'json') {
    write(JSON.stringify({ items: list }, null, 2));
    return;
  }
  if (!list.length) {
    process.stderr.write(opts.all ? 'no alerts\n' : 'no alerts firing or resolved in the last 24h (--all lists every kept one)\n');
    return;
  }
  write(table(['FIRED', 'STATE', 'SEVERITY', 'RULE', 'OBJECT', 'MESSAGE'], list.map((a) => [
    a.firedAt.replace(/\.\d+Z$/, 'Z'), state(a, now), a.severity, a.rule, a.object, a.message,
  ])));
}
