import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readImageFile, resolveInRoot } from '../../../src/drivers/linux/image-file.js';
import { tempDir } from '../../helpers/paths.js';

describe('reading image files inside the rootfs', () => {
  let root: string;
  beforeEach(() => {
    root = tempDir('carte-rootfs-');
    fs.mkdirSync(path.join(root, 'etc'));
    fs.mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
  const link = (target: string, at: string) => fs.symlinkSync(target, path.join(root, at));
  const read = (file: string, maxBytes?: number) => readImageFile(root, file, { image: 'test/x:1', maxBytes });

  it('reads a regular file, and gives null for a missing one', async () => {
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0::/:/bin/sh\n');
    assert.equal(await read('/etc/passwd'), 'root:x:0:0::/:/bin/sh\n');
    assert.equal(await read('/etc/group'), null);
    assert.equal(await read('/nothing/here'), null);
  });

  it('follows links as if the rootfs were /, never above it', async () => {
    fs.writeFileSync(path.join(root, 'usr/lib/passwd'), 'inside\n');
    link('/usr/lib/passwd', 'etc/passwd');
    assert.equal(await read('/etc/passwd'), 'inside\n');
    link('../../../../../../usr/lib/passwd', 'etc/group');
    assert.equal(await read('/etc/group'), 'inside\n');
    // A folder link in the middle of the path, and `..` through it.
    link('/usr/lib', 'lib');
    assert.equal(await read('/lib/../lib/passwd'), 'inside\n');
    const r = await resolveInRoot(root, '/etc/group');
    assert.ok(r.found);
    assert.equal(r.found && r.hostPath, path.join(root, 'usr/lib/passwd'));
    assert.equal(r.inImage, '/usr/lib/passwd');
    assert.equal(r.links, 1);
  });

  it('names what a refused file is', async () => {
    link('/etc/shadow', 'etc/passwd');
    await assert.rejects(read('/etc/passwd'), { message: 'failed to read /etc/passwd of image test/x:1: it is a link to /etc/shadow, which does not exist in the image' });
    fs.mkdirSync(path.join(root, 'etc/group'));
    await assert.rejects(read('/etc/group'), { message: 'failed to read /etc/group of image test/x:1: it is a directory, not a regular file' });
    fs.writeFileSync(path.join(root, 'etc/hosts'), 'x'.repeat(2048));
    await assert.rejects(read('/etc/hosts', 1024), { message: 'failed to read /etc/hosts of image test/x:1: it is 2 KiB, more than the 1 KiB carte reads from an image file' });
    link('b', 'etc/a');
    link('a', 'etc/b');
    await assert.rejects(read('/etc/a'), { message: 'failed to read /etc/a of image test/x:1: it goes through more than 40 symbolic links (a loop?)' });
  });
});
