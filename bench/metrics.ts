// Metrics collector benchmark (root). 50 real busybox instances through the
// Linux driver; prints:
//  - CPU of one collector round (driver stats of 50 instances: cgroup files and
//    /proc/<pid>/net/dev each, the host, rates, history), median of the
//    rounds, and what that is in % of one core at the default 10 s interval
//    (goal ≤ 1 %);
//  - the history's memory for 50 instances over 7 days (every tier full):
//    its own count and the process's ArrayBuffer growth (goal ≤ 10 MB);
//  - the history file: its size full, written every hour and at stop, so
//    bytes written per hour, for idle instances (their real readings replayed)
//    and, as a worst case, for readings that change at every sample.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { cliLogger } from '../src/log.js';
import { Collector } from '../src/metrics/collector.js';
import { FIELDS, History, defaultTiers, valuesOf } from '../src/metrics/history.js';
import { HostReader } from '../src/metrics/host.js';
import { encodeHistory, saveHistory } from '../src/metrics/persist.js';
import { BUSYBOX_CARTEFILE, buildImage, instance, makeTestHost } from '../test/helpers/linux.js';

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const INTERVAL_MS = 10_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const MB = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;

if (process.getuid?.() !== 0) {
  console.log('metrics benchmark skipped: it needs root');
  process.exit(0);
}

const host = makeTestHost();
try {
  await buildImage(host, 'test/busybox:1', BUSYBOX_CARTEFILE);
  const names = Array.from({ length: INSTANCES }, (_, i) => `idle-${i + 1}`);
  for (let i = 0; i < names.length; i += 10) {
    await Promise.all(names.slice(i, i + 10).map((n) => host.driver.create(instance(n, { command: ['busybox', 'sleep', '100000'], resources: { cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: 64 } }))));
  }
  const targets = { instances: names.map((name) => ({ name, service: 'idle', restarts: 0, ready: true })), services: [] as string[] };
  const collector = new Collector({
    log: cliLogger('silent'), stats: (n) => host.driver.stats(n), targets: async () => targets, host: new HostReader(host.home), intervalMs: INTERVAL_MS,
  });
  // Rounds back to back: the CPU each costs (user + system of this process; the reads are all in it).
  await collector.sample();
  const cpuMs: number[] = [];
  const wallMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const snap = await collector.sample();
    wallMs.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
    if (snap.instances.length !== INSTANCES) throw new Error(`round ${r} sampled ${snap.instances.length} instances`);
    await new Promise((res) => setTimeout(res, 50));
  }
  const perRound = median(cpuMs);
  console.log(`Metrics collector benchmark (${INSTANCES} busybox instances, ${ROUNDS} rounds, node ${process.version}, ${os.availableParallelism()} cores)`);
  console.log(`one round: ${perRound.toFixed(1)} ms CPU, ${median(wallMs).toFixed(1)} ms wall (medians) → ${((perRound / INTERVAL_MS) * 100).toFixed(2)} % of one core at a ${INTERVAL_MS / 1000} s interval (goal ≤ 1 %)`);

  // A week of history for these instances and the host, their real readings replayed at every step.
  const real = collector.latest();
  const fill = (noisy: boolean) => {
    const h = new History({ tiers: defaultTiers(INTERVAL_MS), maxBytes: 64 * 2 ** 20 });
    const start = Math.floor(Date.now() / 600_000) * 600_000;
    const steps = (7 * 24 * 3600_000) / INTERVAL_MS;
    const vals = real.instances.map((s) => valuesOf('instance', s));
    const hostVals = valuesOf('host', real.host!);
    for (let k = 0; k < steps; k++) {
      const at = start + k * INTERVAL_MS;
      real.instances.forEach((s, i) => h.append('instance', s.instance, at, noisy ? vals[i]!.map((v) => (Number.isNaN(v) ? v : v * (0.5 + Math.random()))) : vals[i]!));
      h.append('host', '', at, noisy ? hostVals.map((v) => v * (0.5 + Math.random())) : hostVals);
    }
    return h;
  };
  global.gc?.();
  const ab0 = process.memoryUsage().arrayBuffers;
  const idle = fill(false);
  const ab1 = process.memoryUsage().arrayBuffers;
  console.log(`history, ${INSTANCES} instances + host, 7 days (every tier full: ${defaultTiers(INTERVAL_MS).map((t) => `${t.stepMs / 1000}s×${t.spanMs / t.stepMs}`).join(', ')}; ${FIELDS.instance.length} fields per instance): ${MB(idle.bytes())} counted, ArrayBuffers +${MB(ab1 - ab0)} (goal ≤ 10 MB)`);

  const file = path.join(host.home, 'metrics-history.json.gz');
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const t0 = performance.now();
  const size = await saveHistory(file, idle);
  const saveMs = performance.now() - t0;
  loop.disable();
  const noisy = encodeHistory(fill(true)).byteLength;
  const writesPerHour = 1; // every hour; plus one per clean stop
  console.log(`history file, idle instances: ${MB(size)} (written in ${saveMs.toFixed(0)} ms, the event loop held at most ${(loop.max / 1e6).toFixed(0)} ms) × ${writesPerHour}/h = ${MB(size * writesPerHour)} written per hour`);
  console.log(`history file, readings changing at every sample (worst case): ${MB(noisy)} × ${writesPerHour}/h = ${MB(noisy * writesPerHour)} per hour`);
  fs.rmSync(file, { force: true });
} finally {
  await host.teardown();
}
