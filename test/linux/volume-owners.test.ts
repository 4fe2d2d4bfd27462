import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DriverError } from '../../src/errors.js';
import { CLEAN, execOut, instance, traces, useTestHost } from '../helpers/linux.js';

describe('linux driver: a named volume belongs to the source that made it', function () {
  this.timeout(60_000);
  const host = useTestHost();
  const volumes = () => path.join(host().home, 'volumes');
  const owners = () => JSON.parse(fs.readFileSync(path.join(volumes(), '.owners.json'), 'utf8')) as Record<string, string>;
  const withVolume = (name: string, volume: string, source: string) => instance(name, {
    command: ['busybox', 'sleep', '1000'], source, volumes: [{ kind: 'named', name: volume, mountPath: '/data', readOnly: false }],
  });

  it('records the source that makes a volume, and refuses it to another source, leaving nothing', async () => {
    try {
      await host().driver.create(withVolume('admin-1', 'admin-db', 'cli'));
      assert.equal((await execOut(host(), 'admin-1', ['sh', '-c', 'echo secret > /data/password'])).code, 0);
      assert.deepEqual(owners(), { 'admin-db': 'cli' });
      // The registry is beside the volumes, not inside one: no container sees it.
      assert.deepEqual(fs.readdirSync(path.join(volumes(), 'admin-db')), ['password']);

      await assert.rejects(host().driver.create(withVolume('loot-1', 'admin-db', 'folder:/srv/students')), (e: unknown) => {
        assert.ok(e instanceof DriverError);
        assert.equal(e.message, 'failed to mount volume "admin-db" into instance loot-1: the volume belongs to source cli, not folder:/srv/students (volumes are private to the source that made them)');
        return true;
      });
      assert.deepEqual((await host().driver.list()).map((i) => i.name), ['admin-1']);
      assert.deepEqual(owners(), { 'admin-db': 'cli' });
      assert.equal(fs.readFileSync(path.join(volumes(), 'admin-db', 'password'), 'utf8'), 'secret\n');
    } finally {
      await host().driver.remove('admin-1');
    }
    assert.deepEqual(traces(host()), CLEAN);
  });

  it('lets the first source after an upgrade claim a volume an older carte made without an owner', async () => {
    fs.mkdirSync(path.join(volumes(), 'redis-data'), { recursive: true });
    fs.writeFileSync(path.join(volumes(), 'redis-data', 'dump.rdb'), 'kept\n');
    try {
      await host().driver.create(withVolume('redis-1', 'redis-data', 'folder:/srv/metaverse/manifests'));
      assert.equal((await execOut(host(), 'redis-1', ['busybox', 'cat', '/data/dump.rdb'])).out, 'kept\n');
      assert.equal(owners()['redis-data'], 'folder:/srv/metaverse/manifests');
      await assert.rejects(host().driver.create(withVolume('other-1', 'redis-data', 'git:https://example.org/x.git')), /belongs to source folder:\/srv\/metaverse\/manifests/);
    } finally {
      await host().driver.remove('redis-1');
    }
    assert.deepEqual(traces(host()), CLEAN);
  });
});
