// Admission under the server policy: every rule, its exact message and place.
import assert from 'node:assert/strict';
import { planApply } from '../../../src/api/apply.js';
import { formatProblem } from '../../../src/errors.js';
import { admit, peakReplicas } from '../../../src/policy/admit.js';
import { parsePolicy } from '../../../src/policy/load.js';
import { DEFAULT_POLICY, type ServerPolicy } from '../../../src/policy/policy.js';
import { parseManifests } from '../../../src/schema/load.js';
import { emptyState, type StateData } from '../../../src/store/state.js';
import { request, serviceDoc, stateWith } from '../../helpers/state.js';

const HOME = '/var/lib/carte-test';

function policy(text: string): ServerPolicy {
  const r = parsePolicy(text, 'policy.yaml');
  if (!r.policy) throw new Error(`fixture policy is invalid: ${r.problems.map(formatProblem).join('; ')}`);
  return r.policy;
}

/** A web.yaml whose spec holds `spec` from line 5 on (indented two spaces), then `image: x:1` unless it builds. */
function manifest(spec: string, name = 'web'): string {
  const lines = [...spec.split('\n').filter(Boolean), ...(/^build:/m.test(spec) ? [] : ['image: x:1'])];
  return `apiVersion: carte/v1\nkind: Service\nmetadata: { name: ${name} }\nspec:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

interface Case {
  name: string;
  policy?: string;
  spec: string;
  source?: string;
  /** Symlinks of the pretend host: path → its real path (every other path "does not exist"). */
  links?: Record<string, string>;
  root?: string;
  expect: string[];
}

function run(c: Case, data: StateData = emptyState()) {
  const parsed = parseManifests([{ display: 'web.yaml', baseDir: '/srv/repo/manifests', root: c.root ?? '/srv/repo', text: manifest(c.spec) }]);
  assert.deepEqual(parsed.problems.map(formatProblem), [], 'the fixture manifest is valid');
  const links = c.links ?? {};
  const realpath = (p: string) => {
    for (const [from, to] of Object.entries(links).sort(([a], [b]) => b.length - a.length)) {
      if (p === from) return to;
      if (p.startsWith(`${from}/`)) return to + p.slice(from.length);
    }
    return null;
  };
  return admit(parsed.services, {
    policy: c.policy === undefined ? DEFAULT_POLICY : policy(c.policy), home: HOME, realpath,
    source: c.source ?? 'git:https://example.org/class.git#main:.', stored: Object.values(data.services), pruned: new Set(),
  });
}

const DATA = 'volumes:\n  hostPaths:\n    - { path: /srv/data }\n    - { path: /srv/www, write: true }\n';

describe('admission', () => {
  describe('refusals, each at its field', () => {
    const cases: Case[] = [
      {
        name: 'a host path when the policy allows none',
        spec: 'volumes: [{ hostPath: /, mountPath: /host }]',
        expect: ['web.yaml:5:25: spec.volumes[0].hostPath: "/" is not allowed by the server policy (allowed host paths: none)'],
      },
      {
        name: 'a host path outside every allowed prefix',
        policy: DATA,
        spec: 'volumes: [{ hostPath: /srv/database, mountPath: /d }]',
        expect: ['web.yaml:5:25: spec.volumes[0].hostPath: "/srv/database" is not allowed by the server policy (allowed host paths: /srv/data (read-only), /srv/www (read-write))'],
      },
      {
        name: 'a path that climbs out of an allowed prefix with ..',
        policy: DATA,
        spec: 'volumes: [{ hostPath: /srv/data/../../etc, mountPath: /d }]',
        expect: ['web.yaml:5:25: spec.volumes[0].hostPath: "/srv/data/../../etc" (/etc) is not allowed by the server policy (allowed host paths: /srv/data (read-only), /srv/www (read-write))'],
      },
      {
        name: 'a symlink inside an allowed prefix that points into /etc',
        policy: DATA,
        links: { '/srv/data/cfg': '/etc', '/srv/data': '/srv/data', '/srv/www': '/srv/www' },
        spec: 'volumes: [{ hostPath: /srv/data/cfg/ssh, mountPath: /d }]',
        expect: ['web.yaml:5:25: spec.volumes[0].hostPath: "/srv/data/cfg/ssh" (/etc/ssh) is not allowed by the server policy (allowed host paths: /srv/data (read-only), /srv/www (read-write))'],
      },
      {
        name: 'a system folder, even where the policy allows its parent',
        policy: 'volumes:\n  hostPaths: [{ path: /, write: true }]\n',
        spec: 'volumes: [{ hostPath: /etc/ssh, mountPath: /d }, { hostPath: /, mountPath: /host }, { hostPath: /var, mountPath: /v }]',
        expect: [
          'web.yaml:5:25: spec.volumes[0].hostPath: "/etc/ssh" is never mounted into a container, whatever the server policy says: it is inside /etc (a system folder)',
          'web.yaml:5:64: spec.volumes[1].hostPath: "/" is never mounted into a container, whatever the server policy says: it is the whole host',
          'web.yaml:5:99: spec.volumes[2].hostPath: "/var" is never mounted into a container, whatever the server policy says: it contains /var/run (a system folder)',
        ],
      },
      {
        name: 'container runtime sockets and state, and CARTE_HOME',
        policy: 'volumes:\n  hostPaths: [{ path: /var/lib, write: true }, { path: /var/run }]\n',
        spec: 'volumes: [{ hostPath: /var/lib/docker, mountPath: /a }, { hostPath: /var/run/docker.sock, mountPath: /b }, { hostPath: /var/lib/carte-test/state.json, mountPath: /c }]',
        expect: [
          'web.yaml:5:25: spec.volumes[0].hostPath: "/var/lib/docker" is never mounted into a container, whatever the server policy says: it is a container runtime\'s socket or state',
          'web.yaml:5:71: spec.volumes[1].hostPath: "/var/run/docker.sock" is never mounted into a container, whatever the server policy says: it is a container runtime\'s socket or state',
          'web.yaml:5:122: spec.volumes[2].hostPath: "/var/lib/carte-test/state.json" is never mounted into a container, whatever the server policy says: it is inside /var/lib/carte-test (CARTE_HOME, carte\'s own state)',
        ],
      },
      {
        name: 'asking to write under a read-only prefix',
        policy: DATA,
        spec: 'volumes:\n  - hostPath: /srv/data/x\n    mountPath: /x\n    readOnly: false',
        expect: ['web.yaml:8:17: spec.volumes[0].readOnly: false is not allowed: the server policy mounts /srv/data read-only (remove readOnly, or set it to true)'],
      },
      {
        name: 'resources above the maximum',
        spec: 'resources: { cpu: 4, memory: 4Gi, pids: 10000 }',
        expect: [
          'web.yaml:5:21: spec.resources.cpu: 4 is above the server policy\'s maximum of 2',
          'web.yaml:5:32: spec.resources.memory: 4Gi is above the server policy\'s maximum of 2Gi',
          'web.yaml:5:43: spec.resources.pids: 10000 is above the server policy\'s maximum of 4096',
        ],
      },
      {
        name: 'replicas and autoscale bounds above the per-service maximum',
        policy: 'replicas: { perService: 4 }',
        spec: 'replicas: 5',
        expect: ['web.yaml:5:13: spec.replicas: 5 is above the server policy\'s maximum of 4 replicas per service'],
      },
      {
        name: 'an autoscale maximum and a schedule window above the per-service maximum',
        policy: 'replicas: { perService: 4 }',
        spec: 'resources: { cpu: 1 }\nautoscale:\n  max: 6\n  cpu: 50%\n  schedule: [{ cron: "0 9 * * *", max: 8 }]',
        expect: [
          'web.yaml:7:10: spec.autoscale.max: 6 is above the server policy\'s maximum of 4 replicas per service',
          'web.yaml:9:42: spec.autoscale.schedule[0].max: 8 is above the server policy\'s maximum of 4 replicas per service',
        ],
      },
      {
        name: 'a capability beyond the default set',
        spec: 'capabilities: { add: [CAP_NET_ADMIN, chown, NET_RAW] }',
        expect: [
          'web.yaml:5:25: spec.capabilities.add[0]: NET_ADMIN is not allowed by the server policy (capabilities a manifest may add beyond the default set: none)',
          'web.yaml:5:47: spec.capabilities.add[2]: NET_RAW is not allowed by the server policy (capabilities a manifest may add beyond the default set: none)',
        ],
      },
      {
        name: 'userns: false where the policy requires a user namespace',
        policy: 'userns: { required: true }',
        spec: 'userns: false',
        expect: ['web.yaml:5:11: spec.userns: false is not allowed: the server policy requires a user namespace (remove userns, or set it to true)'],
      },
      {
        name: 'a build context outside the source tree',
        spec: 'build: { context: ../../elsewhere }',
        expect: ['web.yaml:5:21: spec.build.context: "../../elsewhere" (/srv/elsewhere) is outside the source tree /srv/repo: the server policy keeps build contexts inside it'],
      },
      {
        name: 'a Cartefile outside the source tree',
        spec: 'build: { context: ../app, cartefile: /tmp/elsewhere/Cartefile }',
        expect: ['web.yaml:5:40: spec.build.cartefile: "/tmp/elsewhere/Cartefile" (/tmp/elsewhere/Cartefile) is outside the source tree /srv/repo: the server policy keeps Cartefiles inside it'],
      },
      {
        name: 'a build context inside the tree that is a symlink out of it',
        links: { '/srv/repo': '/srv/repo', '/srv/repo/app': '/' },
        spec: 'build: { context: ../app }',
        expect: ['web.yaml:5:21: spec.build.context: "../app" (/) is outside the source tree /srv/repo: the server policy keeps build contexts inside it'],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        assert.deepEqual(run(c).problems.map(formatProblem), c.expect);
      });
    }
  });

  describe('defaults written into the spec', () => {
    it('fills each resource limit a manifest leaves out, keeps the ones it sets', () => {
      const r = run({ name: '', spec: 'resources: { memory: 64Mi }', expect: [] });
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.services[0]!.object.spec.resources, { cpuMillis: 1000, memoryBytes: 64 * 2 ** 20, pids: 512 });
    });

    it('mounts a host folder read-only unless its prefix allows writing', () => {
      const r = run({ name: '', policy: DATA, spec: 'volumes: [{ hostPath: /srv/data/a, mountPath: /a }, { hostPath: /srv/www/b, mountPath: /b }, { hostPath: /srv/www/c, mountPath: /c, readOnly: true }]', expect: [] });
      assert.deepEqual(r.problems, []);
      assert.deepEqual(r.services[0]!.object.spec.volumes.map((v) => v.readOnly), [true, false, true]);
    });

    it('the user namespace: as written, else the policy\'s default; required makes it true', () => {
      const userns = (policyText: string, spec: string) => run({ name: '', policy: policyText, spec, expect: [] }).services[0]!.object.spec.userns;
      assert.equal(userns('', 'replicas: 1'), false);
      assert.equal(userns('userns: { default: true }', 'replicas: 1'), true);
      assert.equal(userns('userns: { default: true }', 'userns: false'), false);
      assert.equal(userns('userns: { required: true }', 'replicas: 1'), true);
    });

    it('planApply stores the defaults: the stored spec shows them, and re-applying is unchanged', () => {
      const data = stateWith([serviceDoc('a')]);
      assert.deepEqual(data.services.a!.revision.spec.resources, { cpuMillis: 1000, memoryBytes: 256 * 2 ** 20, pids: 512 });
      assert.equal(data.services.a!.revision.spec.userns, false);
      const again = planApply(data, request([serviceDoc('a')]));
      assert.deepEqual(again.changes.map((c) => c.action), ['unchanged']);
    });
  });

  describe('per-source sections', () => {
    const PER_SOURCE = `resources:
  max: { memory: 1Gi }
sources:
  - match: "git:*"
    resources: { max: { memory: 512Mi } }
    replicas: { perService: 2 }
  - match: cli
    resources: { max: { memory: 8Gi } }
  - match: "git:*"
    resources: { max: { memory: 16Gi } }
`;
    const memory = (source: string) =>
      run({ name: '', policy: PER_SOURCE, source, spec: 'resources: { memory: 768Mi }', expect: [] }).problems.map(formatProblem);

    it('the first matching section overrides the top level, field by field', () => {
      assert.deepEqual(memory('git:https://example.org/class.git#main:.'), ['web.yaml:5:24: spec.resources.memory: 768Mi is above the server policy\'s maximum of 512Mi']);
      assert.deepEqual(memory('cli'), []);
      assert.deepEqual(memory('folder:/srv/manifests'), []);
      const p = policy(PER_SOURCE);
      // Fields the section does not name come from the top level, then the defaults.
      assert.deepEqual(p.sources[0]!.rules.resources.max, { cpuMillis: 2000, memoryBytes: 512 * 2 ** 20, pids: 4096 });
      assert.equal(p.sources[1]!.rules.replicas.perService, 20);
      assert.equal(p.rules.resources.max.memoryBytes, 2 ** 30);
    });

    it('a folder source with no section gets the top level', () => {
      assert.deepEqual(run({ name: '', policy: PER_SOURCE, source: 'folder:/srv/m', spec: 'resources: { memory: 2Gi }', expect: [] }).problems.map(formatProblem),
        ['web.yaml:5:24: spec.resources.memory: 2Gi is above the server policy\'s maximum of 1Gi']);
    });
  });

  describe('replicas in all', () => {
    const TOTAL = 'replicas: { total: 10 }';
    const seeded = () => stateWith([serviceDoc('a', { replicas: 4 }), serviceDoc('b', { resources: { cpu: 1 }, autoscale: { max: 3, cpu: '50%' } })], 'folder:/srv/other');

    it('counts every stored service (an autoscaled one at its maximum) with these manifests, and names the numbers', () => {
      const r = run({ name: '', policy: TOTAL, spec: 'replicas: 4', expect: [] }, seeded());
      assert.deepEqual(r.problems.map(formatProblem), [
        'web.yaml:5:13: spec.replicas: the services would have 11 replicas in all, above the server policy\'s total of 10 (these manifests: 4; every other service: 7; an autoscaled service counts at its maximum)',
      ]);
      assert.deepEqual(run({ name: '', policy: TOTAL, spec: 'replicas: 3', expect: [] }, seeded()).problems, []);
    });

    it('counts a schedule window above autoscale.max at its window', () => {
      assert.equal(peakReplicas(stateWith([serviceDoc('w', { resources: { cpu: 1 }, autoscale: { max: 3, cpu: '50%', schedule: [{ cron: '0 9 * * *', max: 6 }] } })]).services.w!.revision.spec), 6);
    });

    it('through planApply: services pruned by this apply no longer count; one that shrinks is never refused', () => {
      const data = stateWith([serviceDoc('a', { replicas: 8 }), serviceDoc('b', { replicas: 2 })]);
      const admission = { policy: policy(TOTAL), home: HOME, realpath: () => null };
      assert.deepEqual(planApply(data, request([serviceDoc('c', { replicas: 5 })], { admission })).problems.map(formatProblem), [
        'new.yaml:7:13: spec.replicas: the services would have 15 replicas in all, above the server policy\'s total of 10 (these manifests: 5; every other service: 10; an autoscaled service counts at its maximum)',
      ]);
      assert.deepEqual(planApply(data, request([serviceDoc('c', { replicas: 5 })], { admission, prune: true })).problems, []);
      // Above a lowered total already: a change that does not add replicas goes through.
      const lowered = { ...admission, policy: policy('replicas: { total: 5 }') };
      assert.deepEqual(planApply(data, request([serviceDoc('a', { replicas: 7 })], { admission: lowered })).problems, []);
    });
  });

  it('a refused apply stores nothing: planApply reports the problems and the caller commits nothing', () => {
    const plan = planApply(emptyState(), request([serviceDoc('a', { volumes: [{ hostPath: '/', mountPath: '/host' }] })], { admission: { policy: DEFAULT_POLICY, home: HOME, realpath: () => null } }));
    assert.deepEqual(plan.problems.map(formatProblem), ['new.yaml:8:17: spec.volumes[0].hostPath: "/" is not allowed by the server policy (allowed host paths: none)']);
  });
});
