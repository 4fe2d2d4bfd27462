import assert from 'node:assert/strict';
import { commitApply, planApply } from '../../../src/api/apply.js';
import { formatProblem } from '../../../src/errors.js';
import { emptyState } from '../../../src/store/state.js';
import { request, serviceDoc, stateWith, T0 } from '../../helpers/state.js';

const actions = (plan: ReturnType<typeof planApply>) => plan.changes.map((c) => `${c.name} ${c.action}`);

describe('apply', () => {
  it('creates, configures and leaves unchanged services', () => {
    const data = stateWith([serviceDoc('a'), serviceDoc('b')]);
    const plan = planApply(data, request([serviceDoc('a'), serviceDoc('b', { replicas: 3 }), serviceDoc('c')]));
    assert.deepEqual(plan.problems, []);
    assert.deepEqual(actions(plan), ['a unchanged', 'b configured', 'c created']);
  });

  it('records revisions with origin and commit, and events for each change', () => {
    const data = stateWith([serviceDoc('a')]);
    const req = request([serviceDoc('a', { replicas: 2 })], { commit: '0123456789abcdef0123' });
    commitApply(data, req, planApply(data, req), new Date('2026-11-01T10:05:00Z'));
    const a = data.services.a!;
    assert.deepEqual(a.history.map((r) => [r.revision, r.origin, r.commit]), [[1, 'seed.yaml:4:9', null], [2, 'new.yaml:4:9', '0123456789abcdef0123']]);
    assert.equal(a.revision.revision, 2);
    assert.equal(a.createdAt, T0.toISOString());
    assert.equal(a.updatedAt, '2026-11-01T10:05:00.000Z');
    assert.deepEqual(data.events.map((e) => `${e.seq} ${e.object} ${e.reason}: ${e.message}`), [
      '1 service/a Created: created at revision 1 by cli (seed.yaml:4:9)',
      '2 service/a Configured: revision 1 → 2 by cli (new.yaml:4:9 at 0123456789ab): spec.replicas',
    ]);
    assert.deepEqual(data.sources.cli, { id: 'cli', lastSync: '2026-11-01T10:05:00.000Z', commit: '0123456789abcdef0123', lastError: null });
  });

  it('an unchanged apply writes no revision and no event', () => {
    const data = stateWith([serviceDoc('a')]);
    const req = request([serviceDoc('a')]);
    commitApply(data, req, planApply(data, req), T0);
    assert.equal(data.services.a!.history.length, 1);
    assert.equal(data.events.length, 1);
  });

  it('refuses to take over a service another source owns', () => {
    const data = stateWith([serviceDoc('a')], 'folder:/srv/manifests');
    const plan = planApply(data, request([serviceDoc('a', { replicas: 2 })]));
    assert.deepEqual(plan.problems.map(formatProblem), [
      'new.yaml:4:9: metadata.name: service "a" belongs to source folder:/srv/manifests; change it there, or delete it first with "carte delete a"',
    ]);
  });

  it('prunes only what the same source owns', () => {
    let data = stateWith([serviceDoc('a'), serviceDoc('b')]);
    data = stateWith([serviceDoc('git-owned')], 'git:repo', data);
    const plan = planApply(data, request([serviceDoc('a')], { prune: true }));
    assert.deepEqual(actions(plan), ['a unchanged', 'b pruned']);
    const req = request([serviceDoc('a')], { prune: true });
    commitApply(data, req, planApply(data, req), T0);
    assert.deepEqual(Object.keys(data.services).sort(), ['a', 'git-owned']);
    assert.equal(data.events.at(-1)!.message, 'deleted: no longer in the manifests of cli');
  });

  it('without --prune, services missing from the manifests stay', () => {
    const data = stateWith([serviceDoc('a'), serviceDoc('b')]);
    assert.deepEqual(actions(planApply(data, request([serviceDoc('a')]))), ['a unchanged']);
  });

  it('refuses a dependency that is neither applied nor stored', () => {
    assert.deepEqual(planApply(stateWith([serviceDoc('a')]), request([serviceDoc('b', { dependsOn: ['ghost'] })])).problems.map(formatProblem), [
      'new.yaml:8:7: spec.dependsOn[0]: depends on "ghost", which is neither in these manifests nor stored',
    ]);
  });

  it('checks dependencies and published ports against what stays stored', () => {
    const data = stateWith([serviceDoc('redis', { ports: [{ port: 6379, publish: 6379 }] })], 'git:repo');
    assert.deepEqual(planApply(data, request([serviceDoc('login', { dependsOn: ['redis'] })])).problems, []);
    assert.deepEqual(planApply(data, request([serviceDoc('x', { ports: [{ port: 1, publish: 6379 }] })])).problems.map(formatProblem), [
      'new.yaml:9:16: spec.ports[0].publish: tcp port 6379 is already published by service "redis" (stored, from source git:repo)',
    ]);
  });

  it('refuses a prune that would break a dependency of a service that stays', () => {
    let data = stateWith([serviceDoc('redis')]);
    data = stateWith([serviceDoc('login', { dependsOn: ['redis'] })], 'git:repo', data);
    assert.deepEqual(planApply(data, request([serviceDoc('other')], { prune: true })).problems.map(formatProblem), [
      'service "login" (source git:repo) depends on "redis", which --prune would delete',
    ]);
  });

  it('keeps the revision history bounded', () => {
    const data = stateWith([serviceDoc('a', { replicas: 0 })]);
    for (let n = 1; n <= 25; n++) {
      const req = request([serviceDoc('a', { replicas: n })]);
      commitApply(data, req, planApply(data, req), T0);
    }
    const history = data.services.a!.history;
    assert.equal(history.length, 20);
    assert.deepEqual([history[0]!.revision, history.at(-1)!.revision], [7, 26]);
  });

  it('works on an empty state', () => {
    assert.deepEqual(actions(planApply(emptyState(), request([serviceDoc('a')]))), ['a created']);
  });
});
