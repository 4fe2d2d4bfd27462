// One damaged instance record (garbage, or cut short) makes only that
// instance `lost`, with a problem saying why; listing never throws, and gc
// removes it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { CLEAN, instance, traces, useTestHost } from '../helpers/linux.js';

describe('linux driver: a damaged instance record', function () {
  this.timeout(60_000);
  const host = useTestHost();

  it('makes only that instance lost, never fails the listing, and gc removes it', async () => {
    for (const n of ['good-1', 'garbage-1', 'cut-1']) await host().driver.create(instance(n, { command: ['busybox', 'sleep', '1000'] }));
    const record = (n: string) => host().driver.paths.recordFile(n);
    fs.writeFileSync(record('garbage-1'), '\u0000\u0000garbage');
    fs.writeFileSync(record('cut-1'), fs.readFileSync(record('cut-1'), 'utf8').slice(0, 40));
    const list = await host().driver.list();
    assert.deepEqual(list.map((i) => [i.name, i.state]), [['cut-1', 'lost'], ['garbage-1', 'lost'], ['good-1', 'running']]);
    assert.match(list[0]!.problems.join('; '), new RegExp(`^instance record ${record('cut-1')} is unreadable: `));
    assert.match(list[1]!.problems.join('; '), new RegExp(`^instance record ${record('garbage-1')} is unreadable: `));
    const report = await host().driver.gc();
    assert.deepEqual(report.failures, []);
    assert.deepEqual((await host().driver.list()).map((i) => [i.name, i.state]), [['good-1', 'running']]);
    await host().driver.remove('good-1');
    assert.deepEqual(traces(host()), CLEAN);
  });
});
