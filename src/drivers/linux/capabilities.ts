// The capabilities of an instance's processes: a default set, minus what the
// security spec drops, plus what it adds. Admission (the server policy)
// decides which additions a manifest may ask for; this module only computes
// the set and refuses names that are not capabilities, so a typo never
// silently means "nothing added".
import { DriverError } from '../../errors.js';

/** Every capability of linux/capability.h (kernel 5.9+), in bit order. */
export const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
  'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
  'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/**
 * Docker's default set (moby oci/caps/defaults.go) without CAP_NET_RAW, in bit order:
 * raw sockets let a process forge packets (ARP and DNS spoofing of its
 * neighbours on the bridge). Ping still works, through ICMP datagram
 * sockets (see `net.ipv4.ping_group_range` in spec.ts); podman dropped
 * NET_RAW from its defaults for the same reason.
 */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP',
];

const KNOWN = new Set<string>(ALL_CAPABILITIES);

/** "net_admin", "NET_ADMIN" and "CAP_NET_ADMIN" all name CAP_NET_ADMIN (as in Docker); "ALL" stays "ALL". */
function normalize(name: string): string {
  const upper = name.trim().toUpperCase();
  return upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

/**
 * The set an instance gets: the default set, then `drop` removed ("ALL"
 * removes everything), then `add` added ("ALL" adds every capability). An
 * addition wins over a drop of the same name, so `drop: [ALL], add:
 * [NET_BIND_SERVICE]` means exactly that one. Sorted in bit order.
 */
export function resolveCapabilities(instance: string, add: readonly string[] = [], drop: readonly string[] = []): string[] {
  const check = (field: string, names: readonly string[]) => names.map((n) => {
    const c = normalize(n);
    if (c !== 'ALL' && !KNOWN.has(c)) {
      throw new DriverError('set the capabilities of', `instance ${instance}`, `${field} names "${n}", which is not a Linux capability`, {
        hint: 'use a name from capabilities(7) without the CAP_ prefix, e.g. NET_BIND_SERVICE, or ALL',
      });
    }
    return c;
  });
  const added = check('capAdd', add);
  const dropped = check('capDrop', drop);
  const set = new Set<string>(dropped.includes('ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !dropped.includes(c)));
  for (const c of added.includes('ALL') ? ALL_CAPABILITIES : added) set.add(c);
  return ALL_CAPABILITIES.filter((c) => set.has(c));
}
