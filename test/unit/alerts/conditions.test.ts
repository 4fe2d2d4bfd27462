// Each rule's condition, read from the state and the metrics snapshot, then
// carried through the state machine: fires once after its time, not when it
// clears before, resolves, and a restart does not fire it again.
import assert from 'node:assert/strict';
import { observe, type RuleInputs } from '../../../src/alerts/conditions.js';
import { advance, seed, type Track } from '../../../src/alerts/machine.js';
import { resolveRules, type RuleSettingsMap } from '../../../src/alerts/rules.js';
import type { InstanceSample, MetricsSnapshot } from '../../../src/metrics/types.js';
import type { InstanceHealthRecord } from '../../../src/model/instances.js';
import type { StateData } from '../../../src/store/state.js';
import { serviceDoc, stateWith } from '../../helpers/state.js';

const T0 = Date.parse('2026-11-01T10:00:00Z');
const MiB = 2 ** 20;
const at = (seconds: number) => T0 + seconds * 1000;

function sample(instance: string, workingSet: number, limit: number | null): InstanceSample {
  return {
    at: 0, instance, service: instance.replace(/-\d+$/, ''), cpuCores: 0, cpuThrottled: 0, cpuLimitCores: null,
    memoryWorkingSetBytes: workingSet, memoryLimitBytes: limit, netRxBytesPerSec: 0, netTxBytesPerSec: 0, netRxPacketsPerSec: 0,
    netTxPacketsPerSec: 0, blkReadBytesPerSec: 0, blkWriteBytesPerSec: 0, pids: 1, restarts: 0, ready: true,
  };
}
const snapshot = (now: number, ...instances: InstanceSample[]): MetricsSnapshot => ({ at: now, instances: instances.map((i) => ({ ...i, at: now })), services: [], host: null });
const record = (service: string, r: Partial<InstanceHealthRecord> = {}): InstanceHealthRecord => ({ service, restarts: 0, ready: true, unhealthy: false, lastError: null, ...r });

function inputs(now: number, data: StateData, extra: Partial<RuleInputs> = {}): RuleInputs {
  return { now, data, metrics: null, disk: null, ...extra };
}

/** Drives observe + advance over rounds; returns the transitions as text. */
function drive(rules: RuleSettingsMap, rounds: Array<[number, RuleInputs]>, tracks: Map<string, Track> = new Map()) {
  const log: string[] = [];
  for (const [s, input] of rounds) {
    const step = advance(tracks, observe(input, rules), rules, at(s));
    for (const a of step.fired) log.push(`${s}s fired ${a.rule} ${a.object} ${a.severity}: ${a.message}`);
    for (const a of step.resolved) log.push(`${s}s resolved ${a.rule} ${a.object}`);
    tracks = step.tracks;
  }
  return { log, tracks };
}

describe('alerts: rules', () => {
  const rules = resolveRules();
  const only = (name: keyof RuleSettingsMap, over: Partial<RuleSettingsMap[keyof RuleSettingsMap]> = {}) => {
    const r = resolveRules();
    for (const k of Object.keys(r) as Array<keyof RuleSettingsMap>) r[k].enabled = k === name;
    Object.assign(r[name], over);
    return r;
  };

  it('memory-high: above 90 % of the limit for 1 min fires once; below resolves after 30 s; no limit, no alert', () => {
    const data = stateWith([serviceDoc('web')]);
    data.instances = { 'web-1': record('web'), 'free-1': record('free') };
    const round = (s: number, ws: number) => [s, inputs(at(s), data, { metrics: snapshot(at(s), sample('web-1', ws, 32 * MiB), sample('free-1', 1024 * MiB, null)) })] as [number, RuleInputs];
    const r = only('memory-high');
    const { log, tracks } = drive(r, [round(0, 30 * MiB), round(30, 30 * MiB), round(59, 30 * MiB), round(60, 31 * MiB), round(120, 31 * MiB), round(125, 10 * MiB), round(154, 10 * MiB), round(155, 10 * MiB)]);
    assert.deepEqual(log, [
      '60s fired memory-high instance/web-1 warning: working set 31.0Mi of its 32.0Mi memory limit (97%), above 90%',
      '155s resolved memory-high instance/web-1',
    ]);
    assert.equal(tracks.size, 0);
    // Exactly at the threshold is not above it; 1 min minus a round is not long enough.
    assert.deepEqual(drive(r, [round(0, 0.9 * 32 * MiB), round(60, 0.9 * 32 * MiB)]).log, []);
    assert.deepEqual(drive(r, [round(0, 31 * MiB), round(59, 31 * MiB), round(60, 20 * MiB), round(61, 31 * MiB)]).log, []);
  });

  it('memory-high: a stale snapshot (collector stopped) says nothing; the alert is kept, not resolved', () => {
    const data = stateWith([serviceDoc('web')]);
    data.instances = { 'web-1': record('web') };
    const r = only('memory-high', { forMs: 0 });
    const fresh = inputs(at(0), data, { metrics: snapshot(at(0), sample('web-1', 31 * MiB, 32 * MiB)) });
    const stale = inputs(at(200), data, { metrics: snapshot(at(100), sample('web-1', 1 * MiB, 32 * MiB)) });
    const { log, tracks } = drive(r, [[0, fresh], [200, stale], [300, inputs(at(300), data)]]);
    assert.deepEqual(log, ['0s fired memory-high instance/web-1 warning: working set 31.0Mi of its 32.0Mi memory limit (97%), above 90%']);
    assert.equal(tracks.size, 1);
  });

  it('crash-loop: a service in CrashLoopBackOff fires at once (critical) and resolves 1 min after it left it', () => {
    const data = stateWith([serviceDoc('crash')]);
    const looping = structuredClone(data);
    looping.waiting = { crash: { kind: 'crash-loop', instance: 'crash-1', exit: 'exited with code 3', restarts: 2, until: at(20) } };
    const { log } = drive(only('crash-loop'), [[0, inputs(at(0), looping)], [10, inputs(at(10), looping)], [20, inputs(at(20), data)], [79, inputs(at(79), data)], [80, inputs(at(80), data)]]);
    assert.deepEqual(log, ['0s fired crash-loop service/crash critical: crash-1 exited with code 3; restarted 2 times (CrashLoopBackOff)', '80s resolved crash-loop service/crash']);
  });

  it('health-failing: an instance whose last checks failed for 30 s fires; passing checks resolve it', () => {
    const data = stateWith([serviceDoc('web')]);
    const failing = structuredClone(data);
    failing.instances = { 'web-1': record('web', { ready: false, lastError: 'connection refused' }) };
    data.instances = { 'web-1': record('web') };
    const { log } = drive(only('health-failing'), [[0, inputs(at(0), failing)], [29, inputs(at(29), failing)], [30, inputs(at(30), failing)], [31, inputs(at(31), data)], [41, inputs(at(41), data)]]);
    assert.deepEqual(log, ['30s fired health-failing instance/web-1 warning: health checks failing: connection refused', '41s resolved health-failing instance/web-1']);
    // Within the health check's start period, failures are expected.
    const slow = stateWith([serviceDoc('slow', { health: { tcp: { port: 80 }, startPeriod: '2m' } })]);
    slow.instances = { 'slow-1': record('slow', { ready: false, lastError: 'connection refused', startedAt: new Date(at(0)).toISOString() }) };
    assert.deepEqual(drive(only('health-failing'), [[0, inputs(at(0), slow)], [60, inputs(at(60), slow)], [120, inputs(at(120), slow)], [150, inputs(at(150), slow)]]).log,
      ['150s fired health-failing instance/slow-1 warning: health checks failing: connection refused']);
  });

  it('not-converged: a service not Converged, Idle or Stopped for 5 min; a crash loop is left to crash-loop', () => {
    const data = stateWith([serviceDoc('web', { replicas: 2 })]);
    data.instances = { 'web-1': record('web') };
    const { log } = drive(only('not-converged'), [[0, inputs(at(0), data)], [299, inputs(at(299), data)], [300, inputs(at(300), data)]]);
    assert.deepEqual(log, ['300s fired not-converged service/web warning: Progressing, 1/2 ready']);
    const looping = structuredClone(data);
    looping.waiting = { web: { kind: 'crash-loop', instance: 'web-2', exit: 'exited with code 1', restarts: 5, until: at(1) } };
    assert.deepEqual(drive(rules, [[0, inputs(at(0), looping)], [300, inputs(at(300), looping)]]).log, ['0s fired crash-loop service/web critical: web-2 exited with code 1; restarted 5 times (CrashLoopBackOff)']);
    const stopped = structuredClone(data);
    stopped.services.web!.suspended = true;
    stopped.instances = {};
    assert.deepEqual(drive(only('not-converged'), [[0, inputs(at(0), stopped)], [300, inputs(at(300), stopped)]]).log, []);
  });

  it('scaled-to-max: an autoscaled service at its max for 10 min, with the scaler\'s reason', () => {
    const data = stateWith([serviceDoc('api', { resources: { cpu: '500m' }, autoscale: { min: 1, max: 3, cpu: '70%' } })]);
    const atMax = structuredClone(data);
    atMax.services.api!.autoscaled = { replicas: 3, at: new Date(T0).toISOString(), reason: 'cpu' };
    const reasons = { api: 'CPU 95% of 70% target: 5 wanted, capped at max 3' };
    const { log } = drive(only('scaled-to-max'), [[0, inputs(at(0), atMax, { scalerReasons: reasons })], [600, inputs(at(600), atMax, { scalerReasons: reasons })], [601, inputs(at(601), data)], [661, inputs(at(661), data)]]);
    assert.deepEqual(log, ['600s fired scaled-to-max service/api warning: at its maximum of 3 replicas: CPU 95% of 70% target: 5 wanted, capped at max 3', '661s resolved scaled-to-max service/api']);
  });

  it('disk-low: below 10 % free of CARTE_HOME\'s filesystem for 1 min fires (critical)', () => {
    const data = stateWith([]);
    const disk = (free: number) => ({ freeBytes: free * 2 ** 30, totalBytes: 100 * 2 ** 30 });
    const { log } = drive(only('disk-low'), [[0, inputs(at(0), data, { disk: disk(9) })], [60, inputs(at(60), data, { disk: disk(9) })], [61, inputs(at(61), data, { disk: disk(10) })], [121, inputs(at(121), data, { disk: disk(50) })]]);
    assert.deepEqual(log, ['60s fired disk-low host critical: 9.0Gi free of 100.0Gi (9%) on CARTE_HOME\'s filesystem, below 10%', '121s resolved disk-low host']);
  });

  it('state-damaged: a recovery fires at once, once, and resolves an hour after it (also across a restart)', () => {
    const data = stateWith([]);
    data.recovery = { at: new Date(at(-5)).toISOString(), generation: 7, reason: 'not valid JSON (Unexpected end)', damagedFile: '/h/state.damaged-x.json' };
    const r = only('state-damaged');
    const first = drive(r, [[0, inputs(at(0), data)], [60, inputs(at(60), data)]]);
    assert.deepEqual(first.log, ['0s fired state-damaged state critical: state.json was damaged (not valid JSON (Unexpected end)); restored generation 7 at 2026-11-01T09:59:55.000Z; the damaged file is kept at /h/state.damaged-x.json']);
    const restarted = drive(r, [[120, inputs(at(120), data)], [3594, inputs(at(3594), data)], [3595, inputs(at(3595), data)], [4000, inputs(at(4000), data)]], seed([...first.tracks.values()].map((t) => t.alert!)));
    assert.deepEqual(restarted.log, ['3595s resolved state-damaged state']);
  });

  it('a disabled rule observes nothing', () => {
    const data = stateWith([]);
    data.recovery = { at: new Date(at(0)).toISOString(), generation: 1, reason: 'x', damagedFile: null };
    const off = resolveRules({ 'state-damaged': { enabled: false } });
    assert.deepEqual(observe(inputs(at(0), data), off).observations.filter((o) => o.rule === 'state-damaged'), []);
  });
});
