import assert from 'node:assert/strict';
import { LIMITS } from '../../../src/schema/types.js';
import { problemLines, serviceDoc, services, yaml } from '../../helpers/manifests.js';

// Every case is one field away from a valid Service; positions follow yaml's stringify layout.
const web = (spec: Record<string, unknown>) => yaml(serviceDoc('web', { ports: [{ port: 80 }], ...spec }));
const tcp = { tcp: { port: 80 } };

describe('limits that keep the control plane bounded', () => {
  const cases: Array<[string, string, string[]]> = [
    ['health.timeout longer than the default interval', web({ health: { ...tcp, timeout: '20s' } }), [
      'x.yaml:12:14: spec.health.timeout: 20s is longer than the interval (10s): a check must end before the next one starts (use at most 10s)',
    ]],
    ['health.timeout longer than the written interval', web({ health: { ...tcp, interval: '2s', timeout: '2500ms' } }), [
      'x.yaml:13:14: spec.health.timeout: 2500ms is longer than the interval (2s): a check must end before the next one starts (use at most 2s)',
    ]],
    ['health.timeout of zero', web({ health: { ...tcp, timeout: '0s' } }), [
      'x.yaml:12:14: spec.health.timeout: 0s must be longer than 0: a check with no time to answer always fails (use e.g. 1s)',
    ]],
    ['health.interval too short', web({ health: { ...tcp, interval: '50ms', timeout: '10ms' } }), [
      'x.yaml:12:15: spec.health.interval: 50ms is shorter than 100ms: checks that often would keep the daemon busy (use at least 100ms)',
    ]],
    ['health.interval too long (the timeout is not compared with it)', web({ health: { ...tcp, interval: '2h', timeout: '90m' } }), [
      'x.yaml:12:15: spec.health.interval: 2h is longer than 1h: a failing instance would go unnoticed for that long (use at most 1h)',
    ]],
    ['health.startPeriod too long', web({ health: { ...tcp, startPeriod: '61m' } }), [
      'x.yaml:12:18: spec.health.startPeriod: 61m is longer than 1h: failures would be ignored for that long after every start (use at most 1h)',
    ]],
    ['stopGracePeriod too long', web({ stopGracePeriod: '2h' }), [
      'x.yaml:9:20: spec.stopGracePeriod: 2h is longer than 1h: a stopping instance could hold its resources and delay updates for that long (use at most 1h)',
    ]],
    ['update.progressDeadline too long', web({ update: { progressDeadline: '2d' } }), [
      'x.yaml:10:23: spec.update.progressDeadline: 2d is longer than 24h: a stuck rollout would go unreported for that long (use at most 24h)',
    ]],
    ['update.progressDeadline too short: every rollout would fail at once', web({ update: { progressDeadline: '0s' } }), [
      'x.yaml:10:23: spec.update.progressDeadline: 0s is shorter than 1s: every rollout would fail before an instance could start (use at least 1s)',
    ]],
    ['a schedule window shorter than a minute', web({ autoscale: { max: 2, schedule: [{ cron: '0 0 * * 6', duration: '30s', min: 2 }] } }), [
      'x.yaml:13:19: spec.autoscale.schedule[0].duration: 30s is shorter than 1m: windows are matched minute by minute, a shorter one may never be open (use at least 1m)',
    ]],
    ['autoscale.scaleDownDelay and idleToZero too long', web({ autoscale: { min: 0, max: 2, scaleDownDelay: '25h', idleToZero: '7d' } }), [
      'x.yaml:12:21: spec.autoscale.scaleDownDelay: 25h is longer than 24h: the service would stay scaled up that long after the load is gone (use at most 24h)',
      'x.yaml:13:17: spec.autoscale.idleToZero: 7d is longer than 24h: an idle service would hold its resources that long (use at most 24h)',
    ]],
    ['a schedule window too long', web({ autoscale: { max: 2, schedule: [{ cron: '0 0 * * 6', duration: '2d', min: 2 }] } }), [
      'x.yaml:13:19: spec.autoscale.schedule[0].duration: 2d is longer than 24h: the scaler looks back over every minute of a window on each decision (use at most 24h; to cover several days, let the cron fire on each of them)',
    ]],
    ['a duration too large for any number', web({ stopGracePeriod: `${'9'.repeat(400)}d` }), [
      `x.yaml:9:20: spec.stopGracePeriod: ${'9'.repeat(400)}d is longer than 1h: a stopping instance could hold its resources and delay updates for that long (use at most 1h)`,
    ]],
    ['replica counts of schedule windows', web({ autoscale: { max: 2, schedule: [{ cron: '0 9 * * *', min: 1, max: 5000 }] } }), [
      'x.yaml:14:14: spec.autoscale.schedule[0].max: 5000 is above the maximum of 1000',
    ]],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => assert.deepEqual(problemLines({ 'x.yaml': text }), expected));
  }

  it('accepts every limit exactly', () => {
    const hour = '1h';
    const day = '24h';
    const [s] = services({
      'x.yaml': web({
        health: { ...tcp, interval: '100ms', timeout: '100ms', startPeriod: hour },
        stopGracePeriod: hour,
        update: { progressDeadline: day },
        autoscale: { min: 0, max: LIMITS.replicasMax, scaleDownDelay: day, idleToZero: day, schedule: [{ cron: '0 0 * * *', duration: day, max: LIMITS.replicasMax }] },
      }),
    });
    assert.equal(s!.object.spec.health?.intervalMs, LIMITS.healthIntervalMinMs);
    assert.equal(s!.object.spec.stopGracePeriodMs, LIMITS.stopGracePeriodMaxMs);
    assert.equal(s!.object.spec.autoscale?.idleToZeroMs, LIMITS.idleToZeroMaxMs);
  });

  it('keeps the default timeout within a short interval', () => {
    const [s] = services({ 'x.yaml': web({ health: { ...tcp, interval: '500ms' } }) });
    assert.equal(s!.object.spec.health?.timeoutMs, 500);
  });
});
