// The Linux driver: `LinuxDriver implements Driver`, composed of one module
// per job. Read them in the order an instance lives:
//
//   records.ts   the instance record and where a home keeps each instance's things
//   bridge.ts    which home owns a bridge
//   create.ts    image → overlay rootfs → user → volumes → netns + CNI → /etc files
//                → OCI spec → conmon (runc create) → runc start
//   observe.ts   what one instance, or every one, is doing
//   instance-exec.ts  a command inside an instance, abortable
//   cleanup.ts   stop, remove (kill → runc delete → monitor → log → CNI DEL + netns
//                → unmount → cgroup → files), and gc of what a crash left
//   previous-logs.ts  the log of an instance's previous life
// Below them: images/, rootfs.ts, spec.ts, runtime.ts (runc), monitor.ts
// (conmon), network.ts (CNI), cgroups.ts, logs.ts, exec.ts (the one Runner);
// for the gateway: gateway-netns.ts (the namespace of service addresses) and
// socket-binder.ts (sockets made in it).
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CarteError, DriverError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type {
  BuildPolicy, CleanupReport, Driver, ExecOptions, InstanceSpec, InstanceStats, LogLine, LogOptions, NetworkAccess, ObservedInstance,
} from '../driver.js';
import { BuildSandbox, type BuildLimits } from './build-container.js';
import { cgroupDirs, detectLayout, readStats } from './cgroups.js';
import { gc, remove, REMOVE_FAULT_POINTS, stop } from './cleanup.js';
import { namingRules, type DriverContext } from './context.js';
import { create, CREATE_FAULT_POINTS, hostsFileText } from './create.js';
import { findExecutable, Runner } from './exec.js';
import { ImageBuilder } from './images/build.js';
import { pullImage, type RegistryAccess } from './images/registry.js';
import { ImageStore } from './images/store.js';
import type { PullPolicy } from '../../schema/image-reference.js';
import { execIn } from './instance-exec.js';
import { readLog } from './logs.js';
import { CniNetwork } from './network.js';
import { readNetDev } from './netdev.js';
import { list, observe } from './observe.js';
import { readPreviousLog } from './previous-logs.js';
import { HomePaths, placementOf, readRecord, readRecordSync, REGISTRY_RUN_DIR, type Placement } from './records.js';
import { sweepAuthFolders } from './images/skopeo.js';
import { processAlive } from '../../util/process.js';
import { Runtime } from './runtime.js';
import { SocketBinder } from './socket-binder.js';
import { parseHostRlimits } from './spec.js';

export interface LinuxDriverOptions {
  /** Host folders a Cartefile's COPY --from=host may read (the server policy's builds.hostCopyPrefixes); default the system's program and library folders. */
  hostCopyPrefixes?: readonly string[];
  /** What one RUN step's build container may use (the server policy's builds.limits, read at each step); default DEFAULT_BUILD_LIMITS. */
  buildLimits?: () => BuildLimits;
  /** Free bytes CARTE_HOME's filesystem keeps: no instance is created below it (the server policy's disk.reserve; default 0, none). A function is read at each create. */
  diskReserveBytes?: number | (() => number);
  home: string;
  log: Logger;
  runtime?: string;
  conmon?: string;
  bridge?: string;
  subnet?: string;
  /** Cgroups go under `<cgroupParent>/<homeId>/<instance>`. */
  cgroupParent?: string;
  cniPath?: string;
  /** Per-instance log cap; conmon truncates the file when it is reached. Also caps each previous log. */
  logMaxBytes?: number;
  /** How many previous logs (`logs --previous`) are kept; the oldest go first. Default 200. */
  previousLogLimit?: number;
  /** tmpfs folder for runtime state; default /run/carte/<homeId>. */
  runRoot?: string;
  cgroupRoot?: string;
  /** How pulls reach registries (logins, plain-HTTP ones); without it pullImage refuses. */
  registry?: RegistryAccess;
}

export const DEFAULT_BRIDGE = 'carte0';
export const DEFAULT_SUBNET = '10.77.0.0/16';
export const DEFAULT_CGROUP_PARENT = '/carte';

/** Every fault point of create and remove, in order (for the kill -9 tests; see src/util/fault.ts). */
export const FAULT_POINTS: readonly string[] = [...CREATE_FAULT_POINTS, ...REMOVE_FAULT_POINTS];

export class LinuxDriver implements Driver {
  readonly images: ImageStore;
  readonly builder: ImageBuilder;
  /** Build containers of RUN steps (and mounted stages), made with this driver's runc, cgroups and limits. */
  readonly buildSandbox: BuildSandbox;
  readonly network: CniNetwork;
  readonly serviceSockets: SocketBinder;
  readonly runtime: Runtime;
  readonly paths: HomePaths;
  private readonly ctx: DriverContext;
  private readonly log: Logger;
  private readonly registry: RegistryAccess | undefined;

  constructor(opts: LinuxDriverOptions) {
    this.log = opts.log;
    this.registry = opts.registry;
    const runner = new Runner(opts.log);
    this.paths = new HomePaths(opts.home, opts.runRoot);
    this.images = new ImageStore(this.paths.home);
    this.runtime = new Runtime(runner, findExecutable(opts.runtime ?? 'runc') ?? opts.runtime ?? 'runc', path.join(this.paths.runRoot, 'runc'));
    this.network = new CniNetwork(runner, {
      bridge: opts.bridge ?? DEFAULT_BRIDGE,
      subnet: opts.subnet ?? DEFAULT_SUBNET,
      dataDir: path.join(this.paths.home, 'cni'),
      cniPath: opts.cniPath ?? '/usr/lib/cni',
      owner: this.paths.home,
      accessFile: path.join(this.paths.home, 'network-access.json'),
      facts: (instance) => {
        // A networked RUN step: no service (so no allowFrom admits it), its veth and MAC from its folder.
        const build = this.buildSandbox?.networkFacts(instance);
        if (build) return { service: '', veth: build.veth, mac: build.mac, netns: null };
        const read = readRecordSync(this.paths, instance);
        if (read.kind !== 'ok') return null;
        const r = read.record;
        return { service: r.service, veth: r.veth ?? null, mac: r.mac ?? null, netns: placementOf(namingRules(this.ctx), instance, read).netns };
      },
      log: opts.log,
    });
    this.serviceSockets = new SocketBinder(runner, opts.log, this.network.gateway.names.netnsPath);
    const cgroupRoot = opts.cgroupRoot ?? '/sys/fs/cgroup';
    this.ctx = {
      paths: this.paths, log: opts.log, runner, runtime: this.runtime, network: this.network, images: this.images,
      conmon: findExecutable(opts.conmon ?? 'conmon') ?? opts.conmon ?? 'conmon',
      cgroupParent: opts.cgroupParent ?? DEFAULT_CGROUP_PARENT,
      cgroupRoot,
      layout: detectLayout(cgroupRoot),
      logMaxBytes: opts.logMaxBytes ?? 10 * 2 ** 20,
      previousLogLimit: opts.previousLogLimit ?? 200,
      // The host's open-files limits, read once (they do not change while carte runs).
      rlimits: parseHostRlimits(fs.readFileSync('/proc/self/limits', 'utf8')),
      diskReserveBytes: typeof opts.diskReserveBytes === 'function' ? opts.diskReserveBytes : ((n) => () => n)(opts.diskReserveBytes ?? 0),
    };
    for (const d of [this.paths.instancesDir, this.paths.volumesDir, this.paths.runRoot]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    this.buildSandbox = buildSandboxOf(this.ctx, opts.buildLimits);
    this.builder = new ImageBuilder(this.images, runner, { hostCopyPrefixes: opts.hostCopyPrefixes, sandbox: this.buildSandbox, pull: (ref) => this.pullImage(ref, { policy: 'IfNotPresent' }), diskReserveBytes: this.ctx.diskReserveBytes });
  }

  /** tmpfs folder of runtime state (runc root, conmon files); one per CARTE_HOME. */
  get runRoot(): string {
    return this.paths.runRoot;
  }

  /** Where an instance's network namespace and cgroup are (as its record says, for an existing one). */
  placement(name: string): Placement {
    return placementOf(namingRules(this.ctx), name);
  }

  cgroupPath(name: string): string {
    return this.placement(name).cgroupPath;
  }

  create(spec: InstanceSpec): Promise<ObservedInstance> {
    return create(this.ctx, spec);
  }

  async stop(name: string, graceMs: number): Promise<void> {
    await stop(this.ctx, name, graceMs);
  }

  remove(name: string): Promise<CleanupReport> {
    return remove(this.ctx, name);
  }

  list(): Promise<ObservedInstance[]> {
    return list(this.ctx);
  }

  /** One instance, or null if this home has no such instance. */
  observe(name: string): Promise<ObservedInstance | null> {
    return observe(this.ctx, name);
  }

  async stats(name: string): Promise<InstanceStats | null> {
    const stats = await readStats(this.cgroupPath(name), this.ctx.layout, this.ctx.cgroupRoot);
    if (!stats) return null;
    // The container's init pid (conmon's -p file): its /proc/<pid>/net/dev is the instance's namespace.
    let pid = NaN;
    try {
      pid = Number(fs.readFileSync(this.paths.runDir(name, 'pid'), 'utf8').trim()); // tmpfs: read in place, as observe.ts does
    } catch {
      // No pid file: not started, or gone.
    }
    stats.net = Number.isInteger(pid) && pid > 0 ? readNetDev(pid) : null;
    return stats;
  }

  logs(name: string, opts: LogOptions = {}): AsyncIterable<LogLine> {
    if (opts.previous) return readPreviousLog(this.paths, name, opts);
    return readLog(this.paths.dir(name, 'container.log'), opts);
  }

  exec(name: string, command: string[], opts: ExecOptions = {}): Promise<number> {
    return execIn(this.ctx, name, command, opts);
  }

  async ensureImage(build: { context: string; cartefile: string; args: Record<string, string>; network?: boolean }, tag: string, opts: BuildPolicy = {}): Promise<void> {
    const built = await this.builder.build({ context: build.context, cartefile: build.cartefile, args: build.args, tag, hostCopyPrefixes: opts.hostCopyPrefixes, network: build.network === true });
    for (const t of opts.alsoTag ?? []) await this.images.save(built.image.config, built.image.layers, t);
  }

  /** Pulls in flight by reference: instances created at once share one pull. */
  private readonly pulls = new Map<string, Promise<void>>();

  async pullImage(ref: string, opts: { policy: PullPolicy }): Promise<void> {
    const present = await this.images.get(ref).then(() => true, () => false);
    if (opts.policy === 'Never' || (opts.policy === 'IfNotPresent' && present)) {
      if (!present) throw new CarteError('registry', `image ${ref} is not in the local store and its pullPolicy is Never (pull it: carte pull ${ref})`);
      return;
    }
    if (!this.registry) throw new CarteError('registry', `pull ${ref}: this carte was started without registry access`);
    let pull = this.pulls.get(ref);
    if (!pull) {
      const started = performance.now();
      pull = pullImage(this.images, ref, this.registry).then((r) => {
        this.log.info({ image: ref, digest: r.digest, ms: Math.round(performance.now() - started) }, 'pulled');
      }).finally(() => this.pulls.delete(ref));
      this.pulls.set(ref, pull);
    }
    await pull;
  }

  /** conmon writes each exit into the run folder; any change there may be an instance ending. */
  watch(onChange: () => void): () => void {
    const watcher = fs.watch(this.paths.runRoot, { recursive: true }, () => onChange());
    watcher.on('error', (e) => this.log.warn({ err: e.message }, 'watching instance exits failed; relying on periodic resync'));
    return () => watcher.close();
  }

  serviceAddress(index: number): string | null {
    return this.network.plan.serviceAddress(index);
  }

  setServiceAddresses(ips: readonly string[]): Promise<string> {
    return this.network.setServiceAddresses(ips);
  }

  setNetworkAccess(access: NetworkAccess): Promise<void> {
    return this.network.firewall.setAccess(access);
  }

  async setHosts(name: string, hosts: Record<string, string>): Promise<void> {
    const record = await readRecord(this.paths, name);
    if (!record) return;
    // In place (same inode): the container's /etc/hosts is a bind mount of this file.
    await fsp.writeFile(this.paths.dir(name, 'etc', 'hosts'), hostsFileText(name, record.ip, hosts)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw new DriverError('update /etc/hosts of', `instance ${name}`, e.message);
    });
  }

  /**
   * `du` of the instance's upper dir or the volume's folder, one filesystem
   * (-x: never into a mount), in KiB allocated, as bytes.
   */
  async diskUsage(what: { instance: string } | { volume: string }): Promise<number | null> {
    const dir = 'instance' in what ? this.paths.dir(what.instance, 'upper') : path.join(this.paths.volumesDir, what.volume);
    if (!fs.existsSync(dir)) return null;
    const r = await this.ctx.runner.run('du', ['-sxk', dir], { step: 'measure the disk use of', resource: dir, timeoutMs: 30_000, okCodes: [1] });
    const kib = Number(r.stdout.split(/\s/)[0]);
    return Number.isFinite(kib) ? kib * 1024 : null;
  }

  /** Also sweeps what killed builders left (build containers, their mounts and cgroups). */
  async gc(opts: { keep?: ReadonlySet<string> } = {}): Promise<CleanupReport> {
    const builds = await this.buildSandbox.sweep();
    const report = await gc(this.ctx, opts);
    report.removed.unshift(...builds.removed, ...(await sweepAuthFolders(path.join(this.paths.runRoot, REGISTRY_RUN_DIR), processAlive)));
    report.failures.unshift(...builds.failures.map((error) => ({ step: 'remove a build container', resource: this.buildSandbox.dir, error })));
    return report;
  }

  /**
   * The home's own cgroup folders (`<cgroupParent>/<homeId>` in every hierarchy, and the parent
   * when no other home uses it), once they are empty: what an idle home leaves after its last
   * instance. rmdir only: a folder that still holds an instance's cgroup stays.
   */
  removeEmptyCgroups(): string[] {
    const { cgroupParent, layout, cgroupRoot } = this.ctx;
    const removed: string[] = [];
    for (const rel of [`${cgroupParent}/${this.paths.homeId}`, cgroupParent]) {
      if (rel.replace(/\/+/g, '') === '') continue;
      let any = false;
      for (const dir of cgroupDirs(rel, layout, cgroupRoot)) {
        try {
          fs.rmdirSync(dir);
          any = true;
        } catch {
          // absent, not a hierarchy here, or still in use
        }
      }
      if (any) removed.push(`cgroup ${rel}`);
    }
    return removed;
  }
}

/** The build sandbox of a driver context: the same runc, cgroup parent and open-files limits as its instances. */
export function buildSandboxOf(ctx: DriverContext, limits?: () => BuildLimits): BuildSandbox {
  return new BuildSandbox({
    runner: ctx.runner, log: ctx.log, home: ctx.paths.home, homeId: ctx.paths.homeId, runtimePath: ctx.runtime.path,
    cgroupParent: ctx.cgroupParent, cgroupRoot: ctx.cgroupRoot, layout: ctx.layout, rlimits: ctx.rlimits, limits, network: ctx.network,
  });
}

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(() => true, () => false);
}

/** Checks the tools the driver runs exist, with one message for all that are missing. */
export async function checkHostTools(opts: { runtime?: string; conmon?: string; cniPath?: string } = {}): Promise<void> {
  const missing: string[] = [];
  for (const tool of [opts.runtime ?? 'runc', opts.conmon ?? 'conmon', 'ip', 'mount', 'ldd', 'nsenter', 'iptables-restore', 'iptables-save', 'ebtables-restore', 'ebtables-save']) if (!findExecutable(tool)) missing.push(tool);
  for (const plugin of ['bridge', 'host-local', 'loopback']) if (!(await exists(path.join(opts.cniPath ?? '/usr/lib/cni', plugin)))) missing.push(`CNI plugin ${plugin}`);
  if (missing.length) throw new CarteError('driver', `missing on this machine: ${missing.join(', ')} (run "make setup" as root)`);
}
