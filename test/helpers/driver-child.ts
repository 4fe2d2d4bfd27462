// A separate process that creates an instance and then waits to be killed,
// to prove containers outlive the carte process that started them.
// Usage: node driver-child.js '<LinuxDriverOptions JSON>' '<InstanceSpec JSON>'
import { LinuxDriver } from '../../src/drivers/linux/driver.js';
import { cliLogger } from '../../src/log.js';

const [opts, spec] = process.argv.slice(2).map((a) => JSON.parse(a));
const driver = new LinuxDriver({ ...opts, log: cliLogger('error') });
setInterval(() => {}, 60_000);
await driver.create(spec);
process.stdout.write('created\n');
