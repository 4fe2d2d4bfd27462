import assert from 'node:assert/strict';
import { decide, type DecideInput } from '../../../src/scaler/decide.js';
import { MetricsRing } from '../../../src/scaler/metrics.js';
import { activeBounds, windowActive } from '../../../src/scaler/schedule.js';
import type { AutoscaleSpec } from '../../../src/schema/types.js';

const Mi = 2 ** 20;
const auto = (over: Partial<AutoscaleSpec> = {}): AutoscaleSpec => ({
  min: 1, max: 10, cpuPercent: 70, memoryPercent: null, scaleDownDelayMs: 60_000, idleToZeroMs: null, schedule: [], ...over,
});
const input = (over: Partial<DecideInput> & { cpu?: number | null; mem?: number | null; measured?: number } = {}): DecideInput => {
  const { cpu = 70, mem = null, measured, ...rest } = over;
  const current = rest.current ?? 2;
  return {
    service: 'login', autoscale: auto(), current, readings: { cpuPercent: cpu, memoryPercent: mem, measured: measured ?? current },
    bounds: { min: rest.autoscale?.min ?? 1, max: rest.autoscale?.max ?? 10, why: null }, history: [], now: 1_000_000,
    memory: { perInstanceBytes: null, availableBytes: 0 }, idleForMs: null, ...rest,
  };
};

describe('scaler: the decision', () => {
  it('scales up by ceil(measured × average / target), and says why', () => {
    assert.deepEqual(decide(input({ cpu: 143 })), { recommendation: 5, replicas: 4, reason: 'login 2→4: cpu 143% of 70% target (avg over 2 ready instances); at most doubling per step (wants 5)' });
    assert.deepEqual(decide(input({ cpu: 100 })), { recommendation: 3, replicas: 3, reason: 'login 2→3: cpu 100% of 70% target (avg over 2 ready instances)' });
  });

  it('does nothing within ±10 % of the target', () => {
    for (const cpu of [63.5, 70, 76.9]) assert.equal(decide(input({ cpu })).replicas, 2, `cpu ${cpu}`);
    assert.equal(decide(input({ cpu: 77.1 })).replicas, 3);
  });

  it('takes the largest proposal of several metrics', () => {
    const d = decide(input({ autoscale: auto({ memoryPercent: 50 }), cpu: 80, mem: 100, current: 3 }));
    assert.equal(d.replicas, 6);
    assert.equal(d.reason, 'login 3→6: cpu 80% of 70% target, memory 100% of 50% target (avg over 3 ready instances)');
  });

  it('averages over the measured (ready) instances only: a cold start does not scale up again', () => {
    // 4 desired, 2 measured at 100 % of target: ceil(2 × 1) = 2 < 4, no second scale-up.
    assert.equal(decide(input({ current: 4, measured: 2, cpu: 70 })).replicas, 4);
  });

  it('clamps to [min, max], and at least +1 per step', () => {
    assert.equal(decide(input({ autoscale: auto({ max: 3 }), current: 2, cpu: 700 })).replicas, 3);
    assert.equal(decide(input({ current: 1, cpu: 140 })).replicas, 2);
    assert.equal(decide(input({ autoscale: auto({ min: 2 }), current: 3, cpu: 1 })).recommendation, 2);
  });

  it('scales down only to the highest recommendation of the stabilization window', () => {
    const history = [{ at: 1_000_000 - 50_000, replicas: 4 }, { at: 1_000_000 - 30_000, replicas: 3 }];
    const held = decide(input({ current: 4, cpu: 10, history }));
    assert.deepEqual(held, { recommendation: 1, replicas: 4, reason: 'login stays at 4: cpu 10% of 70% target (avg over 4 ready instances); waiting out scaleDownDelay 1m' });
    const later = decide(input({ current: 4, cpu: 10, history: [{ at: 1_000_000 - 61_000, replicas: 4 }, { at: 1_000_000 - 30_000, replicas: 3 }] }));
    assert.deepEqual(later, { recommendation: 1, replicas: 3, reason: 'login 4→3: cpu 10% of 70% target (avg over 4 ready instances); highest recommendation of the last 1m' });
  });

  it('does not flap when the load jumps up and down every sample', () => {
    let current = 1;
    const history: Array<{ at: number; replicas: number }> = [];
    const changes: number[] = [];
    for (let k = 0; k < 60; k++) {
      const now = 1_000_000 + k * 2000;
      // The total demand alternates between 1.2 and 0.6 instances' worth; the average spreads it over `current`.
      const cpu = (k % 2 ? 120 : 60) / current;
      const d = decide(input({ current, cpu, history: history.filter((h) => h.at > now - 60_000), now }));
      history.push({ at: now, replicas: d.recommendation });
      if (d.replicas !== current) changes.push(d.replicas);
      current = d.replicas;
    }
    assert.deepEqual(changes, [2], 'one scale-up, then held by the window');
  });

  it('goes to zero only when idle for idleToZero, never on low readings', () => {
    const a = auto({ min: 0, idleToZeroMs: 300_000 });
    assert.equal(decide(input({ autoscale: a, current: 1, cpu: 0, idleForMs: 299_000 })).replicas, 1);
    assert.equal(decide(input({ autoscale: a, current: 1, cpu: 0, idleForMs: null })).replicas, 1);
    assert.deepEqual(decide(input({ autoscale: a, current: 2, cpu: 0, idleForMs: 300_000 })), { recommendation: 0, replicas: 0, reason: 'login 2→0: no connections for 5m' });
    assert.deepEqual(decide(input({ autoscale: a, current: 0, measured: 0, cpu: null, idleForMs: 900_000 })), { recommendation: 0, replicas: 0, reason: 'login is idle at 0' });
  });

  it('caps a scale-up by the host memory left for instances, and says so', () => {
    const capped = decide({ ...input({ cpu: 300 }), memory: { perInstanceBytes: 512 * Mi, availableBytes: 1024 * Mi } });
    assert.deepEqual(capped, { recommendation: 9, replicas: 4, reason: 'login 2→4: cpu 300% of 70% target (avg over 2 ready instances); at most doubling per step (wants 9)' });
    const tight = decide({ ...input({ cpu: 300 }), memory: { perInstanceBytes: 512 * Mi, availableBytes: 600 * Mi } });
    assert.equal(tight.replicas, 3);
    assert.match(tight.reason, /; capped at 3 by host memory \(600Mi left for instances of 512Mi\)$/);
    const none = decide({ ...input({ cpu: 300 }), memory: { perInstanceBytes: 512 * Mi, availableBytes: -5 } });
    assert.equal(none.replicas, 2);
  });

  it('applies schedule bounds at once, even asleep at zero', () => {
    const bounds = { min: 3, max: 10, why: 'schedule "0 9 * * 1-5"' };
    assert.deepEqual(decide(input({ current: 1, cpu: 10, bounds })), { recommendation: 3, replicas: 3, reason: 'login 1→3: schedule "0 9 * * 1-5" raise min to 3' });
    assert.equal(decide(input({ autoscale: auto({ min: 0, idleToZeroMs: 60_000 }), current: 0, cpu: null, measured: 0, bounds })).replicas, 3);
    assert.equal(decide(input({ current: 8, cpu: 70, bounds: { min: 1, max: 5, why: null } })).replicas, 5);
  });
});

describe('scaler: schedule windows (injected clock)', () => {
  it('is active from each firing for its duration', () => {
    // 2026-11-23 is a Monday; node-cron matches in local time, so build local dates.
    const local = (d: number, h: number, m: number) => new Date(2026, 10, d, h, m, 30).getTime();
    assert.equal(windowActive('0 9 * * 1-5', 3_600_000, local(23, 8, 59)), false);
    assert.equal(windowActive('0 9 * * 1-5', 3_600_000, local(23, 9, 0)), true);
    assert.equal(windowActive('0 9 * * 1-5', 3_600_000, local(23, 9, 59)), true);
    assert.equal(windowActive('0 9 * * 1-5', 3_600_000, local(23, 10, 0)), false);
    assert.equal(windowActive('0 9 * * 1-5', 3_600_000, local(22, 9, 30)), false, 'Sunday');
  });

  it('raises the bounds while a window is active', () => {
    const fires = (expr: string, d: Date) => expr === 'A' && d.getTime() === 0;
    const a = auto({ min: 1, max: 4, schedule: [{ cron: 'A', durationMs: 120_000, min: 3, max: 10 }, { cron: 'B', durationMs: 60_000, min: null, max: 6 }] });
    assert.deepEqual(activeBounds(a, 60_000, fires), { min: 3, max: 10, why: 'schedule "A"' });
    assert.deepEqual(activeBounds(a, 180_000, fires), { min: 1, max: 4, why: null });
  });
});

describe('scaler: readings', () => {
  it('turns cumulative cgroup CPU into a rate, as a percentage of the limit; memory as working set over limit', () => {
    const ring = new MetricsRing();
    const s = (at: number, cpuMs: number) => ({ cpuUsageNs: cpuMs * 1e6, memoryUsageBytes: 40 * Mi, memoryWorkingSetBytes: 32 * Mi, memoryLimitBytes: 64 * Mi, cpuLimitMillis: 500, pids: 1, cpuPeriods: null, cpuThrottledPeriods: null, cpuThrottledNs: null, blkReadBytes: null, blkWriteBytes: null, net: null, at });
    ring.add('web-1', s(0, 0));
    assert.equal(ring.cpuPercent('web-1', 10_000), null, 'one sample is no rate');
    ring.add('web-1', s(2000, 500));
    ring.add('web-1', s(4000, 1500));
    assert.equal(ring.cpuPercent('web-1', 10_000), 75, '1.5 s of CPU over 4 s = 0.375 cores = 75 % of 500m');
    assert.equal(ring.cpuPercent('web-1', 2500), 100, 'the last 2 s only');
    assert.equal(ring.memoryPercent('web-1'), 50);
    ring.retain(new Set());
    assert.equal(ring.memoryPercent('web-1'), null);
  });
});
