// The alert state machine, pure: observations in, tracks and transitions out.
import assert from 'node:assert/strict';
import type { Observation, Observed } from '../../../src/alerts/conditions.js';
import { advance, seed, type Track } from '../../../src/alerts/machine.js';
import { resolveRules } from '../../../src/alerts/rules.js';
import type { Alert } from '../../../src/alerts/types.js';

const T0 = Date.parse('2026-11-01T10:00:00Z');
const s = (n: number) => T0 + n * 1000;
const rules = resolveRules({ 'memory-high': { forMs: 10_000, clearMs: 5_000 } });
const obj = 'instance/web-1';
const seen = (holds: boolean, message = 'working set high'): Observed => ({
  observations: [{ rule: 'memory-high', object: obj, holds, message } satisfies Observation],
  present: new Set([obj]),
});
const nothing = (present: string[] = [obj]): Observed => ({ observations: [], present: new Set(present) });

/** Runs rounds [second, observed] and collects every transition as text. */
function run(rounds: Array<[number, Observed]>, tracks: Map<string, Track> = new Map()): { log: string[]; tracks: Map<string, Track> } {
  const log: string[] = [];
  for (const [at, o] of rounds) {
    const step = advance(tracks, o, rules, s(at));
    for (const a of step.fired) log.push(`${at}s fired ${a.id} (${a.message})`);
    for (const a of step.resolved) log.push(`${at}s resolved ${a.id} at ${a.resolvedAt}`);
    tracks = step.tracks;
  }
  return { log, tracks };
}

describe('alerts: the state machine', () => {
  it('fires once, after the condition held for its `for` time', () => {
    const { log, tracks } = run([[0, seen(true)], [5, seen(true)], [10, seen(true, 'later words')], [15, seen(true)], [60, seen(true)]]);
    assert.deepEqual(log, ['10s fired memory-high:instance/web-1:2026-11-01T10:00:10.000Z (later words)']);
    const alert = tracks.get(`memory-high ${obj}`)!.alert!;
    assert.deepEqual(alert, {
      id: 'memory-high:instance/web-1:2026-11-01T10:00:10.000Z', rule: 'memory-high', severity: 'warning', object: obj,
      message: 'later words', firedAt: '2026-11-01T10:00:10.000Z', resolvedAt: null,
    });
  });

  it('never fires when the condition clears before its `for` time, and starts the time over', () => {
    const { log } = run([[0, seen(true)], [9, seen(true)], [10, seen(false)], [11, seen(true)], [20, seen(true)], [21, seen(true)]]);
    assert.deepEqual(log, ['21s fired memory-high:instance/web-1:2026-11-01T10:00:21.000Z (working set high)']);
  });

  it('resolves once the condition has been clear for its `clear` time; a return within it is the same alert', () => {
    const { log } = run([
      [0, seen(true)], [10, seen(true)],
      [12, seen(false)], [14, seen(true)], // back within clear: no resolve, no second firing
      [16, seen(false)], [20, seen(false)], [21, seen(false)], [30, seen(false)],
    ]);
    assert.deepEqual(log, [
      '10s fired memory-high:instance/web-1:2026-11-01T10:00:10.000Z (working set high)',
      '21s resolved memory-high:instance/web-1:2026-11-01T10:00:10.000Z at 2026-11-01T10:00:21.000Z',
    ]);
  });

  it('fires again, as a new alert, when the condition comes back after a resolution', () => {
    const { log } = run([[0, seen(true)], [10, seen(true)], [11, seen(false)], [16, seen(false)], [17, seen(true)], [27, seen(true)]]);
    assert.deepEqual(log, [
      '10s fired memory-high:instance/web-1:2026-11-01T10:00:10.000Z (working set high)',
      '16s resolved memory-high:instance/web-1:2026-11-01T10:00:10.000Z at 2026-11-01T10:00:16.000Z',
      '27s fired memory-high:instance/web-1:2026-11-01T10:00:27.000Z (working set high)',
    ]);
  });

  it('a restart does not fire again what was firing: the seeded alert goes on and resolves as itself', () => {
    const first = run([[0, seen(true)], [10, seen(true)]]);
    const stored: Alert[] = [...first.tracks.values()].map((t) => t.alert!);
    // The daemon restarts: only the firing alerts come back (from the store).
    const after = run([[100, nothing()], [101, seen(true)], [200, seen(true)], [201, seen(false)], [206, seen(false)]], seed(stored));
    assert.deepEqual(after.log, ['206s resolved memory-high:instance/web-1:2026-11-01T10:00:10.000Z at 2026-11-01T10:03:26.000Z']);
  });

  it('keeps a tracked object with no reading while it exists, and resolves its alert once it is gone', () => {
    const { log } = run([[0, seen(true)], [10, seen(true)], [11, nothing()], [50, nothing()], [51, nothing([])]]);
    assert.deepEqual(log, [
      '10s fired memory-high:instance/web-1:2026-11-01T10:00:10.000Z (working set high)',
      '51s resolved memory-high:instance/web-1:2026-11-01T10:00:10.000Z at 2026-11-01T10:00:51.000Z',
    ]);
  });

  it('resolves a firing alert whose rule was turned off (a new config after a restart)', () => {
    const first = run([[0, seen(true)], [10, seen(true)]]);
    const off = resolveRules({ 'memory-high': { enabled: false } });
    const step = advance(seed([...first.tracks.values()].map((t) => t.alert!)), nothing(), off, s(20));
    assert.deepEqual(step.resolved.map((a) => [a.id, a.resolvedAt]), [['memory-high:instance/web-1:2026-11-01T10:00:10.000Z', '2026-11-01T10:00:20.000Z']]);
    assert.equal(step.tracks.size, 0);
  });

  it('with `for: 0` fires on the first round the condition holds', () => {
    const step = advance(new Map(), { observations: [{ rule: 'crash-loop', object: 'service/crash', holds: true, message: 'm' }], present: new Set(['service/crash']) }, rules, s(0));
    assert.deepEqual(step.fired.map((a) => [a.id, a.severity]), [['crash-loop:service/crash:2026-11-01T10:00:00.000Z', 'critical']]);
  });
});
