// The log of an instance's previous life, like `kubectl logs --previous`:
// when an instance is removed (also by a restart, which removes and creates
// under the same name) its container.log moves to
// CARTE_HOME/logs/previous/NAME.log, replacing an older one of that name.
// Bounded twice: each file at most the per-instance log cap (its last bytes,
// from a line start), and at most `limit` files (the longest kept go first).
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError, UsageError } from '../../errors.js';
import type { LogLine, LogOptions } from '../driver.js';
import { parseK8sLog } from './logs.js';
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

/** The most of a previous log read for one answer: its last MiB (whatever the file's size). */
export const PREVIOUS_READ_MAX = 1024 * 1024;

/**
 * Refuses a name that could leave the previous-logs folder ('/', '..', NUL):
 * the name comes from a URL or the command line. Pure.
 */
export function checkPreviousLogName(name: string): void {
  if (!name || name.includes('/') || name.includes('\\') || name.includes('..') || name.includes('\0')) {
    throw new UsageError(`"${name}" is not a valid instance name: use lowercase letters, digits and "-"`);
  }
}

export async function* readPreviousLog(paths: HomePaths, name: string, opts: LogOptions, maxBytes = PREVIOUS_READ_MAX): AsyncGenerator<LogLine> {
  checkPreviousLogName(name);
  const missing = () => new NotFoundError(`instance "${name}" has no previous log`);
  // Never through a link, never blocking on a FIFO: opened without following
  // or waiting, then only a regular file is read.
  const handle = await fs.open(previousLogPath(paths, name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => null);
  if (!handle) throw missing();
  let text: string;
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw missing();
    if (opts.tail === 0) return;
    // Only the tail: a file grown beyond the cap by hand costs no more memory.
    const length = Math.min(st.size, maxBytes);
    const buf = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buf, 0, length, st.size - length);
    let start = 0;
    if (length < st.size) start = buf.indexOf(0x0a) + 1; // from a line start
    text = buf.subarray(start, bytesRead).toString('utf8');
  } finally {
    await handle.close();
  }
  // A previous life does not grow: nothing to follow.
  const lines = parseK8sLog(text.slice(0, text.lastIndexOf('\n') + 1));
  yield* opts.tail !== undefined ? lines.slice(lines.length - Math.min(opts.tail, lines.length)) : lines;
}
