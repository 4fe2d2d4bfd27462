// Secret values in an instance: environment values whose config.json is on a
// tmpfs of the instance, secret volumes as read-only tmpfs owned by the
// instance's user; nothing of either on disk, nothing left after a remove or
// after a carte killed at any step of a create.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InstanceSpec } from '../../src/drivers/driver.js';
import { CREATE_FAULT_POINTS } from '../../src/drivers/linux/create.js';
import { CLEAN, execOut, instance, traces, useTestHost } from '../helpers/linux.js';
import { filesOnDisk } from '../helpers/paths.js';

const CHILD = fileURLToPath(new URL('../helpers/driver-child.js', import.meta.url));
const VALUE = 'hunter2-e8d1c0ffee';
const TMPFS_MAGIC = 0x01021994;

function secretInstance(name: string): InstanceSpec {
  return {
    ...instance(name, { command: ['busybox', 'sleep', '1000'], user: '10001:10001', env: { PLAIN: 'hello' } }),
    secretEnv: { TOKEN: VALUE },
    secretVolumes: [
      { name: 'db', mountPath: '/run/secrets/db', files: [{ path: 'password', data: Buffer.from(VALUE), mode: 0o400 }, { path: 'tls/cert.pem', data: Buffer.from('cert'), mode: 0o400 }] },
    ],
  };
}


describe('linux driver: secrets', function () {
  this.timeout(300_000);
  const host = useTestHost();

  it('gives the instance its secret env and files (0400, its user\'s, read-only), and writes neither to disk', async () => {
    await host().driver.create(secretInstance('sec-1'));
    assert.deepEqual(await execOut(host(), 'sec-1', ['sh', '-c', 'echo "$TOKEN $PLAIN"']), { code: 0, out: `${VALUE} hello\n` });
    assert.deepEqual(await execOut(host(), 'sec-1', ['sh', '-c', 'cat /run/secrets/db/password; echo; busybox stat -c "%a %u %g" /run/secrets/db/password /run/secrets/db/tls/cert.pem']),
      { code: 0, out: `${VALUE}\n400 10001 10001\n400 10001 10001\n` });
    const write = await execOut(host(), 'sec-1', ['sh', '-c', 'echo x > /run/secrets/db/password']);
    assert.notEqual(write.code, 0);
    assert.match(write.out, /Read-only file system|Permission denied/);
    // The config runc reads (at create and at every exec) is on a tmpfs of the instance.
    const config = path.join(host().home, 'instances', 'sec-1', 'bundle', 'config.json');
    assert.ok(fs.lstatSync(config).isSymbolicLink());
    assert.equal(fs.statfsSync(path.dirname(fs.realpathSync(config))).type, TMPFS_MAGIC);
    // The secret volume's staging mount is gone from the host: the container alone holds it.
    assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes('secret-volumes')).length, 0);
    const leaking = filesOnDisk(host().home).filter((f) => fs.readFileSync(f).includes(VALUE));
    assert.deepEqual(leaking, []);
    assert.deepEqual((await host().driver.remove('sec-1')).failures, []);
    assert.deepEqual(traces(host()), CLEAN);
  });

  for (const point of CREATE_FAULT_POINTS) {
    it(`gc cleans a secret-bearing instance whose carte was killed at ${point}`, async () => {
      const name = `secf-${CREATE_FAULT_POINTS.indexOf(point) + 1}`;
      const opts = { home: host().home, bridge: host().bridge, subnet: host().subnet, cgroupParent: host().cgroupParent };
      const child = spawn(process.execPath, [CHILD, JSON.stringify(opts), JSON.stringify(secretInstance(name)), 'wait'], {
        stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, CARTE_FAULT_POINT: point },
      });
      const signal = await new Promise((r) => child.on('exit', (_code, sig) => r(sig)));
      assert.equal(signal, 'SIGKILL');
      assert.deepEqual((await host().driver.gc({ keep: new Set() })).failures, []);
      assert.deepEqual(traces(host()), CLEAN);
    });
  }
});
