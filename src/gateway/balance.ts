// Which instance gets the next connection. Pure functions over a service's
// candidates, so the policy is unit-tested without sockets:
//   round-robin        each candidate in turn (a cursor per service);
//   least-connections  the one with fewest open connections, ties in turn.
// Instances that just refused a connection are avoided while others remain
// (passive health: traffic moves before the next health check notices).
import type { Balance } from '../schema/types.js';

export interface Candidate {
  name: string;
  ip: string;
  /** Open connections (or in-flight HTTP requests) to it through the gateway. */
  active: number;
  /** A connection to it failed until this time (ms); avoided while others are fine. */
  failedUntil: number;
}

/**
 * Picks a candidate, or null when there is none. `cursor` is the service's
 * round-robin position; the caller stores the returned one.
 */
export function choose(candidates: readonly Candidate[], balance: Balance, cursor: number, now: number, exclude: ReadonlySet<string> = new Set()): { pick: Candidate; cursor: number } | null {
  const allowed = candidates.filter((c) => !exclude.has(c.name));
  const healthy = allowed.filter((c) => c.failedUntil <= now);
  const pool = healthy.length ? healthy : allowed;
  if (!pool.length) return null;
  if (balance === 'least-connections') {
    const least = Math.min(...pool.map((c) => c.active));
    const tied = pool.filter((c) => c.active === least);
    const pick = tied[cursor % tied.length]!;
    return { pick, cursor: cursor + 1 };
  }
  return { pick: pool[cursor % pool.length]!, cursor: cursor + 1 };
}
