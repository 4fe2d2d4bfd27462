// A Cartefile's RUN step, executed in a build container made by the driver's
// own machinery: an overlayfs whose lowerdirs are the stage's layers and whose
// upper folder is fresh (after the step it IS the new layer, whiteouts and
// opaque folders included), runc with the spec of an instance (the same
// seccomp profile, capability set, masked paths, no new privileges, the
// host's open-files limits), the server policy's build limits (CPU, memory,
// pids, a timeout) and, unless the build asks for the network, a network
// namespace of its own with nothing in it. With the network (`carte build
// --network`) the step's namespace joins carte's bridge like an instance's:
// a netns `carte-<homeId>-build.<id>`, a CNI lease for `build.<id>` and the
// bridge's firewall synced, so anti-spoofing and host protection hold (it
// reaches the world and published ports, no other host port, and no service
// that restricts allowFrom: a build has no service). All of it is undone
// after the step, failed or not, and by sweep() after a killed builder.
//
// Everything one step makes lives under CARTE_HOME/builds/<id>/ with an
// owner.json naming the builder process; its runc state under
// CARTE_HOME/builds/.runc. A builder killed with -9 leaves that behind:
// sweep() (run before every build and by the driver's gc) removes the folders
// whose builder is gone, with their container, mounts and cgroup.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { DriverError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { removeCgroup, type CgroupLayout } from './cgroups.js';
import type { Runner } from './exec.js';
import { readImageFile } from './image-file.js';
import type { CniNetwork } from './network.js';
import { mountOverlay, unmountAll } from './rootfs.js';
import { refuseHostAccount } from './host-accounts.js';
import { buildSpec, resolveEnv, resolveUser, type Rlimit } from './spec.js';

/** What one RUN step may use (the server policy's `builds.limits`). */
export interface BuildLimits {
  cpuMillis: number;
  memoryBytes: number;
  pids: number;
  timeoutMs: number;
}

export const DEFAULT_BUILD_LIMITS: BuildLimits = { cpuMillis: 2000, memoryBytes: 2 * 2 ** 30, pids: 1024, timeoutMs: 20 * 60_000 };

/** Output of one step shown at most (the rest is counted, not shown): a noisy step cannot flood the daemon. */
export const MAX_STEP_OUTPUT_BYTES = 256 * 1024;

export interface RunStepRequest {
  /** Host paths of the stage's layers, lowest first. */
  layers: string[];
  argv: string[];
  /** KEY=VALUE: the image's ENV, then the stage's ARG values. */
  env: string[];
  cwd: string;
  /** The image's USER ('' = root), resolved in the stage's own /etc/passwd. */
  user: string;
  /** For error messages: `Cartefile:4: RUN make`. */
  label: string;
  /** Join carte's bridge (the server policy's builds.network allowed it); else an empty network namespace. */
  network?: boolean;
  onOutput: (line: string) => void;
}

export interface RunStepResult {
  code: number;
  timedOut: boolean;
  /** The step's upper folder: the new layer. Take it (rename) or leave it; dispose() removes what is left. */
  upper: string;
  dispose(): Promise<void>;
}

export interface BuildSandboxOptions {
  runner: Runner;
  log: Logger;
  home: string;
  homeId: string;
  runtimePath: string;
  cgroupParent: string;
  cgroupRoot: string;
  layout: CgroupLayout;
  rlimits: Rlimit[];
  limits?: () => BuildLimits;
  /** The driver's network, for steps that ask for it; without it such a step is refused. */
  network?: CniNetwork;
}

/** What the firewall needs of a networked step (kept in its folder as network.json). */
export interface BuildNetworkFacts {
  veth: string | null;
  mac: string | null;
}

/** The CNI container id (lease owner) of a build step: never an instance name, which has no ".". */
export const BUILD_LEASE_PREFIX = 'build.';


/** The start time of a process (field 22 of /proc/PID/stat), or null when it is gone. */
function processStart(pid: number): string | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

export class BuildSandbox {
  readonly dir: string;
  readonly runcRoot: string;

  constructor(private readonly opts: BuildSandboxOptions) {
    this.dir = path.join(opts.home, 'builds');
    this.runcRoot = path.join(this.dir, '.runc');
  }

  private cgroupPath(id: string): string {
    // Not an instance name (a "."), so the driver's gc never takes a running build for a broken instance.
    return path.posix.join(this.opts.cgroupParent, this.opts.homeId, `build.${id}`);
  }

  /** The network namespace of a networked step. */
  netnsName(id: string): string {
    return `carte-${this.opts.homeId}-${BUILD_LEASE_PREFIX}${id}`;
  }

  /** veth and MAC of a networked step (for the firewall's layer-2 rules), or null when `lease` is not a build's. */
  networkFacts(lease: string): BuildNetworkFacts | null {
    if (!lease.startsWith(BUILD_LEASE_PREFIX)) return null;
    try {
      return JSON.parse(fs.readFileSync(path.join(this.dir, lease.slice(BUILD_LEASE_PREFIX.length), 'network.json'), 'utf8')) as BuildNetworkFacts;
    } catch {
      return { veth: null, mac: null };
    }
  }

  /** Joins a step's own namespace to the bridge; returns its path for the spec. */
  private async joinNetwork(id: string, dir: string): Promise<string> {
    const network = this.opts.network;
    if (!network) throw new DriverError('run', `build container ${id}`, 'this builder has no network to give the step');
    const name = this.netnsName(id);
    const netnsPath = path.join('/run/netns', name);
    await network.claimBridge();
    await network.createNamespace(`build container ${id}`, name);
    const link = await network.attach(`${BUILD_LEASE_PREFIX}${id}`, netnsPath);
    await fsp.writeFile(path.join(dir, 'network.json'), JSON.stringify({ veth: link.veth, mac: link.mac } satisfies BuildNetworkFacts));
    await network.firewall.sync();
    return netnsPath;
  }

  /** Lease released, namespace deleted, firewall synced; nothing there is fine. Returns what could not be undone. */
  private async leaveNetwork(id: string): Promise<string[]> {
    const network = this.opts.network;
    if (!network) return [];
    const name = this.netnsName(id);
    const lease = `${BUILD_LEASE_PREFIX}${id}`;
    const hasNetns = fs.existsSync(path.join('/run/netns', name));
    const leased = (await network.leases()).some((l) => l.instance === lease);
    if (!hasNetns && !leased) return [];
    try {
      await network.teardown(lease, { name, path: path.join('/run/netns', name) });
      await network.firewall.sync();
      return [];
    } catch (e) {
      return [(e as Error).message];
    }
  }

  private runc(args: string[], step: string, id: string, okCodes?: number[]) {
    return this.opts.runner.run(this.opts.runtimePath, ['--root', this.runcRoot, ...args], { step, resource: `build container ${id}`, okCodes });
  }

  async run(req: RunStepRequest): Promise<RunStepResult> {
    const id = randomBytes(6).toString('hex');
    const dir = path.join(this.dir, id);
    const limits = this.opts.limits?.() ?? DEFAULT_BUILD_LIMITS;
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    await fsp.mkdir(this.runcRoot, { recursive: true, mode: 0o700 });
    await fsp.writeFile(path.join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, start: processStart(process.pid) }));
    const rootfs = path.join(dir, 'bundle', 'rootfs');
    const upper = path.join(dir, 'upper');
    const dispose = async () => {
      await this.removeBuild(id);
    };
    try {
      await mountOverlay(this.opts.runner, {
        layers: req.layers, upper, work: path.join(dir, 'work'), empty: path.join(dir, 'empty'), target: rootfs, resource: `build container ${id}`,
        // A plain upper folder: deleted files as whiteouts, replaced folders as opaque ones, nothing else.
        extraOptions: ['redirect_dir=off', 'index=off', 'metacopy=off'],
      });
      const passwd = req.user ? await readImageFile(rootfs, '/etc/passwd', { image: 'the build stage' }) : null;
      const group = /:.*\D/.test(req.user) ? await readImageFile(rootfs, '/etc/group', { image: 'the build stage' }) : null;
      const user = resolveUser(req.user, passwd, group);
      if ('error' in user) throw new DriverError('run', req.label, user.error);
      // As for instances: a host account with the step's uid could trace it (and reach its network).
      await refuseHostAccount(this.opts.runner, user.uid, { step: 'run', resource: `the RUN step of ${req.label}` });
      const netnsPath = req.network ? await this.joinNetwork(id, dir) : '';
      const config = buildSpec({
        hostname: 'build', args: req.argv, env: resolveEnv(req.env, {}, 'build'), cwd: req.cwd,
        uid: user.uid, gid: user.gid, additionalGids: [], rootfs: 'rootfs',
        netnsPath, cgroupsPath: this.cgroupPath(id),
        cpuMillis: limits.cpuMillis, memoryBytes: limits.memoryBytes, pids: limits.pids,
        binds: [], rlimits: this.opts.rlimits, annotations: { 'carte.build': id },
      });
      await fsp.writeFile(path.join(dir, 'bundle', 'config.json'), JSON.stringify(config), { mode: 0o600 });
      const { code, timedOut } = await this.runContainer(id, path.join(dir, 'bundle'), limits.timeoutMs, req.onOutput);
      await this.stopContainer(id);
      return { code, timedOut, upper, dispose };
    } catch (e) {
      await dispose();
      throw e;
    }
  }

  /** `runc run` in the foreground; the step's output, line by line, bounded. */
  private runContainer(id: string, bundle: string, timeoutMs: number, onOutput: (line: string) => void): Promise<{ code: number; timedOut: boolean }> {
    const child = this.opts.runner.spawn(this.opts.runtimePath, ['--root', this.runcRoot, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    let shown = 0;
    let hidden = 0;
    const emit = (line: string) => {
      if (shown + line.length > MAX_STEP_OUTPUT_BYTES) {
        hidden += line.length + 1;
        return;
      }
      shown += line.length + 1;
      onOutput(line);
    };
    const lines = (stream: NodeJS.ReadableStream) => {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        for (const p of parts) emit(p);
        if (rest.length > 4096) {
          emit(rest);
          rest = '';
        }
      });
      stream.on('end', () => {
        if (rest) emit(rest);
      });
    };
    lines(child.stdout!);
    lines(child.stderr!);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void this.runc(['kill', '--all', id, 'KILL'], 'kill', id, [1]).catch(() => {});
    }, timeoutMs);
    return new Promise((resolve, reject) => {
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new DriverError('run', `build container ${id}`, `${this.opts.runtimePath} could not start: ${e.message}`));
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (hidden) onOutput(`(${hidden} more bytes of output not shown)`);
        resolve({ code: code ?? (signal ? 128 : 1), timedOut });
      });
    });
  }

  /** The container, its mounts and its cgroup; the folder stays (its upper may become a layer). */
  private async stopContainer(id: string): Promise<string[]> {
    const left: string[] = [];
    await this.runc(['delete', '--force', id], 'delete', id, [1]).catch((e: Error) => left.push(e.message));
    const mounts = await unmountAll(this.opts.runner, path.join(this.dir, id), `build container ${id}`);
    left.push(...mounts.map((m) => `still mounted: ${m}`));
    left.push(...(await removeCgroup(this.cgroupPath(id), this.opts.layout, this.opts.cgroupRoot)));
    left.push(...(await this.leaveNetwork(id)));
    return left;
  }

  private async removeBuild(id: string): Promise<string[]> {
    const left = await this.stopContainer(id);
    // GNU rm walks with openat: a step's tree may be deeper than PATH_MAX once under CARTE_HOME
    // (fs.rm gave up with ENAMETOOLONG, and every later build and gc with it).
    if (!left.length) {
      await this.opts.runner.run('rm', ['-rf', '--one-file-system', '--', path.join(this.dir, id)], { step: 'remove', resource: `build container ${id}` })
        .catch((e: Error) => left.push(e.message));
    }
    return left;
  }

  /** Mounts an image's layers read-only (COPY --from a stage or image reads it), runs `use`, unmounts. */
  async withView<T>(layers: string[], use: (view: string) => Promise<T>): Promise<T> {
    const id = randomBytes(6).toString('hex');
    const dir = path.join(this.dir, id);
    const view = path.join(dir, 'view');
    const empty = path.join(dir, 'empty');
    await fsp.mkdir(view, { recursive: true, mode: 0o700 });
    await fsp.mkdir(empty, { mode: 0o755 });
    await fsp.writeFile(path.join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, start: processStart(process.pid) }));
    try {
      // The empty folder at the bottom: overlayfs wants two lowerdirs when there is no upper.
      const lower = [...[...layers].reverse(), empty].join(':');
      await this.opts.runner.run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lower}`, view], { step: 'mount the layers of', resource: `build view ${id}` });
      return await use(view);
    } finally {
      await this.removeBuild(id);
    }
  }

  /** Removes what builders that are gone (killed, crashed) left: containers, mounts, cgroups, folders. */
  async sweep(): Promise<{ removed: string[]; failures: string[] }> {
    const removed: string[] = [];
    const failures: string[] = [];
    const ids = new Set<string>();
    for (const e of await fsp.readdir(this.dir).catch(() => [] as string[])) if (/^[0-9a-f]{12}$/.test(e)) ids.add(e);
    const listed = await this.runc(['list', '--format', 'json'], 'list', 'builds', [1]).catch(() => null);
    for (const s of (JSON.parse(listed?.stdout || 'null') as Array<{ id: string }> | null) ?? []) ids.add(s.id);
    // A killed builder's network: its namespace and lease outlive its folder only if removal was cut short.
    if (this.opts.network) {
      const prefix = this.netnsName('');
      for (const n of await this.opts.network.namespaces(prefix)) ids.add(n.slice(prefix.length));
      for (const l of await this.opts.network.leases()) if (l.instance.startsWith(BUILD_LEASE_PREFIX)) ids.add(l.instance.slice(BUILD_LEASE_PREFIX.length));
    }
    for (const id of ids) {
      try {
        const owner = JSON.parse(await fsp.readFile(path.join(this.dir, id, 'owner.json'), 'utf8')) as { pid: number; start: string | null };
        if (owner.start !== null && processStart(owner.pid) === owner.start) continue;
      } catch {
        // No owner file: a folder cut short before it was written, or a container without a folder;
        // a folder made in the last minute may be a live builder's between mkdir and writing it.
        const st = await fsp.stat(path.join(this.dir, id)).catch(() => null);
        if (st && Date.now() - st.mtimeMs < 60_000) continue;
      }
      // One folder that cannot be removed is reported; it never stops the sweep (nor the build that runs it).
      const left = await this.removeBuild(id).catch((e: Error) => [e.message]);
      if (left.length) failures.push(...left);
      else removed.push(`build container ${id}`);
    }
    return { removed, failures };
  }
}

/** An overlayfs whiteout: a character device with device number 0/0. */
function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/**
 * Takes out of a RUN step's upper folder what a layer must not carry: device
 * nodes (other than whiteouts), FIFOs and sockets. Returns their paths.
 */
export async function pruneUpper(upper: string): Promise<string[]> {
  const dropped: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await fsp.readdir(path.join(upper, rel), { withFileTypes: true })) {
      const relPath = path.posix.join(rel, e.name);
      const full = path.join(upper, relPath);
      if (e.isDirectory()) await walk(relPath);
      else if (e.isFIFO() || e.isSocket() || e.isBlockDevice() || (e.isCharacterDevice() && !isWhiteout(await fsp.lstat(full)))) {
        await fsp.rm(full, { force: true });
        dropped.push(`/${relPath}`);
      }
    }
  };
  await walk('');
  return dropped;
}
