// The alert rules: what each watches, its defaults, and the settings a daemon
// config may override (docs/observability.md, "Alerts"). Pure data.
import type { Alert, AlertRuleName } from './types.js';

export const RULE_NAMES: readonly AlertRuleName[] = [
  'memory-high', 'crash-loop', 'health-failing', 'not-converged', 'scaled-to-max', 'disk-low', 'state-damaged',
];

export interface RuleSettings {
  enabled: boolean;
  /** How long the condition must hold before the alert fires. */
  forMs: number;
  /** How long the condition must stay clear before a firing alert resolves (against flapping). */
  clearMs: number;
  /** memory-high: share of the memory limit (0–1); disk-low: share of the disk free (0–1). Unused by the others. */
  threshold: number | null;
  severity: Alert['severity'];
}

export type RuleSettingsMap = Record<AlertRuleName, RuleSettings>;

const s = (forMs: number, clearMs: number, severity: Alert['severity'], threshold: number | null = null): RuleSettings =>
  ({ enabled: true, forMs, clearMs, threshold, severity });

/**
 * The defaults. `state-damaged` has no lasting condition (a recovery happened
 * at one instant): it fires at once and stays firing for its `clear` time after
 * the recovery, so it is seen, then resolves by itself.
 */
export const DEFAULT_RULES: Readonly<RuleSettingsMap> = Object.freeze({
  'memory-high': s(60_000, 30_000, 'warning', 0.9),
  'crash-loop': s(0, 60_000, 'critical'),
  'health-failing': s(30_000, 10_000, 'warning'),
  'not-converged': s(5 * 60_000, 30_000, 'warning'),
  'scaled-to-max': s(10 * 60_000, 60_000, 'warning'),
  'disk-low': s(60_000, 60_000, 'critical', 0.1),
  'state-damaged': s(0, 60 * 60_000, 'critical'),
});

/** Rules that take a threshold. */
export const THRESHOLD_RULES: readonly AlertRuleName[] = ['memory-high', 'disk-low'];

/** The defaults with overrides applied (each field of each rule on its own). */
export function resolveRules(overrides: Partial<Record<AlertRuleName, Partial<RuleSettings>>> = {}): RuleSettingsMap {
  const out = {} as RuleSettingsMap;
  for (const name of RULE_NAMES) out[name] = { ...DEFAULT_RULES[name], ...stripUndefined(overrides[name] ?? {}) };
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
