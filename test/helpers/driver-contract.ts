// The meaning of the Driver interface, as tests every driver must pass: the
// in-memory one (test/unit) and the Linux one (test/linux).
import assert from 'node:assert/strict';
import type { Driver, InstanceSpec } from '../../src/drivers/driver.js';

export interface ContractSubject {
  driver: Driver;
  /** An InstanceSpec that runs a long-lived process which exits 0 on SIGTERM. */
  spec(name: string): InstanceSpec;
  /** A command that exits with code 3 inside an instance. */
  exitThree: string[];
}

export function describeDriverContract(title: string, subject: () => ContractSubject): void {
  describe(`Driver contract: ${title}`, () => {
    const find = async (name: string) => (await subject().driver.list()).find((i) => i.name === name);

    it('create starts an instance that list shows, with its service and labels', async () => {
      const { driver, spec } = subject();
      const created = await driver.create({ ...spec('contract-1'), labels: { service: 'contract', rev: '7' } });
      assert.equal(created.state, 'running');
      const listed = await find('contract-1');
      assert.equal(listed?.state, 'running');
      assert.equal(listed?.service, spec('contract-1').service);
      assert.deepEqual(listed?.labels, { service: 'contract', rev: '7' });
      assert.ok(listed?.ip, 'it has an address');
      assert.ok(listed?.createdAt);
    });

    it('pullImage with pullPolicy Never only checks the local store: absent is a registry error naming the image', async () => {
      const { driver } = subject();
      const ref = '127.0.0.1:1/contract/absent:1';
      await assert.rejects(driver.pullImage(ref, { policy: 'Never' }), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'registry');
        assert.match(e.message, /^image 127\.0\.0\.1:1\/contract\/absent:1 is not in the local store and its pullPolicy is Never/);
        return true;
      });
    });

    it('refuses a second instance with the same name and leaves the first alone', async () => {
      const { driver, spec } = subject();
      await assert.rejects(driver.create(spec('contract-1')), /already exists/);
      assert.equal((await find('contract-1'))?.state, 'running');
    });

    it('stats a running instance; exec passes the exit code back', async () => {
      const { driver, exitThree } = subject();
      assert.ok(await driver.stats('contract-1'));
      assert.equal(await driver.exec('contract-1', exitThree, {}), 3);
    });

    it('stop ends the instance (and is idempotent); it stays listed as exited', async () => {
      const { driver } = subject();
      await driver.stop('contract-1', 5000);
      await driver.stop('contract-1', 5000);
      const i = await find('contract-1');
      assert.equal(i?.state, 'exited');
      assert.equal(typeof i?.exitCode, 'number');
    });

    it('remove makes it disappear, is idempotent, and stats of it are null', async () => {
      const { driver } = subject();
      assert.deepEqual((await driver.remove('contract-1')).failures, []);
      assert.deepEqual((await driver.remove('contract-1')).failures, []);
      assert.equal(await find('contract-1'), undefined);
      assert.equal(await driver.stats('contract-1'), null);
    });
  });
}
