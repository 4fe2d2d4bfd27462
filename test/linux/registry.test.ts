// Pull and push against a real registry (Debian's docker-registry on
// 127.0.0.1): build → push → rmi → pull by tag and by digest → run; a
// multi-arch index gives linux/amd64; a damaged layer in the registry's
// storage is refused with nothing stored; basic auth, wrong and right.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pullImage, pushImage, type RegistryAccess } from '../../src/drivers/linux/images/registry.js';
import type { SkopeoCredential } from '../../src/drivers/linux/images/skopeo.js';
import { ImageBuilder } from '../../src/drivers/linux/images/build.js';
import { Runner } from '../../src/drivers/linux/exec.js';
import { cliLogger } from '../../src/log.js';
import { buildImage, eventually, instance, logText, useTestHost, type TestHost } from '../helpers/linux.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function access(host: TestHost, login: SkopeoCredential | null = null): RegistryAccess {
  return { insecure: [], credential: async () => login, authRoot: path.join(host.driver.runRoot, 'registry'), timeoutMs: 120_000 };
}

/** What the store holds: tags, image records and layers (staging folders included). */
function storeListing(host: TestHost): { refs: string[]; files: string[] } {
  const images = host.driver.images;
  const refs = Object.keys(JSON.parse(fs.readFileSync(path.join(images.imagesDir, 'refs.json'), 'utf8')) as object).sort();
  const files = [...fs.readdirSync(images.imagesDir).map((f) => `images/${f}`), ...fs.readdirSync(images.layersDir).map((f) => `layers/${f}`)].sort();
  return { refs, files };
}

async function runHello(host: TestHost, name: string, image: string): Promise<string> {
  await host.driver.create(instance(name, { image, command: ['/bin/sh', '-c', 'cat /hello.txt'] }));
  return eventually(async () => (await logText(host, name)) || undefined, 10_000, `${name} output`);
}

describe('registries (root, docker-registry on 127.0.0.1)', function () {
  this.timeout(120_000);
  const host = useTestHost();
  let registry: TestRegistry;

  before(async function () {
    registry = await startRegistry();
    await buildImage(host(), 'test/hello:1', 'FROM test/busybox:1\nCOPY hello.txt /hello.txt\n', { 'hello.txt': 'hello from the registry\n' });
  });
  after(async () => registry?.stop());

  it('build → push → rmi → pull by tag and by digest → run', async () => {
    const h = host();
    const images = h.driver.images;
    const built = await images.get('test/hello:1');
    const ref = `${registry.host}/team/hello:1`;
    const pushed = await pushImage(images, 'test/hello:1', ref, access(h));
    assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal(pushed.ref, ref);
    await images.untag('test/hello:1');

    const byTag = await pullImage(images, ref, access(h));
    assert.equal(byTag.name, ref);
    assert.equal(byTag.digest, pushed.digest);
    assert.equal(byTag.manifestDigest, pushed.digest);
    // The same layers and config: the same image, layers stored once.
    assert.deepEqual(byTag.image.layers, built.layers);
    assert.deepEqual(byTag.image.config, built.config);

    assert.equal(byTag.upToDate, false);
    // Asked again (pullPolicy Always does this at each create): the same manifest, nothing copied.
    const again = await pullImage(images, ref, access(h));
    assert.deepEqual([again.upToDate, again.image.id], [true, byTag.image.id]);

    const pinned = `${registry.host}/team/hello@${pushed.digest}`;
    const byDigest = await pullImage(images, pinned, access(h));
    assert.equal(byDigest.name, pinned);
    assert.equal(byDigest.image.id, byTag.image.id);

    assert.equal(await runHello(h, 'pulled-1', ref), 'stdout: hello from the registry');
    assert.equal(await runHello(h, 'pinned-1', pinned), 'stdout: hello from the registry');
    await h.driver.remove('pulled-1');
    await h.driver.remove('pinned-1');
  });

  it('a build FROM a registry image that is not stored pulls it once, then runs its RUN steps on it', async () => {
    const h = host();
    const images = h.driver.images;
    const base = `${registry.host}/team/base:1`;
    await pushImage(images, 'test/busybox:1', base, access(h));
    assert.ok(!(await images.list()).some((l) => l.ref === base), 'not stored before the build');
    const builder = new ImageBuilder(images, new Runner(cliLogger('silent')), {
      sandbox: h.driver.buildSandbox, pull: async (ref) => void (await pullImage(images, ref, access(h))),
    });
    const ctx = fs.mkdtempSync(path.join(os.tmpdir(), 'carte-from-'));
    try {
      fs.writeFileSync(path.join(ctx, 'Cartefile'), `FROM ${base}\nRUN busybox echo built on the pulled base > /copy.txt\n`);
      await builder.build({ context: ctx, tag: 'test/frombase:1' });
    } finally {
      fs.rmSync(ctx, { recursive: true, force: true });
    }
    assert.ok((await images.list()).some((l) => l.ref === base), 'the base was pulled and kept');
    await h.driver.create(instance('frombase-1', { image: 'test/frombase:1', command: ['/bin/sh', '-c', 'cat /copy.txt'] }));
    assert.equal(await eventually(async () => (await logText(h, 'frombase-1')) || undefined, 10_000, 'frombase-1 output'), 'stdout: built on the pulled base');
    await h.driver.remove('frombase-1');
    // Without a way to pull, the build says how to get the image.
    const local = new ImageBuilder(images, new Runner(cliLogger('silent')), { sandbox: h.driver.buildSandbox });
    const other = `${registry.host}/team/absent:1`;
    const ctx2 = fs.mkdtempSync(path.join(os.tmpdir(), 'carte-from-'));
    try {
      fs.writeFileSync(path.join(ctx2, 'Cartefile'), `FROM ${other}\n`);
      await assert.rejects(local.build({ context: ctx2, tag: 'test/absent:1' }), (e: Error) => e.message.endsWith(`Cartefile:1: FROM ${other}: not stored, and this build cannot pull (pull it first: carte pull ${other})`));
    } finally {
      fs.rmSync(ctx2, { recursive: true, force: true });
    }
  });

  it('a digest the registry does not hold is refused; nothing is stored', async () => {
    const h = host();
    const before = storeListing(h);
    const wrong = `${registry.host}/team/hello@sha256:${'1'.repeat(64)}`;
    await assert.rejects(pullImage(h.driver.images, wrong, access(h)), (e: Error) => {
      assert.match(e.message, new RegExp(`^pull ${wrong}: .*manifest unknown`));
      return true;
    });
    assert.deepEqual(storeListing(h), before);
  });

  it('a multi-arch index gives its linux/amd64 image', async () => {
    const h = host();
    const images = h.driver.images;
    // Two images in the registry; an index names the busybox one amd64, the other arm64.
    await buildImage(h, 'test/other:1', 'FROM test/busybox:1\nCOPY hello.txt /hello.txt\n', { 'hello.txt': 'I am the arm64 one\n' });
    // The image pulled by the first test (its local tag was removed there).
    const amd = await pushImage(images, `${registry.host}/team/hello:1`, `${registry.host}/team/multi:amd64`, access(h));
    const arm = await pushImage(images, 'test/other:1', `${registry.host}/team/multi:arm64`, access(h));
    const size = async (digest: string) => Number((await fetch(`http://${registry.host}/v2/team/multi/manifests/${digest}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } })).headers.get('content-length'));
    const index = {
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: OCI_MANIFEST, digest: arm.digest, size: await size(arm.digest), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: OCI_MANIFEST, digest: amd.digest, size: await size(amd.digest), platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    const put = await fetch(`http://${registry.host}/v2/team/multi/manifests/1`, { method: 'PUT', headers: { 'content-type': index.mediaType }, body: JSON.stringify(index) });
    assert.equal(put.status, 201, await put.text());
    const r = await pullImage(images, `${registry.host}/team/multi:1`, access(h));
    assert.equal(r.manifestDigest, amd.digest);
    assert.notEqual(r.digest, amd.digest);
    assert.equal(await runHello(h, 'multi-1', `${registry.host}/team/multi:1`), 'stdout: hello from the registry');
    await h.driver.remove('multi-1');
  });

  it('a damaged layer in the registry is refused with a clear error; nothing is stored', async () => {
    const h = host();
    const images = h.driver.images;
    await buildImage(h, 'test/damaged:1', 'FROM test/busybox:1\nCOPY hello.txt /hello.txt\n', { 'hello.txt': 'this layer will be damaged\n' });
    const pushed = await pushImage(images, 'test/damaged:1', `${registry.host}/team/damaged:1`, access(h));
    const manifest = await (await fetch(`http://${registry.host}/v2/team/damaged/manifests/${pushed.digest}`, { headers: { accept: OCI_MANIFEST } })).json() as { layers: Array<{ digest: string }> };
    const top = manifest.layers.at(-1)!.digest;
    const file = registry.blobFile(top);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 20] ^= 0xff;
    fs.writeFileSync(file, bytes);
    // A fresh store state: the damaged image's own layer must not be there already.
    await images.untag('test/damaged:1');
    await images.gc(new Set());
    const before = storeListing(h);
    await assert.rejects(pullImage(images, `${registry.host}/team/damaged:1`, access(h)), (e: Error) => {
      assert.match(e.message, new RegExp(`^pull ${registry.host}/team/damaged:1: .*${top.slice(7, 19)}`));
      assert.match(e.message, /digest/i);
      return true;
    });
    assert.deepEqual(storeListing(h), before);
  });

  it('basic auth: no login and a wrong password are refused with the registry\'s answer; the right one pulls', async () => {
    const h = host();
    const secured = await startRegistry({ auth: { user: 'ci', password: 'pa55-word' } });
    try {
      const ref = `${secured.host}/team/hello:1`;
      await assert.rejects(pushImage(h.driver.images, 'test/busybox:1', ref, access(h)), /unauthorized|authentication required/i);
      await assert.rejects(pushImage(h.driver.images, 'test/busybox:1', ref, access(h, { username: 'ci', password: 'wrong' })), /unauthorized|authentication required|invalid username\/password/i);
      const pushed = await pushImage(h.driver.images, 'test/busybox:1', ref, access(h, { username: 'ci', password: 'pa55-word' }));
      await assert.rejects(pullImage(h.driver.images, ref, access(h, { username: 'ci', password: 'wrong' })), /unauthorized|authentication required|invalid username\/password/i);
      const pulled = await pullImage(h.driver.images, ref, access(h, { username: 'ci', password: 'pa55-word' }));
      assert.equal(pulled.digest, pushed.digest);
      // Each call's authfile went with it.
      assert.deepEqual(fs.readdirSync(path.join(h.driver.runRoot, 'registry')), []);
    } finally {
      await secured.stop();
    }
  });

  it('a registry that accepts connections and never answers fails at the timeout; nothing hangs, nothing is stored', async () => {
    const h = host();
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const before = storeListing(h);
    try {
      await assert.rejects(pullImage(h.driver.images, `127.0.0.1:${port}/team/app:1`, { ...access(h), timeoutMs: 2000 }), (e: Error) => {
        assert.match(e.message, new RegExp(`^pull 127\\.0\\.0\\.1:${port}/team/app:1: (the registry did not answer within 2s|it did not finish within 2s)`));
        return true;
      });
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
    assert.deepEqual(storeListing(h), before);
    assert.deepEqual(fs.readdirSync(path.join(h.driver.runRoot, 'registry')), []);
  });

  it('plain HTTP beyond loopback only for registries the daemon config lists', async function () {
    const address = Object.values(os.networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
    if (!address) this.skip();
    const h = host();
    const lan = await startRegistry({ address });
    try {
      const ref = `${lan.host}/team/hello:1`;
      await assert.rejects(pushImage(h.driver.images, 'test/busybox:1', ref, access(h)), /server gave HTTP response to HTTPS client/);
      const listed = { ...access(h), insecure: [lan.host] };
      const pushed = await pushImage(h.driver.images, 'test/busybox:1', ref, listed);
      await assert.rejects(pullImage(h.driver.images, ref, access(h)), /server gave HTTP response to HTTPS client/);
      assert.equal((await pullImage(h.driver.images, ref, listed)).digest, pushed.digest);
    } finally {
      await lan.stop();
    }
  });

  it('a registry that is not there fails fast with its error; docker.io is named when no registry is', async () => {
    const h = host();
    await assert.rejects(pullImage(h.driver.images, '127.0.0.1:1/team/app:1', access(h)), (e: Error) => /^pull 127\.0\.0\.1:1\/team\/app:1: .*connection refused/.test(e.message));
    await assert.rejects(pullImage(h.driver.images, 'redis:7', { ...access(h), timeoutMs: 20_000 }), (e: Error) => {
      assert.match(e.message, /^pull redis:7: .*\(a reference without a registry host means docker\.io, which this machine cannot reach; name a registry, e\.g\. 127\.0\.0\.1:5000\/redis:7\)$/);
      return true;
    });
  });
});
