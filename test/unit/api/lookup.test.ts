// Service names typed by someone ("__proto__", "constructor", "toString") are
// looked up as own keys only: not found, nothing changed (once, stopping
// "__proto__" set `suspended` on Object.prototype, stopping every service).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { applyServices } from '../../../src/api/apply.js';
import { checkDelete } from '../../../src/api/delete.js';
import { SERVICE_NAME, storedService } from '../../../src/api/lookup.js';
import { rollbackService } from '../../../src/api/rollback.js';
import { restartService, scaleService, setSuspended } from '../../../src/api/service-ops.js';
import { Store } from '../../../src/store/store.js';
import { serviceDoc, services, yaml } from '../../helpers/manifests.js';
import { tempDir } from '../../helpers/paths.js';

const PROTO_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];

describe('service lookups by typed names', () => {
  let home: string;
  let store: Store;
  beforeEach(async () => {
    home = tempDir();
    store = Store.open(home);
    await applyServices(store, { services: services({ 'm.yaml': yaml(serviceDoc('web', { replicas: 2 })) }), source: 'cli', prune: false });
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('finds own keys only, and the manifest rule refuses those names', async () => {
    const data = await store.read();
    assert.equal(storedService(data, 'web')?.name, 'web');
    for (const n of PROTO_NAMES) {
      assert.equal(storedService(data, n), undefined, n);
    }
    // "constructor" is a valid name (a service may have it): the own-key lookup is what holds.
    assert.deepEqual(PROTO_NAMES.filter((n) => SERVICE_NAME.test(n)), ['constructor']);
    assert.equal(SERVICE_NAME.test('web'), true);
  });

  it('stop, start, restart, scale, rollback and delete of such a name: not found, nothing changed', async () => {
    const data = await store.read();
    const before = JSON.stringify(data);
    for (const n of PROTO_NAMES) {
      const notFound = { code: 'not-found', message: `service "${n}" not found` };
      await assert.rejects(setSuspended(store, n, true), notFound);
      await assert.rejects(setSuspended(store, n, false), notFound);
      await assert.rejects(restartService(store, n), notFound);
      await assert.rejects(scaleService(store, n, 3), notFound);
      await assert.rejects(rollbackService(store, n), notFound);
      assert.throws(() => checkDelete(data, [n], 'cli'), { code: 'not-found' });
    }
    assert.equal(Object.hasOwn(Object.prototype, 'suspended'), false);
    assert.equal(JSON.stringify(await store.read()), before);
  });
});
