import assert from 'node:assert/strict';
import fs from 'node:fs';
import { eventually, execOut, instance, logText, useTestHost } from '../helpers/linux.js';

describe('linux driver: isolation and limits', function () {
  this.timeout(60_000);
  const host = useTestHost();

  it('gives an instance its own pid 1, hostname, and no view of host processes', async () => {
    await host().driver.create(instance('iso-1', { command: ['sh', '-c', 'echo pid=$$; busybox hostname; exec busybox sleep 1000'] }));
    const logs = await eventually(async () => {
      const t = await logText(host(), 'iso-1');
      return t.includes('iso-1') ? t : undefined;
    }, 5000, 'log output');
    assert.equal(logs, 'stdout: pid=1\nstdout: iso-1');
    const ps = await execOut(host(), 'iso-1', ['busybox', 'ps', '-o', 'pid,args']);
    assert.equal(ps.code, 0);
    // Only the container's own processes: its sleep as pid 1, and this ps.
    const rows = ps.out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    assert.equal(rows.length, 2, ps.out);
    assert.deepEqual(rows[0], ['1', 'busybox', 'sleep', '1000']);
    assert.deepEqual(rows[1]!.slice(1, 3), ['busybox', 'ps']);
    const hostPids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).length;
    assert.ok(hostPids > 10, 'the host has many more processes');
  });

  it('writes the configured limits into the cgroup files, swap off', async () => {
    await host().driver.create(instance('lim-1', { command: ['busybox', 'sleep', '1000'], resources: { cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 32 } }));
    const cg = (controller: string, file: string) => fs.readFileSync(`/sys/fs/cgroup/${controller}${host().driver.cgroupPath('lim-1')}/${file}`, 'utf8').trim();
    assert.equal(cg('memory', 'memory.limit_in_bytes'), String(64 * 2 ** 20));
    assert.equal(cg('memory', 'memory.memsw.limit_in_bytes'), String(64 * 2 ** 20));
    assert.equal(cg('cpu', 'cpu.cfs_quota_us'), '50000');
    assert.equal(cg('cpu', 'cpu.cfs_period_us'), '100000');
    assert.equal(cg('pids', 'pids.max'), '32');
    const stats = await host().driver.stats('lim-1');
    assert.equal(stats?.memoryLimitBytes, 64 * 2 ** 20);
    assert.equal(stats?.cpuLimitMillis, 500);
    assert.ok((stats?.cpuUsageNs ?? 0) > 0);
  });

  it('reports a memory hog killed by the kernel as OOM-killed', async () => {
    await host().driver.create(instance('oom-1', {
      command: ['sh', '-c', 'x=aaaaaaaaaaaaaaaa; while true; do x="$x$x"; done'],
      resources: { cpuMillis: null, memoryBytes: 16 * 2 ** 20, pids: null },
    }));
    const observed = await eventually(async () => (await host().driver.list()).find((i) => i.name === 'oom-1' && i.state === 'exited'), 20_000, 'the hog to be killed');
    assert.equal(observed.oomKilled, true);
    assert.equal(observed.exitCode, 137);
  });

  it('keeps capabilities to Docker\'s default set and forbids new privileges', async () => {
    await host().driver.create(instance('caps-1', { command: ['busybox', 'sleep', '1000'] }));
    const status = await execOut(host(), 'caps-1', ['busybox', 'cat', '/proc/1/status']);
    const capBnd = /CapBnd:\s+([0-9a-f]+)/.exec(status.out)![1]!;
    assert.equal(BigInt(`0x${capBnd}`) & (1n << 21n), 0n, 'no CAP_SYS_ADMIN');
    assert.match(status.out, /NoNewPrivs:\s+1/);
    const write = await execOut(host(), 'caps-1', ['sh', '-c', 'echo 1 > /proc/sys/kernel/panic']);
    assert.notEqual(write.code, 0, '/proc/sys is read-only');
  });
});
