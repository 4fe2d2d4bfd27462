// Commands on instances through the driver: run one by hand, list them,
// read logs, exec, remove, garbage-collect. (Services' instances are made by
// the reconciler; `carte run` is for trying an image.)
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { takeConvergeLock } from '../../daemon/daemon.js';
import type { Driver, InstanceSpec, ObservedInstance } from '../../drivers/driver.js';
import { CarteError, NotFoundError, UsageError } from '../../errors.js';
import { instanceRecords } from '../../api/status.js';
import { formatCpu, formatMemory, parseCpu, parseDuration, parseMemory } from '../../schema/units.js';
import type { VolumeSpec } from '../../schema/types.js';
import type { Context } from '../context.js';
import { linuxDriver } from '../linux.js';
import { age, table, write } from '../output.js';

export interface RunOptions {
  name?: string;
  cpu?: string;
  memory?: string;
  pids?: string;
  env?: string[];
  volume?: string[];
  user?: string;
  workdir?: string;
}

function unit(what: string, parsed: { ok: true; value: number } | { ok: false; message: string }): number {
  if (!parsed.ok) throw new UsageError(`run: --${what}: ${parsed.message}`);
  return parsed.value;
}

/** `-v data:/data`, `-v /srv/x:/x:ro`: a named volume or (absolute source) a host path. */
export function parseVolume(text: string): VolumeSpec {
  const [source, mountPath, mode, ...rest] = text.split(':');
  if (!source || !mountPath?.startsWith('/') || rest.length || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
    throw new UsageError(`run: -v takes NAME:/path or /host/path:/path, optionally :ro (got "${text}")`);
  }
  const readOnly = mode === 'ro';
  return source.startsWith('/') ? { kind: 'host', hostPath: source, mountPath, readOnly } : { kind: 'named', name: source, mountPath, readOnly };
}

export async function run(ctx: Context, image: string, command: string[], opts: RunOptions): Promise<void> {
  const env: Record<string, string> = {};
  for (const e of opts.env ?? []) {
    const i = e.indexOf('=');
    if (i < 1) throw new UsageError(`run: -e takes NAME=VALUE, got "${e}"`);
    env[e.slice(0, i)] = e.slice(i + 1);
  }
  const base = image.replace(/:.*$/, '').split('/').at(-1)!.replace(/[^a-z0-9-]/g, '-');
  const name = opts.name ?? `${base}-${randomBytes(2).toString('hex')}`;
  const spec: InstanceSpec = {
    // `carte run` is the administrator's, as `carte apply` is: its volumes are the CLI's.
    name, service: name, source: 'cli', labels: { 'carte.run': 'true' }, image,
    spec: {
      command: command.length ? command : null, args: null, env,
      workingDir: opts.workdir ?? null, user: opts.user ?? null,
      resources: {
        cpuMillis: opts.cpu === undefined ? null : unit('cpu', parseCpu(opts.cpu)),
        memoryBytes: opts.memory === undefined ? null : unit('memory', parseMemory(opts.memory)),
        pids: opts.pids === undefined ? null : Number(opts.pids),
      },
      volumes: (opts.volume ?? []).map(parseVolume),
      ports: [],
    },
  };
  const driver = await linuxDriver(ctx);
  const inst = await driver.create(spec);
  write(`${inst.name} ${inst.state} ip ${inst.ip ?? '-'}`);
}

function cpuTime(ns: number): string {
  const s = ns / 1e9;
  return s < 60 ? `${s.toFixed(1)}s` : `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

function stateText(i: ObservedInstance): string {
  if (i.state === 'exited') return i.oomKilled ? 'OOMKilled' : `Exited(${i.exitCode ?? '?'})`;
  return i.state[0]!.toUpperCase() + i.state.slice(1) + (i.problems.length ? '!' : '');
}

export async function getInstances(ctx: Context, name: string | undefined, output: string | undefined): Promise<void> {
  const driver = await linuxDriver(ctx);
  let list = await driver.list();
  if (name !== undefined) {
    list = list.filter((i) => i.name === name);
    if (!list.length) throw new NotFoundError(`instance "${name}" not found`);
  }
  if (output === 'json') {
    write(JSON.stringify(name !== undefined ? list[0] : { items: list }, null, 2));
    return;
  }
  if (!list.length) {
    process.stderr.write('no instances\n');
    return;
  }
  const now = ctx.now();
  const records = instanceRecords(await ctx.store().read());
  const rows = await Promise.all(list.map(async (i) => {
    const s = i.state === 'running' ? await driver.stats(i.name) : null;
    const rec = records[i.name];
    const mem = s ? `${(s.memoryWorkingSetBytes / 2 ** 20).toFixed(1)}Mi${s.memoryLimitBytes ? `/${formatMemory(s.memoryLimitBytes)}` : ''}` : '-';
    const cpu = s ? `${cpuTime(s.cpuUsageNs)}${s.cpuLimitMillis ? ` (limit ${formatCpu(s.cpuLimitMillis)})` : ''}` : '-';
    // Readiness is known where a reconciler checks health; `carte run` instances have none.
    const ready = rec ? (rec.ready ? 'yes' : rec.unhealthy ? 'unhealthy' : 'no') : '-';
    const row = [i.name, i.service, stateText(i), ready, String(rec?.restarts ?? 0), age(i.createdAt, now), i.ip ?? '-', cpu, mem];
    return output === 'wide' ? [...row, String(i.pid ?? '-'), i.image, i.problems.join('; ') || '-'] : row;
  }));
  const head = ['NAME', 'SERVICE', 'STATE', 'READY', 'RESTARTS', 'AGE', 'IP', 'CPU', 'MEMORY'];
  write(table(output === 'wide' ? [...head, 'PID', 'IMAGE', 'PROBLEMS'] : head, rows));
}

export async function logs(ctx: Context, name: string, opts: { follow?: boolean; tail?: string; timestamps?: boolean; previous?: boolean }): Promise<void> {
  const tail = opts.tail === undefined ? undefined : Number(opts.tail);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError(`logs: --tail takes a number of lines, got "${opts.tail}"`);
  if (opts.previous && opts.follow) throw new UsageError('logs: --previous and --follow do not go together (a previous life does not grow)');
  const driver = await linuxDriver(ctx);
  // The previous log outlives the instance: no need for the instance to exist.
  if (!opts.previous && !(await driver.list()).some((i) => i.name === name)) {
    if (await hasPreviousLog(driver, name)) throw new NotFoundError(`instance "${name}" not found; its previous life's output is kept: carte logs --previous ${name}`);
    throw new NotFoundError(`instance "${name}" not found`);
  }
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  for await (const line of driver.logs(name, { tail, follow: opts.follow, signal: abort.signal, previous: opts.previous })) {
    const text = `${opts.timestamps ? `${line.time} ` : ''}${line.text}\n`;
    (line.stream === 'stderr' ? process.stderr : process.stdout).write(text);
  }
}

async function hasPreviousLog(driver: Driver, name: string): Promise<boolean> {
  try {
    for await (const _ of driver.logs(name, { previous: true, tail: 0 })) break;
    return true;
  } catch (e) {
    if (e instanceof NotFoundError) return false;
    throw e;
  }
}

export async function exec(ctx: Context, name: string, command: string[], opts: { interactive?: boolean; tty?: boolean }): Promise<number> {
  if (!command.length) throw new UsageError('exec: give a command after the instance name, e.g. carte exec web-1 -- sh');
  const driver = await linuxDriver(ctx);
  const inst = (await driver.list()).find((i) => i.name === name);
  if (!inst) throw new NotFoundError(`instance "${name}" not found`);
  if (inst.state !== 'running') throw new CarteError('driver', `instance ${name} is not running (${stateText(inst)})`);
  return driver.exec(name, command, { stdin: opts.interactive ? process.stdin : null, stdout: process.stdout, stderr: process.stderr, tty: opts.tty === true });
}

export async function rm(ctx: Context, names: string[], opts: { grace?: string }): Promise<void> {
  let graceMs = 10_000;
  if (opts.grace !== undefined) {
    const p = parseDuration(opts.grace);
    if (!p.ok) throw new UsageError(`rm: --grace: ${p.message}`);
    graceMs = p.value;
  }
  const driver = await linuxDriver(ctx);
  const known = new Set((await driver.list()).map((i) => i.name));
  const missing = names.filter((n) => !known.has(n));
  if (missing.length) throw new NotFoundError(`${missing.map((n) => `instance "${n}"`).join(', ')} not found; nothing was removed`);
  const failures: string[] = [];
  for (const name of names) {
    await driver.stop(name, graceMs).catch(() => {}); // remove() kills whatever is left
    const report = await driver.remove(name);
    if (report.failures.length) failures.push(...report.failures.map((f) => `${name}: ${f.step} ${f.resource}: ${f.error}`));
    else write(`${name} removed`);
  }
  if (failures.length) throw new CarteError('driver', 'some instances could not be fully removed; run "carte gc" to retry', { details: failures });
}

export async function gc(ctx: Context): Promise<void> {
  const driver = await linuxDriver(ctx);
  const report = await driver.gc();
  const bridge = await removeIdleBridge(ctx, driver);
  if (bridge) report.removed.push(bridge, ...driver.removeEmptyCgroups());
  write(report.removed.length ? report.removed.map((r) => `removed ${r}`).join('\n') : 'nothing to clean');
  if (report.failures.length) {
    throw new CarteError('driver', 'some leftovers could not be removed', { details: report.failures.map((f) => `${f.step} ${f.resource}: ${f.error}`) });
  }
}

/**
 * When nothing of this home is left to run (no service stored, no instance,
 * no daemon), its bridge goes, and with it its firewall chains and the
 * gateway's namespace: what `carte gc` leaves is a host as before carte.
 */
async function removeIdleBridge(ctx: Context, driver: Awaited<ReturnType<typeof linuxDriver>>): Promise<string | null> {
  const bridge = driver.network.bridge;
  if (!fs.existsSync(`/sys/class/net/${bridge}`)) return null;
  if (Object.keys((await ctx.store().read()).services).length || (await driver.list()).length) return null;
  let lock: Awaited<ReturnType<typeof takeConvergeLock>>;
  try {
    lock = await takeConvergeLock(ctx.home);
  } catch (e) {
    if ((e as CarteError).code === 'conflict') return null; // a daemon runs: its gateway lives on the bridge
    throw e;
  }
  try {
    await driver.network.removeBridge();
  } finally {
    await lock.release();
  }
  return fs.existsSync(`/sys/class/net/${bridge}`) ? null : `bridge ${bridge} (its firewall rules and the gateway's namespace)`;
}
