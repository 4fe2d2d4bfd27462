// The canonical form of a Service: defaults filled in, units parsed to plain
// numbers (millicores, bytes, milliseconds, percent). This is what the store
// keeps, what is hashed, and what the reconciler and driver read.
import type { IntOrPercent } from './units.js';

export type Protocol = 'tcp' | 'udp';
export type Balance = 'round-robin' | 'least-connections';
export type RestartPolicy = 'always' | 'on-failure' | 'never';

export interface PublishSpec {
  port: number;
  /** Bind address; null means the daemon's default (all interfaces unless configured). */
  address: string | null;
  /** HTTP mode: route by Host header so several services share one port. */
  host: string | null;
}

export interface PortSpec {
  name: string;
  port: number;
  protocol: Protocol;
  publish: PublishSpec | null;
  balance: Balance;
}

export type VolumeSpec =
  | { kind: 'named'; name: string; mountPath: string; readOnly: boolean }
  | { kind: 'host'; hostPath: string; mountPath: string; readOnly: boolean };

export type HealthCheck =
  | { kind: 'http'; path: string; port: number }
  | { kind: 'tcp'; port: number }
  | { kind: 'exec'; command: string[] };

export interface HealthSpec {
  check: HealthCheck;
  intervalMs: number;
  timeoutMs: number;
  failureThreshold: number;
  startPeriodMs: number;
}

export interface ScheduleSpec {
  cron: string;
  durationMs: number;
  min: number | null;
  max: number | null;
}

export interface AutoscaleSpec {
  min: number;
  max: number;
  cpuPercent: number | null;
  memoryPercent: number | null;
  scaleDownDelayMs: number;
  idleToZeroMs: number | null;
  schedule: ScheduleSpec[];
}

export interface BuildSpec {
  /** Absolute path, resolved against the manifest file's folder. */
  context: string;
  cartefile: string;
  args: Record<string, string>;
}

export interface ServiceSpec {
  image: string | null;
  build: BuildSpec | null;
  command: string[] | null;
  args: string[] | null;
  env: Record<string, string>;
  workingDir: string | null;
  user: string | null;
  replicas: number;
  resources: { cpuMillis: number | null; memoryBytes: number | null; pids: number | null };
  ports: PortSpec[];
  volumes: VolumeSpec[];
  health: HealthSpec | null;
  restart: RestartPolicy;
  update: { maxSurge: IntOrPercent; maxUnavailable: IntOrPercent; progressDeadlineMs: number };
  autoscale: AutoscaleSpec | null;
  dependsOn: string[];
  stopGracePeriodMs: number;
}

export interface ServiceObject {
  name: string;
  labels: Record<string, string>;
  spec: ServiceSpec;
}

/** Defaults, in one place so docs/manifests.md and the code agree. */
export const DEFAULTS = {
  replicas: 1,
  restart: 'always' as RestartPolicy,
  maxSurge: { count: 1 } as IntOrPercent,
  maxUnavailable: { count: 0 } as IntOrPercent,
  progressDeadlineMs: 120_000,
  healthIntervalMs: 10_000,
  healthTimeoutMs: 1_000,
  healthFailureThreshold: 3,
  healthStartPeriodMs: 0,
  autoscaleMin: 1,
  scaleDownDelayMs: 60_000,
  scheduleDurationMs: 3_600_000,
  stopGracePeriodMs: 10_000,
  cartefile: 'Cartefile',
  balance: 'round-robin' as Balance,
  protocol: 'tcp' as Protocol,
};
