// Who is asking: dashboard users, API tokens, and the local root of the CLI.
export type Role = 'viewer' | 'operator' | 'admin';

export const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

/** Viewers see, operators act, admins manage users (each role has the ones before it). */
export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export interface Principal {
  kind: 'user' | 'token' | 'root';
  /** User name, token name/id, or the login name of the local root (SUDO_USER when set). */
  name: string;
  role: Role;
}

export interface UserRow {
  name: string;
  role: Role;
  createdAt: string;
}

export interface TokenRow {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  expiresAt: string | null;
}

export interface Session {
  id: string;
  principal: Principal;
  /** The CSRF token the page must send back on every action. */
  csrf: string;
  expiresAt: number;
}

/** Users and tokens kept by carte (CARTE_HOME), shared by the CLI and the daemon. */
export interface AuthStore {
  hasUsers(): Promise<boolean>;
  listUsers(): Promise<UserRow[]>;
  /** Null when the name is unknown or the password wrong (same time either way). */
  verifyPassword(name: string, password: string): Promise<Principal | null>;
  /** The bearer token's principal, or null. */
  verifyToken(token: string): Promise<Principal | null>;
  /**
   * A value that changes when the user's password or role changes; null once
   * the user is removed. Sessions compare it on each request, so
   * `carte user rm` and `carte user passwd` end the user's sessions.
   */
  userStamp(name: string): Promise<string | null>;
}
