// The policy's disk.reserve: no instance is created while the filesystem
// holding CARTE_HOME has less free space, and a refused create leaves nothing.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

  it('fails a build step whose files leave less than the reserve free, naming the step; nothing of it is kept', async () => {
    const h = host();
    const space = spaceOf(h.home)!;
    const strict = new LinuxDriver({ home: h.home, log: cliLogger('silent'), bridge: h.bridge, subnet: h.subnet, cgroupParent: h.cgroupParent, diskReserveBytes: space.freeBytes * 4 });
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'carte-reserve-'));
    const layersBefore = fs.readdirSync(strict.images.layersDir).sort();
    try {
      fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM test/busybox:1\nRUN busybox dd if=/dev/zero of=/big bs=1M count=4\n');
      await assert.rejects(strict.builder.build({ context: ctx, tag: 'test/big:1' }), (e: Error) => {
        assert.match(e.message, /Cartefile:2: RUN busybox dd if=\/dev\/zero of=\/big bs=1M count=4: only \S+ is left free on .* \(holding CARTE_HOME\) after this step, below the server policy's disk reserve of \S+; its files are not kept$/);
        return true;
      });
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
    assert.deepEqual(fs.readdirSync(strict.images.layersDir).sort(), layersBefore, 'no layer stored');
    assert.deepEqual(fs.readdirSync(path.join(h.home, 'builds')).filter((f) => f !== '.runc'), [], 'no build folder left');
  });
});
