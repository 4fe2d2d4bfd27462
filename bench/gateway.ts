// Gateway benchmark (root). Against a real daemon and a real container (a
// small Node HTTP server, keep-alive responses), in the same run:
//  - wrk straight to the instance's IP, then through the gateway's published
//    port: requests/s and p50/p99 latency (goals: ≥ 70 % of direct
//    throughput, ≤ 1 ms added p50);
//  - time to first byte of a request that wakes a service from zero
//    (goal ≤ 400 ms).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { makeE2eEnv, readiness } from '../test/helpers/e2e.js';
import { eventually } from '../test/helpers/linux.js';
import { fixture, tempDir } from '../test/helpers/paths.js';

if (process.getuid?.() !== 0) {
  console.log('gateway benchmark skipped: it needs root');
  process.exit(0);
}

const PORT = 31080;
const SLEEPY_PORT = 31081;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const manifest = (name: string, port: number, extra = '') => `apiVersion: carte/v1
kind: Service
metadata: { name: ${name} }
spec:
  image: bench/hello:1
  ports: [{ port: 8080, publish: ${port} }]
  health: { http: { path: /health, port: 8080 }, interval: 2s }
${extra}`;

interface WrkResult { rps: number; p50: number; p99: number }

/** Runs wrk and reads requests/s and the p50/p99 latencies (ms) from its --latency report. */
function wrk(url: string, seconds: number): WrkResult {
  const out = execFileSync('wrk', ['-t1', '-c16', `-d${seconds}s`, '--latency', url], { encoding: 'utf8' });
  const ms = (label: string) => {
    const m = new RegExp(`^\\s+${label}%\\s+([\\d.]+)(us|ms|s)$`, 'm').exec(out);
    if (!m) throw new Error(`wrk output without ${label}%:\n${out}`);
    return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]!]!;
  };
  const rps = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(out)?.[1]);
  if (/Non-2xx|Socket errors/.test(out)) throw new Error(`wrk saw errors:\n${out}`);
  return { rps, p50: ms('50'), p99: ms('99') };
}

function firstByte(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      const t = performance.now() - t0;
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(t) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
  });
}

console.log(`Gateway benchmark (node ${process.version}, wrk -t1 -c16, keep-alive)`);
const e = makeE2eEnv();
const dir = tempDir('carte-bench-gw-');
try {
  const built = await e.carte(['build', '-q', '-t', 'bench/hello:1', fixture('hello')]);
  if (built.code !== 0) throw new Error(built.stderr);
  fs.writeFileSync(path.join(dir, 'web.yaml'), manifest('web', PORT));
  e.daemon(['--watch', dir, '--publish-address', '127.0.0.1']);
  await eventually(async () => readiness(e.state(), 'web').some((i) => i.ready), 30_000, 'web ready');
  const instances = (JSON.parse((await e.carte(['get', 'instances', '-o', 'json'])).stdout) as { items: Array<{ name: string; ip: string }> }).items;
  const ip = instances.find((i) => i.name === 'web-1')!.ip;
  const direct = `http://${ip}:8080/`;
  const gateway = `http://127.0.0.1:${PORT}/`;
  wrk(direct, 2); // warm both paths up
  wrk(gateway, 2);
  const runs: Array<{ direct: WrkResult; gateway: WrkResult }> = [];
  for (let round = 0; round < 3; round++) runs.push({ direct: wrk(direct, 8), gateway: wrk(gateway, 8) });
  for (const [i, r] of runs.entries()) {
    console.log(`round ${i + 1}: direct ${r.direct.rps.toFixed(0)} req/s p50 ${r.direct.p50.toFixed(2)} ms p99 ${r.direct.p99.toFixed(2)} ms | gateway ${r.gateway.rps.toFixed(0)} req/s p50 ${r.gateway.p50.toFixed(2)} ms p99 ${r.gateway.p99.toFixed(2)} ms`);
  }
  const ratio = median(runs.map((r) => r.gateway.rps / r.direct.rps));
  const added = median(runs.map((r) => r.gateway.p50 - r.direct.p50));
  console.log(`throughput through the gateway: median ${(ratio * 100).toFixed(0)} % of direct (goal ≥ 70 %); added p50: median ${added.toFixed(2)} ms (goal ≤ 1 ms)`);

  const wakes: number[] = [];
  const sleepy = manifest('sleepy', SLEEPY_PORT, '  resources: { cpu: 500m, memory: 128Mi }\n  autoscale: { min: 0, max: 2, cpu: 70%, idleToZero: 5m }\n');
  for (let round = 0; round < 5; round++) {
    fs.writeFileSync(path.join(dir, 'sleepy.yaml'), sleepy);
    await eventually(async () => e.state().services.sleepy !== undefined, 10_000, 'sleepy stored');
    await new Promise((r) => setTimeout(r, 1500)); // the gateway opens the port on its next pass
    wakes.push(await firstByte(SLEEPY_PORT));
    fs.rmSync(path.join(dir, 'sleepy.yaml'));
    await eventually(async () => e.state().services.sleepy === undefined && readiness(e.state(), 'sleepy').length === 0, 30_000, 'sleepy gone');
  }
  console.log(`wake from zero, time to first byte: median ${median(wakes).toFixed(0)} ms of 5 (${wakes.map((t) => t.toFixed(0)).join(', ')}) (goal ≤ 400 ms)`);
} finally {
  await e.teardown();
  fs.rmSync(dir, { recursive: true, force: true });
}
