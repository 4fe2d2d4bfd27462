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
import { exportOciArchive, exportOciLayout, importImageArchive, importOciLayout } from '../../src/drivers/linux/images/oci.js';
import { BUSYBOX_CARTEFILE, buildImage, eventually, instance, logText, makeTestHost, requireRoot, type TestHost } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A folder as a layer tar, made by GNU tar as another tool would. */
function tarOf(dir: string): Buffer {
  return execFileSync('tar', ['-C', dir, '--owner=0', '--group=0', '-cf', '-', '.'], { maxBuffer: 64 * 2 ** 20 });
}

interface LayoutOptions {
  compress?: 'gzip' | 'zstd';
  /** The config's diff_ids, instead of the true ones. */
  diffIds?: string[];
  /** Put the image in a multi-arch index next to an arm64 one (that has no blobs: it must never be read). */
  multiArch?: boolean;
}

/** Writes a one-image OCI layout from layer tars. */
function writeLayout(dir: string, tars: Buffer[], config: object, opts: LayoutOptions = {}): { layerDigests: string[] } {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer) => {
    const hex = sha(b);
    fs.writeFileSync(path.join(blobs, hex), b);
    return { digest: `sha256:${hex}`, size: b.length };
  };
  const compress = opts.compress ?? 'gzip';
  const layers = tars.map((t) => ({
    mediaType: `application/vnd.oci.image.layer.v1.tar+${compress}`,
    ...put(compress === 'gzip' ? zlib.gzipSync(t) : execFileSync('zstd', ['-q', '-c'], { input: t, maxBuffer: 64 * 2 ** 20 })),
  }));
  const diffIds = opts.diffIds ?? tars.map((t) => `sha256:${sha(t)}`);
  const cfg = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', ...config, rootfs: { type: 'layers', diff_ids: diffIds } })));
  const manifestType = 'application/vnd.oci.image.manifest.v1+json';
  let top: object = { mediaType: manifestType, ...put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg }, layers }))) };
  if (opts.multiArch) {
    const list = {
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: manifestType, digest: `sha256:${'0'.repeat(64)}`, size: 100, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { ...top, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    };
    top = { mediaType: 'application/vnd.oci.image.index.v1+json', ...put(Buffer.from(JSON.stringify(list))) };
  }
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [top] }));
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
    const layout = path.join(work, 'export-layout');
    assert.deepEqual(await exportOciLayout(host.driver.images, 'test/busybox:1', layout), { manifestDigest: first.manifestDigest });
    assert.equal(JSON.parse(execFileSync('skopeo', ['inspect', `oci:${layout}:test/busybox:1`]).toString()).Digest, first.manifestDigest, 'skopeo finds it by name in a layout');
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
    writeLayout(layout, [tarOf(lower), tarOf(upper)], {
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
    const { layerDigests } = writeLayout(layout, [tarOf(one), tarOf(two)], {});
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
  it('a layer whose content is not the config\'s diff_id is refused naming it; nothing stored', async () => {
    const one = path.join(work, 'diff-one');
    fs.mkdirSync(one);
    fs.writeFileSync(path.join(one, 'a.txt'), 'a\n');
    const layout = path.join(work, 'diff-layout');
    const wrong = `sha256:${'e'.repeat(64)}`;
    const { layerDigests } = writeLayout(layout, [tarOf(one)], {}, { diffIds: [wrong] });
    const before = storeListing(host);
    await assert.rejects(importOciLayout(host.driver.images, layout, { tag: 'test/diff:1' }), {
      message: new RegExp(`^layer 1/1 \\(${layerDigests[0]}\\) does not match the config's diff_id: expected ${wrong}, its content is sha256:[0-9a-f]{64}; the image is damaged$`),
    });
    assert.deepEqual(storeListing(host), before);
  });

  it('a multi-arch index gives its linux/amd64 image (zstd layers); the arm64 one is never read', async () => {
    const root = path.join(work, 'multi');
    fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    fs.symlinkSync('busybox', path.join(root, 'bin/sh'));
    fs.writeFileSync(path.join(root, 'arch.txt'), 'amd64\n');
    const layout = path.join(work, 'multi-layout');
    writeLayout(layout, [tarOf(root)], { config: { Cmd: ['/bin/sh'] } }, { multiArch: true, compress: 'zstd' });
    await importOciLayout(host.driver.images, layout, { tag: 'test/multi:1' });
    assert.match(await runAndRead('multi-1', 'test/multi:1', 'cat /arch.txt; echo END'), /stdout: amd64\nstdout: END/);
  });

  it('refuses hostile layers naming the entry: a path climbing out, a hard link out, a file through a link', async () => {
    const hostile = (script: string) => execFileSync('python3', ['-c', `import tarfile, io, sys
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w') as t:
${script}
sys.stdout.buffer.write(buf.getvalue())
`], { maxBuffer: 2 ** 20 });
    const cases: Array<[string, string, RegExp]> = [
      ['climb', "    ti = tarfile.TarInfo('../../escape.txt'); ti.size = 1; t.addfile(ti, io.BytesIO(b'x'))", /^layer 1\/1 \(sha256:[0-9a-f]+\) holds "\.\.\/\.\.\/escape\.txt", which climbs out with "\.\."$/],
      ['hardlink', "    ti = tarfile.TarInfo('shadow'); ti.type = tarfile.LNKTYPE; ti.linkname = '../../../etc/shadow'; t.addfile(ti)", /holds "shadow", a hard link to \.\.\/\.\.\/\.\.\/etc\/shadow, outside the archive$/],
      ['through', "    ti = tarfile.TarInfo('etc'); ti.type = tarfile.SYMTYPE; ti.linkname = '/tmp'; t.addfile(ti)\n    ti = tarfile.TarInfo('etc/carte-oci-escape'); ti.size = 1; t.addfile(ti, io.BytesIO(b'x'))", /holds "etc" both as a symbolic link and as a folder$/],
      ['device', "    ti = tarfile.TarInfo('dev/mem'); ti.type = tarfile.CHRTYPE; ti.devmajor = 1; ti.devminor = 1; t.addfile(ti)", /holds "dev\/mem", a device node$/],
    ];
    const before = storeListing(host);
    for (const [name, script, message] of cases) {
      const layout = path.join(work, `hostile-${name}`);
      writeLayout(layout, [hostile(script)], {});
      await assert.rejects(importOciLayout(host.driver.images, layout, { tag: `test/hostile-${name}:1` }), { message }, name);
    }
    assert.equal(fs.existsSync('/tmp/carte-oci-escape'), false);
    assert.deepEqual(storeListing(host), before);
  });
  it('a plain rootfs tarball is detected as one, and keeps absolute link targets (bin/sh -> /bin/busybox runs)', async () => {
    const root = path.join(work, 'rootfs');
    fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    fs.symlinkSync('/bin/busybox', path.join(root, 'bin/sh'));
    const file = path.join(work, 'rootfs.tar');
    fs.writeFileSync(file, tarOf(root));
    await assert.rejects(importImageArchive(host.driver.images, file, undefined), { message: `${file} is a plain rootfs archive, which names no image; give one with -t NAME:TAG` });
    const left: string[] = [];
    const image = await importImageArchive(host.driver.images, file, 'test/rootfs-abs:1', { onLeftOut: (l) => left.push(l) });
    assert.deepEqual([image.format, left], ['rootfs', []]);
    assert.equal(fs.readlinkSync(path.join(host.driver.images.layerPath(image.layers[0]!), 'bin/sh')), '/bin/busybox');
    assert.match(await runAndRead('rootfs-1', 'test/rootfs-abs:1', 'echo via-sh; echo END'), /stdout: via-sh\nstdout: END/);
  });
});
