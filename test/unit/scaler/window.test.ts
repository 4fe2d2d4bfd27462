import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { applyServices } from '../../../src/api/apply.js';
import { cliLogger } from '../../../src/log.js';
import { desiredServices } from '../../../src/reconciler/reconciler.js';
import { Scaler } from '../../../src/scaler/scaler.js';
import { Store } from '../../../src/store/store.js';
import { serviceDoc, services, yaml } from '../../helpers/manifests.js';
import { tempDir } from '../../helpers/paths.js';

// The scale-down window across a daemon restart: a new Scaler (a new daemon)
// must never scale down sooner than the old one would have.
describe('scaler: the scale-down window survives a restart', () => {
  let home: string;
  let store: Store;
  let now: number;
  const windowFile = () => path.join(home, 'scaler-window.json');
  /** Three ready instances using 10 % of their CPU limit (target 60 %): the readings ask for 1. */
  let cpuNs = 0;
  const make = () => {
    const scaler = new Scaler({
      store, log: cliLogger('silent'), activity: () => null, trigger: () => undefined, intervalMs: 2000, windowFile: windowFile(),
      totalMemoryBytes: 2 ** 40, memoryReserveBytes: 0, clock: () => now,
      driver: { stats: async () => ({ cpuUsageNs: (cpuNs += 0), memoryUsageBytes: 0, memoryWorkingSetBytes: 0, memoryLimitBytes: null, cpuLimitMillis: 1000, pids: 1, cpuPeriods: null, cpuThrottledPeriods: null, cpuThrottledNs: null, blkReadBytes: null, blkWriteBytes: null, net: null, at: now }) },
    });
    return scaler;
  };
  const membership = async () => ({
    services: desiredServices(await store.read()),
    instances: [1, 2, 3].map((n) => ({ name: `web-${n}`, service: 'web', ip: null, ready: true })),
    addresses: {},
  });
  const replicas = async () => (await store.read()).services.web!.autoscaled?.replicas ?? 3;
  /** Ticks every 2 s for `ms`, with CPU advancing at 10 % of one core. */
  const run = async (scaler: Scaler, ms: number) => {
    for (let t = 0; t < ms; t += 2000) {
      now += 2000;
      cpuNs += 0.1 * 2000 * 1e6;
      await scaler.tick();
    }
  };

  beforeEach(async () => {
    home = tempDir();
    store = Store.open(home);
    now = Date.parse('2026-11-01T10:00:00Z');
    await applyServices(store, { services: services({ 'w.yaml': yaml(serviceDoc('web', { replicas: 3, resources: { cpu: 1 }, autoscale: { min: 1, max: 5, cpu: '60%', scaleDownDelay: '60s' } })) }), source: 'cli', prune: false });
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('after a crash (nothing saved), holds scale-down back a whole window from the start', async () => {
    const scaler = make();
    scaler.start();
    scaler.observe(await membership());
    await new Promise((r) => setImmediate(r));
    try {
      await run(scaler, 50_000);
      assert.equal(await replicas(), 3, 'no scale-down within the first window');
      await run(scaler, 16_000);
      assert.equal(await replicas(), 1);
    } finally {
      await scaler.stop();
    }
  });

  it('after a clean stop, the next start knows the last window: no early scale-down, and no extra wait', async () => {
    await applyServices(store, { services: services({ 'w.yaml': yaml(serviceDoc('web', { replicas: 3, resources: { cpu: 1 }, autoscale: { min: 1, max: 3, cpu: '60%', scaleDownDelay: '60s' } })) }), source: 'cli', prune: false });
    const first = make();
    first.start();
    first.observe(await membership());
    await new Promise((r) => setImmediate(r));
    // 30 s of high load (recommendation 3, the max), then 20 s of low load; then a clean stop and an immediate start.
    for (let t = 0; t < 30_000; t += 2000) {
      now += 2000;
      cpuNs += 0.9 * 2000 * 1e6;
      await first.tick();
    }
    await run(first, 20_000);
    await first.stop();
    assert.ok(fs.existsSync(windowFile()));
    const second = make();
    second.start();
    second.observe(await membership());
    await new Promise((r) => setImmediate(r));
    assert.equal(fs.existsSync(windowFile()), false, 'read once');
    try {
      await run(second, 16_000);
      assert.equal(await replicas(), 3, 'the high recommendations of 20-50 s ago still hold it');
      await run(second, 30_000);
      assert.equal(await replicas(), 1, 'scaled down once they left the window, 40 s after the last one, not a whole window after the restart');
    } finally {
      await second.stop();
    }
  });
});
