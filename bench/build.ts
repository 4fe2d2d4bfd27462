// Build benchmark (root: RUN needs a build container). Figures in one run:
//  - cold build, then cached rebuild, of a node image from the host's node
//    binary and a small app (COPY --from=host + COPY): the cached rebuild
//    rereads no file content (the content memo) but checks every source;
//  - the same for a multi-stage build with RUN (busybox base, a RUN step,
//    a second stage copying from the first);
//  - layer dedup: two apps on the same node layer, and the metaverse-like
//    case of N images sharing it: bytes the images add up to vs bytes stored.
// Medians over BENCH_RUNS cached rebuilds (default 20). Baseline: the
// builder before content keys (size+mtime keys) rebuilt the node image in
// about 20 ms (docs/images.md of 2026-11).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { LinuxDriver } from '../src/drivers/linux/driver.js';
import { cliLogger } from '../src/log.js';
import { tempDir } from '../test/helpers/paths.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const BASELINE_CACHED_MS = 20;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = async (f: () => Promise<unknown>) => {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
};
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('build bench: skipped (needs root: RUN steps run in build containers)');
    return;
  }
  const home = tempDir('carte-bench-build-');
  const id = process.pid.toString(16).slice(-4);
  const driver = new LinuxDriver({ home, log: cliLogger('error'), bridge: `cbb${id}`, subnet: '10.201.77.0/24', cgroupParent: `/carte-bench-build-${id}` });
  const contexts: string[] = [];
  const context = (files: Record<string, string>) => {
    const dir = tempDir('carte-bench-ctx-');
    contexts.push(dir);
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    }
    return dir;
  };
  try {
    const nodeFile = (app: string) => ({
      Cartefile: 'FROM scratch\nCOPY --from=host /usr/bin/node /usr/bin/node\nCOPY app/ /app/\nWORKDIR /app\nCMD ["node", "main.js"]\n',
      'app/main.js': `console.log(${JSON.stringify(app)});\n`,
    });
    const nodeCtx = context(nodeFile('one'));
    const cold = await ms(() => driver.builder.build({ context: nodeCtx, tag: 'bench/node:1' }));
    const cached: number[] = [];
    for (let i = 0; i < RUNS; i++) cached.push(await ms(() => driver.builder.build({ context: nodeCtx, tag: 'bench/node:1' })));

    await driver.builder.build({ context: context({ Cartefile: 'FROM scratch\nCOPY --from=host /bin/busybox /bin/busybox\nCOPY --from=host /bin/busybox /bin/sh\nCMD ["/bin/sh"]\n' }), tag: 'bench/busybox:1' });
    const runCtx = context({ Cartefile: 'FROM bench/busybox:1 AS build\nRUN busybox mkdir /out && busybox seq 1 10000 > /out/numbers\nFROM bench/busybox:1\nCOPY --from=build /out/numbers /numbers\n' });
    const runCold = await ms(() => driver.builder.build({ context: runCtx, tag: 'bench/stages:1' }));
    const runCached: number[] = [];
    for (let i = 0; i < RUNS; i++) runCached.push(await ms(() => driver.builder.build({ context: runCtx, tag: 'bench/stages:1' })));

    // Dedup: five apps on the node layer.
    const apps = ['two', 'three', 'four', 'five'];
    for (const app of apps) await driver.builder.build({ context: context(nodeFile(app)), tag: `bench/node-${app}:1` });
    const listed = (await driver.images.list()).filter((l) => l.ref.startsWith('bench/node'));
    const imagesBytes = listed.reduce((n, l) => n + l.image.size, 0);
    const storedBytes = [...new Set(listed.flatMap((l) => l.image.layers))].reduce((n, d) => n + driver.images.layerSize(d), 0);
    const du = Number(execFileSync('du', ['-sb', driver.images.layersDir]).toString().split(/\s/)[0]);

    console.log(`build bench (${RUNS} cached rebuilds each, medians)`);
    console.log(`  node image (COPY --from=host node + app): cold ${cold.toFixed(0)} ms, cached rebuild ${median(cached).toFixed(1)} ms (baseline ~${BASELINE_CACHED_MS} ms with size+mtime keys: ratio ${(median(cached) / BASELINE_CACHED_MS).toFixed(2)})`);
    console.log(`  two stages with RUN (busybox): cold ${runCold.toFixed(0)} ms, cached rebuild ${median(runCached).toFixed(1)} ms`);
    console.log(`  layer dedup: ${listed.length} node images add up to ${mib(imagesBytes)}, stored once: ${mib(storedBytes)} (${mib(imagesBytes - storedBytes)} saved; layers folder on disk ${mib(du)} with the busybox images)`);
  } finally {
    await driver.gc({ keep: new Set() }).catch(() => {});
    await driver.network.removeBridge().catch(() => {});
    for (const c of fs.readdirSync('/sys/fs/cgroup')) {
      for (const dir of [path.join('/sys/fs/cgroup', c, `/carte-bench-build-${id}`, driver.paths.homeId), path.join('/sys/fs/cgroup', c, `/carte-bench-build-${id}`)]) {
        try {
          fs.rmdirSync(dir);
        } catch {
          // absent, or not a hierarchy
        }
      }
    }
    for (const c of contexts) fs.rmSync(c, { recursive: true, force: true });
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(driver.runRoot, { recursive: true, force: true });
  }
}

await main();
