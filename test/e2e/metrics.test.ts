// Metrics end to end: a real daemon sampling real containers every second;
// its unix API gives the latest round, series from its history and the
// Prometheus text, which a scraper can read.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { MetricsSnapshot, Series } from '../../src/metrics/types.js';
import { buildBusybox, makeE2eEnv, webManifest, type E2eEnv } from '../helpers/e2e.js';
import { eventually, requireRoot } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';
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
      return s.instances.length === 2 && s.instances.every((i) => i.cpuCores !== null && i.ready) ? s : undefined;
    }, 60_000, 'two sampled, ready instances with rates');
    assert.deepEqual(snap.instances.map((i) => [i.instance, i.service, i.memoryLimitBytes, i.cpuLimitCores]), [['web-1', 'web', 64 * 2 ** 20, 0.5], ['web-2', 'web', 64 * 2 ** 20, 0.5]]);
    for (const i of snap.instances) {
      assert.ok(i.memoryWorkingSetBytes > 0 && i.memoryWorkingSetBytes < 64 * 2 ** 20, `${i.instance} working set ${i.memoryWorkingSetBytes}`);
      assert.ok(i.pids >= 1);
      assert.notEqual(i.netRxBytesPerSec, null, 'network counters of its own namespace');
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
});
