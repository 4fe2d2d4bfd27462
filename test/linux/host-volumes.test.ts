// Host folders are checked again when an instance is created (every time):
// only by their real path, never a refused place, writable only on a
// nosuid,nodev filesystem. An outside test swapped an admitted folder for a
// link to /root after admission; this is the driver's "no".
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { mountOptionsOf } from '../../src/drivers/linux/host-volumes.js';
import { CLEAN, execOut, instance, traces, useTestHost } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

describe('linux driver: host-path volumes at mount time', function () {
  this.timeout(60_000);
  const host = useTestHost();
  let dir: string;
  let safe: string;
  before(() => {
    dir = tempDir('carte-hostvol-');
    safe = path.join(dir, 'safe');
    fs.mkdirSync(safe);
    // A folder on a filesystem that ignores setuid bits and device files, as the test's own tmpfs.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m,nosuid,nodev', 'carte-test', safe]);
  });
  after(() => {
    if (safe) execFileSync('umount', [safe]);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  const vol = (hostPath: string, readOnly: boolean) => [{ kind: 'host' as const, hostPath, mountPath: '/h', readOnly }];
  const refused = async (name: string, hostPath: string, readOnly: boolean, message: string) => {
    await assert.rejects(host().driver.create(instance(name, { command: ['busybox', 'sleep', '100'], volumes: vol(hostPath, readOnly) })), (e: Error) => {
      assert.equal(e.message, message);
      return true;
    });
  };

  it('refuses a folder swapped for a link after admission (here: to /root), and leaves nothing', async () => {
    const swapped = path.join(dir, 'data');
    fs.symlinkSync('/root', swapped);
    await refused('swap-1', swapped, true, `failed to mount a volume into swap-1: host path ${swapped} leads to /root through a symbolic link; carte mounts host folders only by their real path (write the real path in the manifest, if the server policy allows it)`);
    assert.deepEqual(traces(host()), CLEAN);
  });

  it('refuses a refused place given by its real path, and a writable folder whose filesystem allows setuid programs', async () => {
    await refused('etc-1', '/etc', true, 'failed to mount a volume into etc-1: host path /etc is never mounted into a container: it is /etc (a system folder)');
    const plain = tempDir('carte-hostvol-plain-');
    try {
      const { mount } = mountOptionsOf(plain);
      await refused('rw-1', plain, false, `failed to mount a volume into rw-1: host path ${plain} would be writable, but its filesystem (mounted at ${mount}) is not nosuid,nodev: a program made setuid-root or a device file left there by a container would be any local user's way to root (mount it with nosuid,nodev (e.g. "mount --bind ${plain} ${plain} && mount -o remount,bind,nosuid,nodev ${plain}"), or make the volume read-only)`);
      // Read-only it is fine.
      await host().driver.create(instance('ro-1', { command: ['busybox', 'sleep', '100'], volumes: vol(plain, true) }));
      assert.deepEqual((await host().driver.remove('ro-1')).failures, []);
    } finally {
      fs.rmSync(plain, { recursive: true, force: true });
    }
    assert.deepEqual(traces(host()), CLEAN);
  });

  it('mounts a writable folder on a nosuid,nodev filesystem, by its real path', async () => {
    await host().driver.create(instance('rw-2', { command: ['busybox', 'sleep', '100'], volumes: vol(safe, false) }));
    try {
      const r = await execOut(host(), 'rw-2', ['sh', '-c', 'echo hello > /h/note && busybox cat /h/note']);
      assert.deepEqual(r, { code: 0, out: 'hello\n' });
      assert.equal(fs.readFileSync(path.join(safe, 'note'), 'utf8'), 'hello\n');
    } finally {
      await host().driver.remove('rw-2');
    }
  });
});
