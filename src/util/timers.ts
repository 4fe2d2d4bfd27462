// Timers that never overflow. Node's setTimeout and setInterval take a
// 32-bit signed delay: anything above 2^31-1 ms (about 24.8 days) is taken as
// 1 ms, so a user's "interval: 30d" would fire a thousand times a second.
// Every timer whose delay comes from a manifest, a flag or a computed
// deadline goes through these.

export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay that setTimeout honours: at least 0, at most MAX_TIMER_MS, and a finite number. */
export function clampDelay(ms: number): number {
  if (!Number.isFinite(ms)) return ms > 0 ? MAX_TIMER_MS : 0;
  return Math.min(MAX_TIMER_MS, Math.max(0, Math.round(ms)));
}

export function safeTimeout(fn: () => void, ms: number): NodeJS.Timeout {
  return setTimeout(fn, clampDelay(ms));
}

export function safeInterval(fn: () => void, ms: number): NodeJS.Timeout {
  return setInterval(fn, Math.max(1, clampDelay(ms)));
}

/** Resolves after `ms` (clamped), or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = safeTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * `promise`, or `fallback` once `ms` passed: for steps that must not hold up
 * a shutdown or a pass however they end. The promise keeps running.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<T>((resolve) => {
    timer = safeTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise.catch(() => fallback), deadline]).finally(() => clearTimeout(timer));
}
