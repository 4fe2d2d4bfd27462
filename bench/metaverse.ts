// Metaverse benchmark (root): the whole demo (its images and manifests,
// published ports moved, on a home and bridge of its own) under a real daemon,
// and the load generator's 80 students for 60 s. Prints:
//  - errors (goal 0), login p99, game move fan-out p50/p99, every operation;
//  - replicas per service: at the start, at the peak, and after the load
//    (the busy services come back down once their scale-down delay passed);
//  - memory of the whole deployment, sampled every 2 s: each instance's
//    working set (cgroup usage minus inactive file cache, as the scaler reads
//    it) + the RSS of the carte daemon and of every conmon; peak and mean
//    (goal: peak < 1 GiB).
import fs from 'node:fs';
import path from 'node:path';
import { buildImages, carteWith, copyManifests, ensureSecret, SERVICES, waitConverged } from '../examples/metaverse/demo.js';
import { formatSummary, runLoad } from '../examples/metaverse/loadgen/loadgen.js';
import { makeE2eEnv } from '../test/helpers/e2e.js';
import { tempDir } from '../test/helpers/paths.js';

if (process.getuid?.() !== 0) {
  console.log('metaverse benchmark skipped: it needs root');
  process.exit(0);
}

const PLAYERS = Number(process.env.PLAYERS ?? 80);
const DURATION_MS = Number(process.env.DURATION_MS ?? 60_000);
/** GAME_MIN=1 runs Game without its class-hours schedule (the figures outside class hours). */
const GAME_MIN = process.env.GAME_MIN ? Number(process.env.GAME_MIN) : undefined;
const MiB = 1024 * 1024;

const rssOf = (pid: number) => {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
};

/** conmon processes monitoring instances under this CARTE_HOME. */
function conmonPids(home: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (path.basename(argv[0] ?? '') === 'conmon' && argv.some((a) => a.startsWith(home))) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Working set of every instance cgroup under the parent (cgroup v1 memory controller). */
function instanceWorkingSets(cgroupParent: string): Record<string, number> {
  const root = path.join('/sys/fs/cgroup/memory', cgroupParent);
  const out: Record<string, number> = {};
  for (const d of fs.existsSync(root) ? fs.readdirSync(root, { withFileTypes: true }) : []) {
    if (!d.isDirectory()) continue;
    try {
      const usage = Number(fs.readFileSync(path.join(root, d.name, 'memory.usage_in_bytes'), 'utf8'));
      const inactive = Number(/^total_inactive_file (\d+)$/m.exec(fs.readFileSync(path.join(root, d.name, 'memory.stat'), 'utf8'))?.[1] ?? 0);
      out[d.name] = Math.max(0, usage - inactive);
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

const replicas = (names: string[]) => Object.fromEntries(SERVICES.map((s) => [s, names.filter((n) => n.startsWith(`${s}-`)).length]));
const fmtReplicas = (r: Record<string, number>) => SERVICES.map((s) => `${s} ${r[s]}`).join(', ');

console.log(`Metaverse benchmark (node ${process.version}): ${PLAYERS} players for ${DURATION_MS / 1000}s against the whole demo`);
const e = makeE2eEnv();
const dir = tempDir('carte-bench-mv-');
try {
  const ep = copyManifests(dir, { portOffset: 30_000, ...(GAME_MIN !== undefined ? { gameMin: GAME_MIN } : {}) });
  const carte = carteWith(e.env);
  await buildImages(carte);
  await ensureSecret(carte, dir);
  const daemon = e.daemon(['--watch', dir, '--publish-address', '127.0.0.1']);
  await waitConverged(carte, SERVICES, 180_000);
  const parent = e.env.CARTE_CGROUP_PARENT!;
  const start = replicas(Object.keys(instanceWorkingSets(parent)));
  console.log(`converged: ${fmtReplicas(start)}`);

  const peak: Record<string, number> = { ...start };
  const totals: number[] = [];
  let peakDetail = '';
  const sample = () => {
    const sets = instanceWorkingSets(parent);
    const r = replicas(Object.keys(sets));
    for (const s of SERVICES) peak[s] = Math.max(peak[s]!, r[s]!);
    const containers = Object.values(sets).reduce((a, b) => a + b, 0);
    const daemonRss = rssOf(daemon.pid!);
    const conmons = conmonPids(e.home).reduce((a, p) => a + rssOf(p), 0);
    const total = containers + daemonRss + conmons;
    if (total > Math.max(0, ...totals)) peakDetail = `containers ${(containers / MiB).toFixed(0)} MiB (${Object.keys(sets).length} instances) + carte daemon ${(daemonRss / MiB).toFixed(0)} MiB + conmon ${(conmons / MiB).toFixed(0)} MiB`;
    totals.push(total);
  };
  const sampler = setInterval(sample, 2000);
  const summary = await runLoad({ players: PLAYERS, durationMs: DURATION_MS, rampMs: 20_000, rooms: 8, endpoints: ep });
  clearInterval(sampler);
  console.log(`\n${formatSummary(summary)}\n`);

  // After the load: the busy services come back down (scale-down delay 30 s + stabilization).
  const deadline = Date.now() + 120_000;
  let after = replicas(Object.keys(instanceWorkingSets(parent)));
  while (Date.now() < deadline && SERVICES.some((s) => after[s]! > start[s]!)) {
    await new Promise((r) => setTimeout(r, 2000));
    after = replicas(Object.keys(instanceWorkingSets(parent)));
  }
  const events = (await carte(['events', '--limit', '200'])).stdout.split('\n').filter((l) => /Autoscaled|ScaledToZero|Woken/.test(l));
  console.log('autoscaler events:');
  for (const l of events) console.log(`  ${l.replace(/\s+/g, ' ').trim()}`);
  console.log(`replicas: start ${fmtReplicas(start)}`);
  console.log(`          peak  ${fmtReplicas(peak)}`);
  console.log(`          after ${fmtReplicas(after)} (${SERVICES.every((s) => after[s]! <= start[s]!) ? 'back down' : 'not back down within 120 s'})`);
  const peakTotal = Math.max(...totals);
  const mean = totals.reduce((a, b) => a + b, 0) / totals.length;
  console.log(`memory of the whole deployment under load: peak ${(peakTotal / MiB).toFixed(0)} MiB (${peakDetail}), mean ${(mean / MiB).toFixed(0)} MiB (goal: < 1024 MiB)`);
  console.log(`errors: ${summary.errors} (goal 0); login p99 ${summary.ops.login?.p99.toFixed(1)} ms; move fan-out p50 ${summary.fanout.p50.toFixed(1)} ms, p99 ${summary.fanout.p99.toFixed(1)} ms`);
} finally {
  await e.teardown();
  fs.rmSync(dir, { recursive: true, force: true });
}
