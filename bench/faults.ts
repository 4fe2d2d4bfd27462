// Fault benchmark (root). Prints, against real containers and a real daemon:
//  - time for a healthy service to be healed (an instance killed with kill -9
//    until its replacement is ready) while another service's probe hangs
//    (goal ≤ 5 s);
//  - `carte delete` of a 20-replica service without a daemon, stopGracePeriod 0s
//    (goal ≤ 3 s);
//  - daemon SIGTERM → exit, during a hung probe and a rollout (goal ≤ 5 s).
// State recovery time is in bench/state.ts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildBusybox, hangingManifest, makeE2eEnv, readiness, webManifest } from '../test/helpers/e2e.js';
import { eventually } from '../test/helpers/linux.js';
import { CARTE, tempDir } from '../test/helpers/paths.js';

if (process.getuid?.() !== 0) {
  console.log('fault benchmark skipped: it needs root');
  process.exit(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const list = (xs: number[]) => xs.map((t) => t.toFixed(0)).join(', ');

console.log(`Fault benchmark (node ${process.version})`);

// 1 and 3: heal while a probe hangs; SIGTERM → exit.
{
  const e = makeE2eEnv();
  const dir = tempDir('carte-bench-f-');
  try {
    await buildBusybox(e);
    fs.writeFileSync(path.join(dir, 'hang.yaml'), hangingManifest('hang'));
    fs.writeFileSync(path.join(dir, 'good.yaml'), webManifest({ name: 'good', replicas: 5 }));
    const start = () => spawn(CARTE, ['daemon', '--log-level', 'warn', '--watch', dir, '--resync', '3s'], { env: e.env, stdio: 'ignore' });
    let daemon = start();
    await eventually(async () => readiness(e.state(), 'good').filter((i) => i.ready).length === 5, 30_000, 'good ready');
    const heal: number[] = [];
    for (let round = 1; round <= 5; round++) {
      const items = (JSON.parse((await e.carte(['get', 'instances', '-o', 'json'])).stdout) as { items: Array<{ name: string; pid: number | null }> }).items;
      // A different instance each round: killing the same one again would measure the crash-loop backoff.
      const victim = items.find((i) => i.name === `good-${round}`)!;
      const t0 = performance.now();
      process.kill(victim.pid!, 'SIGKILL'); // the container's pid 1, started by this benchmark's daemon
      await eventually(async () => readiness(e.state(), 'good').find((i) => i.name === victim.name && i.restarts === 1 && i.ready), 30_000, 'healed');
      heal.push(performance.now() - t0);
    }
    console.log(`heal (kill -9 → replacement ready) while another service's probe hangs: median ${median(heal).toFixed(0)} ms of 5 (${list(heal)}) (goal ≤ 5000 ms)`);

    const exits: number[] = [];
    for (let round = 1; round <= 3; round++) {
      fs.writeFileSync(path.join(dir, 'good.yaml'), webManifest({ name: 'good', replicas: 5, body: `v${round + 1}` }));
      await eventually(async () => e.state().rollouts?.good, 20_000, 'a rollout');
      const t0 = performance.now();
      const exited = new Promise<void>((r) => daemon.once('exit', () => r()));
      daemon.kill('SIGTERM'); // the daemon this benchmark started
      await exited;
      exits.push(performance.now() - t0);
      daemon = start();
      await eventually(async () => !e.state().rollouts?.good && readiness(e.state(), 'good').filter((i) => i.ready).length === 5, 60_000, 'the rollout to finish');
    }
    console.log(`daemon SIGTERM → exit, mid-rollout with a hung probe: median ${median(exits).toFixed(0)} ms of 3 (${list(exits)}) (goal ≤ 5000 ms)`);
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
  } finally {
    await e.teardown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// 2: delete of 20 instances without a daemon.
{
  const e = makeE2eEnv();
  const dir = tempDir('carte-bench-d-');
  try {
    await buildBusybox(e);
    const file = path.join(dir, 'many.yaml');
    fs.writeFileSync(file, `apiVersion: carte/v1\nkind: Service\nmetadata: { name: many }\nspec:\n  image: e2e/busybox:1\n  command: [busybox, sleep, "100000"]\n  replicas: 20\n  stopGracePeriod: 0s\n`);
    const times: number[] = [];
    for (let round = 0; round < 3; round++) {
      const up = await e.carte(['apply', '-f', file]);
      if (up.code !== 0) throw new Error(up.stderr);
      const t0 = performance.now();
      const del = await e.carte(['delete', 'many']);
      times.push(performance.now() - t0);
      if (del.code !== 0) throw new Error(del.stderr);
    }
    console.log(`carte delete of 20 instances, no daemon, stopGracePeriod 0s: median ${(median(times) / 1000).toFixed(2)} s of 3 (${list(times)} ms) (goal ≤ 3 s)`);
  } finally {
    await e.teardown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
