// The policy's disk.reserve: no instance is created while the filesystem
// holding CARTE_HOME has less free space, and a refused create leaves nothing.
import assert from 'node:assert/strict';
import { LinuxDriver } from '../../src/drivers/linux/driver.js';
import { cliLogger } from '../../src/log.js';
import { spaceOf } from '../../src/util/disk.js';
import { CLEAN, instance, traces, useTestHost } from '../helpers/linux.js';

describe('linux driver: disk reserve', function () {
  this.timeout(60_000);
  const host = useTestHost();

  it('refuses a create when free space is below the reserve, with the numbers and what to do; creates above it', async () => {
    const h = host();
    const space = spaceOf(h.home)!;
    const strict = new LinuxDriver({ home: h.home, log: cliLogger('silent'), bridge: h.bridge, subnet: h.subnet, cgroupParent: h.cgroupParent, diskReserveBytes: space.freeBytes * 4 });
    await assert.rejects(strict.create(instance('full-1', { command: ['busybox', 'sleep', '100'] })), (e: Error) => {
      assert.match(e.message, new RegExp(`^failed to create instance full-1: only \\S+ free on ${space.mount.replace(/[/.]/g, '\\$&')} \\(holding CARTE_HOME\\), below the server policy's disk reserve of \\S+ \\(free some space: "carte gc" removes unused images and layers\\)$`));
      return true;
    });
    assert.deepEqual(traces(h), CLEAN);
    const lenient = new LinuxDriver({ home: h.home, log: cliLogger('silent'), bridge: h.bridge, subnet: h.subnet, cgroupParent: h.cgroupParent, diskReserveBytes: 1 });
    const made = await lenient.create(instance('room-1', { command: ['busybox', 'sleep', '100'] }));
    assert.equal(made.state, 'running');
    assert.deepEqual((await lenient.remove('room-1')).failures, []);
  });
});
