// State store benchmark: what checksums and generations cost, and how long a
// damaged state.json takes to be found and replaced. A realistic state: 50
// services with 3 revisions each and the full 1000 events. Figures in one run:
//  - a write (store.update) keeping 10 generations, keeping none, and the
//    update of a carte from before checksums (lock, read, parse, write) for reference;
//  - a read of a good state (parse + checksum);
//  - detect and recover: state.json cut in half, then store.read() (finds the
//    damage, takes the lock, checks the newest generation, sets the damaged
//    file aside, writes the recovered state); and the same with the 3 newest
//    generations damaged too.
// Medians over BENCH_RUNS repeats (default 30). Run with `make bench`.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodeState } from '../src/store/state-file.js';
import { EVENT_LIMIT, recordEvent, type StateData } from '../src/store/state.js';
import { Store } from '../src/store/store.js';
import { writeFileDurably } from '../src/util/durable-json-file.js';
import { mountOf } from '../src/util/disk.js';
import { acquireLock } from '../src/util/lock.js';
import { tempDir } from '../test/helpers/paths.js';
import { serviceDoc, stateWith, T0 } from '../test/helpers/state.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = async (f: () => Promise<unknown>) => {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
};

function realisticState(): StateData {
  const names = Array.from({ length: 50 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
  let data = stateWith(names.map((n) => serviceDoc(n, { env: { ROUND: '1' }, resources: { memory: '128Mi', cpu: '250m' } })));
  for (const round of [2, 3]) data = stateWith(names.map((n) => serviceDoc(n, { env: { ROUND: String(round) }, resources: { memory: '128Mi', cpu: '250m' } })), 'cli', data);
  for (let i = data.events.length; i < EVENT_LIMIT; i++) {
    recordEvent(data, T0, { type: 'Normal', object: `service/${names[i % 50]}`, reason: 'Started', message: `instance ${names[i % 50]}-${i} started (revision 3), ready after 412 ms` });
  }
  return data;
}

/** A home seeded with the state and `writes` more writes, so generations exist. */
async function seeded(seed: StateData, opts: { generations?: number } = {}, writes = 11): Promise<Store> {
  const home = tempDir('carte-bench-state-');
  fs.writeFileSync(path.join(home, 'state.json'), encodeState(seed));
  const store = Store.open(home, opts);
  for (let i = 0; i < writes; i++) await store.update((d) => void (d.images.tick = i));
  return store;
}

/** The update of a carte from before checksums: lock, read, parse, change, write, unlock. */
async function plainUpdate(home: string, tick: number): Promise<void> {
  const lock = await acquireLock(path.join(home, 'state.lock'));
  try {
    const file = path.join(home, 'state.json');
    const data = fs.existsSync(file) ? JSON.parse(await fsp.readFile(file, 'utf8')) as StateData : realisticState();
    data.images.tick = tick;
    await writeFileDurably(file, JSON.stringify(data, null, 1));
  } finally {
    await lock.release();
  }
}

const homes: string[] = [];
const keep = (s: Store) => (homes.push(s.home), s);
try {
  const seed = realisticState();
  const size = Buffer.byteLength(encodeState(seed));
  console.log(`State store benchmark: 50 services × 3 revisions, ${seed.events.length} events, ${(size / 1024).toFixed(0)} KiB file; ` +
    `median of ${RUNS} (${os.cpus().length} cores, node ${process.version}, ${mountOf(os.tmpdir())} on ${os.tmpdir()})`);

  const withGens = keep(await seeded(seed));
  const without = keep(await seeded(seed, { generations: 0 }));
  const plainHome = tempDir('carte-bench-plain-');
  homes.push(plainHome);
  const writeWith: number[] = [];
  const writeWithout: number[] = [];
  const writePlain: number[] = [];
  const readGood: number[] = [];
  // Interleaved, so a busy moment of the shared machine hits all three alike.
  for (let i = 0; i < RUNS; i++) {
    writeWith.push(await ms(() => withGens.update((d) => void (d.images.tick = i))));
    writeWithout.push(await ms(() => without.update((d) => void (d.images.tick = i))));
    writePlain.push(await ms(() => plainUpdate(plainHome, i)));
    readGood.push(await ms(() => withGens.read()));
  }

  const recover: number[] = [];
  const recoverDeep: number[] = [];
  const store = keep(await seeded(seed));
  for (let i = 0; i < RUNS; i++) {
    // Two writes between damages, so the newest generations are fresh good ones.
    await store.update((d) => void (d.images.tick = i));
    await store.update((d) => void (d.images.tick = i));
    fs.truncateSync(store.file, Math.floor(fs.statSync(store.file).size / 2));
    recover.push(await ms(() => store.read()));
    for (let w = 0; w < 4; w++) await store.update((d) => void (d.images.tick = w));
    for (const g of (await store.generations.list()).slice(0, 3)) fs.truncateSync(store.generations.pathOf(g), 100);
    fs.truncateSync(store.file, 100);
    recoverDeep.push(await ms(() => store.read()));
  }

  const row = (name: string, xs: number[]) => console.log(`${name.padEnd(58)} ${median(xs).toFixed(2).padStart(8)} ms`);
  row('write (update), 10 generations kept', writeWith);
  row('write (update), no generations', writeWithout);
  row('write (update) as before: no checksum, no generations', writePlain);
  row('read of a good state (parse + checksum)', readGood);
  row('detect + recover a truncated state.json', recover);
  row('detect + recover, the 3 newest generations damaged too', recoverDeep);
} finally {
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
}
