// What each rule sees now: for every object it knows about, whether its
// condition holds, and the sentence an alert would carry. Pure: the state, the
// metrics snapshot and the disk reading come in, observations go out; no
// clock reads, no I/O (the engine gathers the inputs).
import { serviceStatuses, instanceRecords } from '../api/status.js';
import type { MetricsSnapshot } from '../metrics/types.js';
import { activeBounds } from '../scaler/schedule.js';
import { scaledReplicas, type StateData } from '../store/state.js';
import type { RuleSettingsMap } from './rules.js';
import type { AlertRuleName } from './types.js';

export interface RuleInputs {
  now: number;
  data: Readonly<StateData>;
  /** The collector's latest snapshot; null while no collector runs (memory-high then sees nothing). */
  metrics: MetricsSnapshot | null;
  /** The filesystem holding CARTE_HOME, when known. */
  disk: { freeBytes: number; totalBytes: number } | null;
  /** The scaler's latest reason per autoscaled service, for the scaled-to-max sentence. */
  scalerReasons?: Record<string, string>;
}

export interface Observation {
  rule: AlertRuleName;
  /** 'instance/web-1', 'service/web', 'host', 'state'. */
  object: string;
  holds: boolean;
  message: string;
}

export interface Observed {
  observations: Observation[];
  /**
   * Objects that exist now. A tracked object with no observation this round is
   * left as it is while it exists (no reading yet, e.g. just after a restart),
   * and resolved once it is gone.
   */
  present: Set<string>;
}

/** A snapshot older than this says nothing about now (the collector stopped or stalls). */
export const METRICS_STALE_MS = 60_000;

const MiB = 2 ** 20;
const GiB = 2 ** 30;
export const fmtBytes = (b: number): string => (b >= GiB ? `${(b / GiB).toFixed(1)}Gi` : `${(b / MiB).toFixed(1)}Mi`);
const pct = (x: number) => `${Math.round(x * 100)}%`;

export function observe(inputs: RuleInputs, rules: RuleSettingsMap): Observed {
  const { now, data } = inputs;
  const observations: Observation[] = [];
  const present = new Set<string>(['host', 'state']);
  const records = instanceRecords(data);
  for (const name of Object.keys(records)) present.add(`instance/${name}`);
  for (const name of Object.keys(data.services)) present.add(`service/${name}`);
  const on = (rule: AlertRuleName) => rules[rule].enabled;
  const push = (rule: AlertRuleName, object: string, holds: boolean, message: string) => observations.push({ rule, object, holds, message });

  const snapshot = inputs.metrics && now - inputs.metrics.at <= METRICS_STALE_MS ? inputs.metrics : null;
  if (snapshot) for (const i of snapshot.instances) present.add(`instance/${i.instance}`);

  if (on('memory-high') && snapshot) {
    const threshold = rules['memory-high'].threshold ?? 0.9;
    for (const i of snapshot.instances) {
      if (i.memoryLimitBytes === null || i.memoryLimitBytes <= 0) continue; // no limit: nothing to be near
      const share = i.memoryWorkingSetBytes / i.memoryLimitBytes;
      push('memory-high', `instance/${i.instance}`, share > threshold,
        `working set ${fmtBytes(i.memoryWorkingSetBytes)} of its ${fmtBytes(i.memoryLimitBytes)} memory limit (${pct(share)}), above ${pct(threshold)}`);
    }
  }

  if (on('health-failing')) {
    for (const [name, r] of Object.entries(records)) {
      // lastError: the last check failed; unhealthy: failureThreshold checks in a row did.
      // Failures within the start period count for nothing, as for the reconciler.
      const startPeriod = data.services[r.service]?.revision.spec.health?.startPeriodMs ?? 0;
      const starting = r.startedAt ? now - Date.parse(r.startedAt) < startPeriod : false;
      const failing = r.unhealthy || (r.lastError !== null && !starting);
      push('health-failing', `instance/${name}`, failing, `health checks failing${r.lastError ? `: ${r.lastError}` : ''}${r.unhealthy ? ' (unhealthy: it is being replaced)' : ''}`);
    }
  }

  const statuses = serviceStatuses(data as StateData, now);
  for (const st of statuses) {
    const object = `service/${st.name}`;
    const stored = data.services[st.name]!;
    if (on('crash-loop')) {
      const cause = data.waiting?.[st.name];
      const loop = typeof cause === 'object' && cause.kind === 'crash-loop' ? cause : null;
      push('crash-loop', object, st.phase === 'CrashLoopBackOff',
        loop ? `${loop.instance} ${loop.exit}; restarted ${loop.restarts} ${loop.restarts === 1 ? 'time' : 'times'} (CrashLoopBackOff)` : 'CrashLoopBackOff');
    }
    if (on('not-converged')) {
      // A crash loop is its own alert; not also "not converged" while that rule watches.
      const settled = st.phase === 'Converged' || st.phase === 'Idle' || st.phase === 'Stopped' || (st.phase === 'CrashLoopBackOff' && on('crash-loop'));
      push('not-converged', object, !settled, `${st.phase}, ${st.ready}/${st.desired} ready${st.reason ? `: ${st.reason}` : ''}`);
    }
    if (on('scaled-to-max')) {
      const a = stored.revision.spec.autoscale;
      if (a && !stored.suspended) {
        const max = activeBounds(a, now).max;
        const why = inputs.scalerReasons?.[st.name];
        push('scaled-to-max', object, scaledReplicas(stored) >= max, `at its maximum of ${max} ${max === 1 ? 'replica' : 'replicas'}${why ? `: ${why}` : ''}`);
      } else {
        push('scaled-to-max', object, false, 'not autoscaled');
      }
    }
  }

  if (on('disk-low') && inputs.disk && inputs.disk.totalBytes > 0) {
    const threshold = rules['disk-low'].threshold ?? 0.1;
    const { freeBytes, totalBytes } = inputs.disk;
    const share = freeBytes / totalBytes;
    push('disk-low', 'host', share < threshold, `${fmtBytes(freeBytes)} free of ${fmtBytes(totalBytes)} (${pct(share)}) on CARTE_HOME's filesystem, below ${pct(threshold)}`);
  }

  if (on('state-damaged')) {
    const r = data.recovery;
    // A recovery is an instant: it "holds" for the rule's clear time after it, then resolves.
    const recent = r !== undefined && now - Date.parse(r.at) < rules['state-damaged'].clearMs;
    push('state-damaged', 'state', recent, r
      ? `state.json was ${r.damagedFile ? `damaged (${r.reason})` : r.reason}; restored generation ${r.generation} at ${r.at}${r.damagedFile ? `; the damaged file is kept at ${r.damagedFile}` : ''}`
      : 'no recovery');
  }
  return { observations, present };
}
