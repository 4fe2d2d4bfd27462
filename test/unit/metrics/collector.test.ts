import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { InstanceStats } from '../../../src/drivers/driver.js';
import { cliLogger } from '../../../src/log.js';
import { Collector, type CollectorTargets } from '../../../src/metrics/collector.js';
import { PERSIST_FILE } from '../../../src/metrics/persist.js';
import { parseSeriesQuery } from '../../../src/metrics/query.js';
import { tempDir } from '../../helpers/paths.js';

const Mi = 2 ** 20;
const reading = (at: number, cpuNs: number): InstanceStats => ({
  cpuUsageNs: cpuNs, memoryUsageBytes: 10 * Mi, memoryWorkingSetBytes: 8 * Mi, memoryLimitBytes: 64 * Mi, cpuLimitMillis: null, pids: 1,
  cpuPeriods: null, cpuThrottledPeriods: null, cpuThrottledNs: null, blkReadBytes: null, blkWriteBytes: null, net: null, at,
});

describe('metrics: collector', () => {
  let now = 1_800_000_000_000;
  const targets: CollectorTargets = {
    instances: [{ name: 'web-1', service: 'web', restarts: 0, ready: true }, { name: 'slow-1', service: 'slow', restarts: 0, ready: true }, { name: 'bad-1', service: 'bad', restarts: 1, ready: false }],
    services: ['web'],
  };
  const make = (over: Partial<ConstructorParameters<typeof Collector>[0]> = {}) => new Collector({
    log: cliLogger('silent'), clock: () => now, statsTimeoutMs: 50, targets: async () => targets,
    stats: async (name) => {
      if (name === 'slow-1') return new Promise<InstanceStats>(() => undefined); // never answers
      if (name === 'bad-1') throw new Error('cgroup unreadable');
      return reading(now, (now - 1_800_000_000_000) * 0.25 * 1e6); // a quarter of a core
    },
    traffic: () => ({ connections: 1, requests: (now - 1_800_000_000_000) / 100, errors: 0, latencyBuckets: new Array(12).fill(0), latencySumMs: 0, latencyCount: 0 }),
    ...over,
  });

  it('samples each instance with its own deadline: a slow or failing one is left out, the others are not held up', async () => {
    const c = make();
    const seen: number[] = [];
    c.onSample((s) => seen.push(s.instances.length));
    const started = performance.now();
    await c.sample();
    now += 10_000;
    const snap = await c.sample();
    assert.ok(performance.now() - started < 1000, 'two rounds within their deadlines');
    assert.deepEqual(snap.instances.map((i) => [i.instance, i.cpuCores, i.memoryWorkingSetBytes]), [['web-1', 0.25, 8 * Mi]]);
    assert.deepEqual(snap.services.map((s) => [s.service, s.requestsPerSec, s.connections]), [['web', 10, 1]]);
    assert.deepEqual(seen, [1, 1]);
    assert.deepEqual(c.latest(), snap);
    assert.deepEqual(c.series({ kind: 'instance', name: 'web-1', metric: 'cpuCores', fromMs: now - 60_000, toMs: now }).v, [0.25]);
    assert.deepEqual(c.known('instance'), ['web-1']);
  });

  it('saves its history at stop and loads it at the next start', async () => {
    const dir = tempDir('carte-collector-');
    try {
      const file = path.join(dir, PERSIST_FILE);
      const a = make({ persistFile: file, intervalMs: 10_000 });
      await a.start();
      now += 10_000;
      await a.sample();
      await a.stop();
      assert.ok(fs.statSync(file).size > 0);
      const b = make({ persistFile: file, intervalMs: 10_000, stats: async () => null });
      await b.start();
      await b.stop();
      assert.deepEqual(b.known('instance'), ['web-1']);
      assert.deepEqual(b.series({ kind: 'instance', name: 'web-1', metric: 'memoryWorkingSetBytes', fromMs: now - 60_000, toMs: now }).v, [8 * Mi, 8 * Mi]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metrics: series query parameters', () => {
  const now = 1_000_000_000;
  it('defaults to the last hour and 500 points; since takes a duration', () => {
    assert.deepEqual(parseSeriesQuery(new URLSearchParams('name=web-1&metric=cpuCores'), now),
      { kind: 'instance', name: 'web-1', metric: 'cpuCores', fromMs: now - 3600_000, toMs: now, maxPoints: 500 });
    assert.deepEqual(parseSeriesQuery(new URLSearchParams('kind=host&metric=cpuPercent&since=1d&maxPoints=10'), now),
      { kind: 'host', name: '', metric: 'cpuPercent', fromMs: now - 86_400_000, toMs: now, maxPoints: 10 });
  });

  it('refuses what it cannot read, naming the parameter and what it takes', () => {
    const err = (qs: string) => {
      try {
        parseSeriesQuery(new URLSearchParams(qs), now);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    assert.equal(err('kind=disk'), 'kind "disk" is not one of instance, service, host');
    assert.equal(err('metric=cpuCores'), 'name is required for kind instance (an instance name)');
    assert.match(err('name=a&metric=cpu'), /^metric "cpu" is not one of cpuCores, cpuThrottled, /);
    assert.equal(err('name=a&metric=pids&since=soon'), 'since: "soon" is not a duration (use e.g. 500ms, 30s, 5m or 1h)');
    assert.equal(err('name=a&metric=pids&maxPoints=-3'), 'maxPoints: "-3" is not a whole number');
    assert.equal(err('name=a&metric=pids&from=10&to=5'), 'to is before from');
  });
});
