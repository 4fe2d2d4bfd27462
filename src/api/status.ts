// Whether each service is converged, computed from the store alone (the
// reconciler writes readiness there), so `carte get` and `carte status` work
// with or without a daemon.
import type { InstanceHealthRecord } from '../model/instances.js';
import { describeWait, type WaitCause } from '../model/wait.js';
import { effectiveReplicas, type StateData } from '../store/state.js';

export type Phase = 'Converged' | 'Idle' | 'Progressing' | 'Stopped' | 'Failing' | 'CrashLoopBackOff' | 'RolloutFailed' | 'Waiting';

export interface ServiceStatus {
  name: string;
  desired: number;
  ready: number;
  instances: number;
  phase: Phase;
  /** Why it is not converged, when something says so (the newest warning). */
  reason: string | null;
}

/** How recent a warning must be to explain a service's state. */
const WARNING_WINDOW_MS = 5 * 60_000;

export function instanceRecords(data: StateData): Record<string, InstanceHealthRecord> {
  return data.instances as Record<string, InstanceHealthRecord>;
}

export function serviceStatuses(data: StateData, now: number): ServiceStatus[] {
  const records = Object.values(instanceRecords(data));
  return Object.values(data.services).sort((a, b) => (a.name < b.name ? -1 : 1)).map((s) => {
    const mine = records.filter((r) => r.service === s.name);
    const desired = effectiveReplicas(s);
    const ready = mine.filter((r) => r.ready).length;
    const warning = [...data.events].reverse().find((e) => e.object === `service/${s.name}` && e.type === 'Warning' && now - Date.parse(e.at) < WARNING_WINDOW_MS);
    const rolling = data.rollouts?.[s.name] !== undefined;
    const stored = data.waiting?.[s.name] ?? null;
    const cause: WaitCause | null = stored !== null && typeof stored === 'object' ? stored : null;
    const waiting = cause ? describeWait(s.name, cause, now) : typeof stored === 'string' ? stored : null;
    const portError = data.portErrors?.[s.name] ?? null;
    let phase: Phase;
    if (s.suspended) phase = mine.length ? 'Progressing' : 'Stopped';
    else if (cause?.kind === 'crash-loop') phase = 'CrashLoopBackOff';
    else if (cause?.kind === 'rollout-failed') phase = 'RolloutFailed';
    else if (portError) phase = 'Failing';
    else if (desired === 0 && mine.length === 0 && s.revision.spec.autoscale) phase = 'Idle';
    else if (ready === desired && mine.length === desired && !rolling) phase = 'Converged';
    else if (waiting) phase = 'Waiting';
    else if (warning) phase = 'Failing';
    else phase = 'Progressing';
    const reason = phase === 'Converged' || phase === 'Idle' ? null : portError ?? waiting ?? warning?.message ?? (rolling ? 'rolling update in progress' : null);
    return { name: s.name, desired, ready, instances: mine.length, phase, reason };
  });
}
