import assert from 'node:assert/strict';
import { judgeDisk } from '../../../src/reconciler/disk-quota.js';

const Mi = 2 ** 20;

describe('disk quota: the decision', () => {
  it('under the quota: nothing', () => {
    assert.equal(judgeDisk({ service: 'web', quotaBytes: 10 * Mi, instances: [{ name: 'web-1', bytes: 4 * Mi }], volumes: [{ name: 'data', bytes: 6 * Mi }] }), null);
  });

  it('over it: the instance that wrote the most is replaced, with every number in the reason', () => {
    assert.deepEqual(judgeDisk({ service: 'web', quotaBytes: 8 * Mi, instances: [{ name: 'web-1', bytes: 3 * Mi }, { name: 'web-2', bytes: 5 * Mi }], volumes: [{ name: 'data', bytes: 1 * Mi }] }), {
      service: 'web', evict: 'web-2',
      reason: 'web uses 9.0Mi of its 8Mi disk quota (writable layers 8.0Mi, volumes 1.0Mi): web-2 wrote 5.0Mi and is replaced',
    });
  });

  it('volumes alone over it: no replacement (it would not help), a reason that says what to do', () => {
    assert.deepEqual(judgeDisk({ service: 'db', quotaBytes: 8 * Mi, instances: [{ name: 'db-1', bytes: 2 * Mi }], volumes: [{ name: 'data', bytes: 9 * Mi }] }), {
      service: 'db', evict: null,
      reason: 'db uses 11.0Mi of its 8Mi disk quota (writable layers 2.0Mi, volumes 9.0Mi): its volumes alone are over it; remove data from them (replacing an instance would not help)',
    });
  });
});
