// The server policy file: its errors at file:line:col, its defaults, which file is read.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { formatProblem } from '../../../src/errors.js';
import { loadPolicy, parsePolicy, policyLocation, PolicyError } from '../../../src/policy/load.js';
import { DEFAULT_POLICY, matchesSource, rulesFor, rulesToInput } from '../../../src/policy/policy.js';
import { tempDir } from '../../helpers/paths.js';

const problems = (text: string) => parsePolicy(text, 'policy.yaml').problems.map(formatProblem);

describe('server policy file', () => {
  it('an empty file (or only comments) is the built-in policy', () => {
    for (const text of ['', '# nothing yet\n']) {
      const r = parsePolicy(text, 'policy.yaml');
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.policy?.rules, DEFAULT_POLICY.rules);
    }
  });

  it('the built-in defaults', () => {
    assert.deepEqual(rulesToInput(DEFAULT_POLICY.rules), {
      volumes: { hostPaths: [] },
      resources: { default: { cpu: '1', memory: '256Mi', pids: 512 }, max: { cpu: '2', memory: '2Gi', pids: 4096 } },
      replicas: { perService: 20, total: 100 },
      capabilities: { allowAdd: [] },
      userns: { default: false, required: false },
      builds: {
        hostCopyPrefixes: ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc/ssl/certs', '/usr/share/zoneinfo'], contextInsideSource: true, network: false,
        limits: { cpu: '2', memory: '2Gi', pids: 1024, timeout: '20m' },
      },
      disk: { reserve: '1Gi', perService: '2Gi' },
      network: { hostPorts: [], allowFromDefault: 'same-source' },
    });
    assert.deepEqual(DEFAULT_POLICY.builds.hostCopyPrefixes, DEFAULT_POLICY.rules.builds.hostCopyPrefixes);
  });

  it('refuses unknown fields, wrong types, bad units and names, each at its place', () => {
    assert.deepEqual(problems([
      'volumes:',
      '  hostPaths:',
      '    - { path: srv/data, writable: true }',
      'resources:',
      '  max: { memory: 2Q, cpu: lots }',
      'replicas: { perService: -1, totl: 5 }',
      'userns: { required: yes }',
      '',
    ].join('\n')), [
      'policy.yaml:3:15: volumes.hostPaths[0].path: "srv/data" is not an absolute path (a folder on the host, starting with /)',
      'policy.yaml:3:25: volumes.hostPaths[0].writable: unknown field "writable" (known fields: path, write)',
      'policy.yaml:5:18: resources.max.memory: "2Q" is not a memory size (use e.g. 128Mi)',
      'policy.yaml:5:27: resources.max.cpu: "lots" is not a CPU amount (use e.g. 500m or 0.5)',
      'policy.yaml:6:25: replicas.perService: -1 is below the minimum of 0',
      'policy.yaml:6:29: replicas.totl: unknown field "totl" (did you mean "total"?)',
      'policy.yaml:7:21: userns.required: expected true or false, got "yes"',
    ]);
    assert.deepEqual(problems('capabilities: { allowAdd: [NET_ADMN, CAP_SYS_ADMIN] }\n'), [
      'policy.yaml:1:28: capabilities.allowAdd[0]: "NET_ADMN" is not a Linux capability (did you mean "NET_ADMIN"?)',
    ]);
  });

  it('network: host ports (tcp unless said) and the allowFrom default, per source like the rest; mistakes located', () => {
    const p = parsePolicy('network:\n  hostPorts: [{ port: 53, protocol: udp }, { port: 5432 }]\nsources:\n  - match: "git:*"\n    network: { allowFromDefault: none }\n', 'policy.yaml').policy!;
    assert.deepEqual(p.rules.network, { hostPorts: [{ port: 53, protocol: 'udp' }, { port: 5432, protocol: 'tcp' }], allowFromDefault: 'same-source' });
    assert.deepEqual(rulesFor(p, 'git:https://x#main:.').rules.network, { hostPorts: [{ port: 53, protocol: 'udp' }, { port: 5432, protocol: 'tcp' }], allowFromDefault: 'none' });
    assert.deepEqual(problems('network:\n  hostPorts: [{ port: 70000, protocol: sctp }]\n  allowFromDefault: everyone\n'), [
      'policy.yaml:2:23: network.hostPorts[0].port: 70000 is above the maximum of 65535',
      'policy.yaml:2:40: network.hostPorts[0].protocol: "sctp" is not one of: tcp, udp',
      'policy.yaml:3:21: network.allowFromDefault: "everyone" is not one of: same-source, all, none',
    ]);
  });

  it('refuses a default above the maximum, in the scope where it applies', () => {
    assert.deepEqual(problems('resources:\n  default: { memory: 4Gi }\nsources:\n  - match: "git:*"\n    resources: { max: { pids: 100 } }\n'), [
      'policy.yaml:2:22: resources.default.memory: the default memory (4Gi) is above the maximum (2Gi): a manifest that sets none would be refused',
      'policy.yaml:5:31: sources[0].resources.max.pids: the default pids (512) is above the maximum (100): a manifest that sets none would be refused',
    ]);
  });

  it('refuses what is not a mapping of rules, several documents and syntax errors', () => {
    assert.deepEqual(problems('- volumes\n'), ['policy.yaml:1:1: the server policy must be a mapping of rules (volumes, resources, replicas, ...), not a list']);
    assert.deepEqual(problems('replicas: { total: 5 }\n---\nreplicas: { total: 6 }\n'), ['policy.yaml:3:1: a policy file holds one YAML document (remove this ---)']);
    assert.deepEqual(problems('replicas: { total: 5\n'), ['policy.yaml:1:11: YAML syntax: Flow map in block collection must be sufficiently indented and end with a }']);
  });

  it('what `policy show` prints is itself a valid policy file, equal to the one read', () => {
    const text = 'volumes:\n  hostPaths: [{ path: /srv/data/ }]\nsources:\n  - match: cli\n    replicas: { perService: 50 }\n';
    const p = parsePolicy(text, 'a.yaml').policy!;
    const shown = stringify({ ...rulesToInput(p.rules), sources: p.sources.map((s) => ({ match: s.match, ...rulesToInput(s.rules) })) });
    const again = parsePolicy(shown, 'b.yaml');
    assert.deepEqual(again.problems, []);
    assert.deepEqual(again.policy!.rules, p.rules);
    assert.deepEqual(again.policy!.sources, p.sources);
    assert.deepEqual(p.rules.volumes.hostPaths, [{ path: '/srv/data', write: false }]);
  });

  it('source patterns: * is any run of characters, the rest is literal; the first match wins', () => {
    assert.equal(matchesSource('git:*', 'git:https://example.org/a.git#main:.'), true);
    assert.equal(matchesSource('cli', 'cli'), true);
    assert.equal(matchesSource('cli', 'cli2'), false);
    assert.equal(matchesSource('folder:/srv/*', 'folder:/srv/class/a'), true);
    assert.equal(matchesSource('git:*#main:*', 'git:u#dev:.'), false);
    assert.equal(matchesSource('a.b', 'aXb'), false);
    const p = parsePolicy('sources:\n  - match: "git:*"\n    replicas: { total: 1 }\n  - match: "*"\n    replicas: { total: 2 }\n', 'p.yaml').policy!;
    assert.deepEqual([rulesFor(p, 'git:x').section, rulesFor(p, 'cli').section, rulesFor({ ...p, sources: [] }, 'cli').section], [0, 1, null]);
    assert.equal(rulesFor(p, 'git:x').rules.replicas.total, 1);
  });

  describe('which file', () => {
    let dir: string;
    beforeEach(() => {
      dir = tempDir('carte-policy-');
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('--policy, then CARTE_POLICY, then /etc/carte/policy.yaml', () => {
      assert.deepEqual(policyLocation('p.yaml', { CARTE_POLICY: '/x.yaml' }), { file: path.resolve('p.yaml'), explicit: true });
      assert.deepEqual(policyLocation(undefined, { CARTE_POLICY: '/x.yaml' }), { file: '/x.yaml', explicit: true });
      assert.deepEqual(policyLocation(undefined, {}), { file: '/etc/carte/policy.yaml', explicit: false });
    });

    it('a missing default file is the built-in policy; a missing named file is an error', () => {
      const missing = path.join(dir, 'policy.yaml');
      assert.equal(loadPolicy({ file: missing, explicit: false }), DEFAULT_POLICY);
      assert.throws(() => loadPolicy({ file: missing, explicit: true }), { message: `cannot read the server policy ${missing}: no such file`, exitCode: 2 });
    });

    it('a broken file throws every problem located, with exit code 2', () => {
      const file = path.join(dir, 'policy.yaml');
      fs.writeFileSync(file, 'replicas:\n  perService: many\n');
      assert.throws(() => loadPolicy({ file, explicit: false }), (e: unknown) => {
        assert.ok(e instanceof PolicyError);
        assert.equal(e.exitCode, 2);
        assert.equal(e.message, `1 problem in the server policy ${file}; it was not used`);
        assert.deepEqual(e.details, [`${file}:2:15: replicas.perService: expected a whole number, got "many"`]);
        return true;
      });
    });
  });
});
