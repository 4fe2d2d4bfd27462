// Reconciler benchmark (root). Prints, against real containers:
//  - saving a manifest (replicas 1 → 10) to 10 ready instances, daemon watching the folder (goal ≤ 2 s);
//  - git push to converged, daemon polling every 1 s;
//  - one idle reconcile pass over 50 services × 2 instances (goal ≤ 50 ms);
//  - daemon RSS with those 100 instances running (goal ≤ 80 MB) and its idle CPU (goal ≤ 2 %).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliLogger } from '../src/log.js';
import { HealthMonitor, makeProber } from '../src/reconciler/health.js';
import { Reconciler } from '../src/reconciler/reconciler.js';
import { Store } from '../src/store/store.js';
import { LinuxDriver } from '../src/drivers/linux/driver.js';
import { BUSYBOX_CARTEFILE, makeE2eEnv, readiness, webManifest, type E2eEnv } from '../test/helpers/e2e.js';
import { eventually } from '../test/helpers/linux.js';
import { tempDir } from '../test/helpers/paths.js';

if (process.getuid?.() !== 0) {
  console.log('reconciler benchmark skipped: it needs root');
  process.exit(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const readyOf = (e: E2eEnv, service: string) => readiness(e.state(), service).filter((i) => i.ready).length;
const cpuTicks = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
};
const TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

async function build(e: E2eEnv) {
  const ctx = tempDir('carte-ctx-');
  fs.writeFileSync(path.join(ctx, 'Cartefile'), BUSYBOX_CARTEFILE);
  await e.carte(['build', '-q', '-t', 'e2e/busybox:1', ctx]);
  fs.rmSync(ctx, { recursive: true, force: true });
}

console.log(`Reconciler benchmark (node ${process.version})`);

// 1. Save → 10 ready.
{
  const e = makeE2eEnv();
  const dir = tempDir('carte-bench-m-');
  try {
    await build(e);
    fs.writeFileSync(path.join(dir, 'web.yaml'), webManifest({ replicas: 1 }));
    e.daemon(['--watch', dir]);
    await eventually(async () => readyOf(e, 'web') === 1, 30_000, 'first instance');
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      const t0 = performance.now();
      fs.writeFileSync(path.join(dir, 'web.yaml'), webManifest({ replicas: 10 }));
      await eventually(async () => readyOf(e, 'web') === 10, 60_000, 'ten ready');
      times.push(performance.now() - t0);
      fs.writeFileSync(path.join(dir, 'web.yaml'), webManifest({ replicas: 1 }));
      await eventually(async () => readiness(e.state(), 'web').length === 1, 60_000, 'back to one');
    }
    console.log(`save manifest (replicas 1 → 10) → 10 ready: median ${median(times).toFixed(0)} ms of 3 (${times.map((t) => t.toFixed(0)).join(', ')}) (goal ≤ 2000 ms)`);
  } finally {
    await e.teardown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// 2. git push → converged, 1 s polling.
{
  const e = makeE2eEnv();
  const root = tempDir('carte-bench-git-');
  const repo = path.join(root, 'm.git');
  const work = path.join(root, 'work');
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@carte.invalid', ...a], { cwd: work });
  try {
    await build(e);
    execFileSync('git', ['init', '-q', '--bare', '--initial-branch', 'main', repo]);
    execFileSync('git', ['clone', '-q', repo, work]);
    git('checkout', '-q', '-b', 'main');
    const push = (replicas: number) => {
      fs.writeFileSync(path.join(work, 'web.yaml'), webManifest({ replicas }));
      git('add', '-A');
      git('commit', '-q', '-m', `replicas ${replicas}`);
      git('push', '-q', 'origin', 'main');
    };
    push(1);
    e.daemon(['--git', `file://${repo}`, '--branch', 'main', '--interval', '1s']);
    await eventually(async () => readyOf(e, 'web') === 1, 30_000, 'first instance');
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      const want = round % 2 === 0 ? 2 : 1;
      const t0 = performance.now();
      push(want);
      await eventually(async () => readiness(e.state(), 'web').length === want && readyOf(e, 'web') === want, 30_000, 'converged');
      times.push(performance.now() - t0);
    }
    console.log(`git push → converged (interval 1s): median ${median(times).toFixed(0)} ms of 3 (${times.map((t) => t.toFixed(0)).join(', ')})`);
  } finally {
    await e.teardown();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

// 3 and 4. 50 services × 2 instances: idle pass, daemon RSS, idle CPU.
{
  const e = makeE2eEnv();
  const dir = tempDir('carte-bench-m-');
  try {
    await build(e);
    // Health checks every 5 s (Kubernetes' default is 10 s): 20 TCP probes a second in all.
    for (let i = 1; i <= 50; i++) fs.writeFileSync(path.join(dir, `s${i}.yaml`), webManifest({ name: `s${i}`, replicas: 2, healthInterval: '5s' }));
    const daemon = e.daemon(['--watch', dir]);
    await eventually(async () => Object.values(e.state().instances).filter((r) => (r as { ready: boolean }).ready).length === 100, 180_000, '100 ready instances');
    await new Promise((r) => setTimeout(r, 10_000)); // settle: start-up checks, first GCs
    const c0 = cpuTicks(daemon.pid!);
    const idleSeconds = 30;
    await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const cpu = ((cpuTicks(daemon.pid!) - c0) / TICKS_PER_S / idleSeconds) * 100;
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${daemon.pid}/status`, 'utf8'))![1]) / 1024;
    console.log(`daemon with 100 instances: RSS ${rss.toFixed(1)} MB (goal ≤ 80), idle CPU ${cpu.toFixed(2)} % of one core over ${idleSeconds} s (goal ≤ 2 %)`);

    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    const store = Store.open(e.home);
    const log = cliLogger('silent');
    const driver = new LinuxDriver({ home: e.home, log, bridge: String(e.env.CARTE_BRIDGE), subnet: String(e.env.CARTE_SUBNET), cgroupParent: String(e.env.CARTE_CGROUP_PARENT) });
    const reconciler = new Reconciler({ store, driver, log, health: new HealthMonitor(makeProber(driver)) });
    await reconciler.pass(); // first pass checks every instance once
    const passes: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      const r = await reconciler.pass();
      passes.push(performance.now() - t0);
      if (r.actions.length) throw new Error(`an idle pass planned ${r.actions.length} actions`);
    }
    console.log(`idle reconcile pass over 50 services × 2 instances: median ${median(passes).toFixed(1)} ms of 15 (goal ≤ 50 ms)`);
  } finally {
    await e.teardown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
