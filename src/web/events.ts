// Live events for the page's server-sent-event stream. Events live in the
// store (StateData.events, each with an increasing seq); one poller reads the
// store while someone listens, as `carte events -f` does, and hands new
// events to every listener. The SSE `id:` is the seq, so a reconnecting
// EventSource (Last-Event-ID) gets exactly what it missed, while it is kept.
import type { Logger } from '../log.js';
import type { CarteEvent, StateData } from '../store/state.js';
import type { EventRow } from './types.js';
import { eventRow } from './views.js';

export const POLL_MS = 500;

type Listener = (rows: EventRow[]) => void;

export class EventFeed {
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | null = null;
  private last = 0;
  private polling = false;

  constructor(private readonly read: () => Promise<Readonly<StateData>>, private readonly log: Logger, private readonly pollMs = POLL_MS) {}

  /**
   * Listens from now on; with `after` (a Last-Event-ID), first gets the kept
   * events after it. Returns an unsubscribe.
   */
  async subscribe(listener: Listener, after: number | null): Promise<() => void> {
    const data = await this.read();
    if (!this.listeners.size) this.last = data.events.at(-1)?.seq ?? 0;
    if (after !== null) {
      const missed = data.events.filter((e) => e.seq > after && e.seq <= this.last);
      if (missed.length) listener(missed.map(eventRow));
    }
    this.listeners.add(listener);
    this.timer ??= setInterval(() => void this.poll(), this.pollMs);
    return () => {
      this.listeners.delete(listener);
      if (!this.listeners.size && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const fresh: CarteEvent[] = (await this.read()).events.filter((e) => e.seq > this.last);
      if (!fresh.length) return;
      this.last = fresh.at(-1)!.seq;
      const rows = fresh.map(eventRow);
      for (const l of this.listeners) l(rows);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'could not read events for the dashboard');
    } finally {
      this.polling = false;
    }
  }

  close(): void {
    this.listeners.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

/** One SSE message: `id:` the event's seq, `data:` the EventRow as JSON (one line). */
export function sseMessage(row: EventRow): string {
  return `id: ${row.id}\ndata: ${JSON.stringify(row)}\n\n`;
}

/** The Last-Event-ID to resume after (header, or `?lastEventId=` for a first connection), or null. */
export function resumeAfter(header: string | string[] | undefined, query: unknown): number | null {
  const text = typeof header === 'string' ? header : typeof query === 'string' ? query : null;
  if (text === null || !/^\d{1,15}$/.test(text.trim())) return null;
  return Number(text.trim());
}
