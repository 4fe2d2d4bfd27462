// The dashboard's JSON API, shared by the server (src/web/server*.ts) and the page (web/):
// one place says what each route returns, so both sides are type-checked against it.
// Every route is under /api, needs a session cookie (the page) or `Authorization: Bearer <token>`
// (scripts), and answers errors as ApiError with the HTTP status saying which kind
// (401 not signed in, 403 role too low or CSRF token missing/wrong, 404, 409, 429 too many logins).
import type { AuditEntry } from '../audit/types.js';
import type { Alert } from '../alerts/types.js';
import type { Role } from '../auth/types.js';
import type { InstanceSample, MetricsSnapshot, Series, ServiceSample } from '../metrics/types.js';

export interface ApiError {
  error: string;
}

/** GET /api/session — who is signed in; `usersExist: false` makes the page say how to create the first user. */
export interface SessionInfo {
  usersExist: boolean;
  user: { name: string; role: Role } | null;
  /** Send back as the `x-csrf-token` header on every POST (cookie sessions only). */
  csrf: string | null;
}

/** POST /api/login { name, password } → SessionInfo (sets the HttpOnly, SameSite=Strict session cookie). POST /api/logout → {}. */
export interface LoginRequest {
  name: string;
  password: string;
}

/** GET /api/services */
export interface ServiceRow {
  name: string;
  desired: number;
  ready: number;
  instances: number;
  phase: string;
  reason: string | null;
  image: string;
  revision: number;
  autoscaled: boolean;
  suspended: boolean;
  /** Latest gateway figures (null before the first sample). */
  traffic: ServiceSample | null;
  /** Sum of its instances' latest CPU (cores) and memory (bytes). */
  cpuCores: number | null;
  memoryBytes: number | null;
}

/** GET /api/services/:name → the row, its instances, its last events and marker times for charts. */
export interface ServiceDetail {
  service: ServiceRow;
  instances: InstanceRow[];
  events: EventRow[];
  markers: Marker[];
  alerts: Alert[];
}

export interface InstanceRow {
  name: string;
  service: string;
  state: string;
  ready: boolean;
  restarts: number;
  ip: string | null;
  startedAt: string | null;
  latest: InstanceSample | null;
  /** True for an instance that was replaced and whose logs are kept (`--previous`). */
  previous: boolean;
}

export interface EventRow {
  /** Increasing id, also the SSE id (Last-Event-ID resumes after it). */
  id: number;
  at: string;
  type: 'Normal' | 'Warning';
  object: string;
  reason: string;
  message: string;
}

/** A vertical line on a chart: a deploy, scaling, a wake, a restart or an alert. */
export interface Marker {
  at: number;
  kind: 'deploy' | 'scale' | 'wake' | 'restart' | 'alert';
  label: string;
}

/** GET /api/events/stream — text/event-stream; each `data:` is an EventRow, `id:` its id. */

/** GET /api/metrics/latest → MetricsSnapshot. GET /api/metrics/series?kind=&name=&metric=&from=&to=&points= → Series. */
export type LatestMetrics = MetricsSnapshot;
export type SeriesResponse = Series;

/** GET /api/instances/:name/logs?tail=200&previous=1 → the last lines. */
export interface LogsResponse {
  instance: string;
  lines: string[];
}

/** GET /api/alerts → firing and recently resolved. */
export interface AlertsResponse {
  active: Alert[];
  recent: Alert[];
}

/** GET /api/audit (admins) → newest last. */
export interface AuditResponse {
  entries: AuditEntry[];
}

/**
 * Actions (operators; POST with the CSRF header): /api/services/:name/start, /stop, /restart,
 * /scale { replicas } (refused with 409 for an autoscaled service), /rollback { to? }, and /api/sync.
 */
export interface ActionResult {
  ok: true;
  /** What happened, as the CLI would say it. */
  message: string;
}
