// Reading an instance's log, which conmon writes in the Kubernetes file
// format: `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`, where P marks a
// partial line continued by the next record of the same stream.
import fs from 'node:fs/promises';
import type { LogLine, LogOptions } from '../driver.js';

export function parseK8sLog(text: string): LogLine[] {
  const out: LogLine[] = [];
  const partial: Partial<Record<'stdout' | 'stderr', LogLine>> = {};
  for (const raw of text.split('\n')) {
    const m = /^(\S+) (stdout|stderr) ([FP]) ?(.*)$/.exec(raw);
    if (!m) continue;
    const stream = m[2] as 'stdout' | 'stderr';
    const pending = partial[stream];
    const line: LogLine = pending ? { ...pending, text: pending.text + m[4]! } : { time: m[1]!, stream, text: m[4]! };
    if (m[3] === 'P') partial[stream] = line;
    else {
      delete partial[stream];
      out.push(line);
    }
  }
  return out;
}

const FOLLOW_POLL_MS = 200;

export async function* readLog(file: string, opts: LogOptions = {}): AsyncGenerator<LogLine> {
  let text = await fs.readFile(file, 'utf8').catch(() => '');
  // Only whole records: a record being written now is read on the next poll.
  let consumed = text.lastIndexOf('\n') + 1;
  const first = parseK8sLog(text.slice(0, consumed));
  // slice(-0) would be everything: --tail 0 means no lines.
  yield* opts.tail !== undefined ? first.slice(first.length - Math.min(opts.tail, first.length)) : first;
  while (opts.follow && !opts.signal?.aborted) {
    await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
    const size = (await fs.stat(file).catch(() => null))?.size ?? 0;
    if (size < consumed) consumed = 0; // conmon truncated the file at its size cap
    if (size === consumed) continue;
    const handle = await fs.open(file, 'r');
    try {
      const buf = Buffer.alloc(size - consumed);
      await handle.read(buf, 0, buf.length, consumed);
      text = buf.toString('utf8');
    } finally {
      await handle.close();
    }
    const end = text.lastIndexOf('\n') + 1;
    consumed += Buffer.byteLength(text.slice(0, end));
    yield* parseK8sLog(text.slice(0, end));
  }
}
