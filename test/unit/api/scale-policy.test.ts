import assert from 'node:assert/strict';
import fs from 'node:fs';
import { applyServices } from '../../../src/api/apply.js';
import { rollbackService } from '../../../src/api/rollback.js';
import { scaleService } from '../../../src/api/service-ops.js';
import { parsePolicy } from '../../../src/policy/load.js';
import { Store } from '../../../src/store/store.js';
import { serviceDoc, services, yaml } from '../../helpers/manifests.js';
import { tempDir } from '../../helpers/paths.js';

describe('carte scale under the server policy', () => {
  let home: string;
  let store: Store;
  beforeEach(async () => {
    home = tempDir();
    store = Store.open(home);
    await applyServices(store, { services: services({ 'm.yaml': yaml(serviceDoc('web', { replicas: 2 }), serviceDoc('db', { replicas: 3 })) }), source: 'cli', prune: false });
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('refuses above the replicas per service and in total, with the numbers; a scale-down is always allowed', async () => {
    const limits = { perService: 4, total: 7 };
    await assert.rejects(scaleService(store, 'web', 5, new Date(), limits), { message: 'cannot scale service "web" to 5: above the server policy\'s maximum of 4 replicas per service' });
    await assert.rejects(scaleService(store, 'web', 4, new Date(), { perService: 4, total: 6 }), { message: 'cannot scale service "web" to 4: the services would have 7 replicas in all, above the server policy\'s total of 6' });
    assert.deepEqual(await scaleService(store, 'web', 4, new Date(), limits), { from: 2, source: 'cli' });
    assert.deepEqual(await scaleService(store, 'db', 1, new Date(), { perService: 0, total: 0 }), { from: 3, source: 'cli' });
    assert.equal((await store.read()).services.web!.revision.spec.replicas, 4);
  });

  it('holds a service to its own source\'s limits', async () => {
    await applyServices(store, { services: services({ 'c.yaml': yaml(serviceDoc('class', { replicas: 1 })) }), source: 'git:class', prune: false });
    const bySource = (source: string) => (source === 'git:class' ? { perService: 2, total: 100 } : { perService: 50, total: 100 });
    await assert.rejects(scaleService(store, 'class', 3, new Date(), bySource), { message: 'cannot scale service "class" to 3: above the server policy\'s maximum of 2 replicas per service' });
    assert.deepEqual(await scaleService(store, 'web', 30, new Date(), bySource), { from: 2, source: 'cli' });
  });
});

describe('carte rollback under the server policy', () => {
  let home: string;
  let store: Store;
  const policy = (text: string) => {
    const r = parsePolicy(text, 'policy.yaml');
    if (!r.policy) throw new Error('fixture policy is invalid');
    return { policy: r.policy, home: '/var/lib/carte-test', realpath: () => null };
  };
  const loose = policy('volumes:\n  hostPaths: [{ path: /srv/data }]\nresources:\n  max: { memory: 2Gi }\n');
  beforeEach(async () => {
    home = tempDir();
    store = Store.open(home);
    const v1 = serviceDoc('web', { volumes: [{ hostPath: '/srv/data/web', mountPath: '/data' }], resources: { memory: '1Gi' } });
    await applyServices(store, { services: services({ 'web.yaml': yaml(v1) }), source: 'cli', prune: false, admission: loose });
    await applyServices(store, { services: services({ 'web.yaml': yaml(serviceDoc('web', { resources: { memory: '64Mi' } })) }), source: 'cli', prune: false, admission: loose });
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('admits the old revision again under today\'s policy: refused field by field, nothing written', async () => {
    const strict = policy('resources:\n  max: { memory: 512Mi }\n');
    const before = fs.readFileSync(`${home}/state.json`, 'utf8');
    await assert.rejects(rollbackService(store, 'web', { admission: strict }), {
      message: 'service "web" was not rolled back: the server policy refuses revision 1 now; apply a manifest that fits the policy instead',
      details: [
        'spec.resources.memory: 1Gi is above the server policy\'s maximum of 512Mi',
        'spec.volumes[0].hostPath: "/srv/data/web" is not allowed by the server policy (allowed host paths: none)',
      ],
    });
    assert.equal(fs.readFileSync(`${home}/state.json`, 'utf8'), before);
  });

  it('rolls back when today\'s policy still allows the revision', async () => {
    const r = await rollbackService(store, 'web', { admission: loose });
    assert.deepEqual(r, { from: 2, to: 1, revision: 3, source: 'cli' });
    const s = (await store.read()).services.web!;
    assert.deepEqual(s.revision.spec, s.history.find((h) => h.revision === 1)!.spec);
    assert.equal(s.revision.hash, s.history.find((h) => h.revision === 1)!.hash);
  });
});
