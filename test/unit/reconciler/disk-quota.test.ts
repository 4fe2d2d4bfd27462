import assert from 'node:assert/strict';
import { judgeDisk, nextCheckMs, type ServiceDiskUse } from '../../../src/reconciler/disk-quota.js';

const Mi = 2 ** 20;
const Ki = 2 ** 10;

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

  it('volumes alone over it do not shelter a writer: the top writer is still replaced, and the volumes named', () => {
    // The outside test's case: 300 MiB in a volume and 1.5 GiB in the root filesystem, quota 50 MiB.
    assert.deepEqual(judgeDisk({ service: 'hog', quotaBytes: 50 * Mi, instances: [{ name: 'hog-1', bytes: 1536 * Mi }, { name: 'hog-2', bytes: 2 * Mi }], volumes: [{ name: 'data', bytes: 300 * Mi }] }), {
      service: 'hog', evict: 'hog-1',
      reason: 'hog uses 1.8Gi of its 50Mi disk quota (writable layers 1.5Gi, volumes 300.0Mi): hog-1 wrote 1.5Gi and is replaced; its volumes alone are over it too: remove data from them',
    });
  });

  it('volumes alone over it and no instance wrote over 1Mi: no replacement (it would not help), a reason that says what to do', () => {
    assert.deepEqual(judgeDisk({ service: 'db', quotaBytes: 8 * Mi, instances: [{ name: 'db-1', bytes: 1 * Mi }, { name: 'db-2', bytes: 512 * Ki }], volumes: [{ name: 'data', bytes: 9 * Mi }] }), {
      service: 'db', evict: null,
      reason: 'db uses 10.5Mi of its 8Mi disk quota (writable layers 1.5Mi, volumes 9.0Mi): its volumes alone are over it; remove data from them (replacing an instance would not help)',
    });
  });

  it('over it by writers under 1Mi each, volumes under it: no replacement, a reason that says what to do', () => {
    assert.deepEqual(judgeDisk({ service: 'db', quotaBytes: 8 * Mi, instances: [{ name: 'db-1', bytes: 768 * Ki }, { name: 'db-2', bytes: 768 * Ki }], volumes: [{ name: 'data', bytes: 7 * Mi }] }), {
      service: 'db', evict: null,
      reason: 'db uses 8.5Mi of its 8Mi disk quota (writable layers 1.5Mi, volumes 7.0Mi): no instance wrote over 1.0Mi; remove data from its volumes (replacing an instance would free next to nothing)',
    });
  });

  it('no instances and volumes over it: a warning', () => {
    assert.equal(judgeDisk({ service: 'db', quotaBytes: 1 * Mi, instances: [], volumes: [{ name: 'data', bytes: 2 * Mi }] })?.evict, null);
  });
});

describe('disk quota: when to measure next', () => {
  const use = (bytes: number, quotaBytes: number): ServiceDiskUse => ({ service: 's', quotaBytes, instances: [{ name: 's-1', bytes }], volumes: [] });
  const cases: Array<[string, number, ServiceDiskUse[], number]> = [
    ['nothing measured: the interval', 30_000, [], 30_000],
    ['every service at half its quota or less: the interval', 30_000, [use(5 * Mi, 10 * Mi)], 30_000],
    ['a service over half its quota: six times sooner', 30_000, [use(1 * Mi, 100 * Mi), use(6 * Mi, 10 * Mi)], 5_000],
    ['a service over its quota: the same', 30_000, [use(20 * Mi, 10 * Mi)], 5_000],
    ['never under a second', 3_000, [use(6 * Mi, 10 * Mi)], 1_000],
    ['never later than the interval', 500, [use(6 * Mi, 10 * Mi)], 500],
  ];
  for (const [name, interval, uses, want] of cases) {
    it(name, () => assert.equal(nextCheckMs(interval, uses), want));
  }
});
