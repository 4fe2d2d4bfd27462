// The confinement fields of a manifest: readOnlyRootfs, capabilities, userns.
import assert from 'node:assert/strict';
import { toManifest, templateHash } from '../../../src/schema/canonical.js';
import { problemLines, serviceDoc, services, yaml } from '../../helpers/manifests.js';

const one = (spec: Record<string, unknown>) => services({ 'a.yaml': yaml(serviceDoc('a', spec)) })[0]!.object;

describe('manifest confinement fields', () => {
  it('capability names: with or without CAP_, any case; canonical is upper case without the prefix', () => {
    const s = one({ readOnlyRootfs: true, userns: true, capabilities: { add: ['cap_net_bind_service', 'SYS_TIME'], drop: ['all'] } }).spec;
    assert.deepEqual([s.readOnlyRootfs, s.capabilities, s.userns], [true, { add: ['NET_BIND_SERVICE', 'SYS_TIME'], drop: ['ALL'] }, true]);
  });

  it('refuses unknown names with a did-you-mean, ALL in add, duplicates and a capability both added and dropped', () => {
    const text = [
      'apiVersion: carte/v1',
      'kind: Service',
      'metadata: { name: a }',
      'spec:',
      '  image: x:1',
      '  capabilities:',
      '    add: [NET_BIND_SERVCE, ALL, CAP_KILL, kill, SETUID, FROBNICATE]',
      '    drop: [setuid, ALLL]',
      '  readOnlyRootfs: "yes"',
      '',
    ].join('\n');
    assert.deepEqual(problemLines({ 'a.yaml': text }), [
      'a.yaml:9:19: spec.readOnlyRootfs: expected true or false, got "yes"',
    ]);
    assert.deepEqual(problemLines({ 'a.yaml': text.replace('  readOnlyRootfs: "yes"\n', '') }), [
      'a.yaml:7:11: spec.capabilities.add[0]: "NET_BIND_SERVCE" is not a Linux capability (did you mean "NET_BIND_SERVICE"?)',
      'a.yaml:7:28: spec.capabilities.add[1]: ALL cannot be added: name each capability to add (ALL is only for drop)',
      'a.yaml:7:43: spec.capabilities.add[3]: KILL is already listed as capabilities.add[2]',
      'a.yaml:7:49: spec.capabilities.add[4]: SETUID is both added and dropped (capabilities.drop[0]): keep one',
      'a.yaml:7:57: spec.capabilities.add[5]: "FROBNICATE" is not a Linux capability (see capabilities(7), e.g. NET_BIND_SERVICE)',
      'a.yaml:8:20: spec.capabilities.drop[1]: "ALLL" is not a Linux capability (did you mean "ALL"?)',
    ]);
  });

  it('get -o yaml shows them; at their defaults they leave the template hash as it was', () => {
    const plain = one({});
    const confined = one({ readOnlyRootfs: true, capabilities: { drop: ['ALL'] } });
    assert.deepEqual([toManifest(plain).spec.readOnlyRootfs, toManifest(plain).spec.capabilities], [false, undefined]);
    assert.deepEqual(toManifest(confined).spec.capabilities, { drop: ['ALL'] });
    const { readOnlyRootfs: _r, capabilities: _c, userns: _u, ...before } = plain.spec;
    assert.equal(templateHash(plain.spec), templateHash(before as typeof plain.spec));
    assert.notEqual(templateHash(confined.spec), templateHash(plain.spec));
  });
});

describe('ids and secret file names the kernel and the secret volume can hold', () => {
  it('refuses a uid above 4294967294 and a secret key "." or ".."', () => {
    const doc = (spec: Record<string, unknown>) => ({ 'web.yaml': yaml(serviceDoc('web', spec)) });
    assert.deepEqual(problemLines(doc({ user: '4294967296:0' })), ['web.yaml:7:9: spec.user: "4294967296:0" has an id above 4294967294, the largest a Linux uid or gid may be']);
    assert.deepEqual(problemLines(doc({ user: '4294967294:4294967294' })), []);
    const lines = problemLines(doc({ env: { A: { secret: 's', key: '..' } } }));
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^web\.yaml:\d+:\d+: spec\.env\.A\.key: /);
  });
});
