// OCI images in and out: carte's export loads in skopeo, skopeo's archives of
// it import and run, and a hand-made two-layer image's whiteouts and opaque
// folder hide what they must in a running instance; a damaged blob is
// refused naming its layer, storing nothing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { exportOciArchive, importImageArchive, importOciLayout } from '../../src/drivers/linux/images/oci.js';
import { BUSYBOX_CARTEFILE, buildImage, eventually, instance, logText, makeTestHost, requireRoot, type TestHost } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Writes a one-image OCI layout from layer folders (tarred with GNU tar, gzipped by Node), as another tool would. */
function writeLayout(dir: string, layerDirs: string[], config: object): { layerDigests: string[] } {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    const hex = sha(b);
    fs.writeFileSync(path.join(blobs, hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  const diffIds: string[] = [];
  const layers = layerDirs.map((d) => {
    const tar = execFileSync('tar', ['-C', d, '--owner=0', '--group=0', '-cf', '-', '.'], { maxBuffer: 64 * 2 ** 20 });
    diffIds.push(`sha256:${sha(tar)}`);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(zlib.gzipSync(tar)) };
  });
  const cfg = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', ...config, rootfs: { type: 'layers', diff_ids: diffIds } })));
  const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers })));
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }] }));
  return { layerDigests: layers.map((l) => l.digest) };
}

function storeListing(host: TestHost) {
  return {
    layers: fs.readdirSync(host.driver.images.layersDir).sort(),
    images: fs.readdirSync(host.driver.images.imagesDir).sort(),
  };
}

describe('linux driver: OCI images', function () {
  this.timeout(180_000);
  let host: TestHost;
  let work: string;
  before(async function () {
    requireRoot(this);
    host = makeTestHost();
    work = tempDir('carte-oci-');
    await buildImage(host, 'test/busybox:1', BUSYBOX_CARTEFILE.replace('CMD', 'COPY hello.txt /etc/hello.txt\nCMD'), { 'hello.txt': 'hello from carte\n' });
  });
  after(async () => {
    await host?.teardown();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  async function runAndRead(name: string, image: string, script: string): Promise<string> {
    await host.driver.create(instance(name, { image, command: ['/bin/sh', '-c', `${script}; exec /bin/busybox sleep 1000`] }));
    try {
      return await eventually(async () => {
        const t = await logText(host, name);
        return t.includes('END') ? t : undefined;
      }, 10_000, `${name} to print`);
    } finally {
      await host.driver.remove(name).catch(() => {});
    }
  }

  it('exports an OCI archive skopeo reads, deterministically; skopeo\'s oci-archive and docker-archive copies import and run', async () => {
    const file = path.join(work, 'busybox.tar');
    const first = await exportOciArchive(host.driver.images, 'test/busybox:1', file);
    const again = await exportOciArchive(host.driver.images, 'test/busybox:1', path.join(work, 'again.tar'));
    assert.equal(again.manifestDigest, first.manifestDigest);
    assert.equal(sha(fs.readFileSync(file)), sha(fs.readFileSync(path.join(work, 'again.tar'))), 'same image, same bytes');

    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${file}`]).toString()) as { Digest: string; Layers: string[]; Os: string; Architecture: string };
    assert.equal(inspect.Digest, first.manifestDigest);
    assert.deepEqual([inspect.Os, inspect.Architecture, inspect.Layers.length], ['linux', 'amd64', 3]);
    const dirCopy = path.join(work, 'dir-copy');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${file}`, `dir:${dirCopy}`]);
    assert.ok(fs.existsSync(path.join(dirCopy, 'manifest.json')));

    const original = await host.driver.images.get('test/busybox:1');
    const dockerArchive = path.join(work, 'docker.tar');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${file}`, `docker-archive:${dockerArchive}:test/from-docker:2`]);
    const fromDocker = await importImageArchive(host.driver.images, dockerArchive, undefined);
    assert.deepEqual([fromDocker.format, fromDocker.ref, fromDocker.layers], ['docker-archive', 'test/from-docker:2', original.layers]);
    assert.deepEqual(fromDocker.config, original.config);
    const ociArchive = path.join(work, 'skopeo-oci.tar');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${file}`, `oci-archive:${ociArchive}:test/from-skopeo:3`]);
    const fromOci = await importImageArchive(host.driver.images, ociArchive, 'test/from-skopeo:3');
    assert.deepEqual([fromOci.format, fromOci.layers], ['oci-archive', original.layers]);

    assert.match(await runAndRead('skopeo-1', 'test/from-docker:2', 'cat /etc/hello.txt; echo END'), /stdout: hello from carte\nstdout: END/);
  });

  it('a two-layer image\'s whiteout and opaque folder hide lower files in a running instance; its config is honoured', async () => {
    const lower = path.join(work, 'lower');
    const upper = path.join(work, 'upper');
    for (const d of ['bin', 'etc', 'data/sub']) fs.mkdirSync(path.join(lower, d), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(lower, 'bin/busybox'));
    fs.chmodSync(path.join(lower, 'bin/busybox'), 0o755);
    fs.symlinkSync('/bin/busybox', path.join(lower, 'bin/sh')); // absolute: resolved in the container's root
    fs.writeFileSync(path.join(lower, 'etc/keep.txt'), 'kept\n');
    fs.writeFileSync(path.join(lower, 'etc/gone.txt'), 'should be deleted\n');
    fs.writeFileSync(path.join(lower, 'data/old.txt'), 'hidden by the opaque folder\n');
    fs.writeFileSync(path.join(lower, 'data/sub/deep.txt'), 'hidden too\n');
    fs.mkdirSync(path.join(upper, 'etc'), { recursive: true });
    fs.mkdirSync(path.join(upper, 'data'), { recursive: true });
    fs.writeFileSync(path.join(upper, 'etc/.wh.gone.txt'), '');
    fs.writeFileSync(path.join(upper, 'data/.wh..wh..opq'), '');
    fs.writeFileSync(path.join(upper, 'data/new.txt'), 'new\n');
    const layout = path.join(work, 'layout');
    writeLayout(layout, [lower, upper], {
      config: { Env: ['GREETING=hi'], Cmd: ['/bin/sh'], WorkingDir: '/data', User: '0:0', ExposedPorts: { '8080/tcp': {} }, Labels: { team: 'games' } },
    });

    const image = await importOciLayout(host.driver.images, layout, { tag: 'test/whiteouts:1' });
    assert.deepEqual(image.config, { env: ['GREETING=hi'], cmd: ['/bin/sh'], entrypoint: null, workingDir: '/data', user: '0:0', exposedPorts: ['8080/tcp'], labels: { team: 'games' } });
    assert.equal(image.layers.length, 2);
    const top = host.driver.images.layerPath(image.layers[1]!);
    const wh = fs.lstatSync(path.join(top, 'etc/gone.txt'));
    assert.deepEqual([wh.isCharacterDevice(), wh.rdev], [true, 0], 'the whiteout is an overlayfs one');
    assert.equal(execFileSync('getfattr', ['--absolute-names', '--only-values', '-n', 'trusted.overlay.opaque', path.join(top, 'data')]).toString(), 'y');

    const out = await runAndRead('wh-1', 'test/whiteouts:1', 'echo "pwd=$(pwd) $GREETING"; ls -A /data; cat /etc/keep.txt; test -e /etc/gone.txt && echo gone-present; echo END');
    assert.equal(out, 'stdout: pwd=/data hi\nstdout: new.txt\nstdout: kept\nstdout: END');

    // Export turns the marks back into .wh. entries; importing that gives the same layers.
    const file = path.join(work, 'whiteouts.tar');
    await exportOciArchive(host.driver.images, 'test/whiteouts:1', file);
    const back = await importImageArchive(host.driver.images, file, 'test/whiteouts:2');
    assert.deepEqual(back.layers, image.layers);
  });

  it('a damaged layer blob is refused naming the layer, and nothing is stored', async () => {
    const one = path.join(work, 'one');
    fs.mkdirSync(path.join(one, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(one, 'etc/a.txt'), 'a\n');
    const two = path.join(work, 'two');
    fs.mkdirSync(path.join(two, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(two, 'etc/b.txt'), 'b\n');
    const layout = path.join(work, 'damaged');
    const { layerDigests } = writeLayout(layout, [one, two], {});
    const blob = path.join(layout, 'blobs', 'sha256', layerDigests[1]!.slice('sha256:'.length));
    const bytes = fs.readFileSync(blob);
    bytes[bytes.length - 5]! ^= 0xff;
    fs.writeFileSync(blob, bytes);
    const before = storeListing(host);
    const refs = await host.driver.images.refs();
    await assert.rejects(importOciLayout(host.driver.images, layout, { tag: 'test/damaged:1' }), {
      message: new RegExp(`^layer 2/2 \\(${layerDigests[1]}\\) does not match its digest: expected ${layerDigests[1]}, got sha256:[0-9a-f]{64}; the image is damaged$`),
    });
    assert.deepEqual(storeListing(host), before, 'no layer, image or staging folder left');
    assert.deepEqual(await host.driver.images.refs(), refs);
  });
});
