// The collector's memory of past samples: per instance, service and the
// host, ring buffers at a few resolutions. The finest keeps every sample for
// a short while; each coarser one keeps the average of the finer one's points
// over its step, computed when its step ends (so no running counts are kept).
// Values are Float32 (NaN: no reading), times Float64: with the default tiers
// one instance costs about 170 kB, 50 of them under 10 MB. A hard cap on the
// bytes held drops the series seen longest ago first (gone instances before
// live ones); a gone instance's history otherwise stays until it ages out.
import type { HostSample, InstanceSample, Series, SeriesKind, SeriesQuery, ServiceSample } from './types.js';

export interface Tier {
  stepMs: number;
  /** How far back this tier reaches. */
  spanMs: number;
}

/** 10 s for an hour, 1 min for a day, 10 min for a week (the first step follows the sampling interval). */
export function defaultTiers(intervalMs = 10_000): Tier[] {
  return [
    { stepMs: intervalMs, spanMs: 3600_000 },
    { stepMs: 60_000, spanMs: 24 * 3600_000 },
    { stepMs: 600_000, spanMs: 7 * 24 * 3600_000 },
  ];
}

/** The numeric fields kept per kind, in the order stored. */
export const FIELDS: Readonly<Record<SeriesKind, readonly string[]>> = {
  instance: ['cpuCores', 'cpuThrottled', 'cpuLimitCores', 'memoryWorkingSetBytes', 'memoryLimitBytes', 'netRxBytesPerSec', 'netTxBytesPerSec',
    'netRxPacketsPerSec', 'netTxPacketsPerSec', 'blkReadBytesPerSec', 'blkWriteBytesPerSec', 'pids', 'restarts'],
  service: ['connections', 'requestsPerSec', 'errorsPerSec', 'latencyP50Ms', 'latencyP95Ms', 'latencyP99Ms'],
  host: ['cpuPercent', 'memoryUsedBytes', 'memoryTotalBytes', 'diskFreeBytes', 'diskTotalBytes'],
};

export const DEFAULT_MAX_BYTES = 16 * 2 ** 20;

/** One resolution of one series: slot i holds the point of the step starting at times[i] (0: empty). */
export interface Ring {
  times: Float64Array;
  values: Float32Array;
}

export interface SeriesData {
  kind: SeriesKind;
  name: string;
  rings: Ring[];
  /** The last sample's time; the coarser tiers' slot being filled (-1: none yet). */
  lastAt: number;
  open: number[];
  gone: boolean;
}

const keyOf = (kind: SeriesKind, name: string) => `${kind}/${name}`;

export function valuesOf(kind: SeriesKind, s: InstanceSample | ServiceSample | HostSample): number[] {
  const rec = s as unknown as Record<string, number | boolean | null>;
  return FIELDS[kind].map((f) => {
    const v = rec[f];
    return typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : NaN;
  });
}

export class History {
  readonly tiers: readonly Tier[];
  readonly maxBytes: number;
  private readonly series = new Map<string, SeriesData>();
  private bytesHeld = 0;
  /** Set when a series could not be kept for the cap (the collector logs it once). */
  dropped = 0;

  constructor(opts: { tiers?: Tier[]; maxBytes?: number } = {}) {
    this.tiers = opts.tiers ?? defaultTiers();
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    for (let k = 1; k < this.tiers.length; k++) {
      if (this.tiers[k - 1]!.spanMs < this.tiers[k]!.stepMs) throw new Error(`history tier ${k - 1} must reach back at least one step of tier ${k}`);
    }
  }

  /** Bytes the rings of one series of `kind` take. */
  seriesBytes(kind: SeriesKind): number {
    return this.tiers.reduce((sum, t) => sum + Math.ceil(t.spanMs / t.stepMs) * (8 + 4 * FIELDS[kind].length), 0);
  }

  bytes(): number {
    return this.bytesHeld;
  }

  private make(kind: SeriesKind, name: string): SeriesData | null {
    const need = this.seriesBytes(kind);
    // The cap: forget what was seen longest ago, gone ones first, until the new series fits.
    while (this.bytesHeld + need > this.maxBytes) {
      let victim: SeriesData | null = null;
      for (const s of this.series.values()) {
        if (!victim || (s.gone && !victim.gone) || (s.gone === victim.gone && s.lastAt < victim.lastAt)) victim = s;
      }
      if (!victim) break;
      this.remove(victim);
    }
    if (this.bytesHeld + need > this.maxBytes) {
      this.dropped++;
      return null;
    }
    const n = FIELDS[kind].length;
    const rings = this.tiers.map((t) => {
      const cap = Math.ceil(t.spanMs / t.stepMs);
      return { times: new Float64Array(cap), values: new Float32Array(cap * n).fill(NaN) };
    });
    const s: SeriesData = { kind, name, rings, lastAt: 0, open: this.tiers.map(() => -1), gone: false };
    this.series.set(keyOf(kind, name), s);
    this.bytesHeld += need;
    return s;
  }

  private remove(s: SeriesData): void {
    if (this.series.delete(keyOf(s.kind, s.name))) this.bytesHeld -= this.seriesBytes(s.kind);
  }

  /** Records one sample's values (FIELDS order; NaN for none) at time `at`. */
  append(kind: SeriesKind, name: string, at: number, values: readonly number[]): void {
    const s = this.series.get(keyOf(kind, name)) ?? this.make(kind, name);
    if (!s) return;
    s.gone = false;
    const n = FIELDS[kind].length;
    const t0 = this.tiers[0]!;
    const slot = Math.floor(at / t0.stepMs);
    this.write(s.rings[0]!, slot, t0, values, n);
    s.lastAt = at;
    for (let k = 1; k < this.tiers.length; k++) {
      const cur = Math.floor(at / this.tiers[k]!.stepMs);
      if (s.open[k]! >= 0 && cur !== s.open[k]) this.close(s, k, s.open[k]!);
      s.open[k] = cur;
    }
  }

  private write(ring: Ring, slot: number, tier: Tier, values: readonly number[], n: number): void {
    const pos = slot % ring.times.length;
    ring.times[pos] = slot * tier.stepMs;
    for (let f = 0; f < n; f++) ring.values[pos * n + f] = values[f] ?? NaN;
  }

  /** Writes tier k's point for `slot`: the average of tier k-1's points within it (per field, readings only). */
  private close(s: SeriesData, k: number, slot: number): void {
    const n = FIELDS[s.kind].length;
    const tier = this.tiers[k]!;
    const finer = this.tiers[k - 1]!;
    const ring = s.rings[k - 1]!;
    const start = slot * tier.stepMs;
    const sums = new Array<number>(n).fill(0);
    const counts = new Array<number>(n).fill(0);
    let any = false;
    for (let sub = Math.floor(start / finer.stepMs); sub * finer.stepMs < start + tier.stepMs; sub++) {
      const pos = sub % ring.times.length;
      if (ring.times[pos] !== sub * finer.stepMs || sub * finer.stepMs < start) continue;
      for (let f = 0; f < n; f++) {
        const v = ring.values[pos * n + f]!;
        if (!Number.isNaN(v)) {
          sums[f]! += v;
          counts[f]!++;
          any = true;
        }
      }
    }
    if (any) this.write(s.rings[k]!, slot, tier, sums.map((x, f) => (counts[f] ? x / counts[f]! : NaN)), n);
    // Its own step ended too: the next coarser tier's open slot may end with it.
  }

  /** The instance is gone: its partial coarse steps are written now, and it is first to go under the cap. */
  finish(kind: SeriesKind, name: string): void {
    const s = this.series.get(keyOf(kind, name));
    if (!s || s.gone) return;
    for (let k = 1; k < this.tiers.length; k++) if (s.open[k]! >= 0) this.close(s, k, s.open[k]!);
    s.gone = true;
  }

  /** Forgets series with no sample within the longest tier's span of `now`. */
  prune(now: number): void {
    const span = this.tiers[this.tiers.length - 1]!.spanMs;
    for (const s of [...this.series.values()]) if (s.lastAt < now - span) this.remove(s);
  }

  known(kind: SeriesKind): string[] {
    return [...this.series.values()].filter((s) => s.kind === kind).map((s) => s.name).sort();
  }

  /** Every series, for persist.ts. */
  all(): SeriesData[] {
    return [...this.series.values()];
  }

  /** Puts back a series read by persist.ts (already checked to fit these tiers). */
  restore(s: SeriesData): void {
    const existing = this.series.get(keyOf(s.kind, s.name));
    if (existing) this.remove(existing);
    if (this.bytesHeld + this.seriesBytes(s.kind) > this.maxBytes) {
      this.dropped++;
      return;
    }
    this.series.set(keyOf(s.kind, s.name), s);
    this.bytesHeld += this.seriesBytes(s.kind);
  }

  /**
   * Points of one field between fromMs and toMs from the finest tier that
   * reaches back to fromMs (`now`: the time the tiers count back from).
   * Missing steps between the first and last point are nulls; more points
   * than maxPoints are averaged in runs of equal length.
   */
  query(q: SeriesQuery, now: number): Series {
    const s = this.series.get(keyOf(q.kind, q.name));
    const field = FIELDS[q.kind].indexOf(q.metric);
    // A step of slack: "the last hour" asked a moment before `now` still reads the hour-long tier.
    let k = this.tiers.findIndex((t) => now - t.spanMs <= q.fromMs + t.stepMs);
    if (k < 0) k = this.tiers.length - 1;
    const tier = this.tiers[k]!;
    const empty: Series = { t: [], v: [], stepMs: tier.stepMs };
    if (!s || field < 0 || q.toMs < q.fromMs) return empty;
    const n = FIELDS[q.kind].length;
    const ring = s.rings[k]!;
    const from = Math.max(q.fromMs, now - tier.spanMs);
    const t: number[] = [];
    const v: Array<number | null> = [];
    for (let slot = Math.ceil(from / tier.stepMs); slot * tier.stepMs <= q.toMs; slot++) {
      const pos = slot % ring.times.length;
      const here = ring.times[pos] === slot * tier.stepMs ? ring.values[pos * n + field]! : NaN;
      t.push(slot * tier.stepMs);
      v.push(Number.isNaN(here) ? null : here);
    }
    // Trim the empty ends (before the series began, after it ended).
    const first = v.findIndex((x) => x !== null);
    if (first < 0) return empty;
    let last = v.length - 1;
    while (v[last] === null) last--;
    return downsample({ t: t.slice(first, last + 1), v: v.slice(first, last + 1), stepMs: tier.stepMs }, q.maxPoints);
  }
}

/** Averages runs of consecutive points so that at most maxPoints remain (each run's time is its first point's). */
export function downsample(s: Series, maxPoints?: number): Series {
  if (!maxPoints || maxPoints < 1 || s.t.length <= maxPoints) return s;
  const run = Math.ceil(s.t.length / maxPoints);
  const t: number[] = [];
  const v: Array<number | null> = [];
  for (let i = 0; i < s.t.length; i += run) {
    let sum = 0;
    let count = 0;
    for (let j = i; j < Math.min(i + run, s.t.length); j++) {
      const x = s.v[j];
      if (x !== null && x !== undefined) {
        sum += x;
        count++;
      }
    }
    t.push(s.t[i]!);
    v.push(count ? sum / count : null);
  }
  return { t, v, stepMs: s.stepMs * run };
}
