// Small pieces every view uses: polling without overlap, a status line for
// action results, and the signed-in user's role.
import { createContext } from 'preact';
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks';
import { roleAllows, type Role } from '../../src/auth/types.js';
import type { ActionResult, SessionInfo } from '../../src/web/types.js';
import { ApiFailure, post } from './api.js';

export const SessionContext = createContext<SessionInfo | null>(null);

/** Whether the signed-in user has at least `need`. */
export function useCan(need: Role): boolean {
  const s = useContext(SessionContext);
  return !!s?.user && roleAllows(s.user.role, need);
}

export interface Polled<T> {
  data: T | null;
  error: string | null;
  reload: () => void;
}

/**
 * Loads now, then again `everyMs` after each answer (never two at once: a slow
 * daemon is not piled on). A change of `trigger` (new events) or reload() loads
 * again at once, or right after the load in flight, whose answer is kept.
 * A change of `deps` starts over (the old answer is dropped).
 */
export function usePoll<T>(load: () => Promise<T>, deps: unknown[], everyMs: number, trigger?: unknown): Polled<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const kick = useRef<() => void>(() => {});
  useEffect(() => {
    setData(null);
    setError(null);
    let stopped = false;
    let running = false;
    let again = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      if (timer) clearTimeout(timer);
      timer = undefined;
      running = true;
      try {
        const d = await loadRef.current();
        if (!stopped) {
          setData(d);
          setError(null);
        }
      } catch (e) {
        if (!stopped) setError(e instanceof Error ? e.message : String(e));
      } finally {
        running = false;
      }
      if (stopped) return;
      if (again) {
        again = false;
        void tick();
      } else timer = setTimeout(tick, everyMs);
    };
    kick.current = () => void tick();
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      kick.current = () => {};
    };
  }, deps);
  const mounted = useRef(false);
  useEffect(() => {
    if (mounted.current) kick.current();
    mounted.current = true;
  }, [trigger]);
  const reload = useCallback(() => kick.current(), []);
  return { data, error, reload };
}

export interface Outcome {
  ok: boolean;
  text: string;
}

/** Runs an action (POST with the CSRF header) and keeps its outcome for the status line. */
export function useAction(after?: () => void) {
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const run = async (path: string, body?: unknown) => {
    setBusy(true);
    setOutcome(null);
    try {
      const r = await post<ActionResult>(path, body);
      setOutcome({ ok: true, text: r.message });
      after?.();
    } catch (e) {
      const status = e instanceof ApiFailure && e.status ? ` (HTTP ${e.status})` : '';
      setOutcome({ ok: false, text: `${e instanceof Error ? e.message : String(e)}${status}` });
    } finally {
      setBusy(false);
    }
  };
  return { busy, outcome, run };
}

/** The result of the last action: polite for success, assertive for errors. */
export function StatusLine({ outcome }: { outcome: Outcome | null }) {
  if (!outcome) return <p class="status" role="status" aria-live="polite" />;
  return outcome.ok
    ? <p class="status ok" role="status" aria-live="polite">{outcome.text}</p>
    : <p class="status error" role="alert">{outcome.text}</p>;
}

export function ErrorNote({ error }: { error: string | null }) {
  return error ? <p class="status error" role="alert">{error}</p> : null;
}

export function href(route: string): string {
  return `#${route}`;
}

/**
 * Marks the first time `ready` holds (performance.mark, after the next frame
 * so the charts' canvases are drawn): bench/dashboard.ts reads these marks to
 * time a first load from navigation start.
 */
export function useMarkOnce(name: string, ready: boolean): void {
  const done = useRef(false);
  useEffect(() => {
    if (!ready || done.current) return;
    done.current = true;
    requestAnimationFrame(() => performance.mark(name));
  }, [ready]);
}
