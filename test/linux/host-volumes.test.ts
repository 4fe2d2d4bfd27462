// Host folders are checked again when an instance is created (every time):
// only by their real path, never a refused place, writable only on a
// nosuid,nodev filesystem. An outside test swapped an admitted folder for a
// link to /root after admission; this is the driver's "no". And what is
// mounted is what was checked: a swap after the check changes nothing (issue 13).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST_VOLUME_PINNED, STAGING_FOLDER, mountById, mountIdOf } from '../../src/drivers/linux/host-volumes.js';
import { onFaultPoint } from '../../src/util/fault.js';
import { CLEAN, execOut, instance, traces, useTestHost } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

const CHILD = fileURLToPath(new URL('../helpers/driver-child.js', import.meta.url));

/** The mount point of the mount holding folder `p`. */
function mountPointOf(p: string): string {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    return mountById(mountIdOf(fd))!.mount;
  } finally {
    fs.closeSync(fd);
  }
}

/** Staging mounts (host volumes mounted by carte for runc) of this test host still in the host's namespace. */
function stagingMounts(home: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${home}/`) && m.includes(`/${STAGING_FOLDER}/`));
}

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
      const mount = mountPointOf(plain);
      await refused('rw-1', plain, false, `failed to mount a volume into rw-1: host path ${plain} would be writable, but its filesystem (mounted at ${mount}) is not nosuid,nodev: a program made setuid-root or a device file left there by a container would be any local user's way to root (mount it with nosuid,nodev (e.g. "mount --bind ${plain} ${plain} && mount -o remount,bind,nosuid,nodev ${plain}"), or make the volume read-only)`);
      // Read-only it is fine: visible, not writable.
      fs.writeFileSync(path.join(plain, 'note'), 'from the host\n');
      await host().driver.create(instance('ro-1', { command: ['busybox', 'sleep', '100'], volumes: vol(plain, true) }));
      try {
        assert.deepEqual(await execOut(host(), 'ro-1', ['busybox', 'cat', '/h/note']), { code: 0, out: 'from the host\n' });
        assert.notEqual((await execOut(host(), 'ro-1', ['sh', '-c', 'echo x > /h/new'])).code, 0, 'read-only');
        assert.equal(fs.existsSync(path.join(plain, 'new')), false);
      } finally {
        assert.deepEqual((await host().driver.remove('ro-1')).failures, []);
      }
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
      // The container holds its own mount: carte's staging mount is gone once runc created it.
      assert.deepEqual(stagingMounts(host().home), []);
    } finally {
      await host().driver.remove('rw-2');
    }
    fs.rmSync(path.join(safe, 'note'));
  });

  it('leaves out mounts below the folder (never checked, and read-only would not reach them)', async () => {
    const below = path.join(safe, 'below');
    fs.mkdirSync(below);
    fs.writeFileSync(path.join(below, 'under'), 'the folder itself\n');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'carte-test-below', below]);
    try {
      fs.writeFileSync(path.join(below, 'mounted'), 'a mount below\n');
      await host().driver.create(instance('sub-1', { command: ['busybox', 'sleep', '100'], volumes: vol(safe, true) }));
      try {
        assert.deepEqual(await execOut(host(), 'sub-1', ['busybox', 'ls', '/h/below']), { code: 0, out: 'under\n' });
      } finally {
        assert.deepEqual((await host().driver.remove('sub-1')).failures, []);
      }
    } finally {
      execFileSync('umount', [below]);
      fs.rmSync(below, { recursive: true, force: true });
    }
  });

  it('mounts a regular file, read-only', async () => {
    const file = path.join(dir, 'settings.txt');
    fs.writeFileSync(file, 'one file\n');
    try {
      await host().driver.create(instance('file-1', { command: ['busybox', 'sleep', '100'], volumes: [{ kind: 'host', hostPath: file, mountPath: '/settings.txt', readOnly: true }] }));
      try {
        assert.deepEqual(await execOut(host(), 'file-1', ['busybox', 'cat', '/settings.txt']), { code: 0, out: 'one file\n' });
        assert.notEqual((await execOut(host(), 'file-1', ['sh', '-c', 'echo x > /settings.txt'])).code, 0, 'read-only');
      } finally {
        assert.deepEqual((await host().driver.remove('file-1')).failures, []);
      }
      assert.equal(fs.readFileSync(file, 'utf8'), 'one file\n');
    } finally {
      fs.rmSync(file, { force: true });
    }
    assert.deepEqual(traces(host()), CLEAN);
  });

  // The window of issue 13: checked, then swapped for a link before runc's
  // mount. The swap happens exactly there (a hook on the point between the
  // check and the mount); the container must see the folder that was checked.
  for (const readOnly of [true, false]) {
    it(`mounts the folder it checked, not what its path leads to after a swap (${readOnly ? 'read-only' : 'writable'})`, async () => {
      const name = readOnly ? 'pin-1' : 'pin-2';
      const base = readOnly ? dir : safe;
      const checked = path.join(base, 'class-a');
      const moved = path.join(base, 'class-a-moved');
      const decoy = path.join(base, 'decoy');
      fs.mkdirSync(checked);
      fs.mkdirSync(decoy);
      fs.writeFileSync(path.join(checked, 'marker'), 'checked\n');
      fs.writeFileSync(path.join(decoy, 'marker'), 'decoy\n');
      let swapped = false;
      onFaultPoint(HOST_VOLUME_PINNED, () => {
        fs.renameSync(checked, moved);
        fs.symlinkSync(decoy, checked);
        swapped = true;
      });
      try {
        await host().driver.create(instance(name, { command: ['busybox', 'sleep', '100'], volumes: vol(checked, readOnly) }));
        onFaultPoint(HOST_VOLUME_PINNED, null);
        assert.equal(swapped, true, 'the swap happened between the check and the mount');
        assert.equal(fs.readlinkSync(checked), decoy);
        try {
          assert.deepEqual(await execOut(host(), name, ['busybox', 'cat', '/h/marker']), { code: 0, out: 'checked\n' });
          const write = await execOut(host(), name, ['sh', '-c', 'echo from-container > /h/note']);
          if (readOnly) {
            assert.notEqual(write.code, 0, 'read-only');
          } else {
            assert.equal(write.code, 0);
            assert.equal(fs.readFileSync(path.join(moved, 'note'), 'utf8'), 'from-container\n');
          }
          assert.equal(fs.existsSync(path.join(decoy, 'note')), false, 'nothing reached the link target');
        } finally {
          assert.deepEqual((await host().driver.remove(name)).failures, []);
        }
        assert.deepEqual(traces(host()), CLEAN);
      } finally {
        onFaultPoint(HOST_VOLUME_PINNED, null);
        for (const p of [checked, moved, decoy]) fs.rmSync(p, { recursive: true, force: true });
      }
    });
  }

  it('after a SIGKILL with a host volume staged, gc unmounts it before deleting anything, and the folder keeps its files', async () => {
    const folder = path.join(safe, 'kept');
    fs.mkdirSync(folder);
    fs.writeFileSync(path.join(folder, 'precious'), 'keep me\n');
    try {
      const opts = { home: host().home, bridge: host().bridge, subnet: host().subnet, cgroupParent: host().cgroupParent };
      const spec = instance('staged-1', { command: ['busybox', 'sleep', '1000'], volumes: vol(folder, false) });
      // After the bundle is made (the staging mount exists), before runc create.
      const child = spawn(process.execPath, [CHILD, JSON.stringify(opts), JSON.stringify(spec), 'wait'], {
        stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CARTE_FAULT_POINT: 'create:bundle-and-netns' },
      });
      const signal = await new Promise((r) => child.on('exit', (_code, sig) => r(sig)));
      assert.equal(signal, 'SIGKILL');
      assert.equal(stagingMounts(host().home).length, 1, 'the killed create left its staging mount');
      assert.deepEqual((await host().driver.gc({ keep: new Set() })).failures, []);
      assert.deepEqual(traces(host()), CLEAN);
      assert.equal(fs.readFileSync(path.join(folder, 'precious'), 'utf8'), 'keep me\n');
    } finally {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  });
});
