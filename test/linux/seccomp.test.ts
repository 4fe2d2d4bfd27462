// The default seccomp profile: on every container's processes and on every
// `runc exec` into it, whatever capabilities the instance was given.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildImage, buildProbeImage, eventually, execOut, instance, logText, useTestHost } from '../helpers/linux.js';
import { ROOT, tempDir } from '../helpers/paths.js';

const SLEEP = ['busybox', 'sleep', '1000'];
const PROBES = ['keyctl', 'add_key', 'bpf', 'perf_event_open', 'vsock-socket', 'unshare-user', 'unshare-mount', 'mount-tmpfs', 'clone3', 'personality-no-aslr', 'fork', 'tcp-socket'];
// What each probe gets inside: EPERM from the filter for the blocked ones (clone3: ENOSYS, so libc falls back to clone).
const INSIDE = [
  'keyctl: Operation not permitted', 'add_key: Operation not permitted', 'bpf: Operation not permitted',
  'perf_event_open: Operation not permitted', 'vsock-socket: Operation not permitted', 'unshare-user: Operation not permitted',
  'unshare-mount: Operation not permitted', 'mount-tmpfs: Operation not permitted', 'clone3: Function not implemented',
  'personality-no-aslr: Operation not permitted', 'fork: ok', 'tcp-socket: ok',
].join('\n') + '\n';

describe('linux driver: the default seccomp profile', function () {
  this.timeout(120_000);
  const host = useTestHost();
  before(async () => buildProbeImage(host(), 'test/probe:1'));

  it('the probe itself gets past each syscall on the host (so an EPERM inside comes from the filter)', () => {
    // Only harmless probes on the host: no mount, no key added to this session.
    const dir = tempDir('carte-probe-host-');
    try {
      execFileSync('gcc', ['-static', '-O1', '-o', path.join(dir, 'probe'), path.join(ROOT, 'test', 'linux', 'fixtures', 'syscall-probe.c')]);
      const out = execFileSync(path.join(dir, 'probe'), ['keyctl', 'bpf', 'perf_event_open', 'unshare-user', 'clone3', 'fork']).toString();
      assert.equal(out, 'keyctl: ok\nbpf: Invalid argument\nperf_event_open: Bad address\nunshare-user: ok\nclone3: Invalid argument\nfork: ok\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('blocks namespaces, mounts, keyrings, bpf and perf in the container\'s own processes', async () => {
    await host().driver.create(instance('sc-main-1', { image: 'test/probe:1', command: ['/bin/probe', ...PROBES] }));
    const logs = await eventually(async () => {
      const t = await logText(host(), 'sc-main-1');
      return t.split('\n').length >= PROBES.length ? t : undefined;
    }, 10_000, 'the probe output');
    assert.equal(logs + '\n', INSIDE.split('\n').filter(Boolean).map((l) => `stdout: ${l}`).join('\n') + '\n');
  });

  it('applies to `runc exec` too', async () => {
    await host().driver.create(instance('sc-exec-1', { image: 'test/probe:1', command: SLEEP }));
    assert.deepEqual(await execOut(host(), 'sc-exec-1', ['/bin/probe', ...PROBES]), { code: 0, out: INSIDE });
    const status = await execOut(host(), 'sc-exec-1', ['busybox', 'grep', '-E', '^(Seccomp|NoNewPrivs)', '/proc/self/status']);
    assert.deepEqual(status, { code: 0, out: 'NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n' });
    // busybox's own applets: unshare -U / -r and mount.
    assert.deepEqual(await execOut(host(), 'sc-exec-1', ['busybox', 'unshare', '-U', 'true']), { code: 1, out: 'unshare: unshare(0x10000000): Operation not permitted\n' });
    assert.deepEqual(await execOut(host(), 'sc-exec-1', ['busybox', 'unshare', '-r', 'true']), { code: 1, out: 'unshare: unshare(0x10000000): Operation not permitted\n' });
  });

  it('still blocks mount and unshare when CAP_SYS_ADMIN is added', async () => {
    await host().driver.create(instance('sc-admin-1', { image: 'test/probe:1', command: SLEEP, security: { capAdd: ['SYS_ADMIN'] } }));
    const status = await execOut(host(), 'sc-admin-1', ['busybox', 'cat', '/proc/self/status']);
    const capEff = BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec(status.out)![1]!}`);
    assert.equal(capEff & (1n << 21n), 1n << 21n, 'CAP_SYS_ADMIN is there');
    assert.deepEqual(await execOut(host(), 'sc-admin-1', ['/bin/probe', 'mount-tmpfs', 'unshare-mount', 'unshare-user']), {
      code: 0, out: 'mount-tmpfs: Operation not permitted\nunshare-mount: Operation not permitted\nunshare-user: Operation not permitted\n',
    });
    const mount = await execOut(host(), 'sc-admin-1', ['busybox', 'mount', '-t', 'tmpfs', 'none', '/mnt']);
    assert.deepEqual(mount, { code: 1, out: 'mount: permission denied (are you root?)\n' });
  });

  it('lets ordinary programs run: a shell, ls, and node with a worker thread and a server', async () => {
    await host().driver.create(instance('sc-plain-1', { command: SLEEP }));
    assert.deepEqual(await execOut(host(), 'sc-plain-1', ['sh', '-c', 'busybox mkdir -p /work && cd /work && echo hi > f && busybox ls -l f | busybox cut -c1-10 && busybox cat f']), {
      code: 0, out: '-rw-r--r--\nhi\n',
    });
    await buildImage(host(), 'test/node:1', 'FROM scratch\nCOPY --from=host /usr/bin/node /usr/bin/node\nCMD ["node"]\n');
    const script = [
      "const { Worker } = require('node:worker_threads');",
      "const w = new Worker('require(\"node:worker_threads\").parentPort.postMessage(6 * 7)', { eval: true });",
      "w.on('message', (n) => console.log('worker says', n));",
      "w.on('exit', () => require('node:http').createServer().listen(8080, function () { console.log('listening'); this.close(); }));",
    ].join('\n');
    await host().driver.create(instance('sc-node-1', { image: 'test/node:1', command: ['node', '-e', script] }));
    const logs = await eventually(async () => {
      const t = await logText(host(), 'sc-node-1');
      return t.includes('listening') ? t : undefined;
    }, 20_000, 'node to start');
    assert.equal(logs, 'stdout: worker says 42\nstdout: listening');
  });
});
