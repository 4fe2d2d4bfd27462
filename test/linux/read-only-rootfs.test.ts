// security.readOnlyRootfs: the image's files cannot be changed; /tmp,
// /var/tmp and /run are tmpfs (podman's choice), volumes stay as configured.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execOut, instance, useTestHost } from '../helpers/linux.js';

describe('linux driver: read-only root filesystem', function () {
  this.timeout(60_000);
  const host = useTestHost();

  it('refuses writes to the rootfs; /tmp, /var/tmp, /run and volumes stay writable', async () => {
    await host().driver.create(instance('ro-1', {
      command: ['busybox', 'sleep', '1000'],
      volumes: [{ kind: 'named', name: 'ro-data', mountPath: '/data', readOnly: false }],
      security: { readOnlyRootfs: true },
    }));
    const sh = (script: string) => execOut(host(), 'ro-1', ['sh', '-c', script]);
    assert.deepEqual(await sh('echo x > /x'), { code: 1, out: 'sh: can\'t create /x: Read-only file system\n' });
    assert.deepEqual(await sh('busybox rm /bin/sh'), { code: 1, out: 'rm: can\'t remove \'/bin/sh\': Read-only file system\n' });
    assert.deepEqual(await sh('for d in /tmp /var/tmp /run /data; do echo hi > $d/f && busybox cat $d/f; done'), { code: 0, out: 'hi\nhi\nhi\nhi\n' });
    assert.deepEqual(await sh('busybox stat -f -c %T /tmp /var/tmp /run'), { code: 0, out: 'tmpfs\ntmpfs\ntmpfs\n' });
    // The files the driver binds in are still there.
    assert.deepEqual(await sh('busybox cat /etc/hostname'), { code: 0, out: 'ro-1\n' });
    assert.equal(fs.readFileSync(path.join(host().driver.paths.volumesDir, 'ro-data', 'f'), 'utf8'), 'hi\n');
  });

  it('leaves the rootfs writable by default', async () => {
    await host().driver.create(instance('rw-1', { command: ['busybox', 'sleep', '1000'] }));
    assert.deepEqual(await execOut(host(), 'rw-1', ['sh', '-c', 'echo x > /x && busybox cat /x']), { code: 0, out: 'x\n' });
  });
});
