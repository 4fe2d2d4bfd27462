import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { eventually, execOut, instance, useTestHost } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

describe('linux driver: networking and volumes', function () {
  this.timeout(60_000);
  const host = useTestHost();

  it('gives each instance an address on the bridge; two instances talk over TCP by IP', async () => {
    const server = await host().driver.create(instance('srv-1', { command: ['sh', '-c', 'busybox mkdir -p /www && echo pong > /www/index.html && exec busybox httpd -f -p 8080 -h /www'] }));
    const client = await host().driver.create(instance('cli-1', { command: ['busybox', 'sleep', '1000'] }));
    const prefix = host().subnet.split('.').slice(0, 3).join('.');
    assert.ok(server.ip?.startsWith(`${prefix}.`), `${server.ip} is in ${host().subnet}`);
    assert.notEqual(server.ip, client.ip);
    const got = await eventually(async () => {
      // busybox nc as the client (static busybox's wget crashes resolving names).
      const r = await execOut(host(), 'cli-1', ['sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 ${server.ip} 8080`]);
      return r.code === 0 && r.out.startsWith('HTTP/1.') ? r.out : undefined;
    }, 10_000, 'the server to answer');
    assert.match(got, /^HTTP\/1\.[01] 200 OK\r\n/);
    assert.ok(got.endsWith('\r\n\r\npong\n'), got);
    const hosts = await execOut(host(), 'cli-1', ['busybox', 'cat', '/etc/hosts', '/etc/hostname']);
    assert.match(hosts.out, new RegExp(`${client.ip!.replace(/\./g, '\\.')}\\tcli-1\\ncli-1\\n$`));
  });

  it('keeps a named volume across re-creation, and mounts host paths read-only when asked', async () => {
    const hostDir = tempDir('carte-hostpath-');
    try {
      fs.writeFileSync(path.join(hostDir, 'config.txt'), 'from the host\n');
      const spec = instance('vol-1', {
        command: ['busybox', 'sleep', '1000'],
        volumes: [{ kind: 'named', name: 'test-data', mountPath: '/data', readOnly: false }, { kind: 'host', hostPath: hostDir, mountPath: '/config', readOnly: true }],
      });
      await host().driver.create(spec);
      assert.equal((await execOut(host(), 'vol-1', ['sh', '-c', 'echo kept > /data/file'])).code, 0);
      assert.equal((await execOut(host(), 'vol-1', ['busybox', 'cat', '/config/config.txt'])).out, 'from the host\n');
      assert.notEqual((await execOut(host(), 'vol-1', ['sh', '-c', 'echo x > /config/new'])).code, 0, 'read-only');
      assert.deepEqual((await host().driver.remove('vol-1')).failures, []);
      await host().driver.create(spec);
      assert.equal((await execOut(host(), 'vol-1', ['busybox', 'cat', '/data/file'])).out, 'kept\n');
      assert.equal(fs.readFileSync(path.join(host().home, 'volumes', 'test-data', 'file'), 'utf8'), 'kept\n');
    } finally {
      await host().driver.remove('vol-1');
      fs.rmSync(hostDir, { recursive: true, force: true });
    }
  });
});
