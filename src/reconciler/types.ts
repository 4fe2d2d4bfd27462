// What the plan reads and what it decides. Actions and instance phases are
// discriminated unions so every `switch` over them is checked for
// exhaustiveness by the compiler.
import type { InstanceState } from '../drivers/driver.js';
import type { ServiceSpec } from '../schema/types.js';

export interface DesiredService {
  name: string;
  spec: ServiceSpec;
  templateHash: string;
  revision: number;
  /** `carte stop SERVICE`: held at zero instances until started again. */
  suspended: boolean;
}

/** One instance as the plan sees it: the driver's observation plus what the reconciler tracks. */
export interface InstanceView {
  name: string;
  service: string;
  /** N of `SERVICE-N`. */
  ordinal: number;
  templateHash: string;
  state: InstanceState;
  /** Health checks pass (or there are none and it runs). */
  ready: boolean;
  /** A liveness failure: failed `failureThreshold` checks in a row after its start period. */
  unhealthy: boolean;
  /** The machine shows a problem with it (e.g. its netns vanished). */
  broken: boolean;
  exitCode: number | null;
  oomKilled: boolean;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Restarts so far in the current crash loop (reset after a stable run). */
  restarts: number;
}

/** A rollout in progress: when the current template started replacing the old one. */
export interface RolloutState {
  templateHash: string;
  startedAt: number;
}

export interface PlanInput {
  desired: readonly DesiredService[];
  instances: readonly InstanceView[];
  rollouts: Readonly<Record<string, RolloutState>>;
  now: number;
}

export type Action =
  | { kind: 'create'; service: string; name: string; templateHash: string; revision: number; reason: string }
  | { kind: 'remove'; service: string; name: string; reason: string }
  /** Remove and create again under the same name (restart policy, liveness, broken). */
  | { kind: 'restart'; service: string; name: string; templateHash: string; revision: number; reason: string }
  /** Record that a rollout started (or ended, with templateHash null). */
  | { kind: 'rollout'; service: string; templateHash: string | null; at: number }
  /** Nothing can be done now; look again at `until` (if set). */
  | { kind: 'wait'; service: string; reason: string; until: number | null };

export type ServicePhase = 'converged' | 'progressing' | 'crash-loop' | 'rollout-failed' | 'waiting-for-dependencies' | 'suspended';
