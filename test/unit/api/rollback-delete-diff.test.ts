import assert from 'node:assert/strict';
import { commitApply, planApply } from '../../../src/api/apply.js';
import { checkDelete } from '../../../src/api/delete.js';
import { diffServices, formatChange } from '../../../src/api/diff.js';
import { rollbackTarget } from '../../../src/api/rollback.js';
import { request, serviceDoc, stateWith, T0 } from '../../helpers/state.js';

function applyAll(data: ReturnType<typeof stateWith>, ...versions: Record<string, unknown>[][]) {
  for (const docs of versions) {
    const req = request(docs);
    commitApply(data, req, planApply(data, req), T0);
  }
  return data;
}

describe('rollback target', () => {
  it('defaults to the newest earlier revision with a different spec', () => {
    const data = applyAll(stateWith([serviceDoc('a', { replicas: 1 })]), [serviceDoc('a', { replicas: 2 })], [serviceDoc('a', { replicas: 3 })]);
    assert.equal(rollbackTarget(data, 'a').revision, 2);
    assert.equal(rollbackTarget(data, 'a', 1).revision, 1);
  });

  it('explains what cannot be rolled back', () => {
    const data = stateWith([serviceDoc('a')]);
    assert.throws(() => rollbackTarget(data, 'a'), { message: 'service "a" has no earlier revision to roll back to' });
    assert.throws(() => rollbackTarget(data, 'a', 9), { message: 'service "a" has no revision 9 (kept: 1)' });
    assert.throws(() => rollbackTarget(data, 'a', 1), { message: 'service "a" revision 1 has the same spec as the current revision 1; nothing to do' });
    assert.throws(() => rollbackTarget(data, 'nope'), { message: 'service "nope" not found' });
  });
});

describe('delete checks', () => {
  it('refuses unknown names, other sources\' services and broken dependencies, all at once', () => {
    let data = stateWith([serviceDoc('redis'), serviceDoc('login', { dependsOn: ['redis'] })]);
    data = stateWith([serviceDoc('git-owned')], 'git:repo', data);
    assert.throws(() => checkDelete(data, ['redis', 'ghost'], 'cli'), { message: 'service "ghost" not found; nothing was deleted', exitCode: 1 });
    assert.throws(() => checkDelete(data, ['redis', 'git-owned'], 'cli'), {
      message: 'cannot delete; nothing was deleted',
      details: ['service "git-owned" belongs to source git:repo: remove its manifest there (or stop that source and use --force)', 'service "login" depends on "redis": delete both together, or remove the dependency first'],
    });
    assert.doesNotThrow(() => checkDelete(data, ['redis', 'login'], 'cli'));
  });

  it('with force deletes another source\'s services, but still guards dependencies', () => {
    let data = stateWith([serviceDoc('redis'), serviceDoc('login', { dependsOn: ['redis'] })], 'folder:/srv/m');
    data = stateWith([serviceDoc('git-owned')], 'git:repo', data);
    assert.doesNotThrow(() => checkDelete(data, ['git-owned'], 'cli', true));
    assert.doesNotThrow(() => checkDelete(data, ['redis', 'login'], 'cli', true));
    assert.throws(() => checkDelete(data, ['redis'], 'cli', true), {
      details: ['service "login" depends on "redis": delete both together, or remove the dependency first'],
    });
  });
});

describe('diff', () => {
  const obj = (spec: Record<string, unknown>) => stateWith([serviceDoc('a', spec)]).services.a!;
  const lines = (a: Record<string, unknown> | null, b: Record<string, unknown> | null) => {
    const o = (s: Record<string, unknown> | null) => (s ? { name: 'a', labels: obj(s).revision.labels, spec: obj(s).revision.spec } : null);
    return diffServices(o(a), o(b)).map(formatChange);
  };

  it('shows changes field by field in the units people write', () => {
    assert.deepEqual(lines(
      { resources: { memory: '128Mi' }, env: { A: '1' }, ports: [{ port: 80 }] },
      { resources: { memory: '256Mi' }, env: { A: '1', B: '2' }, ports: [{ port: 80 }, { port: 81, publish: 81 }], command: ['sh'] },
    ), [
      '+ spec.command: [ "sh" ]',
      '+ spec.env.B: "2"',
      '~ spec.resources.memory: "128Mi" → "256Mi"',
      '+ spec.ports[1]: { name: "tcp-81", port: 81, protocol: "tcp", publish: 81, balance: "round-robin" }',
    ]);
  });

  it('lists the fields of a created service one per line, and nothing for equal ones', () => {
    assert.deepEqual(lines(null, {}), [
      '+ metadata.name: "a"', '+ spec.image: "test/a:1"', '+ spec.replicas: 1',
      // The server policy's default limits, written into the stored spec.
      '+ spec.resources: { cpu: "1", memory: "256Mi", pids: 512 }', '+ spec.restart: "always"',
      '+ spec.update: { maxSurge: 1, maxUnavailable: 0, progressDeadline: "2m" }', '+ spec.stopGracePeriod: "10s"',
      '+ spec.readOnlyRootfs: false', '+ spec.userns: false',
    ]);
    assert.deepEqual(lines({ replicas: 1 }, {}), []);
  });
});
