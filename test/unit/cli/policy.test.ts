// `carte policy show` and refusals by the server policy, through the CLI as a user runs it (no root).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { carte } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/paths.js';

describe('carte CLI and the server policy', function () {
  this.timeout(30_000);
  let home: string;
  let work: string;
  const file = (name: string, text: string) => {
    fs.writeFileSync(path.join(work, name), text);
    return name;
  };
  // Nothing is started (as root, an apply would converge: a bridge, containers): these tests are about admission.
  const c = (...args: string[]) => carte(home, args.some((a) => a === 'apply' || a === 'delete') ? [...args, '--no-start'] : args, { cwd: work });

  beforeEach(() => {
    home = tempDir('carte-home-');
    work = tempDir('carte-work-');
  });
  afterEach(() => {
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  const POLICY = `# the class server
volumes:
  hostPaths:
    - { path: /srv/data }
sources:
  - match: "git:*"
    replicas: { perService: 3 }
`;

  it('policy show prints the effective policy, every default filled in', async () => {
    file('policy.yaml', POLICY);
    const r = await c('--policy', 'policy.yaml', 'policy', 'show');
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    const rules = `volumes:
  hostPaths:
    - path: /srv/data
      write: false
resources:
  default:
    cpu: "1"
    memory: 256Mi
    pids: 512
  max:
    cpu: "2"
    memory: 2Gi
    pids: 4096
replicas:
  perService: RS
  total: 100
capabilities:
  allowAdd: []
userns:
  default: false
  required: false
builds:
  hostCopyPrefixes:
    - /usr
    - /bin
    - /sbin
    - /lib
    - /lib64
    - /etc/ssl/certs
    - /usr/share/zoneinfo
  contextInsideSource: true
  network: false
  limits:
    cpu: "2"
    memory: 2Gi
    pids: 1024
    timeout: 20m
disk:
  reserve: 1Gi
  perService: 2Gi
network:
  hostPorts: []
  allowFromDefault: same-source
`;
    const indent = (text: string) => text.trimEnd().split('\n').map((l, i) => (i === 0 ? l : `    ${l}`)).join('\n');
    assert.equal(r.stdout, `# server policy: ${path.join(work, 'policy.yaml')}\n${rules.replace('RS', '20')}sources:\n  - match: git:*\n    ${indent(rules.replace('RS', '3'))}\n`);

    const forGit = await c('--policy', 'policy.yaml', 'policy', 'show', '--source', 'git:https://example.org/class.git#main:.');
    assert.equal(forGit.stdout, `# server policy: ${path.join(work, 'policy.yaml')}\n# for source git:https://example.org/class.git#main:.: sources[0] (match: "git:*")\n${rules.replace('RS', '3')}`);
    const forCli = await c('--policy', 'policy.yaml', 'policy', 'show', '--source', 'cli');
    assert.match(forCli.stdout, /^# for source cli: the top level \(no sources section matches\)$/m);
  });

  it('without a policy file: the built-in defaults; CARTE_POLICY names a file; a missing named file is an error', async () => {
    const shown = await carte(home, ['policy', 'show'], { cwd: work });
    assert.match(shown.stdout, /^# server policy: built-in defaults \(no \/etc\/carte\/policy\.yaml\)\n/);
    const missing = await c('--policy', 'nope.yaml', 'policy', 'show');
    assert.deepEqual(missing, { code: 2, stdout: '', stderr: `error: cannot read the server policy ${path.join(work, 'nope.yaml')}: no such file\n` });
  });

  it('a broken policy file: every problem at file:line:col, exit 2, and apply stores nothing', async () => {
    file('policy.yaml', 'replicas:\n  perServce: 3\n');
    file('a.yaml', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: a }\nspec: { image: x:1 }\n');
    const policyFile = path.join(work, 'policy.yaml');
    const expected = { code: 2, stdout: '', stderr: `${policyFile}:2:3: replicas.perServce: unknown field "perServce" (did you mean "perService"?)\nerror: 1 problem in the server policy ${policyFile}; it was not used\n` };
    assert.deepEqual(await c('--policy', 'policy.yaml', 'policy', 'show'), expected);
    assert.deepEqual(await c('apply', '-f', 'a.yaml', '--policy', 'policy.yaml'), expected);
    assert.deepEqual(await c('get'), { code: 0, stdout: '', stderr: 'no services\n' });
  });

  it('refuses what the policy forbids: located lines, exit 2, nothing stored; --dry-run and diff say the same', async () => {
    file('policy.yaml', POLICY);
    file('web.yaml', `apiVersion: carte/v1
kind: Service
metadata: { name: web }
spec:
  image: x:1
  resources: { memory: 4Gi }
  volumes:
    - { hostPath: /, mountPath: /host }
    - { hostPath: /srv/data/site, mountPath: /site, readOnly: false }
`);
    file('ok.yaml', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: ok }\nspec: { image: x:1 }\n');
    const lines = [
      'web.yaml:6:24: spec.resources.memory: 4Gi is above the server policy\'s maximum of 2Gi',
      'web.yaml:8:19: spec.volumes[0].hostPath: "/" is not allowed by the server policy (allowed host paths: /srv/data (read-only))',
      'web.yaml:9:63: spec.volumes[1].readOnly: false is not allowed: the server policy mounts /srv/data read-only (remove readOnly, or set it to true)',
    ];
    assert.deepEqual(await c('--policy', 'policy.yaml', 'apply', '-f', 'ok.yaml', '-f', 'web.yaml'), {
      code: 2, stdout: '', stderr: `${lines.join('\n')}\nerror: 3 problems in manifests; nothing was applied\n`,
    });
    assert.deepEqual(await c('get'), { code: 0, stdout: '', stderr: 'no services\n' });
    const wouldNot = { code: 2, stdout: '', stderr: `${lines.join('\n')}\nerror: 3 problems in manifests; nothing would be applied\n` };
    assert.deepEqual(await c('--policy', 'policy.yaml', 'apply', '-f', 'web.yaml', '--dry-run'), wouldNot);
    assert.deepEqual(await c('--policy', 'policy.yaml', 'diff', '-f', 'web.yaml'), wouldNot);
  });

  it('a manifest\'s build.network: refused at its line unless the source\'s rules allow builds.network; allowed, it is stored and shown', async () => {
    file('Cartefile', 'FROM scratch\n');
    file('web.yaml', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: web }\nspec:\n  build:\n    context: .\n    network: true\n');
    file('policy.yaml', 'builds: { network: false }\nsources:\n  - match: "git:*"\n    builds: { network: true }\n');
    assert.deepEqual(await c('--policy', 'policy.yaml', 'apply', '-f', 'web.yaml'), {
      code: 2, stdout: '',
      stderr: 'web.yaml:7:14: spec.build.network: true is not allowed by the server policy: add "builds: { network: true }" to it (its top level, or the section of this source)\nerror: 1 problem in manifests; nothing was applied\n',
    });
    file('policy.yaml', 'builds: { network: true }\n');
    assert.equal((await c('--policy', 'policy.yaml', 'apply', '-f', 'web.yaml')).code, 0);
    assert.match((await c('get', 'web', '-o', 'yaml')).stdout, /\n {2}build:\n {4}context: \S+\n {4}cartefile: Cartefile\n {4}network: true\n/);
  });

  it('writes the defaults into the stored spec: get -o yaml shows the limits and the read-only mount', async () => {
    file('policy.yaml', POLICY);
    file('web.yaml', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: web }\nspec:\n  image: x:1\n  volumes: [{ hostPath: /srv/data/site, mountPath: /site }]\n');
    assert.deepEqual(await c('apply', '-f', 'web.yaml', '--policy', 'policy.yaml'), { code: 0, stdout: 'service/web created\n', stderr: '' });
    const shown = (await c('get', 'web', '-o', 'yaml')).stdout;
    assert.match(shown, /\n {2}resources:\n {4}cpu: "1"\n {4}memory: 256Mi\n {4}pids: 512\n/);
    assert.match(shown, /\n {2}volumes:\n {4}- hostPath: \/srv\/data\/site\n {6}mountPath: \/site\n {6}readOnly: true\n/);
    assert.match(shown, /\n {2}readOnlyRootfs: false\n {2}userns: false\n/);
  });
});

describe('carte build --network and the server policy', function () {
  this.timeout(30_000);
  it('is refused unless the policy allows builds.network, naming the line to add and the file; nothing is built', async () => {
    const home = tempDir('carte-home-');
    const work = tempDir('carte-work-');
    try {
      fs.writeFileSync(path.join(work, 'Cartefile'), 'FROM scratch\n');
      fs.writeFileSync(path.join(work, 'policy.yaml'), 'builds: { contextInsideSource: true }\n');
      const r = await carte(home, ['--policy', 'policy.yaml', 'build', '--network', '-t', 'test/net:1', '.'], { cwd: work });
      assert.deepEqual([r.code, r.stdout, r.stderr], [2, '', `error: build: --network is not allowed by the server policy: add "builds: { network: true }" to ${path.join(work, 'policy.yaml')} (docs/policy.md)\n`]);
      assert.equal(fs.existsSync(path.join(home, 'images', 'refs.json')) && fs.readFileSync(path.join(home, 'images', 'refs.json'), 'utf8').includes('test/net'), false);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
