// Pure shaping of the API's answers for the charts and lists: no DOM, no
// clock, no fetch, so it is unit-tested (test/unit/web/) and bundled alike.
import type { Series } from '../../src/metrics/types.js';
import type { EventRow, Marker } from '../../src/web/types.js';

/** Columns for a chart: shared x (ms) and one value column per line (null = no reading). */
export interface Columns {
  t: number[];
  lines: Array<Array<number | null>>;
}

/** Aligns series on the union of their times (instances are sampled in the same round, so times mostly coincide). */
export function alignSeries(list: Series[]): Columns {
  const times = [...new Set(list.flatMap((s) => s.t))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const lines = list.map((s) => {
    const col: Array<number | null> = times.map(() => null);
    s.t.forEach((t, i) => (col[index.get(t)!] = s.v[i] ?? null));
    return col;
  });
  return { t: times, lines };
}

/** Whether a chart has anything to draw. */
export function hasPoints(c: Columns): boolean {
  return c.lines.some((line) => line.some((v) => v != null));
}

/** Markers inside [fromMs, toMs], oldest first. */
export function markersIn(markers: Marker[], fromMs: number, toMs: number): Marker[] {
  return markers.filter((m) => m.at >= fromMs && m.at <= toMs).sort((a, b) => a.at - b.at);
}

/** Whether an event concerns a service: the service itself or one of its instances (`web-1`, `web-2`, …). */
export function eventConcerns(e: Pick<EventRow, 'object'>, service: string): boolean {
  if (e.object === `service/${service}`) return true;
  const m = /^instance\/(.+)-\d+$/.exec(e.object);
  return m !== null && m[1] === service;
}

/** Merges new events into a list by id (the stream may resend after a reconnect), newest last, at most `max`. */
export function mergeEvents(list: EventRow[], incoming: EventRow[], max = 200): EventRow[] {
  const byId = new Map(list.map((e) => [e.id, e]));
  for (const e of incoming) byId.set(e.id, e);
  return [...byId.values()].sort((a, b) => a.id - b.id).slice(-max);
}

/** Puts several charts' columns side by side on one time axis (e.g. rx and tx). */
export function combine(list: Columns[]): Columns {
  return alignSeries(list.flatMap((c) => c.lines.map((v) => ({ t: c.t, v, stepMs: 0 }))));
}
