// The sign-in limits' pure parts: one key for every loopback address, and the
// gate that bounds password checks running and waiting.
import assert from 'node:assert/strict';
import { addressKey, Gate } from '../../../src/web/limiter.js';

describe('web: sign-in limits', () => {
  it('every loopback address is one key; other addresses are their own', () => {
    for (const ip of ['127.0.0.1', '127.0.0.2', '127.255.3.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.9.9.9']) assert.equal(addressKey(ip), 'loopback', ip);
    for (const ip of ['10.0.0.5', '128.0.0.1', '::2', '::ffff:10.0.0.1', 'fe80::1', '2001:db8::1']) assert.equal(addressKey(ip), ip, ip);
  });

  it('runs at most `running` tasks, queues `queued`, refuses the rest at once, and hands slots on', async () => {
    const gate = new Gate(2, 3);
    const releases: Array<() => void> = [];
    let started = 0;
    const task = () => new Promise<number>((resolve) => {
      const n = ++started;
      releases.push(() => resolve(n));
    });
    const runs = Array.from({ length: 5 }, () => gate.tryRun(task));
    assert.ok(runs.every((r) => r !== null));
    assert.equal(gate.tryRun(task), null);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(gate.load(), { running: 2, waiting: 3 });
    assert.equal(started, 2);
    releases[0]!();
    assert.equal(await runs[0], 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(started, 3);
    assert.deepEqual(gate.load(), { running: 2, waiting: 2 });
    assert.notEqual(gate.tryRun(task), null, 'a place in the queue was freed');
    // A failing task frees its slot too.
    const failing = new Gate(1, 0);
    await assert.rejects(failing.tryRun(async () => { throw new Error('boom'); })!, /boom/);
    assert.deepEqual(failing.load(), { running: 0, waiting: 0 });
    for (let i = 1; i < 6; i++) {
      await new Promise((r) => setImmediate(r));
      releases[i]?.();
    }
  });
});
