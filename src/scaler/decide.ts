// The autoscaling decision: readings in, replica count and reason out. Pure
// (no clock, no I/O), after Kubernetes' HPA:
//   per metric  desired = ceil(measured × average / target), unless within
//               ±10 % of the target; several metrics → the largest;
//   up          acts at once, at most doubling (at least +1) per decision,
//               capped so the sum of memory limits fits the host;
//   down        the highest recommendation of the last scaleDownDelay wins
//               (stabilization: a short dip does not flap);
//   zero        only by idleness (no connections for idleToZero), never by
//               low readings; the gateway wakes it again;
//   bounds      [min, max], as raised by active schedule windows, apply at once.
import type { AutoscaleSpec } from '../schema/types.js';
import type { Bounds } from './schedule.js';

export const TOLERANCE = 0.1;

export interface Readings {
  /** Average CPU use of the measured instances, % of their CPU limit; null when not measured. */
  cpuPercent: number | null;
  /** Average memory working set, % of the memory limit; null when not measured. */
  memoryPercent: number | null;
  /** Ready instances the averages are over. */
  measured: number;
}

export interface DecideInput {
  service: string;
  autoscale: AutoscaleSpec;
  /** The replica count desired now. */
  current: number;
  readings: Readings;
  bounds: Bounds;
  /** Recommendations made before, newest last (the caller keeps scaleDownDelay of them). */
  history: ReadonlyArray<{ at: number; replicas: number }>;
  now: number;
  /** Memory limit of one instance (null: none, no cap) and the bytes the host can still give instances. */
  memory: { perInstanceBytes: number | null; availableBytes: number };
  /** How long the service has had no connection through the gateway; null when it has some. */
  idleForMs: number | null;
}

export interface Decision {
  /** What the readings alone ask for (within bounds); kept for the stabilization window. */
  recommendation: number;
  /** The count to set. */
  replicas: number;
  /** Why, in words; for the event and `carte describe`. */
  reason: string;
}

const fmtPercent = (p: number) => `${Math.round(p)}%`;

export function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const GiB = 2 ** 30;
const fmtBytes = (b: number) => (b >= GiB ? `${(b / GiB).toFixed(1)}Gi` : `${Math.round(b / 2 ** 20)}Mi`);

/** What each metric asks for, and the words for it. */
function proposals(input: DecideInput): { replicas: number; words: string[] } | null {
  const { readings: r, autoscale: a } = input;
  if (r.measured === 0) return null;
  const metrics: Array<[string, number | null, number | null]> = [['cpu', r.cpuPercent, a.cpuPercent], ['memory', r.memoryPercent, a.memoryPercent]];
  let replicas = -1;
  const words: string[] = [];
  for (const [name, value, target] of metrics) {
    if (value === null || target === null) continue;
    const ratio = value / target;
    const wanted = Math.abs(ratio - 1) <= TOLERANCE ? input.current : Math.ceil(r.measured * ratio);
    replicas = Math.max(replicas, wanted);
    words.push(`${name} ${fmtPercent(value)} of ${fmtPercent(target)} target`);
  }
  return replicas < 0 ? null : { replicas, words };
}

export function decide(input: DecideInput): Decision {
  const { current, bounds, autoscale: a, readings } = input;
  const clamp = (n: number, floor: number) => Math.min(bounds.max, Math.max(bounds.min, floor, n));
  const head = `${input.service} ${current}→`;
  const over = `(avg over ${readings.measured} ready instance${readings.measured === 1 ? '' : 's'})`;

  // Idle: the only way to zero.
  if (a.idleToZeroMs !== null && bounds.min === 0 && current > 0 && input.idleForMs !== null && input.idleForMs >= a.idleToZeroMs) {
    return { recommendation: 0, replicas: 0, reason: `${head}0: no connections for ${formatMs(a.idleToZeroMs)}` };
  }
  // Asleep at zero: only traffic (the gateway) or a schedule's min wakes it.
  if (current === 0) {
    const replicas = Math.max(0, bounds.min);
    return { recommendation: replicas, replicas, reason: replicas ? `${head}${replicas}: ${bounds.why ?? 'autoscale.min'} raises min to ${replicas}` : `${input.service} is idle at 0` };
  }

  const p = proposals(input);
  const recommendation = clamp(p?.replicas ?? current, 1);
  const readingWords = p ? `${p.words.join(', ')} ${over}` : 'no readings yet';
  const boundWords = (n: number) => (bounds.why && (n === bounds.min || n === bounds.max) ? `; ${bounds.why} sets ${bounds.min}–${bounds.max}` : '');

  if (current < bounds.min || current > bounds.max) {
    const replicas = Math.min(bounds.max, Math.max(bounds.min, current));
    return { recommendation, replicas, reason: `${head}${replicas}: ${bounds.why ?? 'autoscale bounds'} ${current < bounds.min ? 'raise min' : 'lower max'} to ${current < bounds.min ? bounds.min : bounds.max}` };
  }

  if (recommendation > current) {
    const step = Math.max(current * 2, current + 1);
    let replicas = Math.min(recommendation, step);
    let extra = replicas < recommendation ? `; at most doubling per step (wants ${recommendation})` : '';
    const per = input.memory.perInstanceBytes;
    if (per !== null) {
      const fits = current + Math.floor(Math.max(0, input.memory.availableBytes) / per);
      if (replicas > fits) {
        replicas = Math.max(current, fits);
        extra += `; capped at ${replicas} by host memory (${fmtBytes(Math.max(0, input.memory.availableBytes))} left for instances of ${fmtBytes(per)})`;
      }
    }
    if (replicas === current) return { recommendation, replicas, reason: `${input.service} stays at ${current}: ${readingWords}${extra}` };
    return { recommendation, replicas, reason: `${head}${replicas}: ${readingWords}${extra}${boundWords(replicas)}` };
  }

  if (recommendation < current) {
    const windowStart = input.now - a.scaleDownDelayMs;
    const highest = Math.max(recommendation, ...input.history.filter((h) => h.at > windowStart).map((h) => h.replicas));
    const replicas = Math.min(current, highest);
    if (replicas === current) return { recommendation, replicas, reason: `${input.service} stays at ${current}: ${readingWords}; waiting out scaleDownDelay ${formatMs(a.scaleDownDelayMs)}` };
    return { recommendation, replicas, reason: `${head}${replicas}: ${readingWords}; highest recommendation of the last ${formatMs(a.scaleDownDelayMs)}${boundWords(replicas)}` };
  }
  return { recommendation, replicas: current, reason: `${input.service} stays at ${current}: ${readingWords}` };
}
