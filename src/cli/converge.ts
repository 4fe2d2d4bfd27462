// After desired state changed: with a daemon, ask it to act (and with
// --wait, watch the store until the services are converged); without one,
// converge in-process once, like `docker compose up -d`, under the converge
// lock so it never runs beside a daemon.
import { serviceStatuses } from '../api/status.js';
import { connectDaemon } from '../daemon/client.js';
import { takeConvergeLock } from '../daemon/daemon.js';
import { CarteError } from '../errors.js';
import { networkAccess } from '../model/access.js';
import type { Membership } from '../model/instances.js';
import { describeWait } from '../model/wait.js';
import { rulesFor } from '../policy/policy.js';
import { Reconciler } from '../reconciler/reconciler.js';
import type { Context } from './context.js';
import { linuxDriver } from './linux.js';
import { write } from './output.js';

export interface ConvergeOptions {
  wait: boolean;
  timeoutMs: number;
  /** Services to wait for (default: all). */
  services?: string[];
  /**
   * Services the command named, the only ones an in-process converge acts on
   * (default: the services to wait for). Others are left to the next command
   * or a daemon: one broken service never holds up a command about another.
   */
  scope?: string[];
  /** Stop grace periods of the services the command deleted. */
  graces?: Record<string, number>;
}

export async function convergeAfterChange(ctx: Context, opts: ConvergeOptions): Promise<void> {
  const client = await connectDaemon(ctx.home);
  if (client) {
    await client.post('/v1/reconcile');
    if (opts.wait) await waitConverged(ctx, opts);
    return;
  }
  if (process.getuid?.() !== 0) {
    ctx.log.warn('stored; no carte daemon is running and this is not root, so nothing was started (run "carte daemon" as root)');
    return;
  }
  let lock: Awaited<ReturnType<typeof takeConvergeLock>>;
  try {
    lock = await takeConvergeLock(ctx.home);
  } catch (e) {
    // Another command converges this home now (e.g. one waiting out a long stop grace): the change
    // is stored, and is not this command's to force through beside it.
    if ((e as CarteError).code !== 'conflict') throw e;
    ctx.log.warn(`stored; not converged now: ${(e as CarteError).message}. Run the command again when it is done, or run "carte daemon"`);
    if (opts.wait) await waitConverged(ctx, opts);
    return;
  }
  try {
    const store = ctx.store();
    const mark = (await store.read()).nextEventSeq;
    const driver = await linuxDriver(ctx, { underPolicy: true });
    const scope = new Set(opts.scope ?? opts.services ?? []);
    const policy = await ctx.policy();
    const reconciler = new Reconciler({
      store, driver, log: ctx.log, scope, graces: opts.graces, secrets: ctx.vault(),
      hostCopyPrefixes: (source) => rulesFor(policy, source).rules.builds.hostCopyPrefixes,
    });
    let membership: Membership | null = null;
    reconciler.onMembership((m) => (membership = m));
    // With --wait, keep converging (checks, rollouts) until the services are ready, not only until nothing is left to start.
    const ready = async () => !opts.wait || (await convergedNow(ctx, opts)).length === 0;
    const result = await reconciler.converge(opts.timeoutMs, ready);
    // The daemon's gateway keeps service addresses and network access in step; without one, at least
    // those of deleted services must go (the last delete leaves none behind), and allowFrom holds
    // between instances (no gateway: nothing is published).
    const m = membership as Membership | null;
    await driver.setServiceAddresses([...new Set(Object.values(m?.addresses ?? {}))].sort());
    if (m) await driver.setNetworkAccess(networkAccess(m, [], (source) => (source === null ? policy.rules : rulesFor(policy, source).rules).network));
    const data = await store.read();
    for (const e of data.events.filter((ev) => ev.seq >= mark && /^Instance|Failed$/.test(ev.reason))) {
      write(`${e.type === 'Warning' ? 'warning: ' : ''}${e.message}`);
    }
    for (const a of result.actions) if (a.kind === 'wait') write(`${a.service}: ${describeWait(a.service, a.cause, Date.now())}`);
  } finally {
    await lock.release();
  }
  if (opts.wait) await waitConverged(ctx, opts);
}

/** The services of `opts.services` that are not converged now. */
async function convergedNow(ctx: Context, opts: ConvergeOptions) {
  const statuses = serviceStatuses(await ctx.store().read(), Date.now()).filter((s) => !opts.services || opts.services.includes(s.name));
  return statuses.filter((s) => s.phase !== 'Converged' && s.phase !== 'Idle' && s.phase !== 'Stopped');
}

/** Polls the store until the services are converged; fails with their status after the timeout. */
export async function waitConverged(ctx: Context, opts: ConvergeOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const pending = await convergedNow(ctx, opts);
    if (!pending.length) return;
    if (Date.now() > deadline) {
      throw new CarteError('driver', `not converged after ${Math.round(opts.timeoutMs / 1000)}s`, {
        details: pending.map((s) => `service/${s.name}: ${s.ready}/${s.desired} ready, ${s.phase}${s.reason ? `: ${s.reason}` : ''}`),
      });
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}
