// How `carte top` and `carte stats` print readings: pure functions from the
// collector's samples to text, so the exact output is unit-tested and
// documented (docs/cli.md).
import type { HostSample, InstanceSample, MetricsSnapshot, Series, ServiceSample } from '../metrics/types.js';
import { table } from './output.js';

const KI = 1024;
/** Bytes in binary units, one decimal from Ki up: 512B, 1.5Ki, 64.0Mi, 2.1Gi. */
export function fmtBytes(b: number | null): string {
  if (b === null) return '-';
  const units = ['Ki', 'Mi', 'Gi', 'Ti'];
  if (Math.abs(b) < KI) return `${Math.round(b)}B`;
  let v = b / KI;
  let u = 0;
  while (Math.abs(v) >= KI && u < units.length - 1) {
    v /= KI;
    u++;
  }
  return `${v.toFixed(1)}${units[u]}`;
}

export const fmtRate = (b: number | null) => (b === null ? '-' : `${fmtBytes(b)}/s`);
export const fmtCores = (c: number | null) => (c === null ? '-' : c.toFixed(3));
export const fmtPct = (x: number | null) => (x === null ? '-' : `${Math.round(x * 100)}%`);
export const fmtMs = (ms: number | null) => (ms === null ? '-' : ms < 10 ? `${ms.toFixed(1)}ms` : ms < 10_000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`);
export const fmtNum = (n: number | null, digits = 1) => (n === null ? '-' : Number.isInteger(n) ? String(n) : n.toFixed(digits));

export type SortKey = 'cpu' | 'memory' | 'name' | 'restarts' | 'net';
export const SORT_KEYS: Record<string, SortKey> = { c: 'cpu', m: 'memory', n: 'name', r: 'restarts', i: 'net' };

/** Instances in the order asked: the busiest first, names ascending on ties and for `name`. */
export function sortInstances(list: readonly InstanceSample[], key: SortKey): InstanceSample[] {
  const by: Record<SortKey, (i: InstanceSample) => number> = {
    cpu: (i) => i.cpuCores ?? -1,
    memory: (i) => i.memoryWorkingSetBytes,
    restarts: (i) => i.restarts,
    net: (i) => (i.netRxBytesPerSec ?? 0) + (i.netTxBytesPerSec ?? 0),
    name: () => 0,
  };
  return [...list].sort((a, b) => by[key](b) - by[key](a) || (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
}

export function hostLine(h: HostSample | null): string {
  if (!h) return 'HOST   no reading yet';
  const cpu = h.cpuPercent === null ? '-' : `${h.cpuPercent.toFixed(1)}%`;
  const mem = `${fmtBytes(h.memoryUsedBytes)} of ${fmtBytes(h.memoryTotalBytes)}`;
  const disk = `${fmtBytes(h.diskFreeBytes)} free of ${fmtBytes(h.diskTotalBytes)}`;
  return `HOST   CPU ${cpu} of ${h.cores} ${h.cores === 1 ? 'core' : 'cores'}   MEMORY ${mem}   DISK ${disk}`;
}

const memShare = (i: InstanceSample) => (i.memoryLimitBytes ? i.memoryWorkingSetBytes / i.memoryLimitBytes : null);
const cpuShare = (i: InstanceSample) => (i.cpuCores !== null && i.cpuLimitCores ? i.cpuCores / i.cpuLimitCores : null);

export function instancesTable(list: readonly InstanceSample[]): string {
  if (!list.length) return 'no instances sampled\n';
  return table(['INSTANCE', 'SERVICE', 'CPU', 'CPU/LIM', 'MEMORY', 'MEM/LIM', 'NET IN', 'NET OUT', 'BLK READ', 'BLK WRITE', 'PIDS', 'RESTARTS'], list.map((i) => [
    i.instance, i.service, fmtCores(i.cpuCores), fmtPct(cpuShare(i)), fmtBytes(i.memoryWorkingSetBytes), fmtPct(memShare(i)),
    fmtRate(i.netRxBytesPerSec), fmtRate(i.netTxBytesPerSec), fmtRate(i.blkReadBytesPerSec), fmtRate(i.blkWriteBytesPerSec), String(i.pids), String(i.restarts),
  ]));
}

export function servicesTable(list: readonly ServiceSample[]): string {
  if (!list.length) return 'no services\n';
  return table(['SERVICE', 'CONNS', 'REQ/S', 'ERR/S', 'P50', 'P95', 'P99'], list.map((s) => [
    s.service, String(s.connections), s.requestsPerSec.toFixed(1), s.errorsPerSec.toFixed(1), fmtMs(s.latencyP50Ms), fmtMs(s.latencyP95Ms), fmtMs(s.latencyP99Ms),
  ]));
}

/** The whole `carte top` screen (and `--once` output): host, instances, services. */
export function topText(snap: MetricsSnapshot, sort: SortKey): string {
  return `${hostLine(snap.host)}\n\n${instancesTable(sortInstances(snap.instances, sort))}\n${servicesTable(snap.services)}`;
}

const BARS = '▁▂▃▄▅▆▇█';

/** A unicode sparkline of the values, scaled from 0 (or the least, if below) to the most; a gap is a space. */
export function sparkline(values: ReadonlyArray<number | null>): string {
  const xs = values.filter((v): v is number => v !== null);
  if (!xs.length) return '';
  const lo = Math.min(0, ...xs);
  const hi = Math.max(...xs);
  return values.map((v) => (v === null ? ' ' : hi === lo ? BARS[0] : BARS[Math.min(7, Math.floor(((v - lo) / (hi - lo)) * 8))])).join('');
}

/** How a metric's values print, by its name. */
export function formatterOf(metric: string): (v: number | null) => string {
  if (metric.endsWith('BytesPerSec')) return fmtRate;
  if (metric.endsWith('Bytes')) return fmtBytes;
  if (metric.endsWith('Cores')) return fmtCores;
  if (metric.endsWith('Ms')) return fmtMs;
  if (metric === 'cpuThrottled') return fmtPct;
  if (metric === 'cpuPercent') return (v) => (v === null ? '-' : `${v.toFixed(1)}%`);
  return (v) => fmtNum(v);
}

/** The table of `carte stats`: per metric, now (the newest point), least, mean and most over the range, and a sparkline. */
export function statsTable(rows: ReadonlyArray<{ metric: string; series: Series }>): string {
  return table(['METRIC', 'NOW', 'MIN', 'AVG', 'MAX', 'HISTORY'], rows.map(({ metric, series }) => {
    const f = formatterOf(metric);
    const xs = series.v.filter((v): v is number => v !== null);
    const now = [...series.v].reverse().find((v) => v !== null) ?? null;
    return [metric, f(now), f(xs.length ? Math.min(...xs) : null), f(xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null), f(xs.length ? Math.max(...xs) : null), sparkline(series.v)];
  }));
}
