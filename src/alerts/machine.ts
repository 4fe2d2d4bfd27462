// The state machine of every (rule, object) pair, pure:
//
//   inactive ──condition holds──► pending ──held for `for`──► firing (fires once)
//      ▲                            │                            │
//      └───────condition clears─────┘      condition clear for `clear`, or the object is gone
//      ▲                                                         │
//      └──────────────────────────────── resolved ◄──────────────┘
//
// A firing alert whose condition comes back within its clear time stays the
// same alert (no second firing: no flapping). Firing alerts are what survives
// a restart (seeded from the store with `seed`): a condition still holding
// after the restart is the same alert, not a new one. Pending time is not
// kept; a restart starts a pending condition's `for` over, which can only
// delay an alert, never repeat one.
import type { Observed } from './conditions.js';
import type { RuleSettingsMap } from './rules.js';
import type { Alert, AlertRuleName } from './types.js';

export interface Track {
  rule: AlertRuleName;
  object: string;
  /** Since when the condition holds (null: it does not). */
  since: number | null;
  /** While firing: since when the condition is clear (null: it holds). */
  clearSince: number | null;
  /** The alert, once fired. */
  alert: Alert | null;
}

export type Tracks = ReadonlyMap<string, Track>;

export interface Step {
  tracks: Map<string, Track>;
  fired: Alert[];
  resolved: Alert[];
}

export const trackKey = (rule: AlertRuleName, object: string): string => `${rule} ${object}`;

const iso = (ms: number) => new Date(ms).toISOString();

export function alertId(rule: AlertRuleName, object: string, firedAt: string): string {
  return `${rule}:${object}:${firedAt}`;
}

/** Tracks for alerts that were firing when the daemon last ran. */
export function seed(active: readonly Alert[]): Map<string, Track> {
  const tracks = new Map<string, Track>();
  for (const a of active) {
    if (a.resolvedAt !== null) continue;
    tracks.set(trackKey(a.rule, a.object), { rule: a.rule, object: a.object, since: Date.parse(a.firedAt), clearSince: null, alert: a });
  }
  return tracks;
}

/** One round: the tracks after `observed` at `now`, and the alerts that fired or resolved in it. */
export function advance(prev: Tracks, observed: Observed, rules: RuleSettingsMap, now: number): Step {
  const tracks = new Map<string, Track>();
  const fired: Alert[] = [];
  const resolved: Alert[] = [];
  const seen = new Set<string>();

  const resolve = (t: Track) => {
    resolved.push({ ...t.alert!, resolvedAt: iso(now) });
  };

  for (const o of observed.observations) {
    const key = trackKey(o.rule, o.object);
    seen.add(key);
    const settings = rules[o.rule];
    const before = prev.get(key) ?? { rule: o.rule, object: o.object, since: null, clearSince: null, alert: null };
    if (o.holds) {
      const since = before.since ?? now;
      if (before.alert) {
        tracks.set(key, { ...before, since, clearSince: null });
      } else if (now - since >= settings.forMs) {
        const firedAt = iso(now);
        const alert: Alert = { id: alertId(o.rule, o.object, firedAt), rule: o.rule, severity: settings.severity, object: o.object, message: o.message, firedAt, resolvedAt: null };
        fired.push(alert);
        tracks.set(key, { ...before, since, clearSince: null, alert });
      } else {
        tracks.set(key, { ...before, since, clearSince: null });
      }
      continue;
    }
    // Clear now.
    if (!before.alert) continue; // pending (or nothing) ends: forget it
    // state-damaged's condition already lasts its clear time (conditions.ts).
    const clearMs = o.rule === 'state-damaged' ? 0 : settings.clearMs;
    const clearSince = before.clearSince ?? now;
    if (now - clearSince >= clearMs) resolve(before);
    else tracks.set(key, { ...before, since: null, clearSince });
  }

  // Not observed this round: kept while the object exists and its rule is on (no reading yet);
  // resolved once the object is gone or the rule is turned off.
  for (const [key, t] of prev) {
    if (seen.has(key)) continue;
    const gone = !observed.present.has(t.object) || !rules[t.rule].enabled;
    if (!gone) tracks.set(key, t);
    else if (t.alert) resolve(t);
  }
  return { tracks, fired, resolved };
}
