import assert from 'node:assert/strict';
import { DEFAULT_CAPABILITIES } from '../../../src/drivers/linux/capabilities.js';
import { buildSpec, parseHostRlimits, resolveArgs, resolveEnv, resolveUser, type SpecInput } from '../../../src/drivers/linux/spec.js';

const input = (over: Partial<SpecInput> = {}): SpecInput => ({
  hostname: 'web-1', args: ['/bin/sh'], env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, additionalGids: [],
  rootfs: 'rootfs', netnsPath: '/run/netns/carte0-web-1', cgroupsPath: '/carte/web-1',
  cpuMillis: null, memoryBytes: null, pids: null, binds: [], rlimits: [], annotations: {},
  capabilities: DEFAULT_CAPABILITIES, readOnlyRootfs: false, ...over,
});

describe('OCI spec', () => {
  it('isolates: namespaces, joined netns, no new privileges, masked /proc, read-only /sys', () => {
    const s = buildSpec(input()) as { process: Record<string, unknown>; linux: Record<string, unknown>; mounts: Array<{ destination: string; options: string[] }>; hostname: string };
    assert.deepEqual((s.linux.namespaces as Array<{ type: string }>).map((n) => n.type), ['pid', 'ipc', 'uts', 'mount', 'cgroup', 'network']);
    assert.deepEqual((s.linux.namespaces as Array<{ path?: string }>).at(-1)!.path, '/run/netns/carte0-web-1');
    assert.equal(s.process.noNewPrivileges, true);
    assert.deepEqual((s.process.capabilities as { bounding: string[] }).bounding, DEFAULT_CAPABILITIES);
    assert.ok(!DEFAULT_CAPABILITIES.includes('CAP_SYS_ADMIN'));
    assert.ok((s.linux.maskedPaths as string[]).includes('/proc/kcore'));
    assert.ok(s.mounts.find((m) => m.destination === '/sys')!.options.includes('ro'));
    assert.equal(s.hostname, 'web-1');
    assert.equal(s.linux.cgroupsPath, '/carte/web-1');
  });

  it('turns resources into cgroup limits with swap off', () => {
    const s = buildSpec(input({ cpuMillis: 500, memoryBytes: 128 * 2 ** 20, pids: 64 })) as { linux: { resources: Record<string, unknown> } };
    assert.deepEqual(s.linux.resources.cpu, { quota: 50_000, period: 100_000 });
    assert.deepEqual(s.linux.resources.memory, { limit: 134217728, swap: 134217728 });
    assert.deepEqual(s.linux.resources.pids, { limit: 64 });
    assert.deepEqual(Object.keys((buildSpec(input()) as { linux: { resources: object } }).linux.resources), ['devices']);
  });

  it('bind-mounts volumes read-only or read-write', () => {
    const s = buildSpec(input({ binds: [{ source: '/v/data', destination: '/data', readOnly: false }, { source: '/etc/x', destination: '/x', readOnly: true }] })) as { mounts: Array<{ destination: string; source: string; options: string[] }> };
    assert.deepEqual(s.mounts.filter((m) => m.source.startsWith('/')).map((m) => [m.destination, m.options.at(-1)]), [['/data', 'rw'], ['/x', 'ro']]);
  });

  it('takes rlimits from the host, never above its hard limit', () => {
    const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax processes             96364                96364                processes\nMax open files            1024                 20000                files\n';
    assert.deepEqual(parseHostRlimits(limits), [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 20000 }]);
  });

  it('resolves argv with Kubernetes semantics', () => {
    const image = { entrypoint: ['node'], cmd: ['server.js'] };
    assert.deepEqual(resolveArgs(image, null, null), ['node', 'server.js']);
    assert.deepEqual(resolveArgs(image, null, ['other.js']), ['node', 'other.js']);
    assert.deepEqual(resolveArgs(image, ['sh', '-c', 'x'], null), ['sh', '-c', 'x']);
    assert.deepEqual(resolveArgs(image, ['sh'], ['-c', 'y']), ['sh', '-c', 'y']);
  });

  it('overlays manifest env on image env', () => {
    assert.deepEqual(resolveEnv(['A=1', 'PATH=/x'], { A: '2', B: '3' }, 'web-1'), ['PATH=/x', 'A=2', 'HOSTNAME=web-1', 'B=3']);
  });

  it('resolves users by id or by name from the image', () => {
    const passwd = 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n';
    const group = 'root:x:0:\nstaff:x:50:\n';
    assert.deepEqual(resolveUser(null, null, null), { uid: 0, gid: 0 });
    assert.deepEqual(resolveUser('1000', passwd, group), { uid: 1000, gid: 1001 });
    assert.deepEqual(resolveUser('2000:3000', null, null), { uid: 2000, gid: 3000 });
    assert.deepEqual(resolveUser('app:staff', passwd, group), { uid: 1000, gid: 50 });
    assert.deepEqual(resolveUser('nobody', passwd, group), { error: 'user "nobody" is not in the image\'s /etc/passwd (use a numeric uid)' });
  });
});
