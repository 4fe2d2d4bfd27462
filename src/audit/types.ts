// Every action through the CLI, the API or the dashboard: who, what, when, result.
import type { Principal } from '../auth/types.js';

export interface AuditEntry {
  at: string; // ISO time
  who: Pick<Principal, 'kind' | 'name'>;
  via: 'cli' | 'dashboard' | 'api';
  /** e.g. 'restart', 'scale', 'apply', 'user.add', 'login'. */
  action: string;
  /** e.g. 'service/web', 'user/alice'. */
  target: string;
  result: 'ok' | 'refused' | 'failed';
  /** Short: '3 → 5 replicas', or the error's message. Never a secret value or password. */
  detail?: string;
}

export interface AuditLog {
  record(e: AuditEntry): Promise<void>;
  /** Newest last. */
  list(opts?: { limit?: number }): Promise<AuditEntry[]>;
}
