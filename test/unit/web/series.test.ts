import assert from 'node:assert/strict';
import type { EventRow } from '../../../src/web/types.js';
import { alignSeries, combine, eventConcerns, hasPoints, markersIn, mergeEvents } from '../../../web/lib/series.js';

const s = (t: number[], v: Array<number | null>) => ({ t, v, stepMs: 1000 });
const ev = (id: number, object = 'service/web'): EventRow => ({ id, at: '2026-12-06T00:00:00.000Z', type: 'Normal', object, reason: 'R', message: `m${id}` });

describe('web: shaping series, markers and events for the page', () => {
  it('aligns instances on the union of their times, null where one has no reading', () => {
    assert.deepEqual(alignSeries([s([1, 2], [10, 20]), s([2, 3], [5, null])]), { t: [1, 2, 3], lines: [[10, 20, null], [null, 5, null]] });
    assert.deepEqual(alignSeries([]), { t: [], lines: [] });
  });

  it('combines charts side by side (rx beside tx) and says whether there is anything to draw', () => {
    const c = combine([{ t: [1, 2], lines: [[1, 2]] }, { t: [2, 3], lines: [[5, 6]] }]);
    assert.deepEqual(c, { t: [1, 2, 3], lines: [[1, 2, null], [null, 5, 6]] });
    assert.equal(hasPoints(c), true);
    assert.equal(hasPoints({ t: [1], lines: [[null]] }), false);
  });

  it('keeps the markers inside the window, oldest first', () => {
    const m = [{ at: 50, kind: 'restart' as const, label: 'b' }, { at: 10, kind: 'deploy' as const, label: 'a' }, { at: 99, kind: 'alert' as const, label: 'c' }];
    assert.deepEqual(markersIn(m, 10, 60).map((x) => x.label), ['a', 'b']);
  });

  it('an event concerns a service when it names the service or one of its numbered instances', () => {
    assert.equal(eventConcerns(ev(1, 'service/web'), 'web'), true);
    assert.equal(eventConcerns(ev(1, 'instance/web-3'), 'web'), true);
    assert.equal(eventConcerns(ev(1, 'instance/web-api-1'), 'web'), false);
    assert.equal(eventConcerns(ev(1, 'service/web-api'), 'web'), false);
    assert.equal(eventConcerns(ev(1, 'instance/web-api-1'), 'web-api'), true);
    assert.equal(eventConcerns(ev(1, 'state'), 'web'), false);
  });

  it('merges streamed events by id (a reconnect may resend), newest last, bounded', () => {
    assert.deepEqual(mergeEvents([ev(1), ev(3)], [ev(2), ev(3)]).map((e) => e.id), [1, 2, 3]);
    assert.deepEqual(mergeEvents([ev(1), ev(2)], [ev(3), ev(4)], 3).map((e) => e.id), [2, 3, 4]);
  });
});
