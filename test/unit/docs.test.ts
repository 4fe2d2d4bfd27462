// The docs are part of the feature: their examples must stay valid.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { formatProblem } from '../../src/errors.js';
import { LIMITS } from '../../src/schema/types.js';
import { formatDuration } from '../../src/schema/units.js';
import { parse } from '../helpers/manifests.js';
import { ROOT } from '../helpers/paths.js';

describe('docs', () => {
  it('every yaml example in docs/manifests.md is a valid manifest set', () => {
    const text = fs.readFileSync(path.join(ROOT, 'docs', 'manifests.md'), 'utf8');
    const blocks = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assert.ok(blocks.length >= 1);
    blocks.forEach((block, i) => {
      const r = parse({ [`docs/manifests.md block ${i + 1}`]: block });
      assert.deepEqual(r.problems.map(formatProblem), []);
      assert.ok(r.services.length >= 1);
    });
  });

  it('the limits table in docs/manifests.md shows the values of LIMITS', () => {
    const text = fs.readFileSync(path.join(ROOT, 'docs', 'manifests.md'), 'utf8');
    const cell = (field: string) => new RegExp(`^\\| ${field.replace(/[[\]]/g, '\\$&')} \\| ([^|]*) \\|`, 'm').exec(text)?.[1];
    const d = formatDuration;
    assert.deepEqual({
      interval: cell('`health.interval`'),
      startPeriod: cell('`health.startPeriod`'),
      stopGracePeriod: cell('`stopGracePeriod`'),
      progressDeadline: cell('`update.progressDeadline`'),
      scaleDownDelay: cell('`autoscale.scaleDownDelay`'),
      idleToZero: cell('`autoscale.idleToZero`'),
      scheduleDuration: cell('`autoscale.schedule[].duration`'),
      replicas: cell('`replicas`, `autoscale.min`/`max`, window `min`/`max`'),
      nesting: cell('nesting of lists and mappings'),
    }, {
      interval: `${d(LIMITS.healthIntervalMinMs)} to ${d(LIMITS.healthIntervalMaxMs)}`,
      startPeriod: `at most ${d(LIMITS.healthStartPeriodMaxMs)}`,
      stopGracePeriod: `at most ${d(LIMITS.stopGracePeriodMaxMs)}`,
      progressDeadline: `${d(LIMITS.progressDeadlineMinMs)} to ${d(LIMITS.progressDeadlineMaxMs)}`,
      scaleDownDelay: `at most ${d(LIMITS.scaleDownDelayMaxMs)}`,
      idleToZero: `at most ${d(LIMITS.idleToZeroMaxMs)}`,
      scheduleDuration: `${d(LIMITS.scheduleDurationMinMs)} to ${d(LIMITS.scheduleDurationMaxMs)}`,
      replicas: `at most ${LIMITS.replicasMax}`,
      nesting: `at most ${LIMITS.nestingDepth} deep`,
    });
  });
});
