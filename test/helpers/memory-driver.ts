// An in-memory Driver for unit tests of the reconciler's logic: instances are
// records, "processes" never run. Tests steer it (crash an instance, fail the
// next create) to drive the reconciler through situations. It passes the same
// contract suite as the Linux driver, so the two cannot disagree on meaning.
import type { BuildPolicy, CleanupReport, Driver, ExecOptions, InstanceSpec, InstanceStats, LogLine, NetworkAccess, ObservedInstance, ServiceSockets } from '../../src/drivers/driver.js';
import { CarteError, DriverError } from '../../src/errors.js';
import type { PullPolicy } from '../../src/schema/image-reference.js';
import { hostSockets } from '../../src/gateway/sockets.js';

export class MemoryDriver implements Driver {
  readonly instances = new Map<string, ObservedInstance>();
  readonly calls: string[] = [];
  private failures: Error[] = [];
  private nextIp = 2;

  constructor(private readonly clock: () => number = Date.now) {}

  /** While set, creates stop half-way (state "created", as runc create before start) until it resolves. */
  createGate: Promise<void> | null = null;

  /** The next create fails with this error (after nothing was made). */
  failNextCreate(error: Error = new DriverError('create', 'instance', 'injected failure')): void {
    this.failures.push(error);
  }

  /** Counters stats() reports per instance, on top of zeros (tests of the collector set them). */
  readonly statsOf = new Map<string, Partial<InstanceStats>>();

  /** The instance's process ends by itself. */
  crash(name: string, exitCode: number, oomKilled = false): void {
    const i = this.instances.get(name);
    if (!i) throw new Error(`no instance ${name}`);
    Object.assign(i, { state: 'exited', exitCode, oomKilled, pid: null, finishedAt: new Date(this.clock()).toISOString() });
  }

  async create(spec: InstanceSpec): Promise<ObservedInstance> {
    this.calls.push(`create ${spec.name}`);
    const failure = this.failures.shift();
    if (failure) throw failure;
    if (this.instances.has(spec.name)) throw new DriverError('create', `instance ${spec.name}`, 'an instance with this name already exists');
    const now = new Date(this.clock()).toISOString();
    const i: ObservedInstance = {
      name: spec.name, service: spec.service, labels: { ...spec.labels }, image: spec.image, state: 'running',
      pid: 1000 + this.instances.size, exitCode: null, oomKilled: false, createdAt: now, startedAt: now, finishedAt: null,
      ip: `10.0.0.${this.nextIp++}`, problems: [],
    };
    this.instances.set(spec.name, i);
    this.hosts.set(spec.name, { ...(spec.hosts ?? {}) });
    if (this.createGate) {
      Object.assign(i, { state: 'created', pid: null, startedAt: null });
      await this.createGate;
      Object.assign(i, { state: 'running', pid: 1000 + this.instances.size, startedAt: new Date(this.clock()).toISOString() });
    }
    return { ...i };
  }

  /** Services whose instances ignore SIGTERM: their stop() waits on the gate (their grace period) before ending them. */
  readonly slowStops = new Map<string, Promise<void>>();

  async stop(name: string, graceMs: number): Promise<void> {
    this.calls.push(`stop ${name}`);
    const i = this.instances.get(name);
    if (!i || i.state !== 'running') return;
    const gate = this.slowStops.get(i.service);
    if (gate && graceMs > 0) await gate;
    Object.assign(i, { state: 'exited', exitCode: graceMs > 0 ? 143 : 137, pid: null, finishedAt: new Date(this.clock()).toISOString() });
  }

  async remove(name: string): Promise<CleanupReport> {
    this.calls.push(`remove ${name}`);
    const existed = this.instances.delete(name);
    return { removed: existed ? [`instance ${name}`] : [], failures: [] };
  }

  async list(): Promise<ObservedInstance[]> {
    return [...this.instances.values()].map((i) => ({ ...i, labels: { ...i.labels } }));
  }

  async stats(name: string): Promise<InstanceStats | null> {
    const i = this.instances.get(name);
    if (!i || i.state !== 'running') return null;
    return {
      cpuUsageNs: 0, memoryUsageBytes: 0, memoryWorkingSetBytes: 0, memoryLimitBytes: null, cpuLimitMillis: null, pids: 1,
      cpuPeriods: null, cpuThrottledPeriods: null, cpuThrottledNs: null, blkReadBytes: null, blkWriteBytes: null, net: null, at: this.clock(),
      ...this.statsOf.get(name),
    };
  }

  async *logs(): AsyncIterable<LogLine> {
    // No output: these instances run nothing.
  }

  async exec(name: string, command: string[], _opts: ExecOptions = {}): Promise<number> {
    this.calls.push(`exec ${name} ${command.join(' ')}`);
    const i = this.instances.get(name);
    if (!i || i.state !== 'running') throw new DriverError('exec in', `instance ${name}`, 'not running');
    // Commands "run" by convention: `exit N` exits N, `false` exits 1, anything else 0.
    if (command[0] === 'exit') return Number(command[1] ?? 0);
    return command[0] === 'false' ? 1 : 0;
  }

  /** Service addresses made local (setServiceAddresses) and /etc/hosts per instance (setHosts). */
  serviceAddresses: string[] = [];
  readonly hosts = new Map<string, Record<string, string>>();

  serviceAddress(index: number): string | null {
    return index >= 1 && index < 255 ? `10.96.0.${index}` : null;
  }

  async setServiceAddresses(ips: readonly string[]): Promise<string> {
    this.serviceAddresses = [...ips];
    return 'memory';
  }

  /** The network access last set (setNetworkAccess). */
  networkAccess: NetworkAccess | null = null;

  async setNetworkAccess(access: NetworkAccess): Promise<void> {
    this.networkAccess = access;
  }

  /** Sockets on the host itself (its 10.96.0.x service addresses are not the host's: binding them fails with EADDRNOTAVAIL). */
  readonly serviceSockets: ServiceSockets = { ...hostSockets(), close: async () => undefined };

  async setHosts(name: string, hosts: Record<string, string>): Promise<void> {
    if (this.instances.has(name)) this.hosts.set(name, { ...hosts });
  }

  readonly built: string[] = [];
  /** The host copy prefixes each build was given (its source's policy section), by tag. */
  readonly buildPolicies = new Map<string, readonly string[] | undefined>();
  private watchers = new Set<() => void>();

  async ensureImage(_build: unknown, tag: string, opts: BuildPolicy = {}): Promise<void> {
    this.built.push(tag);
    this.buildPolicies.set(tag, opts.hostCopyPrefixes);
  }

  /** Each pull asked for: `ref policy`. */
  readonly pulls: string[] = [];
  /** Images a pull finds in the "registry"; a ref mapped to an Error fails its pulls with it. */
  readonly registry = new Map<string, true | Error>();
  /** Images in the "local store" (pulled ones land here). */
  readonly localImages = new Set<string>();

  async pullImage(ref: string, opts: { policy: PullPolicy }): Promise<void> {
    this.pulls.push(`${ref} ${opts.policy}`);
    const present = this.localImages.has(ref);
    if (opts.policy === 'Never' || (opts.policy === 'IfNotPresent' && present)) {
      if (!present) throw new CarteError('registry', `image ${ref} is not in the local store and its pullPolicy is Never`);
      return;
    }
    const found = this.registry.get(ref);
    if (found instanceof Error) throw found;
    if (!found) throw new CarteError('registry', `pull ${ref}: manifest unknown`);
    this.localImages.add(ref);
  }

  watch(onChange: () => void): () => void {
    this.watchers.add(onChange);
    return () => this.watchers.delete(onChange);
  }

  /** Tells watchers something changed, as the Linux driver's exit watch does. */
  notify(): void {
    for (const w of this.watchers) w();
  }

  /** Bytes each instance's writable layer and each volume holds, as tests set them. */
  readonly usage = new Map<string, number>();

  async diskUsage(what: { instance: string } | { volume: string }): Promise<number | null> {
    if ('instance' in what) return this.instances.has(what.instance) ? this.usage.get(what.instance) ?? 0 : null;
    return this.usage.get(`volume:${what.volume}`) ?? null;
  }

  async gc(opts: { keep?: ReadonlySet<string> } = {}): Promise<CleanupReport> {
    const removed: string[] = [];
    for (const name of [...this.instances.keys()]) {
      if (opts.keep && !opts.keep.has(name)) {
        this.instances.delete(name);
        removed.push(`instance ${name}`);
      }
    }
    return { removed, failures: [] };
  }
}
