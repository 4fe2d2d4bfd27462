import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { acquireLock } from '../../../src/util/lock.js';
import { tempDir } from '../../helpers/paths.js';

/** Waits for a condition, polling; fails after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lock', function () {
  this.timeout(45_000);
  let dir: string;
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => void unhandled.push(e);

  beforeEach(() => {
    dir = tempDir();
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a lock taken over by another writer is compromised, and releasing it neither throws nor removes the new holder\'s lock', async () => {
    const file = path.join(dir, 'x.lock');
    const a = await acquireLock(file);
    // Another writer takes it over (as one does a lock it judged stale): a new lock folder, a new mtime.
    fs.rmSync(`${file}.lock`, { recursive: true });
    const b = await acquireLock(file, { timeoutMs: 0 });
    // proper-lockfile notices at its next refresh (UPDATE_MS) that the mtime is not its own.
    // Generous: on a loaded machine (root tests beside it) the 2 s refresh timer runs late.
    await until(() => a.compromised, 30_000, 'the first lock to be compromised');
    await a.release();
    await a.release();
    assert.equal(fs.existsSync(`${file}.lock`), true, 'the new holder still holds it');
    await b.release();
    assert.equal(fs.existsSync(`${file}.lock`), false);
    assert.deepEqual(unhandled, []);
  });

  it('a second release does nothing', async () => {
    const lock = await acquireLock(path.join(dir, 'y.lock'));
    await lock.release();
    await lock.release();
    assert.equal(lock.compromised, false);
    // Free again: it can be taken at once.
    await (await acquireLock(path.join(dir, 'y.lock'), { timeoutMs: 0 })).release();
  });
});
