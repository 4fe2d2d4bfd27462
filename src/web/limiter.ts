// Failed sign-ins per user name: after `limit` failures in `windowMs`, that
// name is refused until the window ends, whatever the address (the per-address
// limit is @fastify/rate-limit's, keyed by addressKey). Pure apart from its map.
// Also: the gate that bounds password checks running at once.

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

/**
 * The key of the per-address sign-in limit: the peer's address, except that
 * every loopback address (127.0.0.0/8, ::1, ::ffff:127.x) is one key — else a
 * local caller gets a new bucket per 127.x source address. Pure.
 */
export function addressKey(ip: string): string {
  const v4 = ip.toLowerCase().startsWith('::ffff:') ? ip.slice(7) : ip;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || /^(0{0,4}:){2,7}0{0,3}1$/.test(ip) || ip === '::1') return 'loopback';
  return ip;
}

/**
 * At most `running` tasks at once and `queued` waiting; beyond that a task is
 * refused at once (null), never queued. Password checks run scrypt on libuv's
 * few threads: bounding them keeps the threads free for the rest of the daemon.
 */
export class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly running: number, readonly queued: number) {}

  /** The task's promise, or null when `running` run and `queued` wait already. */
  tryRun<T>(task: () => Promise<T>): Promise<T> | null {
    if (this.active >= this.running && this.waiting.length >= this.queued) return null;
    return this.enter().then(task).finally(() => this.leave());
  }

  /** Running and waiting now (for tests and logs). */
  load(): { running: number; waiting: number } {
    return { running: this.active, waiting: this.waiting.length };
  }

  private enter(): Promise<void> {
    if (this.active < this.running) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private leave(): void {
    // The slot passes to the next waiting task as is.
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}
