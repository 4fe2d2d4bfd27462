import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CarteError } from '../../../src/errors.js';
import { STATE_VERSION } from '../../../src/store/state.js';
import { Store } from '../../../src/store/store.js';
import { kill9, waitForOutput } from '../../helpers/process.js';
import { tempDir } from '../../helpers/paths.js';

const CHILD = fileURLToPath(new URL('../../helpers/store-child.js', import.meta.url));

describe('store', function () {
  this.timeout(30_000);
  let home: string;
  const children: ChildProcess[] = [];
  const child = (mode: string) => {
    const c = spawn(process.execPath, [CHILD, home, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(c);
    return c;
  };

  beforeEach(() => {
    home = tempDir();
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map(kill9));
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('starts empty, and saves what an update changes', async () => {
    const store = Store.open(home);
    assert.deepEqual(Object.keys((await store.read()).services), []);
    await store.update((d) => void (d.images.x = 1));
    assert.equal((await store.read()).images.x, 1);
    assert.equal(fs.statSync(store.file).mode & 0o777, 0o600);
  });

  it('writes nothing when the change throws', async () => {
    const store = Store.open(home);
    await store.update((d) => void (d.images.x = 1));
    await assert.rejects(store.update((d) => {
      d.images.x = 2;
      throw new Error('refused');
    }), { message: 'refused' });
    assert.equal((await store.read()).images.x, 1);
  });

  it('serializes concurrent updates: none is lost', async () => {
    const a = Store.open(home);
    const b = Store.open(home);
    const bump = (s: Store) => s.update((d) => void (d.images.n = ((d.images.n as number | undefined) ?? 0) + 1));
    await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 2 ? a : b)));
    assert.equal((await a.read()).images.n, 20);
  });

  it('takes over the lock of a holder that was killed, instead of waiting forever', async () => {
    const holder = child('hold');
    await waitForOutput(holder, 'locked');
    assert.equal(await kill9(holder), true, 'the holder was still running, holding the lock, when killed');
    // The default wait is 30 s; succeeding at all shows the stale lock (15 s) was taken over.
    await Store.open(home).update((d) => void (d.images.after = true));
    assert.equal((await Store.open(home).read()).images.after, true);
  });

  it('an update whose lock was taken over while it ran fails with a clear error, writes nothing, and the next update succeeds', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const store = Store.open(home);
      await store.update((d) => void (d.images.x = 1));
      await assert.rejects(store.update(async (d) => {
        d.images.x = 2;
        // As when this process stalls past the stale time: another writer removes the lock
        // folder and takes it; proper-lockfile sees it at its next refresh (every 2 s).
        fs.rmSync(`${store.lockPath}.lock`, { recursive: true });
        fs.mkdirSync(`${store.lockPath}.lock`);
        await new Promise((r) => setTimeout(r, 3_000));
      }), (e: CarteError) => {
        assert.equal(e.code, 'store-locked');
        assert.equal(e.message, `failed to update state: lost the store lock ${store.lockPath} while changing state (this process stalled past the lock's 15s stale time, so another writer may have taken it over); nothing was written; retry the update`);
        return true;
      });
      assert.equal((await store.read()).images.x, 1);
      // The other writer is done (its lock folder removed): the next update goes through.
      fs.rmSync(`${store.lockPath}.lock`, { recursive: true });
      await store.update((d) => void (d.images.x = 3));
      assert.equal((await store.read()).images.x, 3);
      assert.deepEqual((await store.verify()).current?.problem, null);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('leaves a writer\'s temporary file alone while it may still be written, and removes it once older than the stale time', async () => {
    const store = Store.open(home);
    const tmp = path.join(home, '.state.json.999999.1.tmp');
    fs.writeFileSync(tmp, 'half');
    await store.update(() => undefined);
    assert.equal(fs.existsSync(tmp), true);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(tmp, old, old);
    await store.update(() => undefined);
    assert.equal(fs.existsSync(tmp), false);
  });

  it('waits for a live holder and gives up with a clear error', async () => {
    const holder = child('hold');
    await waitForOutput(holder, 'locked');
    await assert.rejects(Store.open(home).update(() => undefined, { timeoutMs: 300 }), (e: Error) => {
      assert.match(e.message, /^failed to lock the store: .*state\.lock is held by another carte process for over 0s \(a crashed holder's lock clears itself after 15s; a running daemon holds it while it runs\)$/);
      return true;
    });
  });

  it('leaves a readable, consistent state when a writer is killed at any moment', async function () {
    // A writer killed holding the lock leaves it to go stale (15 s) before the next writer starts.
    this.timeout(75_000);
    let last = 0;
    for (let round = 0; round < 2; round++) {
      const writer = child('count');
      writer.stdout!.on('data', (d: Buffer) => {
        const values = d.toString().trim().split('\n').map(Number);
        last = Math.max(last, ...values);
      });
      await waitForOutput(writer, '\n');
      await new Promise((r) => setTimeout(r, Math.random() * 200));
      assert.equal(await kill9(writer), true);
      // Whatever survived is intact: the current file and every generation verify.
      const v = await Store.open(home).verify();
      assert.deepEqual([v.current, ...v.generations].map((c) => [path.basename(c!.path), c!.problem]), [v.current, ...v.generations].map((c) => [path.basename(c!.path), null]));
      const state = await Store.open(home).read();
      assert.equal(state.version, STATE_VERSION);
      const counter = state.images.counter as number;
      // The killed writer may have saved one value it did not get to print.
      assert.ok(counter === last || counter === last + 1, `round ${round}: saved ${counter}, printed ${last}`);
      last = counter;
    }
    // Temp files of killed writers are removed by the next writer, once older than the lock's stale time.
    const old = new Date(Date.now() - 60_000);
    for (const f of fs.readdirSync(home).filter((n) => n.endsWith('.tmp'))) fs.utimesSync(path.join(home, f), old, old);
    await Store.open(home).update(() => undefined);
    assert.deepEqual(fs.readdirSync(home).filter((f) => f.endsWith('.tmp')), []);
  });

  it('explains an unwritable CARTE_HOME', () => {
    const file = path.join(home, 'a-file');
    fs.writeFileSync(file, '');
    assert.throws(() => Store.open(path.join(file, 'sub')), /^CarteError: failed to create CARTE_HOME .*: ENOTDIR.* \(set CARTE_HOME or --home to a writable folder\)$/);
  });
});
