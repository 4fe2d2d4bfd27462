// `carte image export` and `carte image import` from the command line: the
// archive skopeo turns into a docker archive comes back under its own name
// and runs; a damaged archive fails with the layer named and stores nothing.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildBusybox, makeE2eEnv, type E2eEnv } from '../helpers/e2e.js';
import { requireRoot } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

describe('e2e: carte image export and import', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let dir: string;
  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    dir = tempDir('carte-archives-');
    await buildBusybox(e);
  });
  after(async () => {
    await e?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('exports an OCI archive, imports skopeo\'s docker archive of it by its own name, and runs it', async () => {
    const file = path.join(dir, 'bb.tar');
    const exported = await e.carte(['image', 'export', 'e2e/busybox:1', file]);
    assert.equal(exported.code, 0, exported.stderr);
    const manifest = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${file}`]).toString()).Digest as string;
    assert.match(exported.stdout, new RegExp(`^exported e2e/busybox:1 to ${file} \\(OCI archive, [0-9.]+ MiB, manifest ${manifest}\\)\\n$`));

    const docker = path.join(dir, 'docker.tar');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${file}`, `docker-archive:${docker}:team/copy:2`]);
    const imported = await e.carte(['image', 'import', docker]);
    assert.equal(imported.code, 0, imported.stderr);
    const id = JSON.parse(fs.readFileSync(path.join(e.home, 'images', 'refs.json'), 'utf8'))['e2e/busybox:1'] as string;
    assert.match(imported.stdout, new RegExp(`^imported team/copy:2 from a docker archive \\(id ${id.slice(0, 12)}, [0-9.]+ MiB, 2 layers\\)\\n$`));
    assert.deepEqual(imported.stderr.split('\n').filter(Boolean).map((l) => l.replace(/\(.*\)/, '(…)').replace(/[0-9a-f]{12} verified/, 'X verified').replace(/\d+ bytes/, 'N bytes')),
      ['layer 1/2 (…): unpacked N bytes, sha256:X verified', 'layer 2/2 (…): unpacked N bytes, sha256:X verified']);

    // Once team/copy:2 is stored, an archive's own name never replaces it (whoever wrote the archive would
    // take over a tag services run); -t says it on purpose.
    const refs = () => fs.readFileSync(path.join(e.home, 'images', 'refs.json'), 'utf8');
    const before = refs();
    assert.deepEqual(await e.carte(['image', 'import', docker]), {
      code: 2, stdout: '',
      stderr: 'error: the archive names itself team/copy:2, which is already a stored image; an archive\'s own name never replaces one: give -t team/copy:2 to replace it on purpose, or -t another name\n',
    });
    assert.equal(refs(), before);
    assert.equal((await e.carte(['image', 'import', docker, '-t', 'team/copy:2'])).code, 0);

    const ran = await e.carte(['run', '--name', 'copy-1', 'team/copy:2', '--', 'sh', '-c', 'echo from-the-copy']);
    assert.equal(ran.code, 0, ran.stderr);
    const logs = await (async () => {
      for (let i = 0; i < 100; i++) {
        const l = await e.carte(['logs', 'copy-1']);
        if (l.stdout.includes('from-the-copy')) return l.stdout;
        await new Promise((r) => setTimeout(r, 100));
      }
      return '';
    })();
    assert.equal(logs, 'from-the-copy\n');
    await e.carte(['rm', 'copy-1']);
  });

  it('a damaged archive fails naming the layer, exit 1, and stores nothing', async () => {
    const file = path.join(dir, 'bb.tar');
    const layout = path.join(dir, 'layout');
    fs.mkdirSync(layout);
    execFileSync('tar', ['-C', layout, '-xf', file]);
    const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'));
    const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs', 'sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    const layer = manifest.layers[1].digest as string;
    const blob = path.join(layout, 'blobs', 'sha256', layer.slice(7));
    const bytes = fs.readFileSync(blob);
    bytes[100]! ^= 0x55;
    fs.writeFileSync(blob, bytes);
    const damaged = path.join(dir, 'damaged.tar');
    execFileSync('tar', ['-C', layout, '-cf', damaged, '.']);
    const before = { layers: fs.readdirSync(path.join(e.home, 'layers')).sort(), refs: fs.readFileSync(path.join(e.home, 'images', 'refs.json'), 'utf8') };
    const r = await e.carte(['image', 'import', damaged, '-t', 'team/damaged:1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^error: layer 2/2 \\(${layer}\\) does not match its digest: expected ${layer}, got sha256:[0-9a-f]{64}; the image is damaged\\n$`));
    assert.deepEqual({ layers: fs.readdirSync(path.join(e.home, 'layers')).sort(), refs: fs.readFileSync(path.join(e.home, 'images', 'refs.json'), 'utf8') }, before);
  });
});
