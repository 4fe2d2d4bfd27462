// Instance counters from the Linux driver, read while real containers run:
// bytes an instance sends show in its network counters (its own namespace,
// not the host's), CPU it burns shows in its CPU time, its CPU limit in its
// throttling counters.
import assert from 'node:assert/strict';
import { eventually, execOut, instance, useTestHost } from '../helpers/linux.js';

describe('linux driver: stats', function () {
  this.timeout(60_000);
  const host = useTestHost();

  it('counts bytes an instance sends in its own tx counters, and what it receives in rx', async () => {
    // The server holds a 300 kB file in its /dev/shm; the client fetches it over the instances' network.
    const server = await host().driver.create(instance('serve-1', {
      command: ['sh', '-c', 'busybox dd if=/dev/zero of=/dev/shm/f bs=1000 count=300 2>/dev/null && exec busybox httpd -f -p 8000 -h /dev/shm'],
    }));
    await host().driver.create(instance('fetch-1', { command: ['busybox', 'sleep', '1000'] }));
    const before = { server: (await host().driver.stats('serve-1'))!.net!, client: (await host().driver.stats('fetch-1'))!.net! };
    const got = await eventually(async () => {
      const r = await execOut(host(), 'fetch-1', ['busybox', 'wget', '-q', '-O', '/dev/null', `http://${server.ip}:8000/f`]);
      return r.code === 0 ? r : undefined;
    }, 10_000, 'the file to be fetched');
    assert.equal(got.out, '');
    const after = { server: (await host().driver.stats('serve-1'))!.net!, client: (await host().driver.stats('fetch-1'))!.net! };
    const sent = after.server.txBytes - before.server.txBytes;
    const received = after.client.rxBytes - before.client.rxBytes;
    assert.ok(sent >= 300_000 && sent < 330_000, `the server's tx grew by ${sent} bytes`);
    assert.ok(received >= 300_000 && received < 330_000, `the client's rx grew by ${received} bytes`);
    assert.ok(after.server.txPackets > before.server.txPackets && after.client.rxPackets > before.client.rxPackets);
    // The client sent only its request and acks.
    assert.ok(after.client.txBytes - before.client.txBytes < 20_000);
  });

  it('shows CPU a burner uses, and its throttling under a limit', async () => {
    await host().driver.create(instance('burn-1', { command: ['sh', '-c', 'while :; do :; done'], resources: { cpuMillis: 200, memoryBytes: null, pids: null } }));
    const first = (await host().driver.stats('burn-1'))!;
    const later = await eventually(async () => {
      const s = (await host().driver.stats('burn-1'))!;
      return s.cpuUsageNs - first.cpuUsageNs > 200_000_000 ? s : undefined;
    }, 20_000, '0.2 s of CPU used');
    assert.ok(later.cpuPeriods! > first.cpuPeriods!, 'CFS periods counted');
    assert.ok(later.cpuThrottledPeriods! > 0, 'throttled at 200m');
    assert.ok(later.cpuThrottledNs! > 0);
    assert.ok(later.blkReadBytes !== null && later.blkWriteBytes !== null, 'block I/O counters read');
  });
});
