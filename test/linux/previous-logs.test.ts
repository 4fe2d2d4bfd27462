// `logs --previous`: the output of an instance's previous life under its
// name survives its removal (and a restart, which removes and creates),
// bounded in size per file and in number of files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { LogLine } from '../../src/drivers/driver.js';
import { NotFoundError } from '../../src/errors.js';
import { eventually, instance, logText, useTestHost, type TestHost } from '../helpers/linux.js';

async function lines(host: TestHost, name: string, previous: boolean): Promise<string[]> {
  const out: LogLine[] = [];
  for await (const l of host.driver.logs(name, { previous })) out.push(l);
  return out.map((l) => l.text);
}

const CAP = 4096;

describe('linux driver: logs of the previous life', function () {
  this.timeout(120_000);
  const host = useTestHost({ logMaxBytes: CAP, previousLogLimit: 3 });

  it('keeps the log of the life before a restart, readable with previous', async () => {
    const life = (text: string) => instance('prev-1', { command: ['sh', '-c', `echo ${text}; exec busybox sleep 1000`] });
    await assert.rejects(lines(host(), 'prev-1', true), (e: unknown) => e instanceof NotFoundError && e.message === 'instance "prev-1" has no previous log');
    await host().driver.create(life('first-life'));
    await eventually(async () => (await logText(host(), 'prev-1')).includes('first-life'), 5000, 'output');
    // A restart, as the reconciler does it: remove, then create under the same name.
    assert.deepEqual((await host().driver.remove('prev-1')).failures, []);
    await host().driver.create(life('second-life'));
    await eventually(async () => (await logText(host(), 'prev-1')).includes('second-life'), 5000, 'output');
    assert.deepEqual(await lines(host(), 'prev-1', true), ['first-life']);
    assert.deepEqual(await lines(host(), 'prev-1', false), ['second-life']);
    // After removal the newer life is the previous one; gc does not take it.
    await host().driver.remove('prev-1');
    await host().driver.gc({ keep: new Set() });
    assert.deepEqual(await lines(host(), 'prev-1', true), ['second-life']);
  });

  it('bounds each previous log to the log cap and keeps only the newest files', async () => {
    // About 40 KiB of output: conmon caps the live log, the kept one is at most the cap too.
    await host().driver.create(instance('noisy-1', { command: ['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo line-$i-xxxxxxxxxx; i=$((i+1)); done; echo done-writing; exec busybox sleep 1000'] }));
    await eventually(async () => (await logText(host(), 'noisy-1')).includes('done-writing'), 10_000, 'output');
    await host().driver.remove('noisy-1');
    const kept = path.join(host().home, 'logs', 'previous', 'noisy-1.log');
    assert.ok(fs.statSync(kept).size <= CAP, `${fs.statSync(kept).size} bytes`);
    assert.equal((await lines(host(), 'noisy-1', true)).at(-1), 'done-writing');

    for (const n of ['few-1', 'few-2', 'few-3']) {
      await host().driver.create(instance(n, { command: ['sh', '-c', `echo ${n}; exec busybox sleep 1000`] }));
      await eventually(async () => (await logText(host(), n)).includes(n), 5000, 'output');
      await host().driver.remove(n);
    }
    // The limit is 3: prev-1 and noisy-1 (the oldest) went.
    assert.deepEqual(fs.readdirSync(path.join(host().home, 'logs', 'previous')).sort(), ['few-1.log', 'few-2.log', 'few-3.log']);
  });
});
