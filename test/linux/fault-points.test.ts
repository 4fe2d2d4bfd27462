// kill -9 at every step: a carte killed between any two steps of create or
// remove leaves nothing that gc cannot clean, and a create killed halfway
// does not block a later create under the same name.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FAULT_POINTS } from '../../src/drivers/linux/driver.js';
import { CLEAN, instance, traces, useTestHost } from '../helpers/linux.js';

const CHILD = fileURLToPath(new URL('../helpers/driver-child.js', import.meta.url));

describe('linux driver: killed at a fault point', function () {
  this.timeout(300_000);
  const host = useTestHost();

  it('knows the points of create and of remove', () => {
    assert.deepEqual(FAULT_POINTS, [
      'create:record-written', 'create:bundle-and-netns', 'create:container-created', 'create:firewall-set', 'create:started',
      'remove:stopped', 'remove:runtime-deleted', 'remove:monitor-ended', 'remove:network-released', 'remove:unmounted', 'remove:cgroup-removed',
    ]);
  });

  for (const point of FAULT_POINTS) {
    it(`cleans up after a SIGKILL at ${point}`, async () => {
      const name = `fault-${FAULT_POINTS.indexOf(point) + 1}`;
      const opts = { home: host().home, bridge: host().bridge, subnet: host().subnet, cgroupParent: host().cgroupParent };
      const spec = instance(name, { command: ['busybox', 'sleep', '1000'] });
      const child = spawn(process.execPath, [CHILD, JSON.stringify(opts), JSON.stringify(spec), point.startsWith('remove:') ? 'remove' : 'wait'], {
        stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CARTE_FAULT_POINT: point },
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const signal = await new Promise((r) => child.on('exit', (_code, sig) => r(sig)));
      assert.equal(signal, 'SIGKILL', `the child died by SIGKILL at ${point} (output: ${out.trim()})`);
      assert.equal(out.includes('removed'), false);
      assert.deepEqual((await host().driver.gc({ keep: new Set() })).failures, []);
      assert.deepEqual(traces(host()), CLEAN);
      if (point.startsWith('create:')) {
        assert.equal((await host().driver.create(spec)).state, 'running');
        assert.deepEqual((await host().driver.remove(name)).failures, []);
        assert.deepEqual(traces(host()), CLEAN);
      }
    });
  }
});
