// Metrics end to end: a real daemon sampling real containers every second;
// its unix API gives the latest round, series from its history and the
// Prometheus text, which a scraper can read.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import type { MetricsSnapshot, Series } from '../../src/metrics/types.js';
import { buildBusybox, makeE2eEnv, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { eventually, requireRoot } from '../helpers/linux.js';
import { CARTE, tempDir } from '../helpers/paths.js';
import { findSample, parsePrometheus } from '../helpers/prometheus.js';

const PORT = 18000 + Math.floor(Math.random() * 1000);

/** GET on the daemon's unix socket: status, content type and body text. */
function unixGet(home: string, urlPath: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: path.join(home, 'carte.sock'), path: urlPath }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

function fetchVia(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false, headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    }).on('error', reject);
  });
}

describe('e2e: metrics', function () {
  this.timeout(180_000);
  let e: E2eEnv;
  let work: string;
  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    work = tempDir('carte-metrics-');
    await buildBusybox(e);
    e.daemon(['--collect-interval', '1s', '--resync', '1s']);
    await eventually(async () => (await e.carte(['status'])).stdout.startsWith('daemon: running\n'), 20_000, 'the daemon to listen');
    fs.writeFileSync(path.join(work, 'web.yaml'), webManifest({ replicas: 2, extra: `  resources: { memory: 64Mi, cpu: 500m }\n` })
      .replace('  ports: [{ name: http, port: 8080 }]', `  ports: [{ name: http, port: 8080, publish: { port: ${PORT}, address: 127.0.0.1, host: web.test } }]`));
    const applied = await e.carte(['apply', '-f', path.join(work, 'web.yaml')]);
    assert.equal(applied.code, 0, applied.stderr);
  });
  after(async () => {
    await e?.teardown();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('samples every instance, the services and the host; GET /v1/metrics/latest gives the last round', async () => {
    const snap = await eventually(async () => {
      const s = JSON.parse((await unixGet(e.home, '/v1/metrics/latest')).body) as MetricsSnapshot;
      // Rates need two readings (network ones two with the instance's pid known: not in the instant runc creates it).
      return s.instances.length === 2 && s.instances.every((i) => i.cpuCores !== null && i.netRxBytesPerSec !== null && i.ready) ? s : undefined;
    }, 60_000, 'two sampled, ready instances with rates');
    assert.deepEqual(snap.instances.map((i) => [i.instance, i.service, i.memoryLimitBytes, i.cpuLimitCores]), [['web-1', 'web', 64 * 2 ** 20, 0.5], ['web-2', 'web', 64 * 2 ** 20, 0.5]]);
    for (const i of snap.instances) {
      assert.ok(i.memoryWorkingSetBytes > 0 && i.memoryWorkingSetBytes < 64 * 2 ** 20, `${i.instance} working set ${i.memoryWorkingSetBytes}`);
      assert.ok(i.pids >= 1);
    }
    assert.deepEqual(snap.services.map((s) => s.service), ['web']);
    assert.ok(snap.host && snap.host.memoryTotalBytes > 0 && snap.host.diskTotalBytes > 0 && snap.host.cores >= 1);
  });

  it('counts requests through the gateway and their latency; GET /v1/metrics is Prometheus text a scraper reads', async () => {
    for (let i = 0; i < 20; i++) assert.equal(await fetchVia(PORT, 'web.test'), 200);
    const text = await eventually(async () => {
      const r = await unixGet(e.home, '/v1/metrics');
      const t = parsePrometheus(r.body);
      return (findSample(t, 'carte_service_requests_total', { service: 'web' })?.value ?? 0) >= 20 ? r : undefined;
    }, 20_000, 'the requests to be sampled');
    assert.equal(text.type, 'text/plain; version=0.0.4; charset=utf-8');
    const t = parsePrometheus(text.body);
    assert.equal(t.types.carte_instance_cpu_seconds_total, 'counter');
    assert.equal(t.types.carte_instance_memory_working_set_bytes, 'gauge');
    assert.equal(t.types.carte_service_request_duration_seconds, 'histogram');
    for (const instance of ['web-1', 'web-2']) {
      const labels = { service: 'web', instance };
      assert.ok(findSample(t, 'carte_instance_cpu_seconds_total', labels)!.value > 0);
      assert.ok(findSample(t, 'carte_instance_memory_working_set_bytes', labels)!.value > 0);
      assert.equal(findSample(t, 'carte_instance_memory_limit_bytes', labels)!.value, 64 * 2 ** 20);
      assert.equal(findSample(t, 'carte_instance_ready', labels)!.value, 1);
      assert.ok(findSample(t, 'carte_instance_network_transmit_bytes_total', labels) !== undefined);
    }
    assert.equal(findSample(t, 'carte_service_request_duration_seconds_bucket', { service: 'web', le: '+Inf' })!.value, findSample(t, 'carte_service_request_duration_seconds_count', { service: 'web' })!.value);
    assert.ok(findSample(t, 'carte_service_request_duration_seconds_count', { service: 'web' })!.value >= 20);
    assert.equal(findSample(t, 'carte_service_errors_total', { service: 'web' })!.value, 0);
    assert.ok(findSample(t, 'carte_host_memory_total_bytes')!.value > 0);
    assert.equal(t.types.carte_alerts_firing, 'gauge');
  });

  it('gives series from the history; a bad query is refused with what to fix', async () => {
    const r = await eventually(async () => {
      const got = await unixGet(e.home, '/v1/metrics/series?kind=instance&name=web-1&metric=memoryWorkingSetBytes&since=5m');
      const s = JSON.parse(got.body) as Series;
      return s.t.length >= 3 ? s : undefined;
    }, 20_000, 'three points of history');
    assert.equal(r.stepMs, 1000);
    assert.ok(r.v.every((v) => v === null || v > 0));
    const known = JSON.parse((await unixGet(e.home, '/v1/metrics/known')).body) as Record<string, string[]>;
    assert.deepEqual(known, { instance: ['web-1', 'web-2'], service: ['web'], host: [''] });
    const bad = await unixGet(e.home, '/v1/metrics/series?kind=instance&name=web-1&metric=cpu');
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).error, /^metric "cpu" is not one of cpuCores, /);
  });

  it('carte top --once prints the host, every instance and every service as plain tables', async () => {
    const r = await e.carte(['top', '--once', '--sort', 'name']);
    if (process.env.CARTE_TEST_DEBUG) process.stderr.write(r.stdout);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^HOST {3}CPU \d+\.\d% of \d+ cores? {3}MEMORY \d+\.\d[MG]i of \d+\.\dGi {3}DISK \d+\.\d[MGT]i free of \d+\.\d[GT]i$/);
    assert.equal(lines[1], '');
    assert.match(lines[2]!, /^INSTANCE {3}SERVICE {3}CPU +CPU\/LIM {3}MEMORY +MEM\/LIM {3}NET IN +NET OUT +BLK READ +BLK WRITE +PIDS {3}RESTARTS$/);
    assert.match(lines[3]!, /^web-1 {6}web {7}\d\.\d{3} +\d+% +\d+\.\d[KM]i +\d+% +\d+(\.\d[KM]i)?B?\/s +\S+\/s +\S+\/s +\S+\/s +\d+ +0$/);
    assert.match(lines[4]!, /^web-2 {6}web /);
    assert.equal(lines[5], '');
    assert.equal(lines[6], 'SERVICE   CONNS   REQ/S   ERR/S   P50   P95   P99'.replace(/P50   P95   P99/, lines[6]!.slice(lines[6]!.indexOf('P50'))));
    assert.match(lines[7]!, /^web {7}0 +\d+\.\d +0\.0 +\S+ +\S+ +\S+$/);
    assert.equal(lines.length, 9);
    // Without --once on a pipe: the same one table.
    const piped = await e.carte(['top']);
    assert.equal(piped.code, 0, piped.stderr);
    assert.match(piped.stdout, /^HOST {3}CPU .*\n\nINSTANCE /);
  });

  it('carte stats shows an instance\'s and a service\'s history with sparklines; bad names and metrics say what to use', async () => {
    const r = await e.carte(['stats', 'web-1', '--since', '10m']);
    if (process.env.CARTE_TEST_DEBUG) process.stderr.write(r.stdout);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'instance web-1, last 10m, one point per 1s');
    assert.equal(lines[1], '');
    assert.match(lines[2]!, /^METRIC +NOW +MIN +AVG +MAX +HISTORY$/);
    assert.deepEqual(lines.slice(3, 7).map((l) => l.split(/\s+/)[0]), ['cpuCores', 'memoryWorkingSetBytes', 'netRxBytesPerSec', 'netTxBytesPerSec']);
    assert.match(lines[4]!, /^memoryWorkingSetBytes {3}\d+\.\d[KM]i +\d+\.\d[KM]i +\d+\.\d[KM]i +\d+\.\d[KM]i +[▁▂▃▄▅▆▇█ ]+$/);
    const svc = await e.carte(['stats', 'web', '--metric', 'requestsPerSec,connections']);
    assert.equal(svc.code, 0, svc.stderr);
    assert.match(svc.stdout, /^service web, last 1h, one point per \d+s\n\nMETRIC +NOW +MIN +AVG +MAX +HISTORY\nrequestsPerSec +\S+ +\S+ +\S+ +\S+ +[▁▂▃▄▅▆▇█ ]+\nconnections +0 +0 +0 +0 +▁+\n$/);
    assert.deepEqual(await e.carte(['stats', 'nope']), { code: 1, stdout: '', stderr: 'error: stats: no instance or service "nope" has metrics history (carte top lists what is sampled now)\n' });
    const bad = await e.carte(['stats', 'web-1', '--metric', 'cpu']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: stats: --metric "cpu" is not a metric of an instance; use one of cpuCores, cpuThrottled, /);
  });

  it('carte top on a terminal: redrawn live, sorted by the keys, quits on q and gives the terminal back', async () => {
    // `script` gives carte a pseudo-terminal; what is typed into its stdin reaches carte as keys.
    const child = spawn('script', ['-q', '-e', '-c', `${CARTE} top`, '/dev/null'], { env: { ...e.env, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout!.on('data', (d: Buffer) => (screen += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await eventually(async () => /sorted by cpu, sampled \S+ ago — c cpu {2}m memory {2}n name {2}r restarts {2}i network {2}q quit/.test(screen) && screen.includes('web-1'), 10_000, 'the first screen');
      assert.ok(screen.includes('\x1b[?1049h\x1b[?25l'), 'the alternate screen, cursor hidden');
      child.stdin!.write('m');
      await eventually(async () => screen.includes('sorted by memory'), 5000, 'the sort to change');
      child.stdin!.write('q');
      assert.equal(await exited, 0);
      assert.ok(screen.includes('\x1b[?25h\x1b[?1049l'), 'cursor shown, main screen back');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
