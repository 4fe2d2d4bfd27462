// Running a command inside a running instance (`runc exec`), for `carte
// exec` and for health probes.
//
// Output goes nowhere unless a stream is given (a probe's output used to land
// in the daemon's own log); the caller's own stdout/stderr are inherited, not
// piped, so `carte exec -t` keeps a real terminal.
//
// Aborting ends the command and everything it started. Measured with runc
// 1.1.5: `runc exec --pid-file F` writes the host pid P of the exec'd
// process; P is a session leader (sid = pgid = P), its children share that
// session, and orphans are reparented to the container's init, which may
// never reap them (they stay zombies, which are not running). Killing P alone
// would leave `sh -c 'sleep 9 &'`'s sleep running; killing runc exec alone
// kills nothing inside. So: SIGKILL every process of P's session or below P,
// children first, then P, then wait for runc exec to go (bounded: an abort
// must never hang the caller).
//
// With `reapAll` (health probes) the command runs in a sub-cgroup of its own
// (cgroups.ts execCgroup): a process that left the session (`setsid`) or
// double-forked is still in it, so when the command ends, or is aborted,
// whatever is left there is killed and the sub-cgroup removed. Found by an
// outside test: a probe `setsid sleep &` left one process per interval until
// the instance's pids limit was full.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import fsp from 'node:fs/promises';
import { DriverError } from '../../errors.js';
import { processAlive } from '../../util/process.js';
import { sessionMembers } from '../../util/process-tree.js';
import type { ExecOptions } from '../driver.js';
import { execCgroup, type ExecCgroup } from './cgroups.js';
import { namingRules, type DriverContext } from './context.js';
import { placementOf } from './records.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Exit code of a command ended by SIGKILL, as a shell reports it (128 + 9). */
export const KILLED = 137;

function outMode(stream: ExecOptions['stdout'], own: NodeJS.WriteStream): 'inherit' | 'pipe' | 'ignore' {
  if (!stream) return 'ignore';
  return stream === own ? 'inherit' : 'pipe';
}

const running = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (!running(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function readPid(file: string): number {
  try {
    return Number(fs.readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/** Kills the exec'd process P (read from runc's pid file) and every process it started; then runc exec itself. */
async function killExec(child: ChildProcess, pidFile: string): Promise<void> {
  let leader = 0;
  // runc writes the pid file just before the command runs: an abort right after the start may come first.
  for (let i = 0; i < 200 && running(child); i++) {
    leader = readPid(pidFile);
    if (leader) break;
    await sleep(10);
  }
  if (leader) {
    for (let round = 0; round < 100; round++) {
      // While runc exec lives, P is its child: alive or an unreaped zombie, never a reused number.
      const parentAlive = running(child);
      const members = sessionMembers(leader, { descendants: parentAlive });
      members.forEach(killQuietly);
      if (parentAlive && processAlive(leader)) killQuietly(leader);
      if (!members.length && !processAlive(leader)) break;
      await sleep(10);
    }
  }
  if (!(await exited(child, 5_000))) {
    child.kill('SIGKILL');
    await exited(child, 1_000);
  }
}

/** Kills whatever is left in an exec's sub-cgroup, then removes it (unless told to keep it); bounded, never throws. */
async function endCgroup(cg: ExecCgroup, opts: { keepDirs?: boolean } = {}): Promise<void> {
  for (let round = 0; round < 100; round++) {
    const pids = (await fsp.readFile(cg.procs, 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    if (!pids.length) break;
    pids.forEach(killQuietly);
    await sleep(10);
  }
  if (opts.keepDirs) return;
  // Killed orphans of a non-reaping init are zombies: they leave cgroup.procs, so rmdir works.
  for (const dir of cg.dirs) await fsp.rmdir(dir).catch(() => undefined);
}

export async function execIn(ctx: DriverContext, name: string, command: string[], opts: ExecOptions = {}): Promise<number> {
  if (opts.signal?.aborted) return KILLED;
  const id = randomBytes(4).toString('hex');
  const pidFile = ctx.paths.runDir(name, `exec-${id}.pid`);
  let cg: ExecCgroup | null = null;
  if (opts.reapAll) {
    cg = execCgroup(placementOf(namingRules(ctx), name).cgroupPath, ctx.layout, `carte-exec-${id}`, ctx.cgroupRoot);
    try {
      for (const dir of cg.dirs) await fsp.mkdir(dir);
    } catch (e) {
      await endCgroup(cg);
      throw new DriverError('exec in', `instance ${name}`, `cannot make its sub-cgroup: ${(e as Error).message}`, { hint: 'is the instance running?' });
    }
  }
  try {
    return await runExec(ctx, name, command, opts, pidFile, cg);
  } finally {
    if (cg) await endCgroup(cg);
  }
}

function runExec(ctx: DriverContext, name: string, command: string[], opts: ExecOptions, pidFile: string, cg: ExecCgroup | null): Promise<number> {
  const args = ctx.runtime.execArgs(name, command, { tty: opts.tty ?? false, env: opts.env ?? {}, pidFile, cgroups: cg?.runcArgs });
  const stdio: StdioOptions = [
    !opts.stdin ? 'ignore' : opts.stdin === process.stdin ? 'inherit' : 'pipe',
    outMode(opts.stdout, process.stdout),
    outMode(opts.stderr, process.stderr),
  ];
  return new Promise((resolve, reject) => {
    const child = ctx.runner.spawn(ctx.runtime.path, args, { stdio });
    if (opts.stdin && child.stdin) opts.stdin.pipe(child.stdin);
    if (opts.stdout && child.stdout) child.stdout.pipe(opts.stdout, { end: false });
    if (opts.stderr && child.stderr) child.stderr.pipe(opts.stderr, { end: false });
    let aborting: Promise<void> | null = null;
    const onAbort = () => {
      aborting ??= killExec(child, pidFile);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // runc exec waits until every copy of the command's stdio is closed: a background child
    // that kept them (`sleep 999 &`) would hold it, and the probe, for the whole timeout. So
    // once the command itself has exited, what it left in its sub-cgroup is ended at once.
    const watch = cg ? setInterval(() => {
      const leader = readPid(pidFile);
      if (leader && !processAlive(leader) && running(child) && !aborting) void endCgroup(cg, { keepDirs: true });
    }, 20) : null;
    child.once('exit', () => watch && clearInterval(watch));
    const finish = (result: { code: number } | { error: Error }) => {
      opts.signal?.removeEventListener('abort', onAbort);
      fs.rm(pidFile, { force: true }, () => {});
      if (opts.stdin && child.stdin) opts.stdin.unpipe(child.stdin);
      if ('error' in result) reject(result.error);
      else resolve(result.code);
    };
    child.once('error', (e) => finish({ error: new DriverError('exec in', `instance ${name}`, e.message) }));
    child.once('exit', (code, signal) => {
      void (async () => {
        if (aborting) {
          await aborting;
          finish({ code: KILLED });
          return;
        }
        // Output still in the pipes is read until they close; a process left
        // behind in the background may hold them open forever, so not longer than a moment.
        if (child.stdout || child.stderr) {
          await Promise.race([
            Promise.all([child.stdout, child.stderr].map((s) => (s && !s.closed ? new Promise((r) => s.once('close', r)) : null))),
            sleep(500),
          ]);
          child.stdout?.destroy();
          child.stderr?.destroy();
        }
        finish({ code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1) });
      })();
    });
  });
}
