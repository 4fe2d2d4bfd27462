// The seccomp profile every container gets (and every `runc exec` into it:
// runc applies the container's profile to exec'd processes too).
//
// It has the effect of Docker's default profile (moby profiles/seccomp/
// default.json, https://docs.docker.com/engine/security/seccomp/): a syscall
// not named here fails with EPERM; the list below is Docker's allow-list,
// written out by hand. One deliberate difference: Docker unlocks some blocked
// syscalls when a capability is added (mount and unshare with CAP_SYS_ADMIN,
// init_module with CAP_SYS_MODULE, ...). Carte's profile does not depend on
// capabilities, so a manifest that gets CAP_SYS_ADMIN through capAdd still
// cannot mount, unshare or setns: on a shared server the syscall filter is the
// wall that stays put whatever admission lets through.
//
// runc ignores names its libseccomp (2.5.4 here) does not know, and answers
// ENOSYS for syscalls newer than the profile, so libc falls back gracefully.

/** Namespace flags of clone(2) (linux/sched.h); clone with any of them is refused. */
export const CLONE_NAMESPACE_FLAGS = {
  CLONE_NEWNS: 0x0002_0000,
  CLONE_NEWCGROUP: 0x0200_0000,
  CLONE_NEWUTS: 0x0400_0000,
  CLONE_NEWIPC: 0x0800_0000,
  CLONE_NEWUSER: 0x1000_0000,
  CLONE_NEWPID: 0x2000_0000,
  CLONE_NEWNET: 0x4000_0000,
} as const;

const CLONE_NAMESPACES_MASK = Object.values(CLONE_NAMESPACE_FLAGS).reduce((a, b) => a + b, 0);

const EPERM = 1;
const ENOSYS = 38;
const AF_VSOCK = 40;

/**
 * Allowed without conditions: Docker's unconditional list. Left out on
 * purpose (they fail with EPERM), with why:
 * - unshare, setns, mount, umount, umount2, pivot_root, fsopen, fsconfig,
 *   fsmount, fspick, move_mount, open_tree, mount_setattr: new namespaces and
 *   mounts are how container escapes start (a user namespace gives a process
 *   "root" over kernel code paths written for real root).
 * - keyctl, add_key, request_key: the kernel keyring is not namespaced; keys
 *   of other containers and the host are reachable.
 * - bpf, perf_event_open: kernel attack surface, and perf reads host-wide data.
 * - io_uring_setup, io_uring_enter, io_uring_register: a long record of kernel
 *   privilege escalations, and its operations bypass seccomp; Docker 25 and
 *   containerd 2.0 dropped them from their defaults too (moby#46762,
 *   containerd#9320), and libuv (node) falls back to its thread pool.
 * - kexec_load, kexec_file_load, reboot: replace or stop the host's kernel.
 * - init_module, finit_module, delete_module: load code into the kernel.
 * - open_by_handle_at: the "shocker" escape, opens host files by handle.
 * - userfaultfd: stalls the kernel at chosen points, a race-exploit helper.
 * - swapon, swapoff, acct, quotactl, quotactl_fd, lookup_dcookie, syslog,
 *   sethostname, setdomainname, vhangup: host-wide state (the hostname is set
 *   by the runtime, not by the process).
 * - settimeofday, stime, clock_settime, clock_settime64: the clock is not
 *   namespaced (adjtimex and clock_adjtime stay, as in Docker: without
 *   CAP_SYS_TIME, which admission should never grant, they can only read).
 * - mbind, set_mempolicy, set_mempolicy_home_node, get_mempolicy, move_pages,
 *   migrate_pages: NUMA placement of other processes' memory.
 * - kcmp, pidfd_getfd, process_madvise, iopl, ioperm, nfsservctl, uselib,
 *   vm86, vm86old, create_module, get_kernel_syms, query_module, _sysctl,
 *   ustat, sysfs, personality with other values: debugging other processes,
 *   raw I/O ports, or obsolete interfaces nobody needs.
 * ptrace, process_vm_readv and process_vm_writev are allowed, as Docker does on
 * kernels ≥ 4.8 (where seccomp can no longer be bypassed through ptrace); they
 * reach only processes of the same container and uid.
 */
export const ALLOWED_SYSCALLS: readonly string[] = [
  'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod', 'chown', 'chown32',
  'chroot', // Docker allows it with CAP_SYS_CHROOT, which is in the default set; the kernel checks the capability.
  'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64', 'clock_gettime', 'clock_gettime64',
  'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range', 'connect', 'copy_file_range', 'creat', 'dup', 'dup2', 'dup3',
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old',
  'eventfd', 'eventfd2', 'execve', 'execveat', 'exit', 'exit_group', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64',
  'fallocate', 'fanotify_mark', 'fchdir', 'fchmod', 'fchmodat', 'fchown', 'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync',
  'fgetxattr', 'flistxattr', 'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64',
  'fsync', 'ftruncate', 'ftruncate64', 'futex', 'futex_time64', 'futex_waitv', 'futimesat', 'getcpu', 'getcwd', 'getdents',
  'getdents64', 'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32', 'getitimer',
  'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority', 'getrandom', 'getresgid', 'getresgid32', 'getresuid',
  'getresuid32', 'getrlimit', 'get_robust_list', 'getrusage', 'getsid', 'getsockname', 'getsockopt', 'get_thread_area', 'gettid',
  'gettimeofday', 'getuid', 'getuid32', 'getxattr', 'inotify_add_watch', 'inotify_init', 'inotify_init1', 'inotify_rm_watch',
  'io_cancel', 'ioctl', 'io_destroy', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64', 'ioprio_get', 'ioprio_set',
  'io_setup', 'io_submit', 'ipc', 'kill', 'landlock_add_rule', 'landlock_create_ruleset', 'landlock_restrict_self', 'lchown',
  'lchown32', 'lgetxattr', 'link', 'linkat', 'listen', 'listxattr', 'llistxattr', '_llseek', 'lremovexattr', 'lseek', 'lsetxattr',
  'lstat', 'lstat64', 'madvise', 'membarrier', 'memfd_create', 'memfd_secret', 'mincore', 'mkdir', 'mkdirat', 'mknod', 'mknodat',
  'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2', 'mprotect', 'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive',
  'mq_timedreceive_time64', 'mq_timedsend', 'mq_timedsend_time64', 'mq_unlink', 'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd',
  'msync', 'munlock', 'munlockall', 'munmap', 'name_to_handle_at', 'nanosleep', 'newfstatat', '_newselect', 'open', 'openat',
  'openat2', 'pause', 'pidfd_open', 'pidfd_send_signal', 'pipe', 'pipe2', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'poll',
  'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv', 'preadv2', 'prlimit64', 'process_mrelease', 'pselect6',
  'pselect6_time64', 'pwrite64', 'pwritev', 'pwritev2', 'read', 'readahead', 'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom',
  'recvmmsg', 'recvmmsg_time64', 'recvmsg', 'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2',
  'restart_syscall', 'rmdir', 'rseq', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn',
  'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sched_getaffinity', 'sched_getattr',
  'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler', 'sched_yield',
  'seccomp', 'select', 'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'send', 'sendfile', 'sendfile64',
  'sendmmsg', 'sendmsg', 'sendto', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32', 'setgid', 'setgid32', 'setgroups',
  'setgroups32', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32', 'setresgid', 'setresgid32', 'setresuid',
  'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'set_robust_list', 'setsid', 'setsockopt', 'set_thread_area',
  'set_tid_address', 'setuid', 'setuid32', 'setxattr', 'shmat', 'shmctl', 'shmdt', 'shmget', 'shutdown', 'sigaltstack',
  'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn', 'socketpair', 'splice', 'stat', 'stat64', 'statfs',
  'statfs64', 'statx', 'symlink', 'symlinkat', 'sync', 'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time',
  'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64',
  'timerfd_create', 'timerfd_gettime', 'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times', 'tkill', 'truncate',
  'truncate64', 'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime', 'utimensat', 'utimensat_time64', 'utimes', 'vfork',
  'vmsplice', 'wait4', 'waitid', 'waitpid', 'write', 'writev',
  // Docker allows these on kernels ≥ 4.8 (see above).
  'ptrace', 'process_vm_readv', 'process_vm_writev',
  // x86 only (the only architecture family carte runs on): TLS setup and the LDT that 16-bit/wine code uses.
  'arch_prctl', 'modify_ldt',
];

/**
 * personality(2) values Docker allows: PER_LINUX (0), PER_LINUX32 (8),
 * UNAME26 (0x20000), PER_LINUX32|UNAME26 (0x20008), and 0xffffffff (query).
 * Others (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE ...) weaken memory protections.
 */
export const ALLOWED_PERSONALITIES = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff] as const;

interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_NE' | 'SCMP_CMP_MASKED_EQ';
}

interface SeccompRule {
  names: string[];
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO';
  errnoRet?: number;
  args?: SeccompArg[];
}

export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ERRNO';
  defaultErrnoRet: number;
  architectures: string[];
  syscalls: SeccompRule[];
}

/** `linux.seccomp` of the OCI spec (runtime-spec config-linux.md#seccomp). */
export function defaultSeccompProfile(): SeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    // x86_64 and the two ABIs an x86_64 kernel also runs (32-bit x86, x32), as Docker lists them:
    // a filter without them would let a 32-bit binary make any syscall through int 0x80.
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: [...ALLOWED_SYSCALLS], action: 'SCMP_ACT_ALLOW' },
      // Threads and fork, but no new namespaces: every CLONE_NEW* bit must be 0.
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACES_MASK, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      // clone3 passes its flags in a struct seccomp cannot read: ENOSYS makes glibc fall back to clone (checked above).
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      // Every socket family but AF_VSOCK (a channel to the hypervisor when there is one). The i386
      // multiplexer socketcall(2) is not allowed at all: its family sits in memory where a filter
      // cannot look (an outside test opened AF_VSOCK through it); 32-bit programs on kernels ≥ 4.3
      // call socket(2) and friends directly.
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] },
      // One rule per value: libseccomp ORs separate rules, ANDs the args of one.
      ...ALLOWED_PERSONALITIES.map((value): SeccompRule => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] })),
    ],
  };
}
