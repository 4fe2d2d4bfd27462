// CLI latency: how long common commands take, beside a bare `node -e 0` in
// the same run (Node's own start-up is the floor no JS CLI can go below).
// Prints a table; run with `make bench`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CARTE = path.join(ROOT, 'bin', 'carte');
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time([cmd, ...args]: string[], env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd!, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr.toString()}`);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'carte-bench-'));
const env = { ...process.env, CARTE_HOME: home };
try {
  const cases: Array<[string, string[]]> = [
    ['node -e 0 (baseline)', [process.execPath, '-e', '0']],
    ['carte version', [CARTE, 'version']],
    ['carte apply -f manifests/ (5 services)', [CARTE, 'apply', '-f', path.join(ROOT, 'manifests')]],
    ['carte get', [CARTE, 'get']],
    ['carte diff -f manifests/', [CARTE, 'diff', '-f', path.join(ROOT, 'manifests')]],
  ];
  const baseline = median(Array.from({ length: RUNS }, () => time(cases[0]![1], env)));
  console.log(`CLI latency, median of ${RUNS} runs (${os.cpus().length} cores, node ${process.version})`);
  console.log(`${'command'.padEnd(42)} ${'median ms'.padStart(10)} ${'over node'.padStart(10)}`);
  for (const [name, args] of cases) {
    const m = name.includes('baseline') ? baseline : median(Array.from({ length: RUNS }, () => time(args, env)));
    console.log(`${name.padEnd(42)} ${m.toFixed(0).padStart(10)} ${(m - baseline).toFixed(0).padStart(10)}`);
  }
} finally {
  fs.rmSync(home, { recursive: true, force: true });
}
