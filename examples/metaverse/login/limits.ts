// Failed-login limits: at most N failures per name and M per client address
// in a sliding window, so nobody can try passwords at scrypt speed. Each
// attempt is recorded *before* its scrypt runs (a burst of parallel attempts
// cannot all slip past the check), then forgotten if it succeeded: what stays
// are the failures. A success forgets only its own attempt, never another
// name's or another attempt's failures.
//
// Redis (one sorted set per name and per address, member = one attempt,
// score = when; the key expires a window after its last attempt):
//   metaverse:login:failures:name:NAME
//   metaverse:login:failures:addr:ADDRESS
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { ConfigError } from '../lib/config.js';
import { HttpError } from '../lib/http.js';
import type { Redis } from '../lib/redis.js';
import type { Reply } from '../lib/resp.js';

export interface LimitPolicy {
  /** failures allowed per name in a window (0: no limit) */
  perName: number;
  /** failures allowed per client address in a window (0: no limit) */
  perAddress: number;
  windowMs: number;
}

/** An attempt in progress: it counts as a failure unless `succeeded` is called. */
export interface Attempt { succeeded(): Promise<void> }

interface Limit { key: string; max: number; refusal: string }

export class FailedLogins {
  constructor(private readonly redis: Redis, private readonly policy: LimitPolicy) {}

  /** Records an attempt; 429 too_many_attempts (with Retry-After) when a limit is already reached. */
  async begin(name: string, address: string, now = Date.now()): Promise<Attempt> {
    const limits: Limit[] = [
      { key: `metaverse:login:failures:name:${name}`, max: this.policy.perName, refusal: `too many failed logins for "${name}"` },
      { key: `metaverse:login:failures:addr:${address}`, max: this.policy.perAddress, refusal: 'too many failed logins from your address' },
    ].filter((l) => l.max > 0);
    if (!limits.length) return { succeeded: async () => {} };
    const member = `${now}:${randomBytes(6).toString('hex')}`;
    const { windowMs } = this.policy;
    const replies = await this.redis.multi(limits.flatMap((l) => [
      ['ZREMRANGEBYSCORE', l.key, '-inf', now - windowMs],
      ['ZADD', l.key, now, member],
      ['ZCARD', l.key],
      ['ZRANGE', l.key, 0, 0, 'WITHSCORES'],
      ['PEXPIRE', l.key, windowMs],
    ]));
    const forget = async () => {
      await this.redis.multi(limits.map((l) => ['ZREM', l.key, member]));
    };
    for (const [i, l] of limits.entries()) {
      const count = Number(replies[i * 5 + 2]);
      if (count <= l.max) continue;
      // This attempt is refused, not failed: it does not count.
      await forget();
      const oldest = Number((replies[i * 5 + 3] as Reply[])[1]);
      const retry = Math.max(1, Math.ceil((oldest + windowMs - now) / 1000));
      throw new HttpError(429, 'too_many_attempts', `${l.refusal}: try again in ${retry} s`, { 'retry-after': String(retry) });
    }
    return { succeeded: forget };
  }
}

/** "::ffff:10.0.0.1" (an IPv4 client on a dual-stack socket) is 10.0.0.1. */
export function normalizeAddress(a: string): string {
  const v = a.trim().toLowerCase();
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/.test(v) ? v.slice(7) : v;
}

/** TRUSTED_PROXIES: comma-separated IP addresses of proxies whose X-Forwarded-For is believed. */
export function parseTrustedProxies(raw: string | undefined): Set<string> {
  const out = new Set<string>();
  for (const part of (raw ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    if (!net.isIP(part)) throw new ConfigError(`TRUSTED_PROXIES: ${JSON.stringify(part)} is not an IP address (list proxies' addresses, comma-separated)`);
    out.add(normalizeAddress(part));
  }
  return out;
}

/**
 * The client's address for the per-address limit: the socket's peer, unless
 * that peer is a trusted proxy; then the nearest address in X-Forwarded-For
 * that is not itself a trusted proxy (entries further left are whatever the
 * client wrote and prove nothing).
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trusted: ReadonlySet<string>): string {
  const direct = normalizeAddress(peer ?? '') || 'unknown';
  if (!trusted.has(direct) || forwardedFor === undefined) return direct;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map(normalizeAddress);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (!net.isIP(hop)) return direct;
    if (!trusted.has(hop)) return hop;
  }
  return direct;
}
