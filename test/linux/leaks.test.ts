import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BRIDGE_GONE, bridgeTraces, CLEAN, instance, traces, useTestHost } from '../helpers/linux.js';

describe('linux driver: cleanup leaves nothing behind', function () {
  this.timeout(300_000);
  const host = useTestHost();

  it('creates and removes 100 instances: no mounts, netns, veths, cgroups, runc states or leases remain', async () => {
    // With the gateway's namespace on the bridge too: its veth is the bridge's, not an instance's.
    await host().driver.setServiceAddresses([host().driver.serviceAddress(1)!]);
    const names = Array.from({ length: 100 }, (_, i) => `leak-${i + 1}`);
    for (let i = 0; i < names.length; i += 10) {
      await Promise.all(names.slice(i, i + 10).map((n) => host().driver.create(instance(n, { command: ['busybox', 'sleep', '1000'], resources: { cpuMillis: 100, memoryBytes: 16 * 2 ** 20, pids: 16 } }))));
    }
    const busy = traces(host());
    assert.equal(busy.netns.length, 100);
    assert.equal(busy.leases.length, 100);
    assert.equal(busy.veths.length, 100);
    for (let i = 0; i < names.length; i += 10) {
      const reports = await Promise.all(names.slice(i, i + 10).map((n) => host().driver.remove(n)));
      assert.deepEqual(reports.flatMap((r) => r.failures), []);
    }
    assert.deepEqual(traces(host()), CLEAN);
  });

  it('gc removes what a crashed carte left half-made, and keeps whole instances', async () => {
    for (const n of ['orphan-1', 'lost-1', 'keep-1']) await host().driver.create(instance(n, { command: ['busybox', 'sleep', '1000'] }));
    // A crash before the record was written: container, mount, netns and lease exist, the record does not.
    fs.rmSync(path.join(host().home, 'instances', 'orphan-1', 'instance.json'));
    // Removed by hand with runc: the record is left, the container is not.
    execFileSync(host().driver.runtime.path, ['--root', host().driver.runtime.root, 'delete', '--force', 'lost-1']);
    const report = await host().driver.gc();
    assert.deepEqual(report.failures, []);
    assert.deepEqual((await host().driver.list()).map((i) => [i.name, i.state]), [['keep-1', 'running']]);
    // With a keep set, instances outside it go too.
    await host().driver.gc({ keep: new Set() });
    assert.deepEqual(traces(host()), CLEAN);
  });

  it('removing the bridge removes the gateway\'s namespace, its veth and its binder, and service addresses an older carte left on lo', async () => {
    const d = host().driver;
    await d.setServiceAddresses([d.serviceAddress(1)!, d.serviceAddress(2)!]);
    const server = await d.serviceSockets.tcp(d.serviceAddress(1)!, 7777, (s) => s.destroy());
    // An older carte's service address on the host's lo, under its label.
    execFileSync('ip', ['addr', 'add', `${d.serviceAddress(3)}/32`, 'dev', 'lo', 'label', d.network.legacyServiceLabel]);
    const { bridge, gatewayNetns, gatewayVeth, processesInNetns, loAddresses } = bridgeTraces(host());
    assert.deepEqual({ bridge, gatewayNetns, gatewayVeth, processesInNetns, loAddresses }, { bridge: true, gatewayNetns: [`carte-gw-${host().bridge}`], gatewayVeth: true, processesInNetns: 1, loAddresses: [d.serviceAddress(3)] });
    // The daemon's sockets keep the namespace alive after `ip netns delete`: removeBridge takes the veth all the same.
    await d.network.removeBridge();
    await d.serviceSockets.close();
    server.close();
    assert.deepEqual(bridgeTraces(host()), BRIDGE_GONE);
  });
});
