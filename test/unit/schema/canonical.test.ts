import assert from 'node:assert/strict';
import { canonicalize, specHash, stableJson, templateHash, toManifest } from '../../../src/schema/canonical.js';
import type { ServiceManifest } from '../../../src/schema/service-schema.js';
import { serviceDoc, services, yaml } from '../../helpers/manifests.js';

const one = (spec: Record<string, unknown>, metadata: Record<string, unknown> = {}) =>
  services({ 'a.yaml': yaml(serviceDoc('a', spec, metadata)) })[0]!.object;

describe('canonical form', () => {
  it('fills in every default', () => {
    const s = one({}).spec;
    assert.deepEqual(s, {
      image: 'test/a:1', build: null, command: null, args: null, env: {}, workingDir: null, user: null,
      replicas: 1, resources: { cpuMillis: null, memoryBytes: null, pids: null }, ports: [], volumes: [], health: null,
      restart: 'always', update: { maxSurge: { count: 1 }, maxUnavailable: { count: 0 }, progressDeadlineMs: 120_000 },
      autoscale: null, dependsOn: [], stopGracePeriodMs: 10_000,
      readOnlyRootfs: false, capabilities: { add: [], drop: [] }, userns: null,
    });
  });

  it('parses units, names ports, resolves health ports and relative build contexts', () => {
    const s = one({
      image: undefined,
      build: { context: './login' },
      env: { PORT: 8080, DEBUG: true },
      resources: { cpu: 0.5, memory: '64Mi' },
      ports: [{ name: 'web', port: 80, publish: { port: 8080, host: 'Login.Local' } }, { port: 53, protocol: 'udp' }],
      health: { http: { path: '/health', port: 'web' }, interval: '2s' },
      autoscale: { min: 0, max: 3, cpu: '70%', idleToZero: '5m', schedule: [{ cron: '0 9 * * 1-5', min: 2 }] },
    }).spec;
    assert.deepEqual(s.build, { context: '/srv/app/login', cartefile: 'Cartefile', args: {} });
    assert.deepEqual(s.env, { PORT: '8080', DEBUG: 'true' });
    assert.deepEqual(s.resources, { cpuMillis: 500, memoryBytes: 64 * 2 ** 20, pids: null });
    assert.deepEqual(s.ports, [
      { name: 'web', port: 80, protocol: 'tcp', publish: { port: 8080, address: null, host: 'login.local' }, balance: 'round-robin' },
      { name: 'udp-53', port: 53, protocol: 'udp', publish: null, balance: 'round-robin' },
    ]);
    assert.deepEqual(s.health, { check: { kind: 'http', path: '/health', port: 80 }, intervalMs: 2000, timeoutMs: 1000, failureThreshold: 3, startPeriodMs: 0 });
    assert.equal(s.replicas, 0, 'an autoscaled service starts at its minimum');
    assert.deepEqual(s.autoscale?.schedule, [{ cron: '0 9 * * 1-5', durationMs: 3_600_000, min: 2, max: null }]);
  });

  it('hashes equal specs alike, however they are written', () => {
    const a = one({ resources: { cpu: '500m', memory: '128Mi' }, env: { A: '1', B: '2' } });
    const b = one({ env: { B: 2, A: 1 }, resources: { memory: 134217728, cpu: 0.5 }, restart: 'always' });
    assert.equal(specHash(a), specHash(b));
    assert.notEqual(specHash(a), specHash(one({ resources: { cpu: '500m', memory: '256Mi' }, env: { A: '1', B: '2' } })));
  });

  it('changes the template hash only for what goes into an instance', () => {
    const base = one({ replicas: 1 });
    assert.equal(templateHash(base.spec), templateHash(one({ replicas: 5, restart: 'never', update: { maxSurge: 2 } }).spec));
    assert.notEqual(templateHash(base.spec), templateHash(one({ image: 'test/a:2' }).spec));
    assert.notEqual(templateHash(base.spec), templateHash(one({ env: { X: '1' } }).spec));
    assert.notEqual(specHash(base), specHash(one({ replicas: 5 })), 'but the spec hash sees every change');
    assert.notEqual(specHash(base), specHash(one({}, { labels: { tier: 'x' } })), 'labels included');
  });

  it('prints back to a manifest that canonicalizes to the same object', () => {
    const obj = one({
      resources: { cpu: 2, memory: '1Gi', pids: 10 },
      ports: [{ port: 80, publish: 8080 }, { port: 81, publish: { port: 81, address: '127.0.0.1' } }],
      volumes: [{ name: 'data', mountPath: '/data' }, { hostPath: '/srv', mountPath: '/srv', readOnly: true }],
      health: { exec: { command: ['true'] }, startPeriod: '1m30s' },
      update: { maxSurge: '25%' },
      autoscale: { max: 4, memory: 80, schedule: [{ cron: '* * * * *', max: 2, duration: '30m' }] },
      dependsOn: ['b'],
    });
    const again = canonicalize(toManifest(obj) as ServiceManifest, '/elsewhere');
    assert.equal(stableJson(again), stableJson(obj));
  });

  it('serializes keys in a stable order at every depth', () => {
    assert.equal(stableJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}');
  });
});
