// Unmaking instances: stop, remove, and the sweep (gc) of whatever a crashed
// or killed carte left half-made. Every step is idempotent, so remove() works
// from any point a create or an earlier remove stopped at:
//
//   stop → runc delete → end monitor → keep the log → CNI DEL + netns + firewall
//        → unmount → cgroup → files
//
// Only this home's things are touched: its runc root, its run folder, its
// instance folders, and netns and cgroups named with its home id (or named in
// its records).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import { faultPoint } from '../../util/fault.js';
import { processAlive } from '../../util/process.js';
import type { CleanupReport } from '../driver.js';
import { BUILD_LEASE_PREFIX } from './build-container.js';
import { removeCgroup } from './cgroups.js';
import { namingRules, type DriverContext } from './context.js';
import { INSTANCE_NAME } from './create.js';
import { keepPreviousLog } from './previous-logs.js';
import { placementOf, readRecord, readRecordSync, REGISTRY_RUN_DIR } from './records.js';
import { mountsUnder, unmountAll } from './rootfs.js';

/** Where a carte killed mid-remove can stop (see src/util/fault.ts), in order. */
export const REMOVE_FAULT_POINTS = [
  'remove:stopped', 'remove:runtime-deleted', 'remove:monitor-ended', 'remove:network-released', 'remove:unmounted', 'remove:cgroup-removed',
] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function retry<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts) throw e;
      await sleep(100 * 2 ** (i - 1));
    }
  }
}

/** Waits, by reading /proc, until a process is gone (or a zombie); false after `ms`. */
async function waitGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (processAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

/**
 * The host pid of the container's init if it is alive and is this
 * instance's (it sits in the instance's cgroup: a pid file outlives its
 * process and the number may have been reused); null if it is gone;
 * undefined when there is no pid file (the runtime never reported one).
 */
function containerPid(ctx: DriverContext, name: string, cgroupPath: string): number | null | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(ctx.paths.runDir(name, 'pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!pid) return undefined;
  if (!processAlive(pid)) return null;
  try {
    const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n');
    return lines.some((l) => l.endsWith(`:${cgroupPath}`)) ? pid : null;
  } catch {
    return null;
  }
}

/** Whether a process has a handler for `signal` (SigCgt in /proc/PID/status, bit signal-1). */
function catches(pid: number, signal: number): boolean {
  try {
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & (1n << BigInt(signal - 1))) !== 0n;
  } catch {
    return false;
  }
}

/**
 * SIGTERM, up to graceMs, then SIGKILL; waits on /proc, not on `runc state`
 * (a Go program: polled every 50 ms by 8 parallel stops it ate both cores,
 * 2,400 calls for one 20-instance delete).
 *
 * Signals go straight to the container's init: it is pid 1 of its own pid
 * namespace, so SIGKILL to it makes the kernel kill every other process in
 * the container (what `runc kill --all` does one by one). And a pid 1 gets
 * only the signals it has a handler for (pid_namespaces(7)): when it has
 * none for SIGTERM (a bare `sleep`, a shell), SIGTERM is discarded by the
 * kernel and waiting out the grace period would be waiting for nothing.
 */
export async function stop(ctx: DriverContext, name: string, graceMs: number): Promise<boolean> {
  if (!fs.existsSync(path.join(ctx.runtime.root, name))) return false;
  const { cgroupPath } = placementOf(namingRules(ctx), name);
  const pid = containerPid(ctx, name, cgroupPath);
  // Its init is gone: the kernel ended the rest of its pid namespace with it.
  if (pid === null) return false;
  if (pid === undefined) {
    // No pid file (a create killed halfway): ask runc, which knows, and let it kill.
    const s = await ctx.runtime.state(name);
    if (!s || s.status === 'stopped') return false;
    await ctx.runtime.kill(name, 'SIGKILL', true);
    return true;
  }
  if (graceMs > 0 && catches(pid, 15)) {
    process.kill(pid, 'SIGTERM');
    if (await waitGone(pid, graceMs)) return true;
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
  if (!(await waitGone(pid, 10_000))) throw new DriverError('stop', `instance ${name}`, 'still running 10 s after SIGKILL');
  return true;
}

/** conmon exits after the container does; if it lingers (container deleted under it), end it by its pid. */
async function endMonitor(ctx: DriverContext, name: string): Promise<boolean> {
  const pid = Number((await fsp.readFile(ctx.paths.runDir(name, 'conmon.pid'), 'utf8').catch(() => '')).trim());
  if (!pid) return false;
  // Only our conmon: the pid may have been reused by an unrelated process.
  const ours = async () => {
    const cmdline = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
    return cmdline !== null && cmdline.includes('conmon') && cmdline.split('\0').includes(name) && processAlive(pid);
  };
  if (!(await ours())) return false;
  for (let i = 0; i < 50; i++) {
    if (i === 25) process.kill(pid, 'SIGKILL');
    await sleep(20);
    if (!(await ours())) return true;
  }
  throw new Error(`monitor pid ${pid} did not exit`);
}

export async function remove(ctx: DriverContext, name: string): Promise<CleanupReport> {
  const { paths, runtime, network } = ctx;
  const report: CleanupReport = { removed: [], failures: [] };
  // A step's fn returns false when there was nothing to do: the report lists only what was removed.
  const step = async (what: string, resource: string, fn: () => Promise<boolean | void>) => {
    try {
      if ((await retry(3, fn)) !== false) report.removed.push(`${what} ${resource}`);
      return true;
    } catch (e) {
      report.failures.push({ step: what, resource, error: (e as Error).message });
      return false;
    }
  };
  const place = placementOf(namingRules(ctx), name);
  const runtimeState = path.join(runtime.root, name);
  await step('stop', name, () => stop(ctx, name, 0));
  faultPoint('remove:stopped');
  await step('delete runtime state', name, async () => {
    if (!fs.existsSync(runtimeState)) return false;
    await runtime.delete(name);
  });
  faultPoint('remove:runtime-deleted');
  await step('end monitor', name, () => endMonitor(ctx, name));
  faultPoint('remove:monitor-ended');
  // The container and its monitor are gone: the log is whole. Keep it for `logs --previous`.
  await step('keep log', name, () => keepPreviousLog(paths, name, { capBytes: ctx.logMaxBytes, limit: ctx.previousLogLimit }));
  await step('release network', name, async () => {
    await network.teardown(name, { name: place.netns, path: place.netnsPath });
    // Its address is free again: no rule may still name it (the next holder is someone else).
    await network.firewall.sync();
  });
  faultPoint('remove:network-released');
  const unmounted = await step('unmount', paths.dir(name), async () => {
    const mounted = await mountsUnder(paths.dir(name));
    if (!mounted.length) return false;
    const left = await unmountAll(ctx.runner, paths.dir(name), name);
    if (left.length) throw new Error(`still mounted: ${left.join(', ')}`);
  });
  faultPoint('remove:unmounted');
  await step('remove cgroup', place.cgroupPath, async () => {
    const left = await removeCgroup(place.cgroupPath, ctx.layout, ctx.cgroupRoot);
    if (left.length) throw new Error(`could not remove ${left.join(', ')}`);
  });
  faultPoint('remove:cgroup-removed');
  // Never delete through a mount that is still there: that would empty a volume or a layer.
  if (unmounted) {
    await step('remove files', paths.dir(name), async () => {
      if (!fs.existsSync(paths.dir(name))) return false;
      await fsp.rm(paths.dir(name), { recursive: true, force: true });
    });
  }
  await step('remove runtime files', paths.runDir(name), async () => {
    if (!fs.existsSync(paths.runDir(name))) return false;
    await fsp.rm(paths.runDir(name), { recursive: true, force: true });
  });
  return report;
}

/** This home's cgroup folder in the memory hierarchy (v1) or the unified tree (v2). */
function homeCgroupDir(ctx: DriverContext): string {
  return path.join(ctx.cgroupRoot, ctx.layout === 'v1' ? 'memory' : '', ctx.cgroupParent, ctx.paths.homeId);
}

/**
 * Removes every trace of instances that are not whole (a record without a
 * runtime state, a runtime state without a record, an unreadable record, or
 * a namespace, lease, cgroup, mount or run folder with neither), and, when
 * `keep` is given, of every instance not in it. Then images' unused records
 * and layers. Looks only at what this home made.
 */
export async function gc(ctx: DriverContext, opts: { keep?: ReadonlySet<string> } = {}): Promise<CleanupReport> {
  const { paths, runtime, network } = ctx;
  const report: CleanupReport = { removed: [], failures: [] };
  const netnsPrefix = `carte-${paths.homeId}-`;
  const cgroupDir = homeCgroupDir(ctx);
  const [states, dirs, netns, leases, runDirs, cgroups, mounts] = await Promise.all([
    runtime.list(),
    fsp.readdir(paths.instancesDir).catch(() => [] as string[]),
    network.namespaces(netnsPrefix),
    network.leases(),
    fsp.readdir(paths.runRoot).catch(() => [] as string[]),
    fsp.readdir(cgroupDir, { withFileTypes: true }).catch(() => [] as fs.Dirent[]),
    mountsUnder(paths.instancesDir),
  ]);
  const withState = new Set(states.map((s) => s.id));
  const withRecord = new Set(dirs.filter((d) => readRecordSync(paths, d).kind === 'ok'));
  const traces = new Set<string>([
    ...withState, ...dirs, ...netns.map((n) => n.slice(netnsPrefix.length)), ...leases.map((l) => l.instance),
    ...runDirs.filter((d) => d !== 'runc' && d !== REGISTRY_RUN_DIR),
    ...cgroups.filter((c) => c.isDirectory() && INSTANCE_NAME.test(c.name)).map((c) => c.name),
    ...mounts.map((m) => path.relative(paths.instancesDir, m).split(path.sep)[0]!).filter(Boolean),
  ]);
  for (const name of [...traces].sort()) {
    // A RUN step's network (`build.<id>`) is the build sandbox's to sweep: it may be a live build's.
    if (name.startsWith(BUILD_LEASE_PREFIX)) continue;
    const whole = withState.has(name) && withRecord.has(name);
    if (whole && (!opts.keep || opts.keep.has(name))) continue;
    const r = await remove(ctx, name);
    report.removed.push(...r.removed.filter((x) => !x.startsWith('stop ') && !x.startsWith('keep log ')));
    report.failures.push(...r.failures);
  }
  const liveImages = new Set<string>();
  for (const name of await fsp.readdir(paths.instancesDir).catch(() => [] as string[])) {
    const rec = await readRecord(paths, name);
    if (rec) liveImages.add(rec.imageId);
  }
  const keepLayers = new Set<string>();
  for (const id of liveImages) {
    const img = await ctx.images.get(id.slice(0, 64)).catch(() => null);
    img?.layers.forEach((l) => keepLayers.add(l));
  }
  try {
    report.removed.push(...(await ctx.images.gc(keepLayers)));
  } catch (e) {
    report.failures.push({ step: 'remove unused images', resource: ctx.images.imagesDir, error: (e as Error).message });
  }
  return report;
}
