// One writer at a time across processes. proper-lockfile makes the lock an
// atomically created folder whose mtime the holder refreshes every UPDATE_MS;
// a holder that crashed stops refreshing, so after STALE_MS its lock is
// taken over instead of being waited on forever.
//
// A live holder whose event loop stalls past STALE_MS (a loaded machine) has
// its lock marked compromised by proper-lockfile, and another writer may take
// it over. The stale time is long enough that a busy machine does not do that
// to a live holder (5 s did, with one of two CPUs pinned), and short enough
// that a crashed holder's lock clears itself soon. A compromised lock is a
// state of the handle, never an exception: `compromised` says it, and
// `release()` of it (or a second release) does nothing.
import lockfile from 'proper-lockfile';
import { CarteError } from '../errors.js';

export const STALE_MS = 15_000;
const UPDATE_MS = 2_000;

export interface LockOptions {
  /** How long to wait for another holder before giving up (0: try once). */
  timeoutMs?: number;
}

export interface HeldLock {
  /** True once another process may have taken the lock over (we stalled past STALE_MS). */
  readonly compromised: boolean;
  release(): Promise<void>;
}

export async function acquireLock(lockPath: string, opts: LockOptions = {}): Promise<HeldLock> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const state = { compromised: false };
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const release = await lockfile.lock(lockPath, {
        realpath: false,
        stale: STALE_MS,
        update: UPDATE_MS,
        retries: 0,
        onCompromised: () => {
          state.compromised = true;
        },
      });
      let released = false;
      return {
        get compromised() {
          return state.compromised;
        },
        release: async () => {
          if (released || state.compromised) return;
          released = true;
          try {
            await release();
          } catch (e) {
            // ERELEASED: proper-lockfile gave the lock up itself (compromised) between our check
            // and this call; ENOTACQUIRED: the same, seen from its table. Nothing left to release.
            const code = (e as NodeJS.ErrnoException).code;
            if (code === 'ERELEASED' || code === 'ENOTACQUIRED') return;
            throw new CarteError('io', `failed to release ${lockPath}: ${(e as Error).message}`, { cause: e });
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') {
        throw new CarteError('io', `failed to lock ${lockPath}: ${(e as Error).message}`, { cause: e });
      }
      if (Date.now() - started >= timeoutMs) {
        throw new CarteError('store-locked',
          `failed to lock the store: ${lockPath} is held by another carte process for over ${Math.round(timeoutMs / 1000)}s ` +
          `(a crashed holder's lock clears itself after ${STALE_MS / 1000}s; a running daemon holds it while it runs)`);
      }
      // Jittered backoff so two waiting writers do not retry in lock-step.
      const delay = Math.min(200, 10 * 1.5 ** Math.min(attempt, 10)) * (0.5 + Math.random());
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
