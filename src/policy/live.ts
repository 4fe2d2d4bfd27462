// The server policy as the daemon holds it: read at start, read again on
// SIGHUP and whenever its file changes (an admin tightening the class's
// rules must not have to restart the daemon, and must not be able to forget
// to). A new text that does not validate changes nothing: the policy in force
// stays, and the located problems are reported, as at start. Consumers read
// `current` at the moment they decide, never a copy taken at start.
import fs from 'node:fs';
import { CarteError } from '../errors.js';
import { loadPolicy, type PolicyLocation } from './load.js';
import { DEFAULT_POLICY, type ServerPolicy } from './policy.js';
import { stableJson } from '../schema/canonical.js';

export type ReloadOutcome =
  | { kind: 'unchanged' }
  | { kind: 'reloaded'; file: string | null }
  /** The new text is refused; `lines` are its located problems; the previous policy stays in force. */
  | { kind: 'refused'; lines: string[] };

export class LivePolicy {
  private policy: ServerPolicy;
  private listeners: Array<(outcome: ReloadOutcome) => void> = [];
  private reloading: Promise<ReloadOutcome> | null = null;
  private again = false;

  /** Where a reload that failed for a reason of its own (not the file's problems) is reported. */
  onError: (e: Error) => void = () => {};

  /** `location` null: a fixed policy (tests, and callers that read no file). */
  constructor(initial: ServerPolicy, private readonly location: PolicyLocation | null = null) {
    this.policy = initial;
  }

  static fixed(policy: ServerPolicy = DEFAULT_POLICY): LivePolicy {
    return new LivePolicy(policy);
  }

  get current(): ServerPolicy {
    return this.policy;
  }

  /** Called after every reload that read the file (whatever came of it). */
  onReload(listener: (outcome: ReloadOutcome) => void): void {
    this.listeners.push(listener);
  }

  /** Reads the file again. One read at a time; a request during one runs once more after it. */
  reload(): Promise<ReloadOutcome> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = (async () => {
      let outcome: ReloadOutcome;
      do {
        this.again = false;
        outcome = this.readOnce();
        for (const l of this.listeners) l(outcome);
        await Promise.resolve();
      } while (this.again);
      this.reloading = null;
      return outcome;
    })();
    return this.reloading;
  }

  private readOnce(): ReloadOutcome {
    if (!this.location) return { kind: 'unchanged' };
    let next: ServerPolicy;
    try {
      next = loadPolicy(this.location);
    } catch (e) {
      if (!(e instanceof CarteError)) throw e;
      return { kind: 'refused', lines: [e.message, ...e.details] };
    }
    if (stableJson(next) === stableJson(this.policy)) return { kind: 'unchanged' };
    this.policy = next;
    return { kind: 'reloaded', file: next.file };
  }

  /**
   * Reloads when the file changes: polled by its stat (an editor's save by
   * rename, a file that appears or goes, /etc on any filesystem), every
   * `intervalMs`. Returns a function that stops watching.
   */
  watch(intervalMs = 1000): () => void {
    if (!this.location) return () => {};
    const file = this.location.file;
    const listener = (cur: fs.Stats, prev: fs.Stats) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) this.reload().catch((e: Error) => this.onError(e));
    };
    fs.watchFile(file, { interval: intervalMs, persistent: false }, listener);
    return () => fs.unwatchFile(file, listener);
  }
}
