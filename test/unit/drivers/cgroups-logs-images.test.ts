import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { detectLayout, readStats } from '../../../src/drivers/linux/cgroups.js';
import { parseLdd } from '../../../src/drivers/linux/images/host-binary.js';
import { parseIgnore } from '../../../src/drivers/linux/images/ignore.js';
import { normalizeRef, treeDigest } from '../../../src/drivers/linux/images/store.js';
import { parseK8sLog } from '../../../src/drivers/linux/logs.js';
import { parseNetDev } from '../../../src/drivers/linux/netdev.js';
import { tempDir } from '../../helpers/paths.js';

function writeTree(root: string, files: Record<string, string>) {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
}

describe('cgroup readings (fake cgroup trees, no root)', () => {
  let root: string;
  beforeEach(() => (root = tempDir()));
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('reads cgroup v1: cpuacct, memory working set, cfs quota, pids', async () => {
    writeTree(root, {
      'memory/memory.limit_in_bytes': '9223372036854771712\n',
      'cpuacct/carte/a/cpuacct.usage': '1500000000\n',
      'cpu/carte/a/cpu.cfs_quota_us': '50000\n',
      'cpu/carte/a/cpu.cfs_period_us': '100000\n',
      'memory/carte/a/memory.usage_in_bytes': '10485760\n',
      'memory/carte/a/memory.limit_in_bytes': '134217728\n',
      'memory/carte/a/memory.stat': 'cache 4194304\ntotal_inactive_file 2097152\n',
      'pids/carte/a/pids.current': '3\n',
      'cpu/carte/a/cpu.stat': 'nr_periods 40\nnr_throttled 7\nthrottled_time 350000000\n',
      'blkio/carte/a/blkio.throttle.io_service_bytes': '8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:16 Read 100\n8:16 Write 0\nTotal 12388\n',
    });
    assert.equal(detectLayout(root), 'v1');
    assert.deepEqual(await readStats('/carte/a', 'v1', root, 42), {
      cpuUsageNs: 1_500_000_000, memoryUsageBytes: 10485760, memoryWorkingSetBytes: 8388608,
      memoryLimitBytes: 134217728, cpuLimitMillis: 500, pids: 3,
      cpuPeriods: 40, cpuThrottledPeriods: 7, cpuThrottledNs: 350_000_000, blkReadBytes: 4196, blkWriteBytes: 8192, net: null, at: 42,
    });
  });

  it('reads cgroup v2: cpu.stat, memory.current, cpu.max "max"', async () => {
    writeTree(root, {
      'cgroup.controllers': 'cpu memory pids\n',
      'carte/a/cpu.stat': 'usage_usec 2000\nuser_usec 1500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 1500\n',
      'carte/a/io.stat': '8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n',
      'carte/a/cpu.max': 'max 100000\n',
      'carte/a/memory.current': '5000000\n',
      'carte/a/memory.max': 'max\n',
      'carte/a/memory.stat': 'anon 1\ninactive_file 1000000\n',
      'carte/a/pids.current': '1\n',
    });
    assert.equal(detectLayout(root), 'v2');
    assert.deepEqual(await readStats('/carte/a', 'v2', root, 7), {
      cpuUsageNs: 2_000_000, memoryUsageBytes: 5_000_000, memoryWorkingSetBytes: 4_000_000,
      memoryLimitBytes: null, cpuLimitMillis: null, pids: 1,
      cpuPeriods: 10, cpuThrottledPeriods: 2, cpuThrottledNs: 1_500_000, blkReadBytes: 101, blkWriteBytes: 202, net: null, at: 7,
    });
  });

  it('reads /proc/<pid>/net/dev: every interface but lo, summed', () => {
    const text = 'Inter-|   Receive                                                |  Transmit\n'
      + ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n'
      + '    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n'
      + '  eth0: 2000 20 0 0 0 0 0 0 500 5 0 0 0 0 0 0\n'
      + '  eth1: 1 1 0 0 0 0 0 0 2 2 0 0 0 0 0 0\n';
    assert.deepEqual(parseNetDev(text), { rxBytes: 2001, rxPackets: 21, txBytes: 502, txPackets: 7 });
  });

  it('a vanished cgroup reads as null, not an error', async () => {
    assert.equal(await readStats('/carte/gone', 'v1', root), null);
    assert.equal(await readStats('/carte/gone', 'v2', root), null);
  });
});

describe('log, ldd and ignore parsing', () => {
  it('parses the k8s log format and joins partial lines', () => {
    const text = '2026-01-01T00:00:00.1Z stdout P hel\n2026-01-01T00:00:00.2Z stderr F oops\n2026-01-01T00:00:00.3Z stdout F lo\n2026-01-01T00:00:00.4Z stdout F \ngarbage\n';
    assert.deepEqual(parseK8sLog(text), [
      { time: '2026-01-01T00:00:00.2Z', stream: 'stderr', text: 'oops' },
      { time: '2026-01-01T00:00:00.1Z', stream: 'stdout', text: 'hello' },
      { time: '2026-01-01T00:00:00.4Z', stream: 'stdout', text: '' },
    ]);
  });

  it('reads shared libraries from ldd output', () => {
    const out = '\tlinux-vdso.so.1 (0x00007ffd)\n\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f1)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n';
    assert.deepEqual(parseLdd(out), ['/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });

  it('applies .carteignore like .dockerignore, last match wins', () => {
    const ignored = parseIgnore('# comment\nnode_modules\n*.log\n!keep.log\n/dist/\n');
    assert.deepEqual(['node_modules', 'node_modules/x/y.js', 'a.log', 'keep.log', 'dist/app.js', 'src/app.js'].map(ignored), [true, true, true, false, true, false]);
  });
});

describe('image store pieces', () => {
  it('digests a tree by content and mode, not by mtime', async () => {
    const a = tempDir();
    const b = tempDir();
    try {
      writeTree(a, { 'bin/x': 'hello', 'etc/y': 'z' });
      writeTree(b, { 'etc/y': 'z', 'bin/x': 'hello' });
      fs.utimesSync(path.join(b, 'bin/x'), 1000, 1000);
      const da = await treeDigest(a);
      assert.deepEqual(await treeDigest(b), da);
      assert.equal(da.size, 6);
      fs.chmodSync(path.join(b, 'bin/x'), 0o755);
      assert.notEqual((await treeDigest(b)).digest, da.digest);
    } finally {
      fs.rmSync(a, { recursive: true, force: true });
      fs.rmSync(b, { recursive: true, force: true });
    }
  });

  it('normalizes image references', () => {
    assert.equal(normalizeRef('busybox'), 'busybox:latest');
    assert.equal(normalizeRef('metaverse/login:1.0'), 'metaverse/login:1.0');
    assert.throws(() => normalizeRef('Bad Name'), { message: '"Bad Name" is not a valid image name (use e.g. metaverse/login:1.0)' });
  });
});
