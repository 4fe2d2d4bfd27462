// The pure parts of OCI import/export: whiteout names, descriptor checks,
// platform and layout selection, the config mapping, entry rules, format
// detection and the tar writer's headers.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { archiveFormat, shortName } from '../../../src/drivers/linux/images/oci.js';
import { layerEntryRefusal } from '../../../src/drivers/linux/images/oci-layer.js';
import {
  checkDescriptor, configFromOci, digestHex, layerCompression, ociConfigFrom, parseIndexOrManifest, parseOciConfig,
  selectFromLayout, selectPlatform, sniffCompression, whiteoutMeaning, type Descriptor,
} from '../../../src/drivers/linux/images/oci-spec.js';
import { parseOpaqueDump } from '../../../src/drivers/linux/images/overlay-marks.js';
import { treeDigest } from '../../../src/drivers/linux/images/store.js';
import { paxRecord, tarStream, type TarEntry } from '../../../src/drivers/linux/images/tar-writer.js';
import { tempDir } from '../../helpers/paths.js';

const D = (n: string) => `sha256:${n.repeat(64).slice(0, 64)}`;
const desc = (over: Partial<Descriptor> = {}): Descriptor => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('a'), size: 10, ...over });

describe('OCI: whiteout names', () => {
  const cases: Array<[string, ReturnType<typeof whiteoutMeaning>]> = [
    ['etc/passwd', { kind: 'plain' }],
    ['etc/.wh.gone.txt', { kind: 'whiteout', target: 'etc/gone.txt' }],
    ['./.wh.top', { kind: 'whiteout', target: 'top' }],
    ['data/.wh..wh..opq', { kind: 'opaque', dir: 'data' }],
    ['.wh..wh..opq', { kind: 'opaque', dir: '' }],
    ['a/.wh..wh.plnk', { kind: 'ignored' }],
    ['a/.wh.', { kind: 'ignored' }],
    ['a/x.wh.y', { kind: 'plain' }],
  ];
  for (const [name, want] of cases) it(`${name} → ${want.kind}`, () => assert.deepEqual(whiteoutMeaning(name), want));
});

describe('OCI: descriptors and documents', () => {
  it('reads only sha256 digests, never a path in disguise', () => {
    assert.equal(digestHex(D('b'), 'x'), 'b'.repeat(64));
    assert.throws(() => digestHex('sha512:abc', 'layer 1'), { message: 'layer 1 has digest "sha512:abc"; carte reads only sha256 digests (sha256:<64 hex digits>)' });
    assert.throws(() => digestHex('sha256:../../etc/passwd', 'the config'), /the config has digest "sha256:..\/..\/etc\/passwd"/);
    assert.throws(() => checkDescriptor({ digest: D('a'), size: -1, mediaType: 'x' }, 'layer 2'), { message: 'layer 2 has no valid size' });
  });

  it('tells an index from a manifest, by media type or by shape', () => {
    const index = JSON.stringify({ schemaVersion: 2, manifests: [desc()] });
    assert.equal(parseIndexOrManifest(index, 'index.json').kind, 'index');
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', config: desc(), layers: [desc()] });
    assert.equal(parseIndexOrManifest(manifest, 'm').kind, 'manifest');
    assert.throws(() => parseIndexOrManifest('{"schemaVersion":1}', 'm'), { message: 'm is not an OCI index or manifest (schemaVersion 2)' });
    assert.throws(() => parseIndexOrManifest('{', 'm'), /^CarteError: m is not valid JSON/);
    assert.throws(() => parseIndexOrManifest(JSON.stringify({ schemaVersion: 2, config: desc(), layers: [{ digest: 'md5:1', size: 1, mediaType: 'x' }] }), 'm'), /m layer 1 has digest "md5:1"/);
  });

  it('knows layer compressions by media type and by magic bytes', () => {
    assert.equal(layerCompression('application/vnd.oci.image.layer.v1.tar+zstd'), 'zstd');
    assert.equal(layerCompression('application/vnd.docker.image.rootfs.diff.tar.gzip'), 'gzip');
    assert.equal(layerCompression('application/vnd.oci.image.layer.v1.tar'), 'none');
    assert.equal(layerCompression('application/vnd.in-toto+json'), null);
    assert.equal(sniffCompression(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
    assert.equal(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
    assert.equal(sniffCompression(Buffer.from('usta')), 'none');
  });
});

describe('OCI: platform and image selection', () => {
  const arm = desc({ digest: D('1'), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const amd = desc({ digest: D('2'), platform: { os: 'linux', architecture: 'amd64' } });
  const att = desc({ digest: D('3'), platform: { os: 'unknown', architecture: 'unknown' } });

  it('picks linux/amd64 from a manifest list, whatever the order', () => {
    assert.equal(selectPlatform([arm, att, amd], 'index').digest, D('2'));
  });

  it('without linux/amd64, lists what there is', () => {
    assert.throws(() => selectPlatform([arm, att], 'image index sha256:x'), { message: 'image index sha256:x has no image for linux/amd64 (it has: linux/arm64/v8, unknown/unknown)' });
  });

  it('a layout: by ref name, by digest, the only one, or by platform', () => {
    const a = desc({ digest: D('4'), annotations: { 'org.opencontainers.image.ref.name': '1.0' } });
    const b = desc({ digest: D('5'), annotations: { 'org.opencontainers.image.ref.name': '2.0', 'io.containerd.image.name': 'team/app:2.0' } });
    const index = { schemaVersion: 2 as const, manifests: [a, b] };
    assert.equal(selectFromLayout(index, '1.0'), a);
    assert.equal(selectFromLayout(index, 'team/app:2.0'), b);
    assert.equal(selectFromLayout(index, D('4')), a);
    assert.throws(() => selectFromLayout(index, '3.0'), { message: 'the OCI layout has no image "3.0" (it has: 1.0, 2.0)' });
    assert.throws(() => selectFromLayout(index, undefined), { message: 'the OCI layout holds 2 images; say which (1.0, 2.0)' });
    assert.equal(selectFromLayout({ schemaVersion: 2, manifests: [a] }, undefined), a);
    assert.equal(selectFromLayout({ schemaVersion: 2, manifests: [arm, amd] }, undefined), amd);
  });
});

describe('OCI: image config', () => {
  it('honours Env, Entrypoint, Cmd, WorkingDir, User, ExposedPorts and Labels', () => {
    const cfg = parseOciConfig(JSON.stringify({
      architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [D('c')] },
      config: { Env: ['PATH=/usr/bin', 'A=1'], Entrypoint: ['/entry.sh'], Cmd: ['serve'], WorkingDir: '/app', User: 'app:staff', ExposedPorts: { '8080/tcp': {}, '53/udp': {}, '9090': {} }, Labels: { team: 'games', n: 5 } },
    }), 'the image config');
    assert.deepEqual(configFromOci(cfg), {
      env: ['PATH=/usr/bin', 'A=1'], entrypoint: ['/entry.sh'], cmd: ['serve'], workingDir: '/app', user: 'app:staff',
      exposedPorts: ['53/udp', '8080/tcp', '9090/tcp'], labels: { team: 'games' },
    });
  });

  it('a config without settings is an empty one; a null Cmd stays null', () => {
    const cfg = parseOciConfig(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] }, config: { Cmd: null, Env: null } }), 'c');
    assert.deepEqual(configFromOci(cfg), { env: [], entrypoint: null, cmd: null, workingDir: '/', user: '', exposedPorts: [], labels: {} });
  });

  it('refuses configs of another OS or without diff_ids', () => {
    assert.throws(() => parseOciConfig(JSON.stringify({ os: 'windows', rootfs: { type: 'layers', diff_ids: [] } }), 'the image config'), { message: 'the image config is an image for windows; carte runs linux images' });
    assert.throws(() => parseOciConfig('{"os":"linux"}', 'the image config'), { message: 'the image config is not an image config (no rootfs.diff_ids)' });
  });

  it('writes back what it reads, with a fixed key order', () => {
    const config = { env: ['A=1'], cmd: ['sh'], entrypoint: null, workingDir: '/app', user: '10001:10001', exposedPorts: ['8080/tcp'], labels: { z: '1', a: '2' } };
    const oci = ociConfigFrom(config, [D('d')], '2026-01-01T00:00:00.000Z');
    assert.equal(JSON.stringify(oci), '{"created":"2026-01-01T00:00:00.000Z","architecture":"amd64","os":"linux","config":{"User":"10001:10001","ExposedPorts":{"8080/tcp":{}},"Env":["A=1"],"Cmd":["sh"],"WorkingDir":"/app","Labels":{"a":"2","z":"1"}},"rootfs":{"type":"layers","diff_ids":["' + D('d') + '"]}}');
    assert.deepEqual(configFromOci(oci), { ...config, labels: { a: '2', z: '1' } });
  });
});

describe('OCI: layer entries and archives', () => {
  it('symbolic links may point anywhere (the container resolves them); paths and hard links stay inside; no devices', () => {
    assert.equal(layerEntryRefusal({ path: 'bin/sh', type: 'SymbolicLink', linkpath: '/bin/busybox' }), null);
    assert.equal(layerEntryRefusal({ path: 'lib/x', type: 'SymbolicLink', linkpath: '../../../../lib64/x' }), null);
    assert.equal(layerEntryRefusal({ path: '../etc/x', type: 'File' }), '"../etc/x", which climbs out with ".."');
    assert.equal(layerEntryRefusal({ path: '/etc/x', type: 'File' }), '"/etc/x", an absolute path');
    assert.equal(layerEntryRefusal({ path: 'x', type: 'Link', linkpath: '../../etc/shadow' }), '"x", a hard link to ../../etc/shadow, outside the archive');
    assert.equal(layerEntryRefusal({ path: 'dev/sda', type: 'BlockDevice' }), '"dev/sda", a device node');
    assert.equal(layerEntryRefusal({ path: 'p', type: 'FIFO' }), '"p", a FIFO');
  });

  it('detects the archive format from entry names', () => {
    assert.equal(archiveFormat(['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/x']), 'oci-archive');
    assert.equal(archiveFormat(['./oci-layout', './index.json', './manifest.json']), 'oci-archive');
    assert.equal(archiveFormat(['manifest.json', 'repositories', 'abc/layer.tar']), 'docker-archive');
    assert.equal(archiveFormat(['./', './bin/', './bin/sh']), 'rootfs');
    assert.equal(shortName('docker.io/library/redis:7'), 'redis:7');
    assert.equal(shortName('docker.io/team/app:1'), 'team/app:1');
    assert.equal(shortName('registry.example/team/app:1'), 'registry.example/team/app:1');
  });

  it('reads getfattr dumps, odd names included', () => {
    const dump = '# file: /l/data\ntrusted.overlay.opaque="y"\n\n# file: /l/a\\040b\ntrusted.overlay.opaque="y"\n\n# file: /l/no\ntrusted.overlay.opaque="n"\n';
    assert.deepEqual([...parseOpaqueDump(dump, '/l')].sort(), ['a b', 'data']);
  });
});

describe('OCI: the tar writer', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('PAX records count their own length', () => {
    for (const v of ['x', 'a'.repeat(90), 'a'.repeat(95), 'a'.repeat(994)]) {
      const r = paxRecord('path', v);
      assert.equal(Number(r.toString().split(' ')[0]), r.length);
    }
  });

  it('writes what node-tar reads back: long names, long link targets, big ids, modes', async () => {
    const long = `${'d'.repeat(80)}/${'f'.repeat(80)}.txt`;
    const entries: TarEntry[] = [
      { type: 'dir', path: 'd'.repeat(80), mode: 0o1777, uid: 0, gid: 0 },
      { type: 'file', path: long, mode: 0o4755, uid: 3_000_000, gid: 100, size: 5, source: Buffer.from('hello') },
      { type: 'symlink', path: 'link', mode: 0o777, uid: 0, gid: 0, target: `/${'t'.repeat(120)}` },
      { type: 'file', path: 'é.txt', mode: 0o644, uid: 1, gid: 1, size: 0, source: Buffer.alloc(0) },
    ];
    const file = path.join(dir, 'x.tar');
    await pipeline(Readable.from(tarStream(entries)), fs.createWriteStream(file));
    const seen: string[] = [];
    await tar.t({ file, onReadEntry: (e) => void seen.push(`${e.type} ${e.path} ${(e.mode ?? 0).toString(8)} ${e.uid}:${e.gid} ${e.size} ${e.linkpath ?? ''}`) });
    assert.deepEqual(seen, [
      `Directory ${'d'.repeat(80)}/ 1777 0:0 0 `,
      `File ${long} 4755 3000000:100 5 `,
      `SymbolicLink link 777 0:0 0 /${'t'.repeat(120)}`,
      'File é.txt 644 1:1 0 ',
    ]);
    const again = path.join(dir, 'y.tar');
    await pipeline(Readable.from(tarStream(entries)), fs.createWriteStream(again));
    assert.ok(fs.readFileSync(file).equals(fs.readFileSync(again)), 'same entries, same bytes');
  });
});

describe('layer digests', () => {
  it('a plain tree keeps the digest it always had', async () => {
    const root = tempDir();
    try {
      fs.mkdirSync(path.join(root, 'bin'));
      fs.writeFileSync(path.join(root, 'bin/x'), 'hello');
      fs.symlinkSync('x', path.join(root, 'bin/y'));
      const mode = (p: string) => (fs.lstatSync(path.join(root, p)).mode & 0o7777).toString(8);
      const h = (s: string) => createHash('sha256').update(s).digest('hex');
      // The listing before OCI images, line for line.
      const listing = `D bin ${mode('bin')}\nF bin/x ${mode('bin/x')} ${h('hello')}\nL bin/y ${mode('bin/y')} x\n`;
      const uid = process.getuid?.() ?? 0;
      const expected = uid === 0 ? h(listing) : undefined;
      const got = await treeDigest(root);
      if (expected) assert.equal(got.digest, expected);
      assert.equal(got.size, 5);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
