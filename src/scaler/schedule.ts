// Schedule windows: `autoscale.schedule: [{ cron, duration, min, max }]`. A
// window is active from each time its cron expression fires until
// `duration` later; while one is active its bounds apply (a class at 9:00
// gets capacity before the first request). Matching uses node-cron's own
// parser, the same one that validated the manifest.
import cron from 'node-cron';
import type { AutoscaleSpec } from '../schema/types.js';

const tasks = new Map<string, ReturnType<typeof cron.createTask>>();

/** Whether `expression` fires at the minute of `date` (a never-started node-cron task: no timers). */
export function cronMatches(expression: string, date: Date): boolean {
  let t = tasks.get(expression);
  if (!t) {
    t = cron.createTask(expression, () => undefined);
    tasks.set(expression, t);
  }
  return t.match(date);
}

export interface Bounds {
  min: number;
  max: number;
  /** The active windows, e.g. `schedule "0 9 * * 1-5"`; null when none is active. */
  why: string | null;
}

const MINUTE = 60_000;

/** Whether a window that fires on `expression` and lasts `durationMs` covers `now`. */
export function windowActive(expression: string, durationMs: number, now: number, matches = cronMatches): boolean {
  const last = now - (now % MINUTE);
  for (let t = last; t > now - durationMs; t -= MINUTE) if (matches(expression, new Date(t))) return true;
  return false;
}

/**
 * The bounds in force at `now`: an active window's min and max replace the
 * manifest's (several active windows: the largest of each); a window that
 * gives only one of them keeps the manifest's other.
 */
export function activeBounds(a: AutoscaleSpec, now: number, matches = cronMatches): Bounds {
  const active = a.schedule.filter((w) => windowActive(w.cron, w.durationMs, now, matches));
  const mins = active.flatMap((w) => (w.min === null ? [] : [w.min]));
  const maxes = active.flatMap((w) => (w.max === null ? [] : [w.max]));
  const min = mins.length ? Math.max(...mins) : a.min;
  const max = maxes.length ? Math.max(...maxes) : a.max;
  return { min, max: Math.max(min, max), why: active.length ? active.map((w) => `schedule "${w.cron}"`).join(', ') : null };
}
