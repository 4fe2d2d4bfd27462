// security.userns is refused, clearly and before anything is made, until the
// driver can do it well (see USERNS_UNSUPPORTED and docs/security.md).
import assert from 'node:assert/strict';
import { CLEAN, instance, traces, useTestHost } from '../helpers/linux.js';

describe('linux driver: user namespaces', function () {
  this.timeout(30_000);
  const host = useTestHost();

  it('refuses security.userns with the reason, leaving nothing behind', async () => {
    await assert.rejects(host().driver.create(instance('uns-1', { command: ['busybox', 'sleep', '1000'], security: { userns: true } })), {
      message: 'failed to create instance uns-1: security.userns is not supported yet: runc 1.1.5 cannot exec into a user namespace that joins carte\'s network namespace (see docs/security.md, "User namespaces")',
    });
    assert.deepEqual(traces(host()), CLEAN);
  });
});
