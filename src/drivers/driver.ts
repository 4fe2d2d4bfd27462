// The Driver: the only door to the operating system. The reconciler, scaler
// and gateway see this interface and nothing of Linux; the Linux
// implementation lives in drivers/linux/, and tests use an in-memory one.
// Shaped after Nomad's task driver: start, recover (list what exists), stop,
// destroy, inspect, stats, exec, plus logs.
import type dgram from 'node:dgram';
import type net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { PullPolicy } from '../schema/image-reference.js';
import type { ServiceSpec } from '../schema/types.js';

/** Everything the driver needs to make one instance of a service. */
export interface InstanceSpec {
  /** Unique, readable instance name, also its hostname: `login-1`. */
  name: string;
  service: string;
  /**
   * The source of the service (`cli`, `folder:…`, `git:…`). A named volume
   * belongs to the first source that uses it; the driver refuses it to any
   * other (admission refuses such manifests first; this is the last word).
   */
  source: string;
  /** Written onto the instance and given back by list(): service, spec hash, revision, ... */
  labels: Record<string, string>;
  /** The image reference (`name:tag`); the service spec's `image` or the name its build produced. */
  image: string;
  spec: Pick<ServiceSpec, 'command' | 'args' | 'env' | 'workingDir' | 'user' | 'resources' | 'volumes' | 'ports'>;
  /** Extra /etc/hosts entries (name → address), e.g. service names served by the gateway. */
  hosts?: Record<string, string>;
  /** Confinement beyond the defaults; absent fields mean the defaults (which are always applied). */
  security?: SecuritySpec;
  /**
   * Environment variables whose values are secrets (resolved by the
   * reconciler at create time). The driver keeps them off disk: see create.ts.
   */
  secretEnv?: Record<string, string>;
  /** Secrets as files: each a tmpfs of its own, read-only in the container, never on disk. */
  secretVolumes?: SecretVolume[];
}

/** A secret mounted as files (InstanceSpec.secretVolumes). */
export interface SecretVolume {
  /** The secret's name (for messages). */
  name: string;
  mountPath: string;
  /** Relative paths inside mountPath, their bytes and mode (e.g. 0o400); owned by the instance's user. */
  files: Array<{ path: string; data: Buffer; mode: number }>;
}

/**
 * How an instance is confined. Whatever is set here, every instance gets the
 * default seccomp profile, no new privileges, and the default capability set
 * (Docker's, without NET_RAW) minus `capDrop` plus `capAdd`; admission (the
 * server policy) decides what a manifest may ask for, the driver applies it.
 */
export interface SecuritySpec {
  /** The root filesystem is mounted read-only (volumes stay as they are). */
  readOnlyRootfs?: boolean;
  /** Capability names without the CAP_ prefix, e.g. "NET_BIND_SERVICE". */
  capAdd?: string[];
  capDrop?: string[];
  /** Run in a user namespace: the container's root is an unprivileged host uid. */
  userns?: boolean;
}

/**
 * What an instance is doing, as the machine reports it:
 * - `created`: set up but its process not started yet (or start failed);
 * - `running`: its process is alive;
 * - `exited`: its process ended (exitCode, oomKilled say how);
 * - `lost`: carte's record exists but the runtime no longer knows it
 *   (removed behind carte's back); only remove() is useful then.
 */
export type InstanceState = 'created' | 'running' | 'exited' | 'lost';

export interface ObservedInstance {
  name: string;
  service: string;
  labels: Record<string, string>;
  image: string;
  state: InstanceState;
  pid: number | null;
  exitCode: number | null;
  oomKilled: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  ip: string | null;
  /** Things found wrong with an instance that still runs (e.g. its network namespace vanished). */
  problems: string[];
}

export interface InstanceStats {
  /** Cumulative CPU time used, in nanoseconds. */
  cpuUsageNs: number;
  memoryUsageBytes: number;
  /** Usage minus inactive file cache (what Kubernetes calls the working set). */
  memoryWorkingSetBytes: number;
  memoryLimitBytes: number | null;
  cpuLimitMillis: number | null;
  pids: number;
  /** Cumulative CFS periods, periods throttled, and time throttled (ns); null where the kernel gives none. */
  cpuPeriods: number | null;
  cpuThrottledPeriods: number | null;
  cpuThrottledNs: number | null;
  /** Cumulative block I/O bytes read and written (all devices); null where unknown. */
  blkReadBytes: number | null;
  blkWriteBytes: number | null;
  /** Cumulative bytes and packets of the instance's network namespace (every interface but lo); null without one. */
  net: NetCounters | null;
  /** When the reading was taken (ms since the epoch), for rates. */
  at: number;
}

export interface NetCounters {
  rxBytes: number;
  txBytes: number;
  rxPackets: number;
  txPackets: number;
}

export interface LogLine {
  time: string;
  stream: 'stdout' | 'stderr';
  text: string;
}

export interface LogOptions {
  /** Only the last N lines (before following). */
  tail?: number;
  /** Keep reading new lines until the signal aborts. */
  follow?: boolean;
  signal?: AbortSignal;
  /**
   * The log of the instance's previous life under this name (before its last
   * restart or replacement), like `kubectl logs --previous`; kept bounded.
   */
  previous?: boolean;
}

export interface ExecOptions {
  stdin?: Readable | null;
  /** Where the command's output goes; discarded when not given (never into the caller's own output). */
  stdout?: Writable;
  stderr?: Writable;
  tty?: boolean;
  env?: Record<string, string>;
  /**
   * Aborting kills the command and every process it started (its session and
   * descendants) with SIGKILL; exec then resolves with 137 once they are gone.
   */
  signal?: AbortSignal;
  /**
   * When the command ends (or is aborted), everything it started ends with
   * it, also processes that left its session or double-forked (a health
   * probe must leave nothing behind). Without it, background processes an
   * exec starts keep running, as with `docker exec`.
   */
  reapAll?: boolean;
}

/** The server policy's say over one build (its source's section). */
export interface BuildPolicy {
  /** Host folders its `COPY --from=host` may read; absent: the driver's own setting. */
  hostCopyPrefixes?: readonly string[];
  /** More tags for the built image (a Git source's build: `carte-build/NAME:<commit>`). */
  alsoTag?: readonly string[];
}

/** What remove() or gc() could not clean, step by step; empty means clean. */
export interface CleanupReport {
  removed: string[];
  failures: Array<{ step: string; resource: string; error: string }>;
}

/**
 * Listening sockets, made somewhere the caller cannot bind itself (the Linux
 * driver: in the gateway's own network namespace). The caller owns what it
 * gets and closes it. A bind failure rejects with the system's code
 * (EADDRINUSE, EADDRNOTAVAIL, ...), as a local bind would.
 */
export interface ServiceSockets {
  /** A listening TCP server: connections reach `onConnection` paused, with half-close allowed and Nagle off (as a proxy wants them). */
  tcp(address: string, port: number, onConnection: (socket: net.Socket) => void): Promise<net.Server>;
  /** A bound UDP socket whose datagrams reach `onMessage`. */
  udp(address: string, port: number, onMessage: (msg: Buffer, from: dgram.RemoteInfo) => void): Promise<dgram.Socket>;
  /** Ends whatever makes them; sockets already handed out keep working. */
  close(): Promise<void>;
}

/** A host port instances may reach (NetworkAccess.hostPorts). */
export interface HostPortAccess {
  port: number;
  protocol: 'tcp' | 'udp';
  /** The host address it is served on; null: any of the host's addresses. */
  address: string | null;
  /** The services whose instances may reach it; null: every instance. */
  from: string[] | null;
}

/**
 * Who may reach what on the instances' network, beyond what the driver
 * always allows (an instance reaches other instances and service addresses,
 * and the outside world; nothing on the host): decided by the gateway from
 * desired state and the server policy, enforced by the driver (the Linux
 * one: the host's firewall).
 */
export interface NetworkAccess {
  /** Ports of the host's own addresses instances may connect to (published ports, the policy's host ports). */
  hostPorts: HostPortAccess[];
  /**
   * Services that only some services' instances may connect to (allowFrom),
   * on their instances' addresses and on their service address; a service
   * not listed takes connections from every instance. A service always
   * reaches itself.
   */
  restricted: Array<{ service: string; address: string | null; from: string[] }>;
}

export interface Driver {
  /** Creates and starts an instance. Fails with a DriverError naming the step; leaves nothing behind on failure. */
  create(spec: InstanceSpec): Promise<ObservedInstance>;
  /** SIGTERM, up to graceMs, then SIGKILL. Idempotent: stopping a stopped instance is fine. */
  stop(name: string, graceMs: number): Promise<void>;
  /** Stops if needed and removes everything the instance had. Idempotent; retries; reports what it could not clean. */
  remove(name: string): Promise<CleanupReport>;
  /** Every instance that exists on the machine, from the runtime's and kernel's state, not only carte's records. */
  list(): Promise<ObservedInstance[]>;
  /** Current resource readings; null if the instance (or its cgroup) is gone, which is normal after removal. */
  stats(name: string): Promise<InstanceStats | null>;
  logs(name: string, opts?: LogOptions): AsyncIterable<LogLine>;
  /** Runs a command inside a running instance; resolves to its exit code. */
  exec(name: string, command: string[], opts?: ExecOptions): Promise<number>;
  /**
   * Makes sure image `tag` exists, building it from `build` (a Cartefile
   * context) if needed; rebuilding an unchanged context is cheap (cached).
   */
  ensureImage(build: { context: string; cartefile: string; args: Record<string, string>; network?: boolean }, tag: string, opts?: BuildPolicy): Promise<void>;
  /**
   * Makes sure image `ref` (a registry reference) is in the local store as
   * `policy` says: IfNotPresent pulls when it is absent, Always pulls each
   * time (layers already stored are not stored again), Never only checks.
   * Fails with the registry's error; never hangs (pulls have a timeout).
   */
  pullImage(ref: string, opts: { policy: PullPolicy }): Promise<void>;
  /** Calls `onChange` when an instance's process may have changed state (e.g. exited); returns a function that stops watching. */
  watch(onChange: () => void): () => void;
  /** A service's stable address on the instances' network, by its slot; null past the range. */
  serviceAddress(index: number): string | null;
  /**
   * Makes exactly these service addresses reachable from instances, and not
   * from the host's own processes (for the gateway to listen on, through
   * serviceSockets); cheap when nothing changed. Resolves to an id of where
   * they are (`none` when nowhere yet): when it changes from another (that
   * place was removed and made again), sockets made on them before reach
   * nothing any more.
   */
  setServiceAddresses(ips: readonly string[]): Promise<string>;
  /**
   * Makes `access` the rule on the instances' network (kept across restarts
   * of carte, for every process that makes or removes instances); cheap
   * when unchanged.
   */
  setNetworkAccess(access: NetworkAccess): Promise<void>;
  /** Where the gateway's sockets on service addresses are made. */
  readonly serviceSockets: ServiceSockets;
  /** Rewrites an instance's extra /etc/hosts entries in place (service names → addresses); a missing instance is fine. */
  setHosts(name: string, hosts: Record<string, string>): Promise<void>;
  /** Removes whatever this driver made that no live instance owns. */
  gc(opts?: { keep?: ReadonlySet<string> }): Promise<CleanupReport>;
  /**
   * Bytes on disk of an instance's writable layer (what it wrote over its
   * image) and of named volumes, for disk quotas; null when the instance or
   * volume does not exist.
   */
  diskUsage(what: { instance: string } | { volume: string }): Promise<number | null>;
}
