// Alerts: a rule's condition held long enough fires once, and resolves when it clears.
export type AlertRuleName =
  | 'memory-high' // working set above 90 % of the limit for 1 min
  | 'crash-loop'
  | 'health-failing'
  | 'not-converged' // for 5 min
  | 'scaled-to-max' // for 10 min
  | 'disk-low' // below 10 % free on CARTE_HOME's filesystem
  | 'state-damaged';

export interface Alert {
  /** Stable for one firing: rule + object + firedAt. */
  id: string;
  rule: AlertRuleName;
  severity: 'warning' | 'critical';
  /** 'instance/web-1', 'service/web', 'host', 'state'. */
  object: string;
  message: string;
  firedAt: string;
  resolvedAt: string | null;
}

export interface AlertsView {
  /** Firing now. */
  active(): Alert[];
  /** Firing and recently resolved, newest first (bounded). */
  recent(): Alert[];
  onChange(cb: (a: Alert) => void): () => void;
}
