// Linux capability names, as a manifest writes them: `NET_BIND_SERVICE` or
// `CAP_NET_BIND_SERVICE`, in any case; the canonical form is upper case
// without the prefix (what the driver's SecuritySpec takes).
// The list is include/uapi/linux/capability.h up to CAP_CHECKPOINT_RESTORE
// (40, Linux 5.9), in the kernel's order.

export const LINUX_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

/**
 * What every instance gets unless it drops some: Docker's default set
 * (moby/oci/caps/defaults.go) without NET_RAW, which carte drops by default
 * (raw sockets let a container forge packets on the bridge). Keep in step
 * with the driver (src/drivers/linux/spec.ts); adding one of these is a no-op
 * that admission always allows.
 */
export const DEFAULT_CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
] as const;

/** `cap_net_bind_service` → `NET_BIND_SERVICE`; null when it names no Linux capability. */
export function normalizeCapability(name: string): string | null {
  const upper = name.trim().toUpperCase().replace(/^CAP_/, '');
  return (LINUX_CAPABILITIES as readonly string[]).includes(upper) ? upper : null;
}
