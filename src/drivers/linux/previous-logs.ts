// The log of an instance's previous life, like `kubectl logs --previous`:
// when an instance is removed (also by a restart, which removes and creates
// under the same name) its container.log moves to
// CARTE_HOME/logs/previous/NAME.log, replacing an older one of that name.
// Bounded twice: each file at most the per-instance log cap (its last bytes,
// from a line start), and at most `limit` files (the longest kept go first).
import fs from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError } from '../../errors.js';
import type { LogLine, LogOptions } from '../driver.js';
import { readLog } from './logs.js';
import type { HomePaths } from './records.js';

export function previousLogPath(paths: HomePaths, name: string): string {
  return path.join(paths.previousLogsDir, `${name}.log`);
}

/** Moves an instance's log to its previous-log file; false when it had none. */
export async function keepPreviousLog(paths: HomePaths, name: string, opts: { capBytes: number; limit: number }): Promise<boolean> {
  const log = paths.dir(name, 'container.log');
  const st = await fs.stat(log).catch(() => null);
  if (!st) return false;
  await fs.mkdir(paths.previousLogsDir, { recursive: true, mode: 0o700 });
  const target = previousLogPath(paths, name);
  if (st.size <= opts.capBytes) {
    await fs.rename(log, target);
  } else {
    // conmon caps the live log, but a log from a larger cap (the setting changed) must still fit.
    const handle = await fs.open(log, 'r');
    let tail: Buffer;
    try {
      tail = Buffer.alloc(opts.capBytes);
      await handle.read(tail, 0, opts.capBytes, st.size - opts.capBytes);
    } finally {
      await handle.close();
    }
    const firstLine = tail.indexOf(0x0a) + 1;
    const tmp = `${target}.${process.pid}.tmp`;
    await fs.writeFile(tmp, tail.subarray(firstLine));
    await fs.rename(tmp, target);
    await fs.rm(log, { force: true });
  }
  // "Oldest" is the one kept longest ago, whatever its last write.
  const now = new Date();
  await fs.utimes(target, now, now);
  await boundPreviousLogs(paths.previousLogsDir, opts.limit);
  return true;
}

/** Deletes the oldest previous logs beyond `limit`. */
export async function boundPreviousLogs(dir: string, limit: number): Promise<void> {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.log'));
  if (names.length <= limit) return;
  const dated = await Promise.all(names.map(async (n) => ({ n, t: (await fs.stat(path.join(dir, n)).catch(() => null))?.mtimeMs ?? 0 })));
  dated.sort((a, b) => a.t - b.t || (a.n < b.n ? -1 : 1));
  // Several removals may bound at once: a file already gone is fine.
  await Promise.all(dated.slice(0, dated.length - limit).map(({ n }) => fs.rm(path.join(dir, n), { force: true })));
}

export async function* readPreviousLog(paths: HomePaths, name: string, opts: LogOptions): AsyncGenerator<LogLine> {
  const file = previousLogPath(paths, name);
  if (!(await fs.stat(file).catch(() => null))) throw new NotFoundError(`instance "${name}" has no previous log`);
  // A previous life does not grow: nothing to follow.
  yield* readLog(file, { ...opts, follow: false });
}
