import { UsageError } from '../../errors.js';
import type { CarteEvent } from '../../store/state.js';
import type { Context } from '../context.js';
import { table, write } from '../output.js';

export interface EventsOptions {
  for?: string;
  follow?: boolean;
  limit?: string;
}

const HEAD = ['TIME', 'TYPE', 'OBJECT', 'REASON', 'MESSAGE'];
const row = (e: CarteEvent) => [e.at.replace(/\.\d+Z$/, 'Z'), e.type, e.object, e.reason, e.message];
const FOLLOW_POLL_MS = 500;

export async function events(ctx: Context, opts: EventsOptions): Promise<void> {
  const limit = opts.limit === undefined ? 50 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`events: --limit takes a positive number, got "${opts.limit}"`);
  const matches = (e: CarteEvent) => opts.for === undefined || e.object === `service/${opts.for}` || e.object === opts.for;
  const store = ctx.store();
  const snapshot = await store.read();
  const list = snapshot.events.filter(matches).slice(-limit);
  if (list.length) write(table(HEAD, list.map(row)));
  else if (!opts.follow) process.stderr.write('no events\n');
  if (!opts.follow) return;
  // Follow: the state file is replaced whole on every write, so polling a
  // snapshot is both simple and consistent; events are ordered by seq.
  let last = snapshot.events.at(-1)?.seq ?? 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
    const fresh = (await store.read()).events.filter((e) => e.seq > last);
    if (!fresh.length) continue;
    last = fresh.at(-1)!.seq;
    for (const e of fresh.filter(matches)) write(row(e).join('   '));
  }
}
