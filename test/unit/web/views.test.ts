import assert from 'node:assert/strict';
import type { CarteEvent } from '../../../src/store/state.js';
import { emptyState } from '../../../src/store/state.js';
import type { MetricsView, Series } from '../../../src/metrics/types.js';
import { instancesOf, seriesQuery, serviceSeries, sumSeries } from '../../../src/web/series.js';
import { concerns, markers } from '../../../src/web/views.js';
import { EventFeed, resumeAfter, sseMessage } from '../../../src/web/events.js';
import { recordEvent, type StateData } from '../../../src/store/state.js';
import { cliLogger } from '../../../src/log.js';

const ev = (seq: number, reason: string, object = 'service/web'): CarteEvent => ({ seq, at: new Date(Date.UTC(2026, 11, 1, 10, 0, seq)).toISOString(), type: 'Normal', object, reason, message: `m${seq}` });

describe('web: chart markers and series', () => {
  it('markers for deploys, scaling, wakes, restarts and alerts; other events make none', () => {
    const list = ['Created', 'InstanceCreated', 'Configured', 'Scaled', 'Autoscaled', 'ScaledToZero', 'Woken', 'RestartRequested', 'InstanceRestarted', 'AlertFired', 'AlertResolved', 'RolledBack', 'Stopped'].map((r, i) => ev(i + 1, r));
    assert.deepEqual(markers(list).map((m) => `${m.kind} ${m.label}`), [
      'deploy Created: m1', 'deploy Configured: m3', 'scale Scaled: m4', 'scale Autoscaled: m5', 'scale ScaledToZero: m6', 'wake Woken: m7',
      'restart RestartRequested: m8', 'restart InstanceRestarted: m9', 'alert AlertFired: m10', 'deploy RolledBack: m12',
    ]);
    assert.equal(markers([ev(1, 'Created')])[0]!.at, Date.UTC(2026, 11, 1, 10, 0, 1));
  });

  it("an instance's events and alerts belong to its service (from the store, else by its name)", () => {
    const data = emptyState();
    data.instances['api-7'] = { service: 'web', restarts: 0, ready: true, unhealthy: false, lastError: null };
    assert.equal(concerns('service/web', 'web', data), true);
    assert.equal(concerns('service/webx', 'web', data), false);
    assert.equal(concerns('instance/api-7', 'web', data), true);
    assert.equal(concerns('instance/web-3', 'web', data), true);
    assert.equal(concerns('host', 'web', data), false);
  });

  it("a service's series is the sum of its instances', point by point at the coarsest step", () => {
    const a: Series = { t: [0, 10_000, 20_000], v: [1, 2, null], stepMs: 10_000 };
    const b: Series = { t: [0, 10_000, 20_000, 30_000], v: [0.5, null, null, 4], stepMs: 10_000 };
    assert.deepEqual(sumSeries([a, b]), { t: [0, 10_000, 20_000, 30_000], v: [1.5, 2, null, 4], stepMs: 10_000 });
    assert.deepEqual(sumSeries([]), { t: [], v: [], stepMs: 0 });
    assert.deepEqual(sumSeries([{ t: [], v: [], stepMs: 60_000 }]), { t: [], v: [], stepMs: 60_000 });
    // Different resolutions: the finer one averaged into the coarser step, then added.
    assert.deepEqual(sumSeries([{ t: [60_000, 70_000, 80_000], v: [1, 2, null], stepMs: 10_000 }, { t: [60_000], v: [3], stepMs: 60_000 }]), { t: [60_000], v: [4.5], stepMs: 60_000 });
  });

  it("a service's instances, present and gone", () => {
    const data = emptyState();
    data.instances['odd'] = { service: 'web', restarts: 0, ready: true, unhealthy: false, lastError: null };
    assert.deepEqual(instancesOf('web', ['web-1', 'web-2', 'web-x', 'webby-1', 'web-1-1', 'odd', 'api-1'], data), ['web-1', 'web-2', 'odd']);
    const asked: string[] = [];
    const view = { known: () => ['web-1', 'web-2', 'api-1'], series: (q: { name: string }) => (asked.push(q.name), { t: [0], v: [1], stepMs: 10_000 }) } as unknown as MetricsView;
    assert.deepEqual(serviceSeries(view, { kind: 'service', name: 'web', metric: 'cpuCores', fromMs: 0, toMs: 1, maxPoints: 10 }, emptyState()), { t: [0], v: [2], stepMs: 10_000 });
    assert.deepEqual(asked, ['web-1', 'web-2']);
  });

  it('checks the series query and defaults to the last hour', () => {
    assert.deepEqual(seriesQuery({ kind: 'instance', name: 'web-1', metric: 'cpuCores' }, 7_200_000), { kind: 'instance', name: 'web-1', metric: 'cpuCores', fromMs: 3_600_000, toMs: 7_200_000, maxPoints: 300 });
    assert.deepEqual(seriesQuery({ kind: 'host', name: 'x', metric: 'cpuPercent', from: '10', to: '20', points: '5' }, 0), { kind: 'host', name: '', metric: 'cpuPercent', fromMs: 10, toMs: 20, maxPoints: 5 });
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ kind: 'disk', metric: 'x' }, 'kind must be one of instance, service, host, got "disk"'],
      [{ kind: 'service', metric: 'x' }, 'name is needed for kind=service'],
      [{ kind: 'host', metric: '__proto__' }, 'metric must be a field name such as cpuCores or memoryWorkingSetBytes, got "__proto__"'],
      [{ kind: 'host', metric: 'cpuPercent', from: '20', to: '10' }, 'from must not be after to'],
      [{ kind: 'host', metric: 'cpuPercent', to: 'soon' }, 'to takes milliseconds since the epoch, got "soon"'],
      [{ kind: 'host', metric: 'cpuPercent', points: '5000' }, 'points takes a whole number from 1 to 2000'],
    ];
    for (const [q, message] of bad) assert.throws(() => seriesQuery(q, 0), { message, status: 400 });
  });
});

describe('web: server-sent events', () => {
  it('each event is an id line and one data line', () => {
    assert.equal(sseMessage({ id: 7, at: 'T', type: 'Normal', object: 'service/web', reason: 'Scaled', message: 'a\nb' }),
      'id: 7\ndata: {"id":7,"at":"T","type":"Normal","object":"service/web","reason":"Scaled","message":"a\\nb"}\n\n');
  });

  it('resumes after the Last-Event-ID header, else the query, else from now', () => {
    assert.equal(resumeAfter('41', undefined), 41);
    assert.equal(resumeAfter('41', '7'), 41);
    assert.equal(resumeAfter(undefined, '7'), 7);
    assert.equal(resumeAfter(undefined, undefined), null);
    assert.equal(resumeAfter('x', undefined), null);
    assert.equal(resumeAfter('-1', undefined), null);
  });

  it('the feed replays what came after Last-Event-ID, then passes on new events to every listener until they leave', async () => {
    let data: StateData = emptyState();
    const add = (reason: string) => recordEvent(data, new Date(0), { type: 'Normal', object: 'service/web', reason, message: reason });
    ['A', 'B', 'C'].forEach(add);
    const feed = new EventFeed(async () => data, cliLogger('silent'), 5);
    const first: number[] = [];
    const second: number[] = [];
    const stopFirst = await feed.subscribe((rows) => first.push(...rows.map((r) => r.id)), 1);
    const stopSecond = await feed.subscribe((rows) => second.push(...rows.map((r) => r.id)), null);
    assert.deepEqual(first, [2, 3]);
    assert.deepEqual(second, []);
    data = structuredClone(data);
    add('D');
    add('E');
    for (let i = 0; i < 200 && second.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(first, [2, 3, 4, 5]);
    assert.deepEqual(second, [4, 5]);
    stopFirst();
    data = structuredClone(data);
    add('F');
    for (let i = 0; i < 200 && second.length < 3; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(first, [2, 3, 4, 5]);
    assert.deepEqual(second, [4, 5, 6]);
    stopSecond();
    feed.close();
  });
});
