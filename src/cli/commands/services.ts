import { restartService, scaleService, setSuspended } from '../../api/service-ops.js';
import { rulesFor } from '../../policy/policy.js';
import { serviceStatuses } from '../../api/status.js';
import { connectDaemon } from '../../daemon/client.js';
import { UsageError } from '../../errors.js';
import { parseDuration } from '../../schema/units.js';
import type { Context } from '../context.js';
import { convergeAfterChange } from '../converge.js';
import { age, table, write } from '../output.js';
import { activeAlertsTable } from './alerts.js';

export interface ChangeOptions {
  wait?: boolean;
  timeout?: string;
}

export function timeoutOf(opts: ChangeOptions, dflt = 120_000): number {
  if (opts.timeout === undefined) return dflt;
  const p = parseDuration(opts.timeout);
  if (!p.ok) throw new UsageError(`--timeout: ${p.message}`);
  return p.value;
}

const after = (ctx: Context, name: string, opts: ChangeOptions) =>
  convergeAfterChange(ctx, { wait: opts.wait === true, timeoutMs: timeoutOf(opts), services: [name] });

export async function stop(ctx: Context, name: string, opts: ChangeOptions): Promise<void> {
  const changed = await setSuspended(ctx.store(), name, true, ctx.now());
  write(`service/${name} ${changed ? 'stopped' : 'already stopped'}`);
  await after(ctx, name, opts);
}

export async function start(ctx: Context, name: string, opts: ChangeOptions): Promise<void> {
  const changed = await setSuspended(ctx.store(), name, false, ctx.now());
  write(`service/${name} ${changed ? 'started' : 'already started'}`);
  await after(ctx, name, opts);
}

export async function restart(ctx: Context, name: string, opts: ChangeOptions): Promise<void> {
  const revision = await restartService(ctx.store(), name, ctx.now());
  write(`service/${name} restarting (revision ${revision})`);
  await after(ctx, name, opts);
}

export async function scale(ctx: Context, name: string, opts: ChangeOptions & { replicas: string }): Promise<void> {
  const replicas = Number(opts.replicas);
  if (!Number.isInteger(replicas) || replicas < 0 || replicas > 1000) throw new UsageError(`scale: --replicas takes a number from 0 to 1000, got "${opts.replicas}"`);
  const policy = await ctx.policy();
  const r = await scaleService(ctx.store(), name, replicas, ctx.now(), (source) => rulesFor(policy, source).rules.replicas);
  write(r ? `service/${name} scaled ${r.from} → ${replicas}` : `service/${name} already has ${replicas} replicas`);
  if (r && r.source !== 'cli') ctx.log.warn(`service/${name} belongs to source ${r.source}: its next sync puts the manifests' replicas back`);
  await after(ctx, name, opts);
}

export async function status(ctx: Context): Promise<void> {
  const data = await ctx.store().read();
  const now = ctx.now();
  const daemon = await connectDaemon(ctx.home);
  write(`daemon: ${daemon ? 'running' : 'not running'}`);
  const r = data.recovery;
  if (r) write(`state: recovered at ${r.at} (${age(r.at, now)} ago) from generation ${r.generation}: state.json was ${r.reason}${r.damagedFile ? `; the damaged file is kept at ${r.damagedFile}` : ''}`);
  const sources = Object.values(data.sources).sort((a, b) => (a.id < b.id ? -1 : 1));
  write('\nSOURCES');
  write(sources.length ? table(['SOURCE', 'LAST SYNC', 'COMMIT', 'ERROR'], sources.map((s) => [
    s.id, s.lastSync ? `${age(s.lastSync, now)} ago` : 'never', s.commit ? s.commit.slice(0, 12) : '-', s.lastError ? s.lastError.split('\n')[0]! : '-',
  ])) : '<none>');
  for (const s of sources.filter((x) => x.lastError)) write(`${s.id}:\n${s.lastError!.split('\n').map((l) => `  ${l}`).join('\n')}`);
  const statuses = serviceStatuses(data, now.getTime());
  write('\nSERVICES');
  write(statuses.length ? table(['NAME', 'READY', 'STATUS', 'REASON'], statuses.map((s) => [s.name, `${s.ready}/${s.desired}`, s.phase, s.reason ?? '-'])) : '<none>');
  // Without a daemon nobody evaluates them: they are what it last saw.
  write(`\nALERTS${daemon || !data.alerts?.active.length ? '' : ' (as the daemon last saw them)'}`);
  write(activeAlertsTable(data, now));
}

export async function sync(ctx: Context): Promise<void> {
  const daemon = await connectDaemon(ctx.home);
  if (!daemon) throw new UsageError('sync: no carte daemon is running (sources are watched by "carte daemon")');
  const r = await daemon.post<{ sources: Array<{ id: string; ok: boolean; lines: string[] }> }>('/v1/sync');
  for (const s of r.sources) write(`${s.id}: ${s.ok ? 'synced' : 'refused'}${s.lines.length ? `\n${s.lines.map((l) => `  ${l}`).join('\n')}` : ''}`);
}
