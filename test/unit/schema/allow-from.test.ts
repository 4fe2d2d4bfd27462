// allowFrom in manifests: its syntax, the set check that every name exists
// (among these manifests and what stays stored), and its canonical form.
import assert from 'node:assert/strict';
import { planApply } from '../../../src/api/apply.js';
import { formatProblem } from '../../../src/errors.js';
import { toManifest } from '../../../src/schema/canonical.js';
import { problemLines, serviceDoc, services, yaml } from '../../helpers/manifests.js';
import { request, stateWith } from '../../helpers/state.js';

const REDIS = `# The demo's database.
apiVersion: carte/v1
kind: Service
metadata:
  name: redis
spec:
  image: test/redis:1
  ports:
    - port: 6379
  dependsOn: []
  allowFrom:
    - login
    - gmae
`;

describe('allowFrom', () => {
  it('names a service that exists nowhere: the exact located error, with a guess', () => {
    const data = stateWith([serviceDoc('game')]);
    const plan = planApply(data, { services: services({ 'manifests/redis.yaml': REDIS, 'manifests/login.yaml': yaml(serviceDoc('login')) }), source: 'cli', prune: false });
    assert.deepEqual(plan.problems.map(formatProblem), [
      'manifests/redis.yaml:13:7: spec.allowFrom[1]: service "gmae" does not exist (did you mean "game"?)',
    ]);
  });

  it('without a near name, says only that it does not exist; "*" and stored services are fine', () => {
    const data = stateWith([serviceDoc('game')], 'git:repo');
    assert.deepEqual(planApply(data, request([serviceDoc('redis', { allowFrom: ['game', '*'] })])).problems, []);
    assert.deepEqual(planApply(data, request([serviceDoc('redis', { allowFrom: ['zzzzzz'] })])).problems.map(formatProblem), [
      'new.yaml:8:7: spec.allowFrom[0]: service "zzzzzz" does not exist',
    ]);
  });

  it('a service --prune would delete no longer exists for it', () => {
    const data = stateWith([serviceDoc('game'), serviceDoc('redis')]);
    assert.deepEqual(planApply(data, request([serviceDoc('redis', { allowFrom: ['game'] })], { prune: true })).problems.map(formatProblem), [
      'new.yaml:8:7: spec.allowFrom[0]: service "game" does not exist',
    ]);
  });

  it('takes service names or "*", each once', () => {
    assert.deepEqual(problemLines({ 'a.yaml': yaml(serviceDoc('a', { allowFrom: ['Login', 'b', 'b'] })) }), [
      'a.yaml:8:7: spec.allowFrom[0]: "Login" is not a service name (lowercase letters, digits and "-", starting with a letter), or "*" for every service',
      'a.yaml:9:7: spec.allowFrom[1]: "b" is listed twice',
    ]);
  });

  it('is kept as written (absent when not written, so older specs keep their hashes) and shown by get -o yaml', () => {
    const [plain, listed] = services({ 'a.yaml': yaml(serviceDoc('a'), serviceDoc('b', { allowFrom: ['a'] })) });
    assert.equal('allowFrom' in plain!.object.spec, false);
    assert.deepEqual(listed!.object.spec.allowFrom, ['a']);
    assert.deepEqual(toManifest(listed!.object).spec.allowFrom, ['a']);
    assert.equal('allowFrom' in toManifest(plain!.object).spec, false);
  });
});
