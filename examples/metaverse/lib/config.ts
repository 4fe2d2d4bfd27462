// Configuration from the environment, checked at start: a wrong value stops
// the server with a message naming the variable, instead of a late surprise.

export class ConfigError extends Error {}

export type Env = Record<string, string | undefined>;

export function envString(env: Env, name: string, fallback?: string): string {
  const v = env[name] ?? fallback;
  if (v === undefined || v === '') throw new ConfigError(`${name} is not set`);
  return v;
}

export function envInt(env: Env, name: string, fallback: number, bounds: { min?: number; max?: number } = {}): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}=${JSON.stringify(raw)} must be a whole number from ${min} to ${max}`);
  return n;
}

/** host and port of a redis://host:port URL. */
export function redisAddress(url: string): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`REDIS_URL=${JSON.stringify(url)} is not a URL (use e.g. redis://redis:6379)`);
  }
  if (u.protocol !== 'redis:' || !u.hostname) throw new ConfigError(`REDIS_URL=${JSON.stringify(url)} must look like redis://HOST:PORT`);
  return { host: u.hostname, port: u.port ? Number(u.port) : 6379 };
}

/** Where Redis is and how to log in to it. */
export interface RedisTarget { host: string; port: number; password?: string }

/**
 * REDIS_URL (default redis://redis:6379) and REDIS_PASSWORD, the password of
 * Redis's `requirepass`: in the demo a key of the secret "metaverse", which
 * also holds Redis's config. Optional (unset or empty: no AUTH), so the unit
 * tests can run a local redis-server without one.
 */
export function redisTarget(env: Env): RedisTarget {
  const password = env.REDIS_PASSWORD;
  return { ...redisAddress(envString(env, 'REDIS_URL', 'redis://redis:6379')), ...(password ? { password } : {}) };
}

/** The secret shared by every server to sign and verify session tokens. */
export function tokenSecret(env: Env): string {
  const s = envString(env, 'TOKEN_SECRET');
  if (s.length < 16) throw new ConfigError('TOKEN_SECRET must have at least 16 characters');
  return s;
}
