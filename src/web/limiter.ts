// Failed sign-ins per user name: after `limit` failures in `windowMs`, that
// name is refused until the window ends, whatever the address (the per-address
// limit is @fastify/rate-limit's, in server.ts). Pure apart from its map.

export class FailureLimiter {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  constructor(readonly limit: number, readonly windowMs: number, private readonly maxKeys = 10_000) {}

  /** Seconds until this key may try again, or 0 when it may now. */
  retryAfter(key: string, now: number): number {
    const w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) return 0;
    return w.failures >= this.limit ? Math.ceil((w.start + this.windowMs - now) / 1000) : 0;
  }

  fail(key: string, now: number): void {
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      this.windows.delete(key);
      w = { start: now, failures: 0 };
      this.windows.set(key, w);
      while (this.windows.size > this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    }
    w.failures++;
  }

  clear(key: string): void {
    this.windows.delete(key);
  }
}
