// `carte pull` of a ~50 MB image from a local registry (Debian's
// docker-registry on 127.0.0.1) beside `skopeo copy` of the same image to an
// oci: folder, the floor carte builds on (carte = that copy + a manifest
// look-up + unpacking and verifying each layer into its store). Median of 5
// each, alternating, each into an empty store/folder. Run as root:
//   node dist/bench/pull.js
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pullImage, pushImage, type RegistryAccess } from '../src/drivers/linux/images/registry.js';
import { ImageStore } from '../src/drivers/linux/images/store.js';
import { BUSYBOX_CARTEFILE, makeTestHost } from '../test/helpers/linux.js';
import { tempDir } from '../test/helpers/paths.js';
import { startRegistry } from '../test/helpers/registry.js';

const ROUNDS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  const host = makeTestHost();
  const registry = await startRegistry();
  try {
    // Random bytes do not compress: the gzip layer is as big as the file.
    const ctx = tempDir('carte-pull-ctx-');
    fs.writeFileSync(path.join(ctx, 'Cartefile'), `${BUSYBOX_CARTEFILE}COPY big.bin /data/big.bin\n`);
    fs.writeFileSync(path.join(ctx, 'big.bin'), randomBytes(48 * 2 ** 20));
    await host.driver.builder.build({ context: ctx, tag: 'bench/big:1' });
    fs.rmSync(ctx, { recursive: true, force: true });
    const access: RegistryAccess = { insecure: [], credential: async () => null, authRoot: path.join(host.driver.runRoot, 'registry') };
    const ref = `${registry.host}/bench/big:1`;
    await pushImage(host.driver.images, 'bench/big:1', ref, access);
    const size = (await host.driver.images.get('bench/big:1')).size;
    const carte: number[] = [];
    const skopeo: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const home = tempDir('carte-pull-bench-');
      let t = performance.now();
      await pullImage(new ImageStore(home), ref, access);
      carte.push(performance.now() - t);
      fs.rmSync(home, { recursive: true, force: true });
      const dir = tempDir('carte-skopeo-bench-');
      t = performance.now();
      execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:x`]);
      skopeo.push(performance.now() - t);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const c = median(carte);
    const s = median(skopeo);
    console.log(`pull of a ${(size / 2 ** 20).toFixed(0)} MiB image (3 layers) from docker-registry on 127.0.0.1, median of ${ROUNDS}:`);
    console.log(`  skopeo copy docker:// → oci:   ${s.toFixed(0)} ms`);
    console.log(`  carte pull (into the store)    ${c.toFixed(0)} ms  (${(c / s).toFixed(2)}× skopeo)`);
  } finally {
    await registry.stop();
    await host.teardown();
  }
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exit(1);
});
