import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { importRootfs } from '../../src/drivers/linux/images/import.js';
import { eventually, execOut, instance, logText, makeTestHost, requireRoot, type TestHost } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

describe('linux driver: images', function () {
  this.timeout(120_000);
  let host: TestHost;
  let ctx: string;
  before(function () {
    requireRoot(this);
    host = makeTestHost();
    ctx = tempDir('carte-ctx-');
  });
  after(async () => {
    await host?.teardown();
    if (ctx) fs.rmSync(ctx, { recursive: true, force: true });
  });

  it('builds a working node image from the host binary and its libraries, then reuses every layer', async () => {
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM scratch\nCOPY --from=host /usr/bin/node /usr/bin/node\nCOPY app/ /app/\nWORKDIR /app\nCMD ["node", "main.js"]\n');
    fs.mkdirSync(path.join(ctx, 'app'));
    fs.writeFileSync(path.join(ctx, 'app', 'main.js'), 'console.log("node", process.version, "in", require("os").hostname()); setInterval(() => {}, 1000);\n');
    fs.writeFileSync(path.join(ctx, 'app', 'secret.key'), 'do not ship');
    fs.writeFileSync(path.join(ctx, '.carteignore'), '**/*.key\n');
    const first = await host.driver.builder.build({ context: ctx, tag: 'test/node:1' });
    assert.deepEqual([first.cachedSteps, first.steps], [0, 2]);
    const again = await host.driver.builder.build({ context: ctx, tag: 'test/node:1' });
    assert.deepEqual([again.cachedSteps, again.steps], [2, 2]);
    assert.equal(again.image.id, first.image.id);
    assert.deepEqual(first.image.config.cmd, ['node', 'main.js']);
    assert.equal(first.image.config.workingDir, '/app');

    await host.driver.create(instance('node-1', { image: 'test/node:1' }));
    const out = await eventually(async () => {
      const t = await logText(host, 'node-1');
      return t.includes('node v') ? t : undefined;
    }, 10_000, 'node to start');
    assert.equal(out, `stdout: node ${process.version} in node-1`);
    assert.notEqual((await execOut(host, 'node-1', ['node', '-e', 'require("fs").statSync("/app/secret.key")'])).code, 0, '.carteignore kept the key out');

    fs.writeFileSync(path.join(ctx, 'app', 'main.js'), 'console.log("v2")\n');
    const changed = await host.driver.builder.build({ context: ctx, tag: 'test/node:2' });
    assert.deepEqual([changed.cachedSteps, changed.steps], [1, 2], 'only the changed COPY is rebuilt');
    assert.equal(changed.image.layers[0], first.image.layers[0], 'the node layer is shared');
  });

  it('imports a hostile tarball without escaping, and names every entry it left out or moved', async () => {
    const tarball = path.join(ctx, 'hostile.tar');
    // Entries no `tar -c` of a folder makes: written with Python's tarfile.
    execFileSync('python3', ['-c', `import tarfile, io
with tarfile.open(${JSON.stringify(tarball)}, 'w') as t:
    for name, data in [('ok.txt', b'fine'), ('../escape.txt', b'x'), ('/abs.txt', b'y')]:
        ti = tarfile.TarInfo(name); ti.size = len(data); t.addfile(ti, io.BytesIO(data))
    fi = tarfile.TarInfo('pipe'); fi.type = tarfile.FIFOTYPE; t.addfile(fi)
`]);
    const left: string[] = [];
    const image = await importRootfs(host.driver.images, tarball, 'test/hostile:1', (l) => left.push(l));
    assert.deepEqual(left.sort(), [
      "../escape.txt: path contains '..'",
      '/abs.txt: an absolute path, unpacked at abs.txt instead',
      "pipe: a FIFO (a container's /dev is its own)",
    ]);
    const layer = host.driver.images.layerPath(image.layers[0]!);
    assert.deepEqual(fs.readdirSync(layer).sort(), ['abs.txt', 'ok.txt']);
    assert.equal(fs.existsSync(path.join(path.dirname(layer), 'escape.txt')), false);
  });

  it('imports a plain rootfs tarball as a one-layer image', async () => {
    const rootfs = tempDir('carte-rootfs-');
    const tarball = path.join(ctx, 'rootfs.tar');
    try {
      fs.mkdirSync(path.join(rootfs, 'bin'));
      fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
      fs.symlinkSync('busybox', path.join(rootfs, 'bin', 'sh'));
      execFileSync('tar', ['-C', rootfs, '-cf', tarball, '.']);
      const image = await importRootfs(host.driver.images, tarball, 'test/imported:1');
      assert.equal(image.layers.length, 1);
      await host.driver.create(instance('imp-1', { image: 'test/imported:1', command: ['sh', '-c', 'echo imported; exec busybox sleep 1000'] }));
      await eventually(async () => (await logText(host, 'imp-1')) === 'stdout: imported', 5000, 'output');
    } finally {
      fs.rmSync(rootfs, { recursive: true, force: true });
    }
  });
});
