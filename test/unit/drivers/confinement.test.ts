import assert from 'node:assert/strict';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, resolveCapabilities } from '../../../src/drivers/linux/capabilities.js';
import { ALLOWED_SYSCALLS, defaultSeccompProfile } from '../../../src/drivers/linux/seccomp.js';
import { buildSpec, type SpecInput } from '../../../src/drivers/linux/spec.js';

const input = (over: Partial<SpecInput> = {}): SpecInput => ({
  hostname: 'web-1', args: ['/bin/sh'], env: [], cwd: '/', uid: 0, gid: 0, additionalGids: [],
  rootfs: 'rootfs', netnsPath: '/run/netns/carte0-web-1', cgroupsPath: '/carte/web-1',
  cpuMillis: null, memoryBytes: null, pids: null, binds: [], rlimits: [], annotations: {}, ...over,
});

describe('seccomp profile', () => {
  const profile = defaultSeccompProfile();

  it('refuses with EPERM what it does not list, on x86_64 and its 32-bit ABIs', () => {
    assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(profile.defaultErrnoRet, 1);
    assert.deepEqual(profile.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  });

  it('leaves out namespaces, mounts, keyrings, bpf, perf, modules, kexec, the clock and NUMA policy', () => {
    const allowed = new Set(profile.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names));
    for (const name of [
      'unshare', 'setns', 'mount', 'umount2', 'pivot_root', 'fsopen', 'open_tree', 'move_mount', 'keyctl', 'add_key', 'request_key',
      'bpf', 'perf_event_open', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'open_by_handle_at',
      'userfaultfd', 'swapon', 'swapoff', 'reboot', 'settimeofday', 'clock_settime', 'acct', 'quotactl', 'lookup_dcookie', 'mbind',
      'set_mempolicy', 'move_pages', 'io_uring_setup', 'sethostname', 'syslog', 'iopl', 'kcmp',
    ]) assert.ok(!allowed.has(name), `${name} must not be allowed`);
    for (const name of ['read', 'write', 'execve', 'futex', 'epoll_wait', 'ptrace', 'chroot', 'arch_prctl']) assert.ok(allowed.has(name), name);
    assert.equal(new Set(ALLOWED_SYSCALLS).size, ALLOWED_SYSCALLS.length, 'no name twice');
  });

  it('allows clone only without namespace flags, answers clone3 with ENOSYS, and refuses AF_VSOCK sockets', () => {
    const rule = (name: string) => profile.syscalls.filter((r) => r.names.includes(name));
    // Docker's mask: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
    assert.deepEqual(rule('clone'), [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
    assert.deepEqual(rule('clone3'), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
    assert.deepEqual(rule('socket'), [{ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_NE' }] }]);
    // socketcall(2) would carry AF_VSOCK past the filter (the family is in memory): not allowed at all.
    assert.deepEqual(rule('socketcall'), []);
    assert.equal(ALLOWED_SYSCALLS.includes('socketcall'), false);
    assert.deepEqual(rule('personality').map((r) => r.args![0]!.value), [0, 8, 0x20000, 0x20008, 0xffffffff]);
  });
});

describe('capabilities', () => {
  it('defaults to Docker\'s set without NET_RAW', () => {
    assert.deepEqual(resolveCapabilities('web-1'), DEFAULT_CAPABILITIES);
    assert.ok(!DEFAULT_CAPABILITIES.includes('CAP_NET_RAW'));
    assert.equal(DEFAULT_CAPABILITIES.length, 13);
  });

  it('drops, then adds; accepts ALL, either case and the CAP_ prefix', () => {
    assert.deepEqual(resolveCapabilities('web-1', ['NET_BIND_SERVICE'], ['ALL']), ['CAP_NET_BIND_SERVICE']);
    assert.deepEqual(resolveCapabilities('web-1', [], ['all']), []);
    assert.deepEqual(resolveCapabilities('web-1', ['ALL'], []), [...ALL_CAPABILITIES]);
    assert.deepEqual(resolveCapabilities('web-1', ['cap_net_raw', 'KILL'], ['KILL', 'chown']), [
      'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
      'CAP_NET_RAW', 'CAP_SYS_CHROOT', 'CAP_MKNOD', 'CAP_AUDIT_WRITE', 'CAP_SETFCAP',
    ]);
  });

  it('refuses a name that is not a capability', () => {
    assert.throws(() => resolveCapabilities('web-1', [], ['SYS_WIZARD']), {
      message: 'failed to set the capabilities of instance web-1: capDrop names "SYS_WIZARD", which is not a Linux capability (use a name from capabilities(7) without the CAP_ prefix, e.g. NET_BIND_SERVICE, or ALL)',
    });
  });
});

describe('OCI spec: confinement', () => {
  type Spec = { process: { capabilities: Record<string, string[]> }; root: { readonly: boolean }; mounts: Array<{ destination: string; type: string; options: string[] }>; linux: Record<string, unknown> };

  it('always has the seccomp profile, the ping sysctl, and the capabilities it is given', () => {
    const s = buildSpec(input({ capabilities: ['CAP_KILL'] })) as Spec;
    assert.deepEqual(s.linux.seccomp, defaultSeccompProfile());
    assert.deepEqual(s.linux.sysctl, { 'net.ipv4.ping_group_range': '0 2147483647' });
    assert.deepEqual(s.process.capabilities, { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] });
    assert.deepEqual((buildSpec(input()) as Spec).process.capabilities.bounding, DEFAULT_CAPABILITIES);
  });

  it('makes a read-only rootfs with tmpfs /tmp, /var/tmp and /run under the volumes', () => {
    const rw = buildSpec(input()) as Spec;
    assert.equal(rw.root.readonly, false);
    assert.ok(!rw.mounts.some((m) => m.destination === '/tmp'));
    const ro = buildSpec(input({ readOnlyRootfs: true, binds: [{ source: '/v/run-data', destination: '/run/data', readOnly: false }] })) as Spec;
    assert.equal(ro.root.readonly, true);
    assert.deepEqual(ro.mounts.slice(-4).map((m) => [m.destination, m.type]), [['/tmp', 'tmpfs'], ['/var/tmp', 'tmpfs'], ['/run', 'tmpfs'], ['/run/data', 'bind']]);
  });
});
