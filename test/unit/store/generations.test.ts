import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CarteError } from '../../../src/errors.js';
import { encodeState } from '../../../src/store/state-file.js';
import { emptyState } from '../../../src/store/state.js';
import { Store, type RecoveryInfo, type StoreOptions } from '../../../src/store/store.js';
import { writeFileDurably } from '../../../src/util/durable-json-file.js';
import { mountOf } from '../../../src/util/disk.js';
import { tempDir } from '../../helpers/paths.js';

// A clock that moves one second per reading, so every time in a file is known.
function clock(start = Date.parse('2026-11-01T10:00:00Z')) {
  let t = start;
  return () => new Date((t += 1000));
}

describe('store generations and recovery', function () {
  this.timeout(20_000);
  let home: string;
  let recovered: RecoveryInfo[];
  const open = (opts: StoreOptions = {}) => Store.open(home, { now: clock(), onRecover: (i) => recovered.push(i), ...opts });
  /** n writes, each setting images.n to its number. */
  const writes = async (store: Store, n: number) => {
    for (let i = 1; i <= n; i++) await store.update((d) => void (d.images.n = i));
  };
  const gens = () => fs.readdirSync(path.join(home, 'generations')).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  const damaged = () => fs.readdirSync(home).filter((n) => n.startsWith('state.damaged-')).sort();
  const genFile = (n: number) => path.join(home, 'generations', `state.${n}.json`);

  beforeEach(() => {
    home = tempDir();
    recovered = [];
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('keeps the file each write replaces as a hard link, numbered by its generation, the newest 10 (and one a minute)', async () => {
    const store = open();
    await writes(store, 3);
    const inoOf3 = fs.statSync(store.file).ino;
    await writes(store, 9);
    assert.equal((await store.read()).generation, 12);
    // 2..11 are the newest ten; 1 stays as the newest of its minute beyond them.
    assert.deepEqual(gens(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((n) => `state.${n}.json`));
    // No data written to keep it: generation 3 is the very inode state.json was.
    assert.equal(fs.statSync(genFile(3)).ino, inoOf3);
    assert.equal(JSON.parse(fs.readFileSync(genFile(11), 'utf8')).images.n, 11 - 3);
    const v = await store.verify();
    assert.deepEqual([v.current, ...v.generations].map((c) => [c!.generation, c!.problem]), [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((g) => [g, null]));
    assert.equal(v.current!.writtenAt, '2026-11-01T10:00:12.000Z');
  });

  it('accepts a state from before checksums and generations, and keeps it as generation 0', async () => {
    fs.writeFileSync(path.join(home, 'state.json'), JSON.stringify({ ...emptyState(), images: { old: true } }, null, 1));
    const store = open();
    assert.equal((await store.read()).images.old, true);
    await store.update((d) => void (d.images.new = true));
    assert.deepEqual(gens(), ['state.0.json']);
    assert.match(fs.readFileSync(store.file, 'utf8'), /\n "checksum": "sha256:[0-9a-f]{64}"\n\}$/);
    assert.equal((await store.read()).generation, 1);
  });

  // The recovered state is numbered after the damaged one when the damaged
  // file still says which it was (5), else after the newest kept one (4).
  const damages: Array<[string, (text: string) => string, RegExp, number]> = [
    ['truncated', (t) => t.slice(0, t.length / 2), /^not valid JSON \(/, 6],
    ['garbage', () => '\u0000\u0000garbage', /^not valid JSON \(/, 5],
    ['a changed byte', (t) => t.replace('"n": 5', '"n": 6'), /^not what carte wrote \(checksum mismatch: stored sha256:[0-9a-f]{12}…, content sha256:[0-9a-f]{12}…\)$/, 6],
    ['a wrong version', () => encodeState({ ...emptyState(), version: 9 }), /^version 9, this carte reads version 1$/, 5],
  ];
  for (const [name, damage, reason, generation] of damages) {
    it(`recovers from ${name}: the newest good generation wins, the damaged file is kept`, async () => {
      const store = open();
      await writes(store, 5);
      const bad = damage(fs.readFileSync(store.file, 'utf8'));
      fs.writeFileSync(store.file, bad);
      const data = await store.read();
      assert.equal(data.images.n, 4);
      assert.equal(recovered.length, 1);
      const info = recovered[0]!;
      assert.match(info.reason, reason);
      const keptAt = path.join(home, 'state.damaged-20261101T100006.000Z.json');
      assert.deepEqual(damaged(), [path.basename(keptAt)]);
      assert.equal(fs.readFileSync(keptAt, 'utf8'), bad);
      const message = `state.json was damaged (${info.reason}); restored generation 4 written at 2026-11-01T10:00:04.000Z; the damaged file is kept at ${keptAt}`;
      assert.deepEqual(info, { at: '2026-11-01T10:00:06.000Z', generation: 4, reason: info.reason, damagedFile: keptAt, generationWrittenAt: '2026-11-01T10:00:04.000Z', message });
      assert.deepEqual(data.recovery, { at: '2026-11-01T10:00:06.000Z', generation: 4, reason: info.reason, damagedFile: keptAt });
      assert.deepEqual(data.events.at(-1), { seq: data.events.at(-1)!.seq, at: '2026-11-01T10:00:06.000Z', type: 'Warning', object: 'store/state', reason: 'StateRecovered', message });
      // Written as the next generation: the current file now verifies, from a fresh reader too.
      const fresh = await Store.open(home).read();
      assert.equal(fresh.generation, generation);
      assert.equal(fresh.images.n, 4);
      assert.equal(recovered.length, 1);
    });
  }

  it('skips damaged generations for the newest good one', async () => {
    const store = open();
    await writes(store, 6);
    fs.writeFileSync(store.file, 'garbage');
    fs.writeFileSync(genFile(5), 'garbage');
    fs.truncateSync(genFile(4), 10);
    assert.equal((await store.read()).images.n, 3);
    assert.equal(recovered[0]!.generation, 3);
  });

  it('recovers on update and readShared too, and the update lands on the recovered state', async () => {
    const store = open();
    await writes(store, 3);
    fs.writeFileSync(store.file, 'garbage');
    await store.update((d) => void (d.images.after = true));
    const data = await store.readShared();
    assert.deepEqual([data.images.n, data.images.after, data.recovery?.generation], [2, true, 2]);
    fs.writeFileSync(store.file, 'garbage');
    assert.equal((await store.readShared()).images.n, 2);
    assert.equal(recovered.length, 2);
  });

  it('recovers once when several readers find the damage together', async () => {
    const store = open();
    await writes(store, 3);
    fs.writeFileSync(store.file, 'garbage');
    const results = await Promise.all([open(), open(), open()].map((s) => s.read()));
    assert.deepEqual(results.map((d) => d.images.n), [2, 2, 2]);
    assert.equal(recovered.length, 1);
    assert.equal(damaged().length, 1);
    assert.equal((await store.read()).events.filter((e) => e.reason === 'StateRecovered').length, 1);
  });

  it('keeps at most 3 damaged files', async () => {
    const store = open();
    await writes(store, 2);
    for (let i = 0; i < 5; i++) {
      fs.writeFileSync(store.file, `garbage ${i}`);
      await store.read();
    }
    assert.deepEqual(damaged().map((n) => fs.readFileSync(path.join(home, n), 'utf8')), ['garbage 2', 'garbage 3', 'garbage 4']);
  });

  it('with no good generation, says what to do and overwrites nothing', async () => {
    const store = open();
    await writes(store, 3);
    for (const g of [1, 2]) fs.writeFileSync(genFile(g), '{');
    fs.writeFileSync(store.file, 'garbage');
    const before = fs.readdirSync(home).sort();
    for (const op of [() => store.read(), () => store.update(() => undefined)]) {
      await assert.rejects(op(), (e: CarteError) => {
        assert.equal(e.code, 'store-corrupt');
        assert.equal(e.message, `failed to read state file ${store.file}: it is not valid JSON (Unexpected token 'g', "garbage" is not valid JSON); ` +
          `no good generation to recover from (all 2 generations in ${home}/generations are damaged): restore a copy you trust with "carte state restore FILE", or move it away to start empty`);
        assert.deepEqual(e.details, [2, 1].map((g) => `${genFile(g)}: damaged: not valid JSON (Expected property name or '}' in JSON at position 1)`));
        return true;
      });
    }
    assert.equal(fs.readFileSync(store.file, 'utf8'), 'garbage');
    assert.deepEqual(fs.readdirSync(home).sort(), before);
  });

  it('reports a state file edited into invalid JSON with no generation kept, and leaves it alone', async () => {
    const store = open();
    fs.writeFileSync(store.file, '{"version": 1,');
    await assert.rejects(store.read(), new RegExp(`it is not valid JSON .*\\(${home}/generations holds none\\): .*move it away to start empty$`));
    assert.equal(fs.readFileSync(store.file, 'utf8'), '{"version": 1,');
  });

  it('never takes a state.json moved away or deleted for an empty state: the newest generation comes back', async () => {
    const store = open();
    await writes(store, 3);
    fs.renameSync(store.file, path.join(home, 'moved.json'));
    const data = await store.read();
    assert.equal(data.images.n, 2, 'generation 2, the newest kept');
    assert.deepEqual(data.recovery, { at: data.recovery!.at, generation: 2, reason: 'missing (removed or moved away after carte wrote it)', damagedFile: null });
    assert.equal(data.events.at(-1)!.message, 'state.json was missing (removed or moved away after carte wrote it); restored generation 2 written at 2026-11-01T10:00:02.000Z');
  });

  it('sets a folder put in place of state.json aside, and recovers', async () => {
    const store = open();
    await writes(store, 3);
    fs.rmSync(store.file);
    fs.mkdirSync(store.file);
    fs.writeFileSync(path.join(store.file, 'inside'), 'x');
    const data = await store.read();
    assert.equal(data.images.n, 2);
    assert.match(data.recovery!.reason, /^unreadable \(EISDIR/);
    assert.equal(fs.readFileSync(path.join(data.recovery!.damagedFile!, 'inside'), 'utf8'), 'x', 'the folder is kept whole beside');
    assert.equal(fs.statSync(store.file).isFile(), true);
  });

  it('thins old generations to one a minute for 10 minutes and one an hour for a day', async () => {
    const store = open();
    await writes(store, 40);
    const now = Date.parse('2026-11-01T12:00:00Z');
    // Pretend generation g was written (40 - g) * 150 s before `now`: 40 → now, 1 → 97.5 min ago.
    for (const g of await store.generations.list()) {
      const t = (now - (40 - g) * 150_000) / 1000;
      fs.utimesSync(genFile(g), t, t);
    }
    await store.generations.prune(10, now);
    const kept = (await store.generations.list()).sort((a, b) => a - b);
    // The newest ten (30-39), then per minute while younger than 10 minutes (none beyond the ten:
    // 150 s apart, 29 and 28 are 27.5 and 30 min old), then the newest of each hour.
    assert.deepEqual(kept.slice(-10), [30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
    const older = kept.slice(0, -10);
    const hours = new Set(older.map((g) => Math.floor((now - (40 - g) * 150_000) / 3_600_000)));
    assert.equal(hours.size, older.length, `one per hour: ${older.join(', ')}`);
    assert.ok(older.length >= 1 && older.length <= 3, older.join(', '));
  });

  describe('restore', () => {
    it('makes the newest good generation current as a new write, keeping the event log', async () => {
      const store = open();
      await writes(store, 4);
      await store.update((d) => void d.events.push({ seq: d.nextEventSeq++, at: 'x', type: 'Normal', object: 'o', reason: 'Mine', message: 'm' }));
      const r = await store.restore();
      assert.deepEqual([r.from.path, r.from.generation, r.generation, r.damagedFile], [genFile(4), 4, 6, null]);
      const data = await store.read();
      assert.equal(data.images.n, 4);
      assert.deepEqual(data.events.map((e) => [e.seq, e.reason, e.message]), [[1, 'Mine', 'm'], [2, 'StateRestored', 'restored generation 4 written at 2026-11-01T10:00:04.000Z']]);
      // The state it replaced is a generation like any other: the restore can be undone.
      assert.equal((await store.restore(5)).generation, 7);
      assert.equal((await store.read()).events.at(-1)!.message, 'restored generation 5 written at 2026-11-01T10:00:05.000Z');
    });

    it('restores a named generation or a file, and sets a damaged current aside', async () => {
      const store = open();
      await writes(store, 3);
      fs.copyFileSync(genFile(1), path.join(home, 'backup.json'));
      fs.writeFileSync(store.file, 'garbage');
      const r = await store.restore(path.join(home, 'backup.json'));
      assert.deepEqual([r.generation, r.damagedFile], [3, path.join(home, 'state.damaged-20261101T100004.000Z.json')]);
      const data = await store.read();
      assert.equal(data.images.n, 1);
      assert.equal(data.events.at(-1)!.message, `restored ${home}/backup.json (generation 1) written at 2026-11-01T10:00:01.000Z; the damaged state.json is kept at ${r.damagedFile}`);
      assert.equal(recovered.length, 0);
    });

    it('refuses a damaged or missing generation, changing nothing', async () => {
      const store = open();
      await writes(store, 3);
      fs.writeFileSync(genFile(2), '{}');
      const before = fs.readFileSync(store.file, 'utf8');
      await assert.rejects(store.restore(2), { message: 'failed to restore generation 2: it is version undefined, this carte reads version 1; "carte state verify" lists the good ones' });
      await assert.rejects(store.restore(9), { message: `failed to restore generation 9: ${genFile(9)} does not exist; "carte state verify" lists the kept generations` });
      fs.writeFileSync(genFile(1), '{}');
      await assert.rejects(store.restore(), { message: `failed to restore state: all 2 generations in ${home}/generations are damaged; restore a copy you trust with "carte state restore FILE"` });
      assert.equal(fs.readFileSync(store.file, 'utf8'), before);
    });
  });

  describe('a failed write', () => {
    it('removes its temporary file, keeps the old file and says what the disk needs', async () => {
      const file = path.join(home, 'state.json');
      fs.writeFileSync(file, 'old');
      const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      await assert.rejects(writeFileDurably(file, 'new', { beforeRename: async () => { throw full; } }), (e: CarteError) => {
        assert.equal(e.code, 'io');
        assert.match(e.message, new RegExp(`^failed to write state file ${file}: no space left on device \\(\\d+ bytes free on ${mountOf(home).replace(/[/.]/g, '\\$&')}\\); free some space — nothing was changed$`));
        return true;
      });
      assert.deepEqual(fs.readdirSync(home), ['state.json']);
      assert.equal(fs.readFileSync(file, 'utf8'), 'old');
    });
  });
});
