// OCI import/export benchmark (as root): a node image (COPY --from=host
// /usr/bin/node with its libraries, about 100 MiB, as the metaverse images
// are) is exported as an OCI archive and imported again into a fresh store,
// beside skopeo doing the same reading and writing of that archive:
//  - carte export (tar + gzip -1 of every layer, digests) vs GNU `tar -c | gzip -1` of the same layer (the same work, in C);
//  - carte import (unpack, verify digests, add layers) vs `skopeo copy oci-archive:A dir:D` (verify, no unpacking);
//  - the opaque-folder scan (getfattr) treeDigest now does, beside the whole treeDigest of the node layer.
// Medians over BENCH_RUNS repeats (default 5). Run with `make bench`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ImageBuilder } from '../src/drivers/linux/images/build.js';
import { exportOciArchive, importImageArchive } from '../src/drivers/linux/images/oci.js';
import { opaqueDirs } from '../src/drivers/linux/images/overlay-marks.js';
import { ImageStore, treeDigest } from '../src/drivers/linux/images/store.js';
import { Runner } from '../src/drivers/linux/exec.js';
import { cliLogger } from '../src/log.js';
import { tempDir } from '../test/helpers/paths.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = async (f: () => unknown) => {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
};

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('oci bench: skipped (needs root)');
    return;
  }
  const work = tempDir('carte-bench-oci-');
  try {
    const home = path.join(work, 'home');
    const images = new ImageStore(home);
    const ctx = path.join(work, 'ctx');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM scratch\nCOPY --from=host /usr/bin/node /usr/bin/node\nCMD ["node"]\n');
    await new ImageBuilder(images, new Runner(cliLogger('silent'))).build({ context: ctx, tag: 'bench/node:1' });
    const image = await images.get('bench/node:1');
    const archive = path.join(work, 'node.tar');
    const rows: Array<[string, number, number]> = [];
    const t = { export: [] as number[], tarGzip: [] as number[], import: [] as number[], skopeoDir: [] as number[] };
    const layer = images.layerPath(image.layers[0]!);
    for (let i = 0; i < RUNS; i++) {
      t.export.push(await ms(() => exportOciArchive(images, 'bench/node:1', archive)));
      t.tarGzip.push(await ms(() => execFileSync('sh', ['-c', 'tar -C "$1" -cf - . | gzip -1 > "$2"', 'sh', layer, path.join(work, 'plain.tgz')])));
      const fresh = new ImageStore(path.join(work, `home-${i}`));
      t.import.push(await ms(() => importImageArchive(fresh, archive, 'bench/node:1')));
      fs.rmSync(path.join(work, `home-${i}`), { recursive: true, force: true });
      const dir = path.join(work, 'dir');
      fs.rmSync(dir, { recursive: true, force: true });
      t.skopeoDir.push(await ms(() => execFileSync('skopeo', ['copy', '-q', `oci-archive:${archive}`, `dir:${dir}`])));
    }
    rows.push(['export (carte) vs tar -c | gzip -1 of the layer', median(t.export), median(t.tarGzip)]);
    rows.push(['import (carte) vs skopeo copy oci-archive → dir', median(t.import), median(t.skopeoDir)]);
    const scan: number[] = [];
    const whole: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      scan.push(await ms(() => opaqueDirs(layer)));
      whole.push(await ms(() => treeDigest(layer)));
    }
    rows.push(['opaque scan (getfattr) vs whole treeDigest of the node layer', median(scan), median(whole)]);
    console.log(`OCI images: node image, ${(image.size / 2 ** 20).toFixed(1)} MiB in ${image.layers.length} layer(s), archive ${(fs.statSync(archive).size / 2 ** 20).toFixed(1)} MiB; medians of ${RUNS}`);
    for (const [what, a, b] of rows) console.log(`  ${what}: ${a.toFixed(0)} ms vs ${b.toFixed(0)} ms (ratio ${(a / b).toFixed(2)})`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

void main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
