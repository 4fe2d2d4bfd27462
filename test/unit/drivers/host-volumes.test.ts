// The mount holding a pinned host path is found by its id (mnt_id of the open
// descriptor), not by the longest mount point prefix of a path that may have
// changed since.
import assert from 'node:assert/strict';
import { mountById } from '../../../src/drivers/linux/host-volumes.js';

const MOUNTINFO = [
  '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '61 22 0:52 / /srv/class rw,nosuid,nodev,relatime shared:30 - tmpfs class rw,size=4096k',
  '62 61 254:0 /srv/plain /srv/class/plain rw,relatime shared:1 - ext4 /dev/vda rw',
  '63 22 0:53 / /srv/my\\040class ro,nosuid,nodev shared:31 - tmpfs t rw',
  '',
].join('\n');

describe('host volumes: the mount of a pinned path', () => {
  it('is the line whose first field is the id, with its mount point and per-mount options', () => {
    assert.deepEqual(mountById(61, MOUNTINFO), { mount: '/srv/class', options: ['rw', 'nosuid', 'nodev', 'relatime'] });
    // Below /srv/class by path, its own mount by id: the options that count are its own.
    assert.deepEqual(mountById(62, MOUNTINFO), { mount: '/srv/class/plain', options: ['rw', 'relatime'] });
  });

  it('unescapes the mount point as mountinfo writes it (\\040 is a space)', () => {
    assert.deepEqual(mountById(63, MOUNTINFO), { mount: '/srv/my class', options: ['ro', 'nosuid', 'nodev'] });
  });

  it('is null for an id that is not there (a mount gone, or in another namespace)', () => {
    assert.equal(mountById(99, MOUNTINFO), null);
    assert.equal(mountById(6, MOUNTINFO), null);
  });
});
