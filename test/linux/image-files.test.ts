// The driver reads /etc/passwd and /etc/group of an image on the host, as
// root. An image is written by someone who is not root: its links must
// resolve inside the image, and nothing but a small regular file is read.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLEAN, execOut, imageFromTree, instance, traces, useTestHost } from '../helpers/linux.js';

describe('linux driver: reading image files on the host', function () {
  this.timeout(60_000);
  const host = useTestHost();
  // Each case starts from a clean host, so its trace check sees only what it made.
  afterEach(async () => host().driver.gc({ keep: new Set() }));
  const etc = (dir: string) => {
    fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
    return path.join(dir, 'etc');
  };

  /** Creating an instance of `image` as `user` fails with exactly `message`, and leaves nothing behind. */
  async function refused(name: string, image: string, user: string, message: string | RegExp) {
    await assert.rejects(host().driver.create(instance(name, { image, user, command: ['busybox', 'sleep', '1000'] })), { message });
    assert.deepEqual(traces(host()), CLEAN);
  }

  it('refuses /etc/passwd linked to a device, without opening it', async () => {
    await imageFromTree(host(), 'test/zero:1', (dir) => {
      fs.symlinkSync('/dev/zero', path.join(etc(dir), 'passwd'));
      // The image's own /dev/zero: a real character device (1,5), as only a hostile layer would have.
      fs.mkdirSync(path.join(dir, 'dev'));
      execFileSync('mknod', [path.join(dir, 'dev', 'zero'), 'c', '1', '5']);
    });
    await refused('zero-1', 'test/zero:1', 'nobody',
      'failed to read /etc/passwd of image test/zero:1: it is a link to /dev/zero, which is a character device, not a regular file');
  });

  it('resolves absolute links inside the image, not on the host', async () => {
    // The host has /dev/kmsg; the image has no /dev at all.
    await imageFromTree(host(), 'test/kmsg:1', (dir) => fs.symlinkSync('/dev/kmsg', path.join(etc(dir), 'passwd')));
    await refused('kmsg-1', 'test/kmsg:1', 'nobody', 'failed to read /etc/passwd of image test/kmsg:1: it is a link to /dev/kmsg, which does not exist in the image');
  });

  it('stops `..` at the image root: a link to ../../../../../etc/shadow reads the image\'s /etc/shadow', async () => {
    await imageFromTree(host(), 'test/shadow:1', (dir) => {
      fs.symlinkSync('../../../../../etc/shadow', path.join(etc(dir), 'passwd'));
      // Not the host's shadow (whose nobody has no uid field): the image's own file, with a uid the host does not use.
      fs.writeFileSync(path.join(etc(dir), 'shadow'), 'nobody:x:4242:4343::/:/bin/sh\n');
    });
    await host().driver.create(instance('shadow-1', { image: 'test/shadow:1', user: 'nobody', command: ['busybox', 'sleep', '1000'] }));
    assert.deepEqual(await execOut(host(), 'shadow-1', ['busybox', 'id']), { code: 0, out: 'uid=4242(nobody) gid=4343\n' });
    await host().driver.remove('shadow-1');

    await imageFromTree(host(), 'test/shadow-gone:1', (dir) => fs.symlinkSync('../../../../../etc/shadow', path.join(etc(dir), 'passwd')));
    await refused('shadow-2', 'test/shadow-gone:1', 'nobody',
      'failed to read /etc/passwd of image test/shadow-gone:1: it is a link to /etc/shadow, which does not exist in the image');
  });

  it('refuses an /etc/passwd bigger than 1 MiB without reading it', async () => {
    await imageFromTree(host(), 'test/big:1', (dir) => {
      const fd = fs.openSync(path.join(etc(dir), 'passwd'), 'w');
      fs.ftruncateSync(fd, 50 * 2 ** 20);
      fs.closeSync(fd);
    });
    await refused('big-1', 'test/big:1', 'nobody', 'failed to read /etc/passwd of image test/big:1: it is 50 MiB, more than the 1 MiB carte reads from an image file');
  });

  it('refuses a FIFO as /etc/group without opening it (no hang)', async () => {
    await imageFromTree(host(), 'test/fifo:1', (dir) => {
      fs.writeFileSync(path.join(etc(dir), 'passwd'), 'nobody:x:65534:65534::/:/bin/sh\n');
      execFileSync('mkfifo', [path.join(etc(dir), 'group')]);
    });
    await refused('fifo-1', 'test/fifo:1', 'nobody:nogroup', 'failed to read /etc/group of image test/fifo:1: it is a FIFO, not a regular file');
  });

  it('gives up on a link loop', async () => {
    await imageFromTree(host(), 'test/loop:1', (dir) => {
      fs.symlinkSync('passwd2', path.join(etc(dir), 'passwd'));
      fs.symlinkSync('/etc/passwd', path.join(etc(dir), 'passwd2'));
    });
    await refused('loop-1', 'test/loop:1', 'nobody', 'failed to read /etc/passwd of image test/loop:1: it goes through more than 40 symbolic links (a loop?)');
  });

  it('refuses to run as a uid that a host account has, before making anything', async () => {
    // uid 1 is Debian's "daemon" account on every host; the image's passwd calls it app.
    await imageFromTree(host(), 'test/hostuid:1', (dir) => fs.writeFileSync(path.join(etc(dir), 'passwd'), 'app:x:1:1::/:/bin/sh\n'));
    const account = execFileSync('getent', ['passwd', '1']).toString().split(':')[0];
    await refused('hostuid-1', 'test/hostuid:1', 'app',
      `failed to create instance hostuid-1: it would run as uid 1, which is the host account "${account}": that account could signal and trace its processes and read its environment and secrets (run it as a uid no host account has, e.g. spec.user: "10001:10001" or USER 10001:10001 in its Cartefile; see docs/security.md, "Container users and host accounts")`);
    await refused('hostuid-2', 'test/busybox:1', '1:4242', /which is the host account/);
  });

  it('still resolves a user and group by name from an ordinary image', async () => {
    await imageFromTree(host(), 'test/users:1', (dir) => {
      // Not 65534: that is the host's nobody, an account carte refuses to run an instance as.
      fs.writeFileSync(path.join(etc(dir), 'passwd'), 'root:x:0:0::/root:/bin/sh\nnobody:x:61234:61234::/:/bin/sh\n');
      fs.writeFileSync(path.join(etc(dir), 'group'), 'root:x:0:\nnogroup:x:65533:\n');
    });
    await host().driver.create(instance('users-1', { image: 'test/users:1', user: 'nobody:nogroup', command: ['busybox', 'sleep', '1000'] }));
    assert.deepEqual(await execOut(host(), 'users-1', ['busybox', 'id']), { code: 0, out: 'uid=61234(nobody) gid=65533(nogroup)\n' });
  });
});
