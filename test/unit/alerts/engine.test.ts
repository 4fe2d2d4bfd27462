// The engine over a real store (a temporary CARTE_HOME) with a stand-in
// collector and clock: it writes only on transitions, records the events,
// and a restarted engine takes firing alerts over without firing them again.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { defaultAlertsConfig, type AlertsConfig } from '../../../src/alerts/config.js';
import { AlertEngine } from '../../../src/alerts/engine.js';
import { resolveRules } from '../../../src/alerts/rules.js';
import type { Alert } from '../../../src/alerts/types.js';
import { cliLogger } from '../../../src/log.js';
import type { MetricsSnapshot, MetricsView } from '../../../src/metrics/types.js';
import { Store } from '../../../src/store/store.js';
import { tempDir } from '../../helpers/paths.js';
import { serviceDoc, stateWith } from '../../helpers/state.js';

const T0 = Date.parse('2026-11-01T10:00:00Z');
const MiB = 2 ** 20;

describe('alerts: the engine', () => {
  let home: string;
  let store: Store;
  let now: number;
  let workingSet: number;
  const metrics: MetricsView = {
    latest: (): MetricsSnapshot => ({
      at: now, services: [], host: { at: now, cpuPercent: 1, cores: 4, memoryUsedBytes: 1, memoryTotalBytes: 2, diskFreeBytes: 50, diskTotalBytes: 100 },
      instances: [{
        at: now, instance: 'web-1', service: 'web', cpuCores: 0, cpuThrottled: 0, cpuLimitCores: null, memoryWorkingSetBytes: workingSet, memoryLimitBytes: 32 * MiB,
        netRxBytesPerSec: 0, netTxBytesPerSec: 0, netRxPacketsPerSec: 0, netTxPacketsPerSec: 0, blkReadBytesPerSec: 0, blkWriteBytesPerSec: 0, pids: 1, restarts: 0, ready: true,
      }],
    }),
    series: () => ({ t: [], v: [], stepMs: 1000 }),
    known: () => [],
    onSample: () => () => {},
  };
  const config: AlertsConfig = { ...defaultAlertsConfig(), rules: resolveRules({ 'memory-high': { forMs: 5000, clearMs: 2000 } }) };
  const engine = () => new AlertEngine({ store, log: cliLogger('silent'), config, metrics, clock: () => now });
  const generation = async () => (await store.read()).generation ?? 0;
  const alertEvents = async () => (await store.read()).events.filter((e) => e.reason.startsWith('Alert')).map((e) => `${e.at} ${e.type} ${e.object} ${e.reason}: ${e.message}`);

  beforeEach(async () => {
    home = tempDir('carte-alerts-');
    store = Store.open(home);
    now = T0;
    workingSet = 31 * MiB;
    await store.update((d) => {
      Object.assign(d, stateWith([serviceDoc('web')]));
      d.instances = { 'web-1': { service: 'web', restarts: 0, ready: true, unhealthy: false, lastError: null } };
    });
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('fires once after `for`, writing the store only then; a restart takes it over; it resolves once', async () => {
    const a = engine();
    await a.load();
    const changes: Alert[] = [];
    a.onChange((x) => changes.push(x));
    const before = await generation();
    for (const s of [0, 1, 2, 3, 4]) {
      now = T0 + s * 1000;
      await a.tick();
    }
    assert.equal(await generation(), before, 'no write while nothing changes');
    now = T0 + 5000;
    await a.tick();
    now = T0 + 6000;
    await a.tick();
    assert.equal(await generation(), before + 1, 'one write for the firing');
    const fired = a.active();
    assert.deepEqual(fired.map((x) => x.id), ['memory-high:instance/web-1:2026-11-01T10:00:05.000Z']);
    assert.deepEqual(changes, fired);
    assert.deepEqual((await store.read()).alerts, { active: fired, resolved: [] });

    // The daemon restarts: the new engine knows the alert and does not fire it again.
    const b = engine();
    await b.load();
    assert.deepEqual(b.active(), fired);
    for (const s of [60, 61, 62]) {
      now = T0 + s * 1000;
      await b.tick();
    }
    assert.equal(await generation(), before + 1);

    workingSet = 10 * MiB;
    for (const s of [63, 64, 65]) {
      now = T0 + s * 1000;
      await b.tick();
    }
    assert.deepEqual(b.active(), []);
    const resolved = { ...fired[0]!, resolvedAt: '2026-11-01T10:01:05.000Z' };
    assert.deepEqual(b.recent(), [resolved]);
    assert.deepEqual((await store.read()).alerts, { active: [], resolved: [resolved] });
    assert.equal(await generation(), before + 2);
    assert.deepEqual(await alertEvents(), [
      '2026-11-01T10:00:05.000Z Warning instance/web-1 AlertFired: memory-high: working set 31.0Mi of its 32.0Mi memory limit (97%), above 90%',
      '2026-11-01T10:01:05.000Z Normal instance/web-1 AlertResolved: memory-high: resolved after 1m (working set 31.0Mi of its 32.0Mi memory limit (97%), above 90%)',
    ]);
  });

  it('a transition the store could not take is tried again next round, not lost or announced early', async () => {
    const a = engine();
    await a.load();
    const changes: Alert[] = [];
    a.onChange((x) => changes.push(x));
    now = T0;
    await a.tick();
    now = T0 + 5000;
    const update = store.update.bind(store);
    store.update = async () => {
      throw new Error('disk full');
    };
    await assert.rejects(a.tick(), /^Error: disk full$/);
    assert.deepEqual([a.active(), changes], [[], []]);
    store.update = update;
    now = T0 + 6000;
    await a.tick();
    assert.deepEqual(a.active().map((x) => x.firedAt), ['2026-11-01T10:00:06.000Z']);
    assert.equal(changes.length, 1);
  });
});
