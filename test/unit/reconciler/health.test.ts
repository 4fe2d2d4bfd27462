import assert from 'node:assert/strict';
import type { ObservedInstance } from '../../../src/drivers/driver.js';
import { HealthMonitor } from '../../../src/reconciler/health.js';
import type { HealthSpec } from '../../../src/schema/types.js';

const spec: HealthSpec = { check: { kind: 'tcp', port: 80 }, intervalMs: 1000, timeoutMs: 1000, failureThreshold: 3, startPeriodMs: 0 };
const running = (name: string, startedAt: string): ObservedInstance => ({
  name, service: 'web', labels: {}, image: 'x', state: 'running', pid: 1, exitCode: null, oomKilled: false,
  createdAt: startedAt, startedAt, finishedAt: null, ip: '10.0.0.2', problems: [],
});

describe('health monitor', () => {
  it('a new life under the same name gets its own results, whatever the old life left', async () => {
    let now = 1_000_000;
    const monitor = new HealthMonitor(async () => null, () => now);
    const old = running('web-1', '2026-11-01T10:00:00.000Z');
    await monitor.checkDue([old], () => spec);
    assert.deepEqual(monitor.view(old, spec), { ready: true, unhealthy: false, known: true });
    // Restarted (remove + create under the same name) without a listing in between.
    const renewed = running('web-1', '2026-11-01T10:00:05.000Z');
    assert.deepEqual(monitor.view(renewed, spec), { ready: false, unhealthy: false, known: false });
    now += 10;
    await monitor.checkDue([renewed], () => spec);
    assert.deepEqual(monitor.view(renewed, spec), { ready: true, unhealthy: false, known: true });
  });

  it('drops a late result about an older life than the one it knows', async () => {
    let release!: (r: string | null) => void;
    const results: Array<Promise<string | null>> = [new Promise((r) => (release = r)), Promise.resolve(null)];
    const monitor = new HealthMonitor(() => results.shift()!, () => 1_000_000);
    const old = running('web-1', '2026-11-01T10:00:00.000Z');
    const slow = monitor.checkDue([old], () => spec);
    const renewed = running('web-1', '2026-11-01T10:00:05.000Z');
    monitor.seed('web-2', renewed.startedAt!, true); // unrelated: seeding never replaces a known state
    await new Promise((r) => setImmediate(r));
    release('connection refused');
    await slow;
    // The old life's result was recorded (nothing newer was known yet)...
    assert.equal(monitor.get('web-1')?.startedAt, old.startedAt);
    // ...and once the new life has a result, an old one arriving late changes nothing.
    await monitor.checkDue([renewed], () => spec);
    assert.equal(monitor.get('web-1')?.startedAt, renewed.startedAt);
    assert.equal(monitor.get('web-1')?.ready, true);
  });
});
