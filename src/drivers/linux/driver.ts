// The Linux driver: how an instance is made, step by step, and unmade.
//
//   create: image → overlay rootfs → user → volumes → netns + CNI → /etc files
//           → OCI spec → conmon (runc create) → runc start
//   remove: kill → runc delete → monitor → CNI DEL + netns → unmount → cgroup → files
//
// Files per instance:
//   CARTE_HOME/instances/NAME/      instance.json (the record), bundle/ (config.json, rootfs
//                                   mount), upper/, work/, etc/, container.log
//   /run/carte/HOMEID/NAME/         conmon pid, exit code, oom marker, attach socket (tmpfs:
//                                   runtime state does not outlive a reboot, nor do containers)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CarteError, DriverError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type {
  CleanupReport, Driver, ExecOptions, InstanceSpec, InstanceStats, LogLine, LogOptions, ObservedInstance,
} from '../driver.js';
import { detectLayout, readStats, removeCgroup, type CgroupLayout } from './cgroups.js';
import { findExecutable, Runner } from './exec.js';
import { ImageBuilder } from './images/build.js';
import { ImageStore } from './images/store.js';
import { readLog } from './logs.js';
import { startMonitor } from './monitor.js';
import { CniNetwork } from './network.js';
import { mountOverlay, mountsUnder, unmountAll } from './rootfs.js';
import { Runtime } from './runtime.js';
import { processAlive } from '../../util/process.js';
import { buildSpec, parseHostRlimits, resolveArgs, resolveEnv, resolveUser } from './spec.js';

export interface LinuxDriverOptions {
  home: string;
  log: Logger;
  runtime?: string;
  conmon?: string;
  bridge?: string;
  subnet?: string;
  cgroupParent?: string;
  cniPath?: string;
  /** Per-instance log cap; conmon truncates the file when it is reached. */
  logMaxBytes?: number;
  /** tmpfs folder for runtime state; default /run/carte/<hash of home>. */
  runRoot?: string;
  cgroupRoot?: string;
}

export const DEFAULT_BRIDGE = 'carte0';
export const DEFAULT_SUBNET = '10.77.0.0/16';
export const DEFAULT_CGROUP_PARENT = '/carte';

interface InstanceRecord {
  name: string;
  service: string;
  labels: Record<string, string>;
  image: string;
  imageId: string;
  createdAt: string;
  startedAt: string | null;
  ip: string | null;
}

const ANNOTATION = 'carte.instance';
// Hostname rules, and short enough for socket paths under /run.
/** An instance's /etc/hosts: localhost, its own name, then service names (which the gateway serves). */
function hostsFileText(name: string, ip: string | null, hosts: Record<string, string>): string {
  return [
    '127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...(ip ? [`${ip}\t${name}`] : []),
    ...Object.entries(hosts).sort(([a], [b]) => (a < b ? -1 : 1)).map(([h, addr]) => `${addr}\t${h}`),
  ].join('\n') + '\n';
}

const INSTANCE_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

async function exists(p: string): Promise<boolean> {
  return fsp.access(p).then(() => true, () => false);
}

async function retry<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 100 * 2 ** (i - 1)));
    }
  }
}

export class LinuxDriver implements Driver {
  readonly images: ImageStore;
  readonly builder: ImageBuilder;
  readonly network: CniNetwork;
  readonly runtime: Runtime;
  private readonly runner: Runner;
  private readonly instancesDir: string;
  private readonly volumesDir: string;
  /** tmpfs folder of runtime state (runc root, conmon files); one per CARTE_HOME. */
  readonly runRoot: string;
  private readonly cgroupParent: string;
  private readonly cgroupRoot: string;
  private readonly layout: CgroupLayout;
  private readonly conmon: string;
  private readonly logMaxBytes: number;
  private readonly log: Logger;
  /** The host's open-files limits, read once (they do not change while carte runs). */
  private readonly rlimits = parseHostRlimits(fs.readFileSync('/proc/self/limits', 'utf8'));

  constructor(opts: LinuxDriverOptions) {
    this.log = opts.log;
    this.runner = new Runner(opts.log);
    const home = path.resolve(opts.home);
    this.images = new ImageStore(home);
    this.builder = new ImageBuilder(this.images, this.runner);
    this.instancesDir = path.join(home, 'instances');
    this.volumesDir = path.join(home, 'volumes');
    const homeId = createHash('sha256').update(home).digest('hex').slice(0, 8);
    this.runRoot = opts.runRoot ?? path.join('/run/carte', homeId);
    this.runtime = new Runtime(this.runner, findExecutable(opts.runtime ?? 'runc') ?? opts.runtime ?? 'runc', path.join(this.runRoot, 'runc'));
    this.network = new CniNetwork(this.runner, {
      bridge: opts.bridge ?? DEFAULT_BRIDGE,
      subnet: opts.subnet ?? DEFAULT_SUBNET,
      dataDir: path.join(home, 'cni'),
      cniPath: opts.cniPath ?? '/usr/lib/cni',
    });
    this.cgroupParent = opts.cgroupParent ?? DEFAULT_CGROUP_PARENT;
    this.cgroupRoot = opts.cgroupRoot ?? '/sys/fs/cgroup';
    this.layout = detectLayout(this.cgroupRoot);
    this.conmon = findExecutable(opts.conmon ?? 'conmon') ?? opts.conmon ?? 'conmon';
    this.logMaxBytes = opts.logMaxBytes ?? 10 * 2 ** 20;
    for (const d of [this.instancesDir, this.volumesDir, this.runRoot]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  }

  private dir(name: string, ...rest: string[]) {
    return path.join(this.instancesDir, name, ...rest);
  }

  private runDir(name: string, ...rest: string[]) {
    return path.join(this.runRoot, name, ...rest);
  }

  cgroupPath(name: string): string {
    return path.posix.join(this.cgroupParent, name);
  }

  private async readRecord(name: string): Promise<InstanceRecord | null> {
    try {
      return JSON.parse(await fsp.readFile(this.dir(name, 'instance.json'), 'utf8')) as InstanceRecord;
    } catch {
      return null;
    }
  }

  private async writeRecord(r: InstanceRecord): Promise<void> {
    const file = this.dir(r.name, 'instance.json');
    await fsp.writeFile(`${file}.tmp`, JSON.stringify(r, null, 1));
    await fsp.rename(`${file}.tmp`, file);
  }

  // ---- create ----

  async create(spec: InstanceSpec): Promise<ObservedInstance> {
    const name = spec.name;
    if (!INSTANCE_NAME.test(name)) throw new DriverError('create', `instance "${name}"`, 'not a valid instance name (lowercase letters, digits, "-")');
    if (await exists(this.dir(name))) throw new DriverError('create', `instance ${name}`, 'an instance with this name already exists');
    const started = performance.now();
    await fsp.mkdir(this.dir(name), { recursive: true, mode: 0o700 });
    try {
      await this.createSteps(spec);
    } catch (e) {
      const report = await this.remove(name);
      if (report.failures.length) this.log.warn({ instance: name, failures: report.failures }, 'cleanup after a failed create left things behind');
      throw e;
    }
    this.log.debug({ instance: name, ms: Math.round(performance.now() - started) }, 'created');
    return (await this.observe(name))!;
  }

  // The critical path is kept short by overlapping independent steps:
  //   [rootfs, user, volumes, spec] ‖ [ip netns add]
  //   [conmon → runc create]        ‖ [CNI attach → /etc/hosts with the address]
  //   runc start
  // runc create needs the namespace to exist, not to be configured; the
  // process only runs at runc start, when its address is in place.
  private async createSteps(spec: InstanceSpec): Promise<void> {
    const name = spec.name;
    let mark = performance.now();
    const phase = (what: string) => {
      const now = performance.now();
      this.log.debug({ instance: name, phase: what, ms: Math.round((now - mark) * 10) / 10 }, 'create phase');
      mark = now;
    };
    const image = await this.images.get(spec.image);
    const record: InstanceRecord = {
      name, service: spec.service, labels: spec.labels, image: spec.image, imageId: image.id,
      createdAt: new Date().toISOString(), startedAt: null, ip: null,
    };
    await this.writeRecord(record);
    const etc = this.dir(name, 'etc');
    const hostsFile = path.join(etc, 'hosts');
    const hostsText = (ip: string | null) => hostsFileText(name, ip, spec.hosts ?? {});

    const [config] = await Promise.all([this.prepareBundle(spec, image, etc, hostsText(null)), this.network.createNamespace(name)]);
    await fsp.writeFile(this.dir(name, 'bundle', 'config.json'), JSON.stringify(config));
    phase('bundle and namespace');

    const run = (...p: string[]) => this.runDir(name, ...p);
    await Promise.all(['exit', 'persist', 'sock'].map((d) => fsp.mkdir(run(d), { recursive: true, mode: 0o700 })));
    const [, net] = await Promise.all([
      startMonitor({
        conmon: this.conmon, runtime: this.runtime.path, runtimeRoot: this.runtime.root, id: name,
        bundle: this.dir(name, 'bundle'), pidFile: run('pid'), conmonPidFile: run('conmon.pid'),
        exitDir: run('exit'), persistDir: run('persist'), socketDir: run('sock'),
        logPath: this.dir(name, 'container.log'), logMaxBytes: this.logMaxBytes,
      }),
      this.network.attach(name),
    ]);
    phase('runtime create and network');
    // Rewritten in place: the bind mount made at create refers to this same inode.
    await fsp.writeFile(hostsFile, hostsText(net.ip));
    record.ip = net.ip;
    await this.runtime.start(name);
    phase('start');
    record.startedAt = new Date().toISOString();
    await this.writeRecord(record);
  }

  serviceAddress(index: number): string | null {
    return this.network.plan.serviceAddress(index);
  }

  setServiceAddresses(ips: readonly string[]): Promise<void> {
    return this.network.setServiceAddresses(ips);
  }

  async setHosts(name: string, hosts: Record<string, string>): Promise<void> {
    const record = await this.readRecord(name);
    if (!record) return;
    // In place (same inode): the container's /etc/hosts is a bind mount of this file.
    await fsp.writeFile(this.dir(name, 'etc', 'hosts'), hostsFileText(name, record.ip, hosts)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw new DriverError('update /etc/hosts of', `instance ${name}`, e.message);
    });
  }

  /** Rootfs mount, user, volumes, /etc files, and the OCI config (returned, not yet written). */
  private async prepareBundle(spec: InstanceSpec, image: Awaited<ReturnType<ImageStore['get']>>, etc: string, hosts: string): Promise<Record<string, unknown>> {
    const name = spec.name;
    const rootfs = this.dir(name, 'bundle', 'rootfs');
    await mountOverlay(this.runner, {
      layers: image.layers.map((d) => this.images.layerPath(d)),
      upper: this.dir(name, 'upper'), work: this.dir(name, 'work'), empty: this.dir(name, 'empty'), target: rootfs, resource: name,
    });

    const readImageFile = (p: string) => fsp.readFile(path.join(rootfs, p), 'utf8').catch(() => null);
    const user = resolveUser(spec.spec.user ?? image.config.user, await readImageFile('etc/passwd'), await readImageFile('etc/group'));
    if ('error' in user) throw new DriverError('resolve the user of', name, user.error);

    const binds: Array<{ source: string; destination: string; readOnly: boolean }> = [
      { source: path.join(etc, 'hosts'), destination: '/etc/hosts', readOnly: true },
      { source: path.join(etc, 'hostname'), destination: '/etc/hostname', readOnly: true },
      { source: path.join(etc, 'resolv.conf'), destination: '/etc/resolv.conf', readOnly: true },
    ];
    for (const v of spec.spec.volumes) {
      if (v.kind === 'named') {
        const source = path.join(this.volumesDir, v.name);
        await fsp.mkdir(source, { recursive: true, mode: 0o755 });
        binds.push({ source, destination: v.mountPath, readOnly: v.readOnly });
      } else {
        if (!(await exists(v.hostPath))) throw new DriverError('mount a volume into', name, `host path ${v.hostPath} does not exist`, { hint: 'create it, or fix spec.volumes[].hostPath' });
        binds.push({ source: v.hostPath, destination: v.mountPath, readOnly: v.readOnly });
      }
    }

    await fsp.mkdir(etc, { recursive: true });
    const hostResolv = await fsp.readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    await Promise.all([
      fsp.writeFile(path.join(etc, 'hosts'), hosts),
      fsp.writeFile(path.join(etc, 'hostname'), `${name}\n`),
      fsp.writeFile(path.join(etc, 'resolv.conf'), hostResolv.split('\n').filter((l) => /^(nameserver|search|options)\s/.test(l)).join('\n') + '\n'),
    ]);

    const args = resolveArgs(image.config, spec.spec.command, spec.spec.args);
    if (!args.length) throw new DriverError('create', name, `image ${spec.image} has no CMD or ENTRYPOINT`, { hint: 'set spec.command in the manifest' });
    return buildSpec({
      hostname: name,
      args,
      env: resolveEnv(image.config.env, spec.spec.env, name),
      cwd: spec.spec.workingDir ?? image.config.workingDir ?? '/',
      uid: user.uid, gid: user.gid, additionalGids: [],
      rootfs: 'rootfs',
      netnsPath: this.network.netnsPath(name),
      cgroupsPath: this.cgroupPath(name),
      cpuMillis: spec.spec.resources.cpuMillis,
      memoryBytes: spec.spec.resources.memoryBytes,
      pids: spec.spec.resources.pids,
      binds,
      rlimits: this.rlimits,
      annotations: { [ANNOTATION]: name, 'carte.service': spec.service, 'carte.labels': JSON.stringify(spec.labels) },
    });
  }

  // ---- observe ----

  /**
   * One instance from what the machine shows, without asking runc (a `runc
   * list` of 100 containers costs ~45 ms): the runtime's state folder exists
   * or not; conmon's exit file says it ended and how; conmon's pid file and
   * /proc say its process lives; the record says whether it was started.
   * Only an ambiguous case (process gone, no exit written yet) asks runc.
   */
  //
  // The reads are synchronous on purpose: they are a few tiny files per
  // instance, and 500 of them queued through libuv's thread pool cost several
  // times more than reading them in place (35 ms against about 10 ms for 100
  // instances, measured); the event loop is held for a few milliseconds.
  private async observe(name: string, hasRuntimeState?: boolean): Promise<ObservedInstance | null> {
    const readOrNull = (p: string) => {
      try {
        return fs.readFileSync(p, 'utf8');
      } catch {
        return null;
      }
    };
    const recordText = readOrNull(this.dir(name, 'instance.json'));
    const record = recordText === null ? null : (JSON.parse(recordText) as InstanceRecord);
    const inRuntime = hasRuntimeState ?? fs.existsSync(path.join(this.runtime.root, name));
    if (!record && !inRuntime) return null;
    let exitText = readOrNull(this.runDir(name, 'exit', name));
    const pidText = readOrNull(this.runDir(name, 'pid'));
    const oom = fs.existsSync(this.runDir(name, 'persist', 'oom'));
    const netns = fs.existsSync(this.network.netnsPath(name));
    const pid = pidText ? Number(pidText.trim()) : null;
    let state: ObservedInstance['state'];
    let annotations: Record<string, string> = {};
    if (!inRuntime) state = 'lost';
    else if (exitText !== null) state = 'exited';
    else if (pid !== null && processAlive(pid)) state = record?.startedAt ? 'running' : 'created';
    else {
      const rt = await this.runtime.state(name);
      annotations = rt?.annotations ?? {};
      state = !rt ? 'lost' : rt.status === 'running' || rt.status === 'paused' ? 'running' : rt.status === 'stopped' ? 'exited' : 'created';
      // Just ended: conmon writes the exit code a moment after the process goes; wait for it briefly.
      for (let i = 0; state === 'exited' && exitText === null && i < 10; i++) {
        await new Promise((r) => setTimeout(r, 10));
        exitText = readOrNull(this.runDir(name, 'exit', name));
      }
    }
    if (!record && !Object.keys(annotations).length) annotations = (await this.runtime.state(name))?.annotations ?? {};
    const problems: string[] = [];
    if (!record) problems.push('carte has no record of this container');
    if (state === 'running' && !netns) problems.push(`network namespace ${this.network.netnsPath(name)} is gone`);
    const finishedAt = state === 'exited' && exitText !== null ? fs.statSync(this.runDir(name, 'exit', name), { throwIfNoEntry: false })?.mtime.toISOString() ?? null : null;
    return {
      name,
      service: record?.service ?? annotations['carte.service'] ?? '',
      labels: record?.labels ?? (JSON.parse(annotations['carte.labels'] ?? '{}') as Record<string, string>),
      image: record?.image ?? '',
      state,
      pid: state === 'running' ? pid : null,
      exitCode: state === 'exited' && exitText !== null ? Number(exitText.trim()) : null,
      oomKilled: state === 'exited' && oom,
      createdAt: record?.createdAt ?? '',
      startedAt: record?.startedAt ?? null,
      finishedAt,
      ip: record?.ip ?? null,
      problems,
    };
  }

  async list(): Promise<ObservedInstance[]> {
    const [inRuntime, dirs] = await Promise.all([
      fsp.readdir(this.runtime.root).catch(() => [] as string[]),
      fsp.readdir(this.instancesDir).catch(() => [] as string[]),
    ]);
    const runtimeIds = new Set(inRuntime);
    const names = [...new Set([...dirs, ...inRuntime])].sort();
    const out = await Promise.all(names.map((n) => this.observe(n, runtimeIds.has(n))));
    // A runtime state without a carte annotation is not ours (runc's root is carte's own, but be sure).
    return out.filter((o): o is ObservedInstance => o !== null && (o.service !== '' || dirs.includes(o.name)));
  }

  async stats(name: string): Promise<InstanceStats | null> {
    return readStats(this.cgroupPath(name), this.layout, this.cgroupRoot);
  }

  logs(name: string, opts: LogOptions = {}): AsyncIterable<LogLine> {
    return readLog(this.dir(name, 'container.log'), opts);
  }

  // ---- stop and remove ----

  private async waitExited(name: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = await this.runtime.state(name);
      if (!s || s.status === 'stopped') return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(name: string, graceMs: number): Promise<void> {
    const s = await this.runtime.state(name);
    if (!s || s.status === 'stopped') return;
    if (s.status === 'running' && graceMs > 0) {
      await this.runtime.kill(name, 'SIGTERM');
      if (await this.waitExited(name, graceMs)) return;
    }
    await this.runtime.kill(name, 'SIGKILL', true);
    if (!(await this.waitExited(name, 10_000))) throw new DriverError('stop', `instance ${name}`, 'still running 10 s after SIGKILL');
  }

  async remove(name: string): Promise<CleanupReport> {
    const report: CleanupReport = { removed: [], failures: [] };
    const step = async (what: string, resource: string, fn: () => Promise<unknown>) => {
      try {
        await retry(3, fn);
        report.removed.push(`${what} ${resource}`);
        return true;
      } catch (e) {
        report.failures.push({ step: what, resource, error: (e as Error).message });
        return false;
      }
    };
    await step('stop', name, () => this.stop(name, 0));
    await step('delete runtime state', name, () => this.runtime.delete(name));
    await step('end monitor', name, () => this.endMonitor(name));
    await step('release network', name, () => this.network.teardown(name));
    const unmounted = await step('unmount', this.dir(name), async () => {
      const left = await unmountAll(this.runner, this.dir(name), name);
      if (left.length) throw new Error(`still mounted: ${left.join(', ')}`);
    });
    await step('remove cgroup', this.cgroupPath(name), async () => {
      const left = await removeCgroup(this.cgroupPath(name), this.layout, this.cgroupRoot);
      if (left.length) throw new Error(`could not remove ${left.join(', ')}`);
    });
    // Never delete through a mount that is still there: that would empty a volume or a layer.
    if (unmounted) await step('remove files', this.dir(name), () => fsp.rm(this.dir(name), { recursive: true, force: true }));
    await step('remove runtime files', this.runDir(name), () => fsp.rm(this.runDir(name), { recursive: true, force: true }));
    return report;
  }

  /** conmon exits after the container does; if it lingers (container deleted under it), end it by its pid. */
  private async endMonitor(name: string): Promise<void> {
    const pid = Number((await fsp.readFile(this.runDir(name, 'conmon.pid'), 'utf8').catch(() => '')).trim());
    if (!pid) return;
    for (let i = 0; i < 20; i++) {
      const cmdline = await fsp.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
      // Only our conmon: the pid may have been reused by an unrelated process.
      if (cmdline === null || !cmdline.includes('conmon') || !cmdline.split('\0').includes(name)) return;
      if (i === 10) process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`monitor pid ${pid} did not exit`);
  }

  // ---- exec ----

  exec(name: string, command: string[], opts: ExecOptions = {}): Promise<number> {
    const args = this.runtime.execArgs(name, command, { tty: opts.tty ?? false, env: opts.env ?? {} });
    return new Promise((resolve, reject) => {
      const child = spawn(this.runtime.path, args, { stdio: [opts.stdin ? 'pipe' : 'ignore', opts.stdout ? 'pipe' : 'inherit', opts.stderr ? 'pipe' : 'inherit'] });
      if (opts.stdin && child.stdin) opts.stdin.pipe(child.stdin);
      if (opts.stdout && child.stdout) child.stdout.pipe(opts.stdout, { end: false });
      if (opts.stderr && child.stderr) child.stderr.pipe(opts.stderr, { end: false });
      child.on('error', (e) => reject(new DriverError('exec in', `instance ${name}`, e.message)));
      child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  }

  async ensureImage(build: { context: string; cartefile: string; args: Record<string, string> }, tag: string): Promise<void> {
    await this.builder.build({ context: build.context, cartefile: build.cartefile, args: build.args, tag });
  }

  /** conmon writes each exit into the run folder; any change there may be an instance ending. */
  watch(onChange: () => void): () => void {
    const watcher = fs.watch(this.runRoot, { recursive: true }, () => onChange());
    watcher.on('error', (e) => this.log.warn({ err: e.message }, 'watching instance exits failed; relying on periodic resync'));
    return () => watcher.close();
  }

  // ---- gc ----

  /**
   * Removes every trace of instances that are not whole (a record without a
   * runtime state, a runtime state without a record, or a namespace, lease,
   * cgroup, mount or run folder with neither), and, when `keep` is given,
   * of every instance not in it. Then images' unused records and layers.
   */
  async gc(opts: { keep?: ReadonlySet<string> } = {}): Promise<CleanupReport> {
    const report: CleanupReport = { removed: [], failures: [] };
    const [states, dirs, netns, leases, runDirs, cgroups, mounts] = await Promise.all([
      this.runtime.list(),
      fsp.readdir(this.instancesDir).catch(() => [] as string[]),
      this.network.namespaces(),
      this.network.leases(),
      fsp.readdir(this.runRoot).catch(() => [] as string[]),
      fsp.readdir(path.join(this.cgroupRoot, this.layout === 'v1' ? 'memory' : '', this.cgroupParent)).catch(() => [] as string[]),
      mountsUnder(this.instancesDir),
    ]);
    const withState = new Set(states.map((s) => s.id));
    const withRecord = new Set(dirs.filter((d) => fs.existsSync(this.dir(d, 'instance.json'))));
    const traces = new Set<string>([
      ...withState, ...withRecord, ...netns, ...leases.map((l) => l.instance),
      ...runDirs.filter((d) => d !== 'runc'),
      ...cgroups.filter((c) => INSTANCE_NAME.test(c) && fs.statSync(path.join(this.cgroupRoot, this.layout === 'v1' ? 'memory' : '', this.cgroupParent, c)).isDirectory()),
      ...mounts.map((m) => path.relative(this.instancesDir, m).split(path.sep)[0]!).filter(Boolean),
    ]);
    for (const name of [...traces].sort()) {
      const whole = withState.has(name) && withRecord.has(name);
      if (whole && (!opts.keep || opts.keep.has(name))) continue;
      const r = await this.remove(name);
      report.removed.push(...r.removed.filter((x) => !x.startsWith('stop ')));
      report.failures.push(...r.failures);
    }
    const liveImages = new Set<string>();
    for (const name of await fsp.readdir(this.instancesDir).catch(() => [] as string[])) {
      const rec = await this.readRecord(name);
      if (rec) liveImages.add(rec.imageId);
    }
    const keepLayers = new Set<string>();
    for (const id of liveImages) {
      const img = await this.images.get(id.slice(0, 64)).catch(() => null);
      img?.layers.forEach((l) => keepLayers.add(l));
    }
    try {
      report.removed.push(...(await this.images.gc(keepLayers)));
    } catch (e) {
      report.failures.push({ step: 'remove unused images', resource: this.images.imagesDir, error: (e as Error).message });
    }
    return report;
  }
}

/** Checks the tools the driver runs exist, with one message for all that are missing. */
export async function checkHostTools(opts: { runtime?: string; conmon?: string; cniPath?: string } = {}): Promise<void> {
  const missing: string[] = [];
  for (const tool of [opts.runtime ?? 'runc', opts.conmon ?? 'conmon', 'ip', 'mount', 'ldd']) if (!findExecutable(tool)) missing.push(tool);
  for (const plugin of ['bridge', 'host-local', 'loopback']) if (!(await exists(path.join(opts.cniPath ?? '/usr/lib/cni', plugin)))) missing.push(`CNI plugin ${plugin}`);
  if (missing.length) throw new CarteError('driver', `missing on this machine: ${missing.join(', ')} (run "make setup" as root)`);
}
