// The gateway's per-service traffic counters, through a real HttpListener on
// 127.0.0.1 in front of a real HTTP server playing the instance.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { HttpListener } from '../../../src/gateway/http.js';
import { hostSockets } from '../../../src/gateway/sockets.js';
import { LATENCY_BUCKETS_MS, TrafficStats } from '../../../src/gateway/stats.js';
import { Upstreams } from '../../../src/gateway/upstreams.js';
import { cliLogger } from '../../../src/log.js';
import { desiredServices } from '../../../src/reconciler/reconciler.js';
import { serviceDoc, stateWith } from '../../helpers/state.js';

describe('gateway: traffic counters', () => {
  it('buckets latencies by their upper bound, the rest in the open bucket', () => {
    const t = new TrafficStats();
    for (const ms of [1, 5, 5.1, 99, 20_000]) t.latency('web', ms);
    t.request('web');
    t.error('web');
    const c = t.read('web');
    assert.equal(c.latencyBuckets.length, LATENCY_BUCKETS_MS.length + 1);
    assert.deepEqual(c.latencyBuckets, [2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual({ requests: c.requests, errors: c.errors, count: c.latencyCount, sum: c.latencySumMs }, { requests: 1, errors: 1, count: 5, sum: 20_110.1 });
    t.retain(new Set());
    assert.equal(t.read('web').requests, 0, 'a service gone starts again from zero');
  });

  it('counts requests, 5xx answers and gateway failures, and times each request', async () => {
    const upstream = http.createServer((req, res) => {
      res.writeHead(req.url === '/boom' ? 500 : 200);
      res.end('x');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const port = (upstream.address() as net.AddressInfo).port;
    const u = new Upstreams({ wake: () => undefined });
    const data = stateWith([serviceDoc('web', { replicas: 1 })]);
    u.update({ services: desiredServices(data), instances: [{ name: 'web-1', service: 'web', ip: '127.0.0.1', ready: true }], addresses: {} });
    const listener = new HttpListener({ 'web.test': { service: 'web', port, balance: 'round-robin' } }, u, { holdMs: 200 }, cliLogger('silent'));
    let front: net.Server | null = null;
    const sockets = hostSockets();
    await listener.listen({ ...sockets, tcp: async (a, p, on) => (front = await sockets.tcp(a, p, on)) }, '127.0.0.1', 0);
    const at = (front as unknown as net.Server).address() as net.AddressInfo;
    const get = (path: string) => new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: at.port, path, headers: { host: 'web.test' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      }).on('error', reject);
    });
    try {
      assert.deepEqual([await get('/'), await get('/'), await get('/boom')], [200, 200, 500]);
      // The instance goes away: the gateway answers 502 itself.
      await new Promise<void>((r) => upstream.close(() => r()));
      upstream.closeAllConnections();
      assert.equal(await get('/'), 502);
      await new Promise((r) => setTimeout(r, 20)); // the last 'close' of the answer
      const c = u.traffic.read('web');
      assert.deepEqual({ requests: c.requests, errors: c.errors, timed: c.latencyCount }, { requests: 4, errors: 2, timed: 4 });
      assert.equal(c.latencyBuckets.reduce((a, b) => a + b, 0), 4);
    } finally {
      await listener.close();
      upstream.close();
    }
  });
});
