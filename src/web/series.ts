// Chart series for the page: the query string checked, and a service's
// CPU/memory/network/I/O as the sum of its instances' series (the collector
// keeps those per instance; a service's own series are the gateway's).
import type { MetricsView, Series, SeriesKind, SeriesQuery } from '../metrics/types.js';
import type { InstanceHealthRecord } from '../model/instances.js';
import type { StateData } from '../store/state.js';
import { HttpError } from './guard.js';

const KINDS: readonly SeriesKind[] = ['instance', 'service', 'host'];
export const DEFAULT_RANGE_MS = 3600_000;
export const MAX_POINTS = 2000;

/** The series query from `?kind=&name=&metric=&from=&to=&points=` (from/to in ms since the epoch; default the last hour). Pure. */
export function seriesQuery(q: Record<string, unknown>, now: number): SeriesQuery {
  const kind = q.kind as SeriesKind;
  if (!KINDS.includes(kind)) throw new HttpError(400, `kind must be one of ${KINDS.join(', ')}, got "${String(q.kind ?? '')}"`);
  const name = typeof q.name === 'string' ? q.name : '';
  if (kind !== 'host' && !name) throw new HttpError(400, `name is needed for kind=${kind}`);
  const metric = typeof q.metric === 'string' ? q.metric : '';
  if (!/^[A-Za-z][A-Za-z0-9]{0,63}$/.test(metric)) throw new HttpError(400, `metric must be a field name such as cpuCores or memoryWorkingSetBytes, got "${metric}"`);
  const num = (v: unknown, what: string, dflt: number) => {
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new HttpError(400, `${what} takes milliseconds since the epoch, got "${String(v)}"`);
    return n;
  };
  const toMs = num(q.to, 'to', now);
  const fromMs = num(q.from, 'from', toMs - DEFAULT_RANGE_MS);
  if (fromMs > toMs) throw new HttpError(400, 'from must not be after to');
  const points = num(q.points, 'points', 300);
  if (!Number.isInteger(points) || points < 1 || points > MAX_POINTS) throw new HttpError(400, `points takes a whole number from 1 to ${MAX_POINTS}`);
  return { kind, name: kind === 'host' ? '' : name, metric, fromMs, toMs, maxPoints: points };
}

/**
 * Adds series point by point. Points are matched by time rounded down to the
 * coarsest step among them (a finer series is averaged into that step first);
 * a time where no series has a reading stays null. Pure.
 */
export function sumSeries(list: readonly Series[]): Series {
  const withPoints = list.filter((s) => s.t.length);
  if (!withPoints.length) return { t: [], v: [], stepMs: list[0]?.stepMs ?? 0 };
  const step = Math.max(1, ...withPoints.map((s) => s.stepMs));
  const sums = new Map<number, number | null>();
  for (const s of withPoints) {
    const buckets = new Map<number, { total: number; n: number }>();
    s.t.forEach((t, i) => {
      const key = Math.floor(t / step) * step;
      const b = buckets.get(key) ?? { total: 0, n: 0 };
      const v = s.v[i] ?? null;
      if (v !== null) {
        b.total += v;
        b.n++;
      }
      buckets.set(key, b);
    });
    for (const [key, b] of buckets) {
      const had = sums.get(key) ?? null;
      sums.set(key, b.n ? (had ?? 0) + b.total / b.n : had);
    }
  }
  const t = [...sums.keys()].sort((a, b) => a - b);
  return { t, v: t.map((k) => sums.get(k)!), stepMs: step };
}

/** The instances (present and past, while their history lasts) of a service. */
export function instancesOf(service: string, known: readonly string[], data: Readonly<StateData>): string[] {
  const records = data.instances as Record<string, InstanceHealthRecord>;
  return known.filter((name) => (records[name] ? records[name]!.service === service : name.startsWith(`${service}-`) && /^\d+$/.test(name.slice(service.length + 1))));
}

export function serviceSeries(metrics: MetricsView, q: SeriesQuery, data: Readonly<StateData>): Series {
  const names = instancesOf(q.name, metrics.known('instance'), data);
  return sumSeries(names.map((name) => metrics.series({ ...q, kind: 'instance', name })));
}
