// A separate process that drives a LinuxDriver, for what must happen in
// another process: a create whose maker is then killed (containers outlive
// carte), a create or remove killed at a fault point (CARTE_FAULT_POINT), an
// exec whose output must not reach this process's own stdout.
// Usage: node driver-child.js '<LinuxDriverOptions JSON>' '<InstanceSpec JSON | null>' [wait | remove | exec '<{"name","command"} JSON>']
//   wait (default): create, print "created", wait to be killed
//   remove: create, print "created", remove, print "removed", exit
//   exec: run the command in the named instance without streams, print "exit CODE", exit
import { LinuxDriver } from '../../src/drivers/linux/driver.js';
import { cliLogger } from '../../src/log.js';

const [optsText, specText, action = 'wait', execText] = process.argv.slice(2);
const driver = new LinuxDriver({ ...JSON.parse(optsText!), log: cliLogger('error') });
// Secret volumes carry Buffers, which JSON writes as { type: 'Buffer', data: [...] }.
const spec = JSON.parse(specText!, (_k, v: unknown) => (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data) ? Buffer.from((v as { data: number[] }).data) : v));
const keepAlive = setInterval(() => {}, 60_000);
if (spec) {
  await driver.create(spec);
  process.stdout.write('created\n');
}
if (action === 'remove') {
  const report = await driver.remove(spec.name);
  process.stdout.write(`removed ${JSON.stringify(report.failures)}\n`);
  clearInterval(keepAlive);
} else if (action === 'exec') {
  const { name, command } = JSON.parse(execText!) as { name: string; command: string[] };
  const code = await driver.exec(name, command);
  process.stdout.write(`exit ${code}\n`);
  clearInterval(keepAlive);
}
