import assert from 'node:assert/strict';
import fs from 'node:fs';
import { applyServices } from '../../../src/api/apply.js';
import { scaleService } from '../../../src/api/service-ops.js';
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
});
