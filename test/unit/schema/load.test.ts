import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ManifestError } from '../../../src/errors.js';
import { loadManifests, readManifestInputs } from '../../../src/schema/load.js';
import { parse, problemLines, serviceDoc, services, yaml } from '../../helpers/manifests.js';
import { tempDir } from '../../helpers/paths.js';

describe('manifest loading', () => {
  describe('valid manifests', () => {
    it('reads several documents from one file and skips empty ones', () => {
      const s = services({ 'a.yaml': `${yaml(serviceDoc('one'), serviceDoc('two'))}---\n` });
      assert.deepEqual(s.map((x) => x.object.name), ['one', 'two']);
      assert.deepEqual(s.map((x) => x.origin), ['a.yaml:4:9', 'a.yaml:11:9']);
    });

    it('accepts the full example of the issue', () => {
      const text = `apiVersion: carte/v1
kind: Service
metadata: { name: login, labels: { app: metaverse } }
spec:
  image: metaverse/login:1.0
  command: [node, /app/server.js]
  env: { PORT: "8080" }
  replicas: 2
  resources: { cpu: 500m, memory: 128Mi, pids: 256 }
  ports: [{ name: http, port: 8080, protocol: tcp, publish: 8080 }]
  volumes: [{ name: data, mountPath: /data }]
  health: { http: { path: /health, port: 8080 }, interval: 5s, timeout: 1s, failureThreshold: 3 }
  restart: always
  update: { maxSurge: 1, maxUnavailable: 0 }
  autoscale: { min: 1, max: 8, cpu: 70%, memory: 80%, scaleDownDelay: 60s,
               schedule: [{ cron: "0 9 * * 1-5", min: 3 }] }
  dependsOn: [redis]
---
${yaml(serviceDoc('redis'))}`;
      const [login] = services({ 'login.yaml': text });
      assert.equal(login!.object.spec.replicas, 2);
      assert.equal(login!.object.spec.resources.memoryBytes, 128 * 2 ** 20);
      assert.deepEqual(login!.object.spec.health?.check, { kind: 'http', path: '/health', port: 8080 });
    });

    it('reads a folder recursively in name order, skipping hidden entries and other files', () => {
      const dir = tempDir();
      try {
        fs.mkdirSync(path.join(dir, 'sub'));
        fs.mkdirSync(path.join(dir, '.git'));
        fs.writeFileSync(path.join(dir, 'b.yml'), yaml(serviceDoc('b')));
        fs.writeFileSync(path.join(dir, 'sub', 'a.yaml'), yaml(serviceDoc('a')));
        fs.writeFileSync(path.join(dir, '.git', 'x.yaml'), 'not: [valid');
        fs.writeFileSync(path.join(dir, 'README.md'), '# not a manifest');
        const loaded = loadManifests([dir], { cwd: dir });
        assert.deepEqual(loaded.map((s) => s.file), ['b.yml', path.join('sub', 'a.yaml')]);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reads standard input as <stdin>', () => {
      const texts = readManifestInputs(['-'], { stdin: () => 'x: 1', cwd: '/tmp' });
      assert.deepEqual(texts, [{ display: '<stdin>', baseDir: '/tmp', root: '/tmp', text: 'x: 1' }]);
    });

    it('refuses a missing path and an empty folder with a usage error', () => {
      assert.throws(() => readManifestInputs(['/nonexistent/x.yaml']), { message: 'cannot read manifests from "/nonexistent/x.yaml": no such file or folder', exitCode: 2 });
      const dir = tempDir();
      try {
        assert.throws(() => readManifestInputs([dir]), { message: `no *.yaml or *.yml files in folder "${dir}"` });
        assert.deepEqual(readManifestInputs([dir], { allowEmpty: true }), []);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('invalid manifests: every problem, located', () => {
    const cases: Array<[string, string, string[]]> = [
      ['YAML syntax', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: a\n', [
        'x.yaml:3:11: YAML syntax: Flow map in block collection must be sufficiently indented and end with a }',
      ]],
      ['duplicate keys', 'apiVersion: carte/v1\nkind: Service\nkind: Service\n', ['x.yaml:3:1: YAML syntax: Map keys must be unique']],
      ['not a mapping', '- a\n- b\n', ['x.yaml:1:1: a manifest must be a mapping with apiVersion, kind, metadata and spec, not a list']],
      ['wrong apiVersion', 'apiVersion: v1\nkind: Service\n', ['x.yaml:1:13: apiVersion: "v1" is not a known apiVersion (write apiVersion: carte/v1)']],
      ['missing apiVersion', 'kind: Service\n', ['x.yaml:1:1: missing required field "apiVersion" (write apiVersion: carte/v1)']],
      ['misspelt kind', 'apiVersion: carte/v1\nkind: Servce\n', ['x.yaml:2:7: kind: "Servce" is not a kind of carte/v1 (did you mean "Service"?)']],
      ['unknown kind', 'apiVersion: carte/v1\nkind: Deployment\n', ['x.yaml:2:7: kind: "Deployment" is not a kind of carte/v1 (known kinds: Service, SealedSecret)']],
      ['bad memory unit', `apiVersion: carte/v1
kind: Service
metadata: { name: login }
spec:
  image: x
  resources:
    cpu: 500m
    memory: 12Q
`, ['x.yaml:8:13: spec.resources.memory: "12Q" is not a memory size (use e.g. 128Mi)']],
      ['typo in a field, and several problems at once', `apiVersion: carte/v1
kind: Service
metadata: { name: Login_1 }
spec:
  image: x
  replicaz: 2
  restart: sometimes
  health: { tcp: { port: 8080 }, interval: 5 }
`, [
        'x.yaml:3:19: metadata.name: "Login_1" is not a valid name (lowercase letters, digits and "-", starting with a letter, at most 40 characters)',
        'x.yaml:6:3: spec.replicaz: unknown field "replicaz" (did you mean "replicas"?)',
        'x.yaml:7:12: spec.restart: "sometimes" is not one of: always, on-failure, never',
        'x.yaml:8:44: spec.health.interval: 5 has no unit (write e.g. 5s)',
      ]],
      ['wrong types and a missing field', `apiVersion: carte/v1
kind: Service
metadata: {}
spec:
  image: x
  replicas: two
  ports: [{ port: 70000 }]
  command: []
`, [
        'x.yaml:3:11: metadata: missing required field "name"',
        'x.yaml:6:13: spec.replicas: expected a whole number, got "two"',
        'x.yaml:7:19: spec.ports[0].port: 70000 is above the maximum of 65535',
        'x.yaml:8:12: spec.command: needs at least 1 item',
      ]],
      ['image and build both, or neither', `${yaml(serviceDoc('a', { build: { context: '.' } }))}---\n${yaml({ apiVersion: 'carte/v1', kind: 'Service', metadata: { name: 'b' }, spec: { replicas: 1 } })}`, [
        'x.yaml:7:3: spec.build: set "image" or "build", not both (build already names the image after the service)',
        'x.yaml:14:1: spec: set either "image" (an image name:tag) or "build" (a Cartefile context)',
      ]],
      ['image references and pull policies', `apiVersion: carte/v1
kind: Service
metadata: { name: a }
spec:
  image: 127.0.0.1:5000/Team/app:1
  pullPolicy: Sometimes
---
apiVersion: carte/v1
kind: Service
metadata: { name: b }
spec:
  image: redis:7
  pullPolicy: Always
---
apiVersion: carte/v1
kind: Service
metadata: { name: c }
spec:
  build: { context: . }
  pullPolicy: Never
`, [
        'x.yaml:5:10: spec.image: "127.0.0.1:5000/Team/app:1" is not an image reference: name:tag, or from a registry, e.g. 127.0.0.1:5000/team/app:1.2 or registry.example/team/app@sha256:<64 hex>',
        'x.yaml:6:15: spec.pullPolicy: "Sometimes" is not one of: IfNotPresent, Always, Never',
        'x.yaml:13:15: spec.pullPolicy: Always needs a registry reference; "redis:7" names a local image, which carte never pulls (write e.g. docker.io/library/redis:7 to pull it from Docker Hub, or remove pullPolicy)',
        'x.yaml:20:3: spec.pullPolicy: pullPolicy applies to "image", and this service has none (a build is made here)',
      ]],
      ['autoscale min > max and missing limits', yaml(serviceDoc('a', { autoscale: { min: 5, max: 2, cpu: '70%', idleToZero: '5m' } })), [
        'x.yaml:8:10: spec.autoscale.min: min (5) is greater than max (2)',
        'x.yaml:10:10: spec.autoscale.cpu: a CPU target is a percentage of the CPU limit: set spec.resources.cpu',
        'x.yaml:11:17: spec.autoscale.idleToZero: scaling to zero needs autoscale.min: 0 (it is 5)',
        'x.yaml:11:17: spec.autoscale.idleToZero: an idle service is woken by traffic on its ports: add spec.ports',
      ]],
      ['invalid cron', yaml(serviceDoc('a', { autoscale: { max: 2, schedule: [{ cron: '61 * * * *', min: 1 }] } })), [
        'x.yaml:10:15: spec.autoscale.schedule[0].cron: "61 * * * *" is not a cron expression: 61 is a invalid expression for minute (use e.g. "0 9 * * 1-5")',
      ]],
      ['health check naming an unknown port', yaml(serviceDoc('a', { ports: [{ name: 'http', port: 80 }], health: { http: { path: '/', port: 'web' } } })), [
        'x.yaml:13:13: spec.health.http.port: no port is named "web" (named ports: http)',
      ]],
      ['rolling update that cannot progress', yaml(serviceDoc('a', { update: { maxSurge: 0 } })), [
        'x.yaml:7:3: spec.update: maxSurge and maxUnavailable cannot both be 0: a rolling update could never make progress',
      ]],
      ['volumes: both kinds, and the same mount twice', yaml(serviceDoc('a', { volumes: [{ name: 'd', hostPath: '/srv', mountPath: '/data' }, { name: 'e', mountPath: '/data/' }] })), [
        'x.yaml:8:7: spec.volumes[0]: set exactly one of "name" (a named volume) or "hostPath" (a host folder)',
        'x.yaml:12:18: spec.volumes[1].mountPath: "/data" is already mounted by volumes[0]',
      ]],
      ['volumes over the root (also written with ..) or the kernel\'s mounts', yaml(serviceDoc('a', { volumes: [{ name: 'd', mountPath: '/proc/sys/../..' }, { name: 'e', mountPath: '/dev/shm' }, { name: 'f', mountPath: '/sys' }] })), [
        'x.yaml:9:18: spec.volumes[0].mountPath: cannot mount a volume over the container\'s root "/"',
        'x.yaml:11:18: spec.volumes[1].mountPath: cannot mount a volume over or inside /dev: the kernel\'s view there is carte\'s to set up (mount it elsewhere, e.g. /data)',
        'x.yaml:13:18: spec.volumes[2].mountPath: cannot mount a volume over or inside /sys: the kernel\'s view there is carte\'s to set up (mount it elsewhere, e.g. /data)',
      ]],
      ['env names', yaml(serviceDoc('a', { env: { '1BAD': 'x', PORT: 8080, DEBUG: true } })), [
        'x.yaml:8:5: spec.env.1BAD: "1BAD" is not a valid environment variable name (letters, digits and "_", not starting with a digit)',
      ]],
      ['env values', yaml(serviceDoc('a', { env: { LIST: [1] } })), [
        'x.yaml:8:5: spec.env.LIST: expected a string, a number, true or false, or a secret reference { secret: NAME, key: KEY }, got a list',
      ]],
    ];
    for (const [name, text, expected] of cases) {
      it(name, () => assert.deepEqual(problemLines({ 'x.yaml': text }), expected));
    }
  });

  describe('invalid sets: across documents and files', () => {
    it('reports a name defined twice, at the second definition', () => {
      assert.deepEqual(problemLines({ 'a.yaml': yaml(serviceDoc('login')), 'b.yaml': yaml(serviceDoc('login')) }), [
        'b.yaml:4:9: metadata.name: service "login" is already defined at a.yaml:4:9',
      ]);
    });

    it('reports dependency cycles; a dependency outside the set is left to apply, which knows the store', () => {
      assert.deepEqual(problemLines({
        'a.yaml': yaml(serviceDoc('a', { dependsOn: ['b'] }), serviceDoc('b', { dependsOn: ['a', 'stored-elsewhere'] })),
      }), [
        'a.yaml:8:7: spec.dependsOn[0]: dependency cycle: a → b → a',
      ]);
    });

    it('reports a published port used twice, but lets distinct Host names share one', () => {
      const web = (name: string, publish: unknown) => serviceDoc(name, { ports: [{ port: 8080, publish }] });
      assert.deepEqual(problemLines({ 'a.yaml': yaml(web('a', 80), web('b', 80)) }), [
        'a.yaml:19:16: spec.ports[0].publish: tcp port 80 is already published by service "a" (a.yaml:4:9)',
      ]);
      assert.deepEqual(problemLines({ 'a.yaml': yaml(web('a', { port: 80, host: 'a.local' }), web('b', { port: 80, host: 'b.local' })) }), []);
      assert.equal(problemLines({ 'a.yaml': yaml(web('a', { port: 80, host: 'a.local' }), web('b', { port: 80, host: 'a.local' })) })[0],
        'a.yaml:21:7: spec.ports[0].publish: host a.local on tcp port 80 is already published by service "a" (a.yaml:4:9)');
    });

    it('collects problems from every file before refusing, and throws one ManifestError', () => {
      const dir = tempDir();
      try {
        fs.writeFileSync(path.join(dir, 'a.yaml'), yaml(serviceDoc('a', { replicas: -1 })));
        fs.writeFileSync(path.join(dir, 'b.yaml'), 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: b }\nspec: { image: x, cpu: 1 }\n');
        assert.throws(() => loadManifests([dir], { cwd: dir }), (e: unknown) => {
          assert.ok(e instanceof ManifestError);
          assert.equal(e.message, '2 problems in manifests; nothing was applied');
          assert.deepEqual(e.details, [
            'a.yaml:7:13: spec.replicas: -1 is below the minimum of 0',
            'b.yaml:4:19: spec.cpu: unknown field "cpu" (known fields: image, pullPolicy, build, command, args, env, workingDir, user, replicas, resources, ports, volumes, secrets, health, restart, update, autoscale, dependsOn, allowFrom, stopGracePeriod, readOnlyRootfs, capabilities, userns)',
          ]);
          assert.equal(e.exitCode, 2);
          return true;
        });
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('keeps positions exact for flow and block styles alike', () => {
    const r = parse({ 'x.yaml': 'apiVersion: carte/v1\nkind: Service\nmetadata:\n  name: ok\nspec:\n  image: x\n  ports:\n    - port: 80\n      protocol: sctp\n' });
    assert.deepEqual(r.problems.map((p) => [p.position?.line, p.position?.column, p.path]), [[9, 17, 'spec.ports[0].protocol']]);
  });
});
