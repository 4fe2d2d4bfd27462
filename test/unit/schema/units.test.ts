import assert from 'node:assert/strict';
import {
  formatCpu, formatDuration, formatMemory, parseCpu, parseDuration, parseIntOrPercent, parseMemory, parsePercent,
  resolveIntOrPercent, type Parsed,
} from '../../../src/schema/units.js';

function table(parse: (v: unknown) => Parsed, good: [unknown, number][], bad: [unknown, string][]) {
  for (const [input, value] of good) {
    it(`${JSON.stringify(input)} → ${value}`, () => assert.deepEqual(parse(input), { ok: true, value }));
  }
  for (const [input, message] of bad) {
    it(`${JSON.stringify(input)} is refused`, () => assert.deepEqual(parse(input), { ok: false, message }));
  }
}

describe('units', () => {
  describe('parseCpu', () => table(parseCpu,
    [['500m', 500], ['0.5', 500], [0.5, 500], ['2', 2000], [2, 2000], ['1m', 1], [0.1, 100], ['1.5', 1500]],
    [
      ['12Q', '"12Q" is not a CPU amount (use e.g. 500m or 0.5)'],
      ['0', '"0" is not a CPU amount above zero (use e.g. 500m or 0.5)'],
      ['0.0005', '"0.0005" is finer than 1m, the smallest CPU unit (use e.g. 1m or 0.001)'],
      [true, 'true is not a CPU amount (use e.g. 500m or 0.5)'],
    ]));

  describe('parseMemory', () => table(parseMemory,
    [['128Mi', 134217728], ['1Gi', 1073741824], ['500M', 500_000_000], [67108864, 67108864], ['64Mi', 67108864], ['0.5Gi', 536870912]],
    [
      ['12Q', '"12Q" is not a memory size (use e.g. 128Mi)'],
      ['128mi', '"128mi" is not a memory size (use e.g. 128Mi)'],
      ['1Mi', '"1Mi" is below 6Mi, too little for any container (use e.g. 64Mi)'],
      ['1.5', '"1.5" is not a whole number of bytes (use e.g. 128Mi)'],
    ]));

  describe('parseDuration', () => table(parseDuration,
    [['500ms', 500], ['5s', 5000], ['1m', 60000], ['1m30s', 90000], ['2h', 7_200_000], ['1.5s', 1500], ['0s', 0]],
    [
      ['5', '"5" is not a duration (use e.g. 500ms, 30s, 5m or 1h)'],
      [30, '30 has no unit (write e.g. 30s)'],
      ['', '"" is not a duration (use e.g. 500ms, 30s, 5m or 1h)'],
      ['5 s', '"5 s" is not a duration (use e.g. 500ms, 30s, 5m or 1h)'],
      ['1w', '"1w" is not a duration (use e.g. 500ms, 30s, 5m or 1h)'],
    ]));

  describe('parsePercent', () => table(parsePercent,
    [['70%', 70], [70, 70], ['100%', 100], ['12.5%', 12.5]],
    [['70', '"70" is not a percentage (use e.g. 70%)'], ['0%', '"0%" is outside 1%–100%'], ['150%', '"150%" is outside 1%–100%']]));

  it('parses and resolves counts and percentages of replicas', () => {
    assert.deepEqual(parseIntOrPercent(2), { ok: true, value: { count: 2 } });
    assert.deepEqual(parseIntOrPercent('25%'), { ok: true, value: { percent: 25 } });
    assert.equal(parseIntOrPercent('x').ok, false);
    assert.equal(resolveIntOrPercent({ percent: 25 }, 10, 'up'), 3);
    assert.equal(resolveIntOrPercent({ percent: 25 }, 10, 'down'), 2);
    assert.equal(resolveIntOrPercent({ count: 1 }, 10, 'down'), 1);
  });

  it('prints values back in the units people write', () => {
    assert.equal(formatCpu(500), '500m');
    assert.equal(formatCpu(2000), '2');
    assert.equal(formatMemory(134217728), '128Mi');
    assert.equal(formatMemory(1073741824), '1Gi');
    assert.equal(formatMemory(500_000_000), '500000000');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(7_200_000), '2h');
  });
});
