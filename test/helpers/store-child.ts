// A child process for store tests, so locking and crash safety are tested
// across real processes. Usage: node store-child.js HOME MODE
//   hold   take the lock, print "locked", then wait forever (to be killed)
//   count  increment a counter in state as fast as possible, printing each value
import { Store } from '../../src/store/store.js';

const [home, mode] = process.argv.slice(2);
const store = Store.open(home!);

if (mode === 'hold') {
  // A timer keeps the process alive: a bare pending promise would let it exit,
  // and proper-lockfile releases its locks on a clean exit.
  setInterval(() => {}, 60_000);
  await store.update(async () => {
    process.stdout.write('locked\n');
    await new Promise(() => {});
  });
} else if (mode === 'count') {
  for (;;) {
    const n = await store.update((data) => {
      const counter = ((data.images.counter as number | undefined) ?? 0) + 1;
      data.images.counter = counter;
      return counter;
    });
    process.stdout.write(`${n}\n`);
  }
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
