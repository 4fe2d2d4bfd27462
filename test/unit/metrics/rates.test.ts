import assert from 'node:assert/strict';
import type { InstanceStats } from '../../../src/drivers/driver.js';
import type { ServiceTraffic } from '../../../src/gateway/gateway.js';
import { LATENCY_BUCKETS_MS } from '../../../src/gateway/stats.js';
import { cpuPercent, parseMeminfo, parseProcStat } from '../../../src/metrics/host.js';
import { histogramQuantile, increase, instanceSample, rate, serviceSample } from '../../../src/metrics/rates.js';

const Mi = 2 ** 20;
const stats = (at: number, over: Partial<InstanceStats> = {}): InstanceStats => ({
  cpuUsageNs: 0, memoryUsageBytes: 40 * Mi, memoryWorkingSetBytes: 32 * Mi, memoryLimitBytes: 64 * Mi, cpuLimitMillis: 500, pids: 3,
  cpuPeriods: 0, cpuThrottledPeriods: 0, cpuThrottledNs: 0, blkReadBytes: 0, blkWriteBytes: 0,
  net: { rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0 }, at, ...over,
});
const meta = { instance: 'web-1', service: 'web', restarts: 2, ready: true };

describe('metrics: rates', () => {
  it('a counter that went down was reset: its new value is the increase', () => {
    assert.equal(increase(100, 150), 50);
    assert.equal(increase(100, 30), 30);
    assert.equal(increase(null, 30), null);
    assert.equal(rate(0, 5000, 10_000), 500);
    assert.equal(rate(0, 5000, 0), null, 'no time passed: no rate');
  });

  it('the first sample of an instance has its gauges and no rates', () => {
    assert.deepEqual(instanceSample(null, stats(1000), meta), {
      at: 1000, instance: 'web-1', service: 'web', cpuCores: null, cpuThrottled: null, cpuLimitCores: 0.5,
      memoryWorkingSetBytes: 32 * Mi, memoryLimitBytes: 64 * Mi, netRxBytesPerSec: null, netTxBytesPerSec: null,
      netRxPacketsPerSec: null, netTxPacketsPerSec: null, blkReadBytesPerSec: null, blkWriteBytesPerSec: null, pids: 3, restarts: 2, ready: true,
    });
  });

  it('turns two readings 10 s apart into cores, throttled share and per-second rates', () => {
    const s = instanceSample(stats(0), stats(10_000, {
      cpuUsageNs: 4e9, cpuPeriods: 100, cpuThrottledPeriods: 25, blkReadBytes: 10_000, blkWriteBytes: 20_000,
      net: { rxBytes: 1_000_000, txBytes: 50_000, rxPackets: 1000, txPackets: 500 },
    }), meta);
    assert.deepEqual([s.cpuCores, s.cpuThrottled, s.netRxBytesPerSec, s.netTxBytesPerSec, s.netRxPacketsPerSec, s.netTxPacketsPerSec, s.blkReadBytesPerSec, s.blkWriteBytesPerSec],
      [0.4, 0.25, 100_000, 5000, 100, 50, 1000, 2000]);
  });

  it('a restarted instance (counters back near zero) reads as its new counts, never negative', () => {
    const s = instanceSample(stats(0, { cpuUsageNs: 50e9, net: { rxBytes: 9e9, txBytes: 9e9, rxPackets: 9e6, txPackets: 9e6 } }), stats(10_000, { cpuUsageNs: 1e9 }), meta);
    assert.deepEqual([s.cpuCores, s.netRxBytesPerSec], [0.1, 0]);
  });

  it('counters the kernel does not give stay null', () => {
    const s = instanceSample(stats(0, { net: null, blkReadBytes: null, cpuPeriods: null }), stats(10_000, { net: null, blkReadBytes: null, cpuPeriods: null }), meta);
    assert.deepEqual([s.netRxBytesPerSec, s.blkReadBytesPerSec, s.cpuThrottled], [null, null, null]);
  });
});

describe('metrics: latency percentiles', () => {
  const buckets = (counts: Record<number, number>) => [...LATENCY_BUCKETS_MS, Infinity].map((b) => counts[b] ?? 0);

  it('interpolates within the bucket holding the rank, as histogram_quantile', () => {
    // 100 requests: 50 in (0,5] ms, 40 in (5,10], 10 in (100,250].
    const b = buckets({ 5: 50, 10: 40, 250: 10 });
    assert.equal(histogramQuantile(0.5, b), 5);
    assert.equal(histogramQuantile(0.7, b), 7.5);
    assert.equal(histogramQuantile(0.95, b), 175);
    assert.equal(histogramQuantile(0.5, buckets({})), null);
    assert.equal(histogramQuantile(0.99, buckets({ [Infinity]: 3 })), 10_000, 'beyond the last bound reads as it');
  });

  it('a service sample: requests and errors per second, percentiles of the interval only', () => {
    const traffic = (requests: number, errors: number, counts: Record<number, number>): ServiceTraffic => {
      const latencyBuckets = buckets(counts);
      return { connections: 3, requests, errors, latencyBuckets, latencySumMs: 0, latencyCount: latencyBuckets.reduce((a, b) => a + b, 0) };
    };
    const before = traffic(1000, 10, { 1000: 1000 });
    const now = traffic(1100, 15, { 1000: 1000, 5: 100 });
    assert.deepEqual(serviceSample('web', 20_000, before, now, 10_000), {
      at: 20_000, service: 'web', connections: 3, requestsPerSec: 10, errorsPerSec: 0.5, latencyP50Ms: 2.5, latencyP95Ms: 4.75, latencyP99Ms: 4.95,
    });
    assert.deepEqual(serviceSample('web', 10_000, null, now, 0), {
      at: 10_000, service: 'web', connections: 3, requestsPerSec: 0, errorsPerSec: 0, latencyP50Ms: null, latencyP95Ms: null, latencyP99Ms: null,
    }, 'first reading: nothing to compare with');
    const reset = serviceSample('web', 30_000, now, traffic(20, 0, { 10: 20 }), 10_000);
    assert.deepEqual([reset.requestsPerSec, reset.errorsPerSec, reset.latencyP50Ms], [2, 0, 7.5], 'counters reset (service made again)');
  });
});

describe('metrics: host readings', () => {
  it('reads CPU busy share between two /proc/stat readings', () => {
    const a = parseProcStat('cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3\n')!;
    const b = parseProcStat('cpu  250 0 150 1000 100 0 0 0 0 0\n')!;
    assert.deepEqual(a, { total: 1000, idle: 800 });
    assert.equal(cpuPercent(null, a), null);
    assert.equal(cpuPercent(a, b), 40);
  });

  it('reads used memory as total minus available', () => {
    assert.deepEqual(parseMeminfo('MemTotal:       24684000 kB\nMemFree:  1 kB\nMemAvailable:   24318000 kB\n'), { totalBytes: 24684000 * 1024, availableBytes: 24318000 * 1024 });
    assert.equal(parseMeminfo('garbage'), null);
  });
});
