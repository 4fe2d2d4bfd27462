// What the dashboard's server is given by the daemon, and what each request
// carries once it is let in. Routes see only these.
import type { AlertsView } from '../alerts/types.js';
import type { AuditEntry, AuditLog } from '../audit/types.js';
import type { AuthStore, Principal } from '../auth/types.js';
import type { Driver } from '../drivers/driver.js';
import type { Logger } from '../log.js';
import type { MetricsView } from '../metrics/types.js';
import type { AdmissionContext } from '../policy/admit.js';
import type { Store } from '../store/store.js';
import type { WebSession } from './sessions.js';

/** Users and tokens; sessions check AuthStore.userStamp on each request. */
export type WebAuth = AuthStore;

export interface SyncResult {
  sources: Array<{ id: string; ok: boolean; lines: string[] }>;
}

export interface WebDeps {
  log: Logger;
  store: Store;
  auth: WebAuth;
  audit: AuditLog;
  alerts: AlertsView;
  /** The collector; null while there is none (metrics then read as empty). */
  metrics: MetricsView | null;
  driver: Pick<Driver, 'list' | 'logs'>;
  /** The daemon's sync of every source (what `carte sync` asks for). */
  sync(): Promise<SyncResult>;
  /** Wake the reconciler after a change. */
  trigger(): void;
  /** Today's policy, for scale limits and re-admitting a rollback's revision. */
  admission: AdmissionContext;
  /** Prometheus text for GET /metrics (null: answered 404). */
  prometheus: (() => Promise<{ contentType: string; body: string }>) | null;
  /** The page's files (index.html, app.js, app.css). */
  staticDir: string;
  now(): number;
}

/** Who a request comes from, once let in: a cookie session (the page) or a bearer token (scripts). */
export interface Caller {
  principal: Principal;
  via: AuditEntry['via'];
  session: WebSession | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    caller: Caller | null;
  }
}
