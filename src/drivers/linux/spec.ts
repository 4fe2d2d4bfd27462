// The OCI runtime spec (config.json) of one instance, as a pure function of
// what the driver resolved: image config, manifest overrides, paths, limits.
// Defaults follow runc's `runc spec` and Docker's: namespaces pid, mount, uts,
// ipc, net, cgroup; the capability set capabilities.ts computes; no new
// privileges; masked and read-only /proc paths; the seccomp profile of
// seccomp.ts, always.
// Spec reference: https://github.com/opencontainers/runtime-spec/blob/main/config.md
import { DEFAULT_CAPABILITIES } from './capabilities.js';
import { defaultSeccompProfile } from './seccomp.js';

const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

export interface Mount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface SpecInput {
  hostname: string;
  args: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  /** Path of the rootfs mount, usually "rootfs" relative to the bundle. */
  rootfs: string;
  /** The network namespace to join; '' for a new, empty one (a build step without network). */
  netnsPath: string;
  cgroupsPath: string;
  cpuMillis: number | null;
  memoryBytes: number | null;
  pids: number | null;
  /** Bind mounts: files the driver writes (/etc/hosts ...) and volumes. */
  binds: Array<{ source: string; destination: string; readOnly: boolean }>;
  rlimits: Rlimit[];
  annotations: Record<string, string>;
  /** Capability names (CAP_...) for the bounding, effective and permitted sets; default DEFAULT_CAPABILITIES. */
  capabilities?: readonly string[];
  /** The rootfs is mounted read-only; /tmp, /var/tmp and /run become tmpfs. */
  readOnlyRootfs?: boolean;
}

/**
 * Writable scratch space of a read-only rootfs: podman's choice (its
 * --read-only-tmpfs, on by default) rather than Docker's (nothing writable
 * unless asked): programs expect to write /tmp and /run (pid files, sockets),
 * and these hold nothing that must survive the instance. `tmpcopyup` keeps
 * what the image has there. Size-capped; tmpfs pages count against the
 * instance's memory limit too.
 */
export const READ_ONLY_ROOTFS_TMPFS: readonly Mount[] = [
  { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k', 'tmpcopyup'] },
  { destination: '/var/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k', 'tmpcopyup'] },
  { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', 'size=65536k', 'tmpcopyup'] },
];

/** CFS period used for CPU quotas: 100 ms, the kernel's and Docker's default. */
export const CPU_PERIOD_US = 100_000;

export function buildSpec(input: SpecInput): Record<string, unknown> {
  const caps = [...(input.capabilities ?? DEFAULT_CAPABILITIES)];
  const readOnlyRootfs = input.readOnlyRootfs ?? false;
  const mounts: Mount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    // Before the binds, so a volume at /run/x or /tmp/x lands on top of the tmpfs, not under it.
    ...(readOnlyRootfs ? READ_ONLY_ROOTFS_TMPFS : []),
    ...input.binds.map((b) => ({
      destination: b.destination,
      type: 'bind',
      source: b.source,
      options: ['rbind', 'nosuid', 'nodev', b.readOnly ? 'ro' : 'rw'],
    })),
  ];
  const resources: Record<string, unknown> = {
    devices: [{ allow: false, access: 'rwm' }],
  };
  if (input.cpuMillis !== null) resources.cpu = { quota: input.cpuMillis * (CPU_PERIOD_US / 1000), period: CPU_PERIOD_US };
  // swap = limit: memory+swap equal to memory means no swap at all.
  if (input.memoryBytes !== null) resources.memory = { limit: input.memoryBytes, swap: input.memoryBytes };
  if (input.pids !== null) resources.pids = { limit: input.pids };
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: input.uid, gid: input.gid, ...(input.additionalGids.length ? { additionalGids: input.additionalGids } : {}) },
      args: input.args,
      env: input.env,
      cwd: input.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: input.rlimits,
      noNewPrivileges: true,
    },
    root: { path: input.rootfs, readonly: readOnlyRootfs },
    hostname: input.hostname,
    mounts,
    annotations: input.annotations,
    linux: {
      resources,
      cgroupsPath: input.cgroupsPath,
      namespaces: [
        { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' },
        input.netnsPath ? { type: 'network', path: input.netnsPath } : { type: 'network' },
      ],
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      // Ping without CAP_NET_RAW: every group may open ICMP datagram sockets
      // (which can only send echo requests). Per network namespace, so this
      // changes only the instance's own namespace.
      sysctl: { 'net.ipv4.ping_group_range': '0 2147483647' },
      seccomp: defaultSeccompProfile(),
    },
  };
}

/**
 * The open-files limit containers get: the host's own soft and hard values
 * (from /proc/self/limits), never more. Root here lacks CAP_SYS_RESOURCE, so
 * asking for more than the current hard limit makes runc fail.
 */
export function parseHostRlimits(procLimits: string): Rlimit[] {
  const line = procLimits.split('\n').find((l) => l.startsWith('Max open files'));
  if (!line) return [];
  const [soft, hard] = line.slice('Max open files'.length).trim().split(/\s+/);
  const value = (v: string | undefined) => (v === 'unlimited' || v === undefined ? 1_048_576 : Number(v));
  return [{ type: 'RLIMIT_NOFILE', soft: value(soft), hard: value(hard) }];
}

/** The process's argv: Kubernetes semantics, `command` replaces ENTRYPOINT (and CMD unless `args` is set), `args` replaces CMD. */
export function resolveArgs(image: { entrypoint: string[] | null; cmd: string[] | null }, command: string[] | null, args: string[] | null): string[] {
  if (command) return [...command, ...(args ?? [])];
  return [...(image.entrypoint ?? []), ...(args ?? image.cmd ?? [])];
}

/** Image env overlaid by manifest env, as KEY=VALUE; PATH and HOSTNAME always present. */
export function resolveEnv(imageEnv: string[], manifestEnv: Record<string, string>, hostname: string): string[] {
  const env = new Map<string, string>([['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']]);
  for (const kv of imageEnv) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  env.set('HOSTNAME', hostname);
  for (const [k, v] of Object.entries(manifestEnv)) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/**
 * Resolves `user` ("1000", "1000:1000", "app", "app:staff") to ids using the
 * image's /etc/passwd and /etc/group texts (null when absent).
 */
export function resolveUser(user: string | null, passwd: string | null, group: string | null): { uid: number; gid: number } | { error: string } {
  if (user === null || user === '') return { uid: 0, gid: 0 };
  const [u, g] = user.split(':') as [string, string | undefined];
  const entries = (text: string | null) => (text ?? '').split('\n').filter(Boolean).map((l) => l.split(':'));
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const row = entries(passwd).find((r) => r[2] === u);
    gid = row ? Number(row[3]) : uid;
  } else {
    const row = entries(passwd).find((r) => r[0] === u);
    if (!row) return { error: `user "${u}" is not in the image's /etc/passwd (use a numeric uid)` };
    uid = Number(row[2]);
    gid = Number(row[3]);
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const row = entries(group).find((r) => r[0] === g);
      if (!row) return { error: `group "${g}" is not in the image's /etc/group (use a numeric gid)` };
      gid = Number(row[2]);
    }
  }
  return { uid, gid: gid ?? uid };
}
