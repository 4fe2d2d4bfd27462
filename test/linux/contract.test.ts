import { describeDriverContract } from '../helpers/driver-contract.js';
import { instance, useTestHost } from '../helpers/linux.js';

describe('linux driver', function () {
  this.timeout(60_000);
  const host = useTestHost();
  describeDriverContract('Linux driver', () => ({
    driver: host().driver,
    spec: (name) => instance(name, { command: ['sh', '-c', 'trap "exit 0" TERM; while true; do busybox sleep 0.1; done'] }),
    exitThree: ['sh', '-c', 'exit 3'],
  }));
});
