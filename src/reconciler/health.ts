// Health checks: http (2xx–3xx), tcp (connect), exec (exit 0), each with an
// interval, timeout, failureThreshold and startPeriod. One check result per
// instance is kept in memory:
//   ready      the last check passed (readiness: the gateway sends traffic);
//   unhealthy  failureThreshold checks in a row failed after the start period
//              (liveness: the reconciler replaces the instance).
// An instance without a health check is ready while it runs.
import http from 'node:http';
import net from 'node:net';
import type { Driver, ObservedInstance } from '../drivers/driver.js';
import type { HealthSpec } from '../schema/types.js';

export interface HealthState {
  ready: boolean;
  unhealthy: boolean;
  consecutiveFailures: number;
  lastCheckAt: number | null;
  lastError: string | null;
  /** The instance start this state belongs to; a restarted instance starts over. */
  startedAt: string | null;
}

export type Prober = (check: HealthSpec['check'], target: { name: string; ip: string | null }, timeoutMs: number) => Promise<string | null>;

/** Runs one check; resolves to null when healthy, else why not. */
export function makeProber(driver: Pick<Driver, 'exec'>): Prober {
  return async (check, target, timeoutMs) => {
    switch (check.kind) {
      case 'http':
        if (!target.ip) return 'no address';
        return httpCheck(target.ip, check.port, check.path, timeoutMs);
      case 'tcp':
        if (!target.ip) return 'no address';
        return tcpCheck(target.ip, check.port, timeoutMs);
      case 'exec': {
        const timer = new Promise<string>((resolve) => setTimeout(() => resolve(`timed out after ${timeoutMs} ms`), timeoutMs).unref());
        const run = driver.exec(target.name, check.command, {}).then((code) => (code === 0 ? null : `exited with code ${code}`), (e: Error) => e.message);
        return Promise.race([run, timer]);
      }
    }
  };
}

function httpCheck(ip: string, port: number, path: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: ip, port, path, timeout: timeoutMs, agent: false, headers: { 'user-agent': 'carte-health' } }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve(code >= 200 && code < 400 ? null : `HTTP ${code}`);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(`timed out after ${timeoutMs} ms`);
    });
    req.on('error', (e) => resolve(e.message));
  });
}

function tcpCheck(ip: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: ip, port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`timed out after ${timeoutMs} ms`);
    });
    socket.once('error', (e) => resolve(e.message));
  });
}

/** Pure: the next state after a check result. */
export function nextHealth(prev: HealthState, error: string | null, spec: HealthSpec, now: number, startedAt: number): HealthState {
  if (error === null) return { ...prev, ready: true, unhealthy: false, consecutiveFailures: 0, lastCheckAt: now, lastError: null };
  const inStartPeriod = now - startedAt < spec.startPeriodMs;
  const failures = inStartPeriod ? 0 : prev.consecutiveFailures + 1;
  return {
    ...prev,
    // Not ready until a check passes; once ready, it takes failureThreshold failures to lose readiness.
    ready: prev.ready && failures < spec.failureThreshold,
    unhealthy: failures >= spec.failureThreshold,
    consecutiveFailures: failures,
    lastCheckAt: now,
    lastError: error,
  };
}

const fresh = (startedAt: string | null): HealthState => ({ ready: false, unhealthy: false, consecutiveFailures: 0, lastCheckAt: null, lastError: null, startedAt });

export class HealthMonitor {
  private readonly states = new Map<string, HealthState>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly probe: Prober, private readonly clock: () => number = Date.now) {}

  get(name: string): HealthState | undefined {
    return this.states.get(name);
  }

  /** Readiness as the plan and the gateway see it. */
  view(i: ObservedInstance, spec: HealthSpec | null): { ready: boolean; unhealthy: boolean } {
    if (i.state !== 'running') return { ready: false, unhealthy: false };
    if (!spec) return { ready: true, unhealthy: false };
    const s = this.states.get(i.name);
    return s && s.startedAt === i.startedAt ? { ready: s.ready, unhealthy: s.unhealthy } : { ready: false, unhealthy: false };
  }

  /**
   * Checks every running instance whose check is due (or never ran), in
   * parallel; resolves when these checks are done. Returns whether any
   * readiness changed, so the caller can plan again.
   */
  async checkDue(instances: readonly ObservedInstance[], specOf: (i: ObservedInstance) => HealthSpec | null): Promise<boolean> {
    const now = this.clock();
    let changed = false;
    const live = new Set(instances.map((i) => i.name));
    for (const name of this.states.keys()) if (!live.has(name)) this.states.delete(name);
    await Promise.all(instances.map(async (i) => {
      const spec = specOf(i);
      if (!spec || i.state !== 'running') return;
      // A check already running for it (from the other caller): wait for its result rather than skip it.
      const running = this.inFlight.get(i.name);
      if (running) return running;
      let prev = this.states.get(i.name);
      if (!prev || prev.startedAt !== i.startedAt) prev = fresh(i.startedAt);
      if (prev.lastCheckAt !== null && now - prev.lastCheckAt < spec.intervalMs) return;
      const before = prev;
      const check = (async () => {
        const error = await this.probe(spec.check, { name: i.name, ip: i.ip }, spec.timeoutMs);
        const next = nextHealth(before, error, spec, this.clock(), Date.parse(i.startedAt ?? i.createdAt));
        if (next.ready !== before.ready || next.unhealthy !== before.unhealthy || !this.states.has(i.name)) changed = true;
        this.states.set(i.name, next);
      })().finally(() => this.inFlight.delete(i.name));
      this.inFlight.set(i.name, check);
      return check;
    }));
    return changed;
  }
}
