// What the plan reads and what it decides. Actions and instance phases are
// discriminated unions so every `switch` over them is checked for
// exhaustiveness by the compiler.
import type { InstanceState } from '../drivers/driver.js';
import type { DesiredService } from '../model/instances.js';
import type { WaitCause } from '../model/wait.js';

export type { DesiredService } from '../model/instances.js';

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
  /**
   * Whether readiness is known: false while a running instance with a health
   * check has no result yet (just started, or adopted by a restarted daemon).
   * The plan never takes an unknown instance for a failed one.
   */
  healthKnown: boolean;
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
  /** To be replaced for this reason (e.g. its service is over its disk quota); absent: no. */
  evictReason?: string | null;
}

/** A rollout in progress: when the current template started replacing the old one. */
export interface RolloutState {
  templateHash: string;
  startedAt: number;
}

/** A service whose creates keep failing: how often, and not before when to try again. */
export interface CreateBackoff {
  failures: number;
  until: number;
  /** The revision's template that kept failing: a new one (the fix) is tried at once. */
  templateHash?: string;
}

export interface PlanInput {
  desired: readonly DesiredService[];
  instances: readonly InstanceView[];
  rollouts: Readonly<Record<string, RolloutState>>;
  /** Services whose creates failed recently (the executor's record); absent: none. */
  createBackoff?: Readonly<Record<string, CreateBackoff>>;
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
  | { kind: 'wait'; service: string; cause: WaitCause; until: number | null };

/** The actions the executor runs on instances. */
export type InstanceAction = Extract<Action, { kind: 'create' | 'remove' | 'restart' }>;
