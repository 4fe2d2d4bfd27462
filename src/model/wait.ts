// Why a service cannot make progress now: typed causes that the plan returns
// and that `carte status`, `carte get` and `describe` read (instead of
// matching words in a sentence). The sentence is made from the cause when it
// is shown, so a countdown is computed at reading time and the store is not
// rewritten every second while it runs.

export type WaitCause =
  /** An instance exited and its restart waits out the crash-loop backoff. */
  | { kind: 'crash-loop'; instance: string; exit: string; restarts: number; until: number }
  /** A rolling update did not get its new instances ready within its progress deadline. */
  | { kind: 'rollout-failed'; revision: number; ready: number; replicas: number; deadlineMs: number }
  /** dependsOn: services with no ready instance yet. */
  | { kind: 'dependencies'; on: string[] }
  /** Creating instances failed; the next try waits with backoff. */
  | { kind: 'create-backoff'; failures: number; until: number };

export type WaitKind = WaitCause['kind'];

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/** The cause in words, as `carte status` shows it (`service` for the rollback hint). */
export function describeWait(service: string, cause: WaitCause, now: number): string {
  switch (cause.kind) {
    case 'crash-loop':
      return `${cause.instance} ${cause.exit}; restart ${cause.restarts + 1} in ${seconds(cause.until - now)}s (CrashLoopBackOff)`;
    case 'rollout-failed':
      return `rollout of revision ${cause.revision} failed: ${cause.ready} of ${cause.replicas} new instances ready after ${Math.round(cause.deadlineMs / 1000)}s; ` +
        `the old instances keep serving (fix the manifest, or "carte rollback ${service}")`;
    case 'dependencies':
      return `waiting for ${cause.on.join(', ')} to be ready (dependsOn)`;
    case 'create-backoff':
      return `creating instances failed ${cause.failures === 1 ? 'once' : `${cause.failures} times`}; retrying in ${seconds(cause.until - now)}s`;
  }
}
