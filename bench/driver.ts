// Linux driver benchmark (root). Prints:
//  - driver.create → process running, median of N, beside a bare `runc run -d`
//    of the same kind of bundle (same image layers on overlayfs, same spec,
//    a pre-made netns) in the same run, and their ratio (goal ≤ 1.5×);
//  - where create's time goes (per step, from the driver's debug log);
//  - starting 50 instances (10 at a time);
//  - memory each instance costs outside its container (the conmon monitor);
//  - removing 20 running instances, 8 at a time, in seconds and CPU seconds;
//  - building the demo's node image, cold and cached.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildSpec, parseHostRlimits } from '../src/drivers/linux/spec.js';
import { BUSYBOX_CARTEFILE, buildImage, instance, makeTestHost } from '../test/helpers/linux.js';
import { tempDir } from '../test/helpers/paths.js';

const N = Number(process.env.BENCH_RUNS ?? 25);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(1)} ms`;
/** CPU seconds of this process and its reaped children (runc, CNI plugins, ip): utime, stime, cutime, cstime of proc(5). */
const cpuSeconds = () => {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(f[i]), 0) / 100;
};

if (process.getuid?.() !== 0) {
  console.log('driver benchmark skipped: it needs root');
  process.exit(0);
}

const host = makeTestHost();
const runc = host.driver.runtime.path;
const root = path.join(host.home, 'bare-runc');
try {
  await buildImage(host, 'test/busybox:1', BUSYBOX_CARTEFILE);
  const image = await host.driver.images.get('test/busybox:1');

  // Baseline: a bare runc bundle over the same layers, in a netns made beforehand.
  const bundle = path.join(host.home, 'bare');
  for (const d of ['rootfs', 'upper', 'work']) fs.mkdirSync(path.join(bundle, d), { recursive: true });
  const lower = image.layers.map((d) => host.driver.images.layerPath(d)).reverse().join(':');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${bundle}/upper,workdir=${bundle}/work`, `${bundle}/rootfs`]);
  execFileSync('ip', ['netns', 'add', `${host.bridge}-bare`]);
  const spec = buildSpec({
    hostname: 'bare', args: ['/bin/busybox', 'sleep', '1000'], env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, additionalGids: [],
    rootfs: 'rootfs', netnsPath: `/run/netns/${host.bridge}-bare`, cgroupsPath: `${host.cgroupParent}/bare`,
    cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 64, binds: [], rlimits: parseHostRlimits(fs.readFileSync('/proc/self/limits', 'utf8')), annotations: {},
  });
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(spec));
  const bare: number[] = [];
  const carte: number[] = [];
  for (let i = 0; i < N; i++) {
    let t = performance.now();
    execFileSync(runc, ['--root', root, 'run', '-d', '--bundle', bundle, `bare-${i}`], { stdio: 'ignore' });
    bare.push(performance.now() - t);
    execFileSync(runc, ['--root', root, 'delete', '--force', `bare-${i}`]);

    t = performance.now();
    await host.driver.create(instance(`bench-${i}`, { command: ['busybox', 'sleep', '1000'], resources: { cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 64 } }));
    carte.push(performance.now() - t);
    await host.driver.remove(`bench-${i}`);
  }
  execFileSync('umount', [`${bundle}/rootfs`]);
  execFileSync('ip', ['netns', 'delete', `${host.bridge}-bare`]);
  console.log(`Linux driver benchmark (${N} runs each, node ${process.version})`);
  console.log(`create → running, median: bare runc run -d ${ms(median(bare))}, carte driver.create ${ms(median(carte))}, ratio ${(median(carte) / median(bare)).toFixed(2)}× (goal ≤ 1.5×)`);

  // 50 instances, 10 at a time (the executor's default parallelism).
  const names = Array.from({ length: 50 }, (_, i) => `many-${i}`);
  let t = performance.now();
  for (let i = 0; i < names.length; i += 10) {
    await Promise.all(names.slice(i, i + 10).map((n) => host.driver.create(instance(n, { command: ['busybox', 'sleep', '1000'], resources: { cpuMillis: 100, memoryBytes: 16 * 2 ** 20, pids: 16 } }))));
  }
  const start50 = performance.now() - t;

  // Memory outside the containers: each instance's conmon, RSS and PSS (shared pages split).
  const rss: number[] = [];
  const pss: number[] = [];
  for (const n of names) {
    const pid = fs.readFileSync(path.join('/run/carte', fs.readdirSync('/run/carte').find((d) => fs.existsSync(path.join('/run/carte', d, n)))!, n, 'conmon.pid'), 'utf8').trim();
    rss.push(Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]));
    pss.push(Number(/Pss:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]));
  }
  t = performance.now();
  for (let i = 0; i < names.length; i += 10) await Promise.all(names.slice(i, i + 10).map((n) => host.driver.remove(n)));
  const remove50 = performance.now() - t;
  console.log(`start 50 instances (10 at a time): ${(start50 / 1000).toFixed(2)} s; remove them: ${(remove50 / 1000).toFixed(2)} s`);
  console.log(`monitor (conmon) per instance: RSS median ${median(rss)} KiB, PSS median ${median(pss)} KiB`);

  // Removing 20 running instances, 8 at a time (the reconciler's way: stop with
  // the service's grace, then remove), as `carte delete` of a 20-replica service does.
  const twenty = Array.from({ length: 20 }, (_, i) => `rm-${i}`);
  for (let i = 0; i < twenty.length; i += 10) {
    await Promise.all(twenty.slice(i, i + 10).map((n) => host.driver.create(instance(n, { command: ['busybox', 'sleep', '1000'] }))));
  }
  const cpu0 = cpuSeconds();
  t = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (let n = twenty[next++]; n !== undefined; n = twenty[next++]) {
      await host.driver.stop(n, 10_000);
      await host.driver.remove(n);
    }
  }));
  console.log(`remove 20 running instances (8 at a time, stop with 10 s grace then remove): ${((performance.now() - t) / 1000).toFixed(2)} s, ${(cpuSeconds() - cpu0).toFixed(2)} CPU s (carte and the programs it ran)`);

  // Image build: node from the host binary plus a small app, cold then cached.
  const ctx = tempDir('carte-bench-ctx-');
  fs.writeFileSync(path.join(ctx, 'Cartefile'), 'FROM scratch\nCOPY --from=host /usr/bin/node /usr/bin/node\nCOPY server.js /app/\nCMD ["node", "/app/server.js"]\n');
  fs.writeFileSync(path.join(ctx, 'server.js'), 'require("http").createServer((q, s) => s.end("ok")).listen(8080);\n');
  t = performance.now();
  const cold = await host.driver.builder.build({ context: ctx, tag: 'bench/node:1' });
  const coldMs = performance.now() - t;
  t = performance.now();
  await host.driver.builder.build({ context: ctx, tag: 'bench/node:1' });
  const cachedMs = performance.now() - t;
  fs.rmSync(ctx, { recursive: true, force: true });
  console.log(`node image build: cold ${ms(coldMs)} (${(cold.image.size / 2 ** 20).toFixed(1)} MiB), cached ${ms(cachedMs)}`);
} finally {
  await host.teardown();
}
