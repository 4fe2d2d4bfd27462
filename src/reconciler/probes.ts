// One health check, bounded: each kind ends by its timeout whatever the
// instance does, and leaves nothing open.
//   http  2xx–3xx; the status line is all it reads: the body is never read
//         and the socket is destroyed (a server streaming for ever, or one
//         that accepts and never answers, costs one socket for `timeout`);
//   tcp   a connect, closed at once;
//   exec  exit 0; on timeout the driver kills the command's whole process
//         tree (its session and descendants) and the probe resolves once
//         they are gone, so one instance never has two probes alive.
// A probe's output is never read: it cannot reach the daemon's log.
import http from 'node:http';
import net from 'node:net';
import type { Driver } from '../drivers/driver.js';
import type { HealthCheck } from '../schema/types.js';
import { safeTimeout } from '../util/timers.js';

export interface ProbeTarget {
  name: string;
  ip: string | null;
}

/** Runs one check; resolves to null when healthy, else why not. Never rejects, never outlives timeoutMs by more than the kill. */
export type Prober = (check: HealthCheck, target: ProbeTarget, timeoutMs: number, signal?: AbortSignal) => Promise<string | null>;

const timedOut = (ms: number) => `timed out after ${ms} ms`;

/** An AbortController that aborts at `timeoutMs` or when `outer` aborts, and says which. */
function deadline(timeoutMs: number, outer?: AbortSignal): { signal: AbortSignal; timedOut: () => boolean; clear: () => void } {
  const controller = new AbortController();
  let expired = false;
  const timer = safeTimeout(() => {
    expired = true;
    controller.abort();
  }, timeoutMs);
  const onOuter = () => controller.abort();
  outer?.addEventListener('abort', onOuter, { once: true });
  if (outer?.aborted) controller.abort();
  return {
    signal: controller.signal,
    timedOut: () => expired,
    clear: () => {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}

export function makeProber(driver: Pick<Driver, 'exec'>): Prober {
  return async (check, target, timeoutMs, signal) => {
    if (check.kind !== 'exec' && !target.ip) return 'no address';
    const d = deadline(timeoutMs, signal);
    try {
      switch (check.kind) {
        case 'http':
          return await httpCheck(target.ip!, check.port, check.path, d.signal, () => (d.timedOut() ? timedOut(timeoutMs) : 'aborted'));
        case 'tcp':
          return await tcpCheck(target.ip!, check.port, d.signal, () => (d.timedOut() ? timedOut(timeoutMs) : 'aborted'));
        case 'exec': {
          const code = await driver.exec(target.name, check.command, { signal: d.signal, reapAll: true });
          if (d.timedOut()) return timedOut(timeoutMs);
          if (d.signal.aborted) return 'aborted';
          return code === 0 ? null : `exited with code ${code}`;
        }
      }
    } catch (e) {
      return d.timedOut() ? timedOut(timeoutMs) : (e as Error).message;
    } finally {
      d.clear();
    }
  };
}

/**
 * The one answer of a check: the first of a result, an error or the abort
 * wins; `close` (destroy the request or socket) runs exactly once with it.
 */
function settle(signal: AbortSignal, why: () => string, close: () => void, resolve: (r: string | null) => void): (r: string | null) => void {
  let done = false;
  const onAbort = () => finish(why());
  function finish(result: string | null) {
    if (done) return;
    done = true;
    signal.removeEventListener('abort', onAbort);
    close();
    resolve(result);
  }
  if (signal.aborted) queueMicrotask(onAbort);
  else signal.addEventListener('abort', onAbort, { once: true });
  return finish;
}

function httpCheck(ip: string, port: number, path: string, signal: AbortSignal, why: () => string): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port, path, agent: false, headers: { 'user-agent': 'carte-health', connection: 'close' } }, (res) => {
      const code = res.statusCode ?? 0;
      res.destroy();
      finish(code >= 200 && code < 400 ? null : `HTTP ${code}`);
    });
    // Whatever the outcome, nothing stays open: no body is read, no socket kept.
    const finish = settle(signal, why, () => req.destroy(), resolve);
    req.on('error', (e) => finish(signal.aborted ? why() : e.message));
  });
}

function tcpCheck(ip: string, port: number, signal: AbortSignal, why: () => string): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: ip, port });
    const finish = settle(signal, why, () => socket.destroy(), resolve);
    socket.once('connect', () => finish(null));
    socket.once('error', (e) => finish(signal.aborted ? why() : e.message));
  });
}
