// What operators do: start, stop, restart, scale, rollback, sync — the same
// store operations the CLI runs (src/api/), then a nudge to the reconciler.
// Each is audited with its result by the server's recorder.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { rollbackService } from '../api/rollback.js';
import { restartService, scaleService, setSuspended } from '../api/service-ops.js';
import { rulesFor } from '../policy/policy.js';
import { actionOf, HttpError } from './guard.js';
import type { Caller, WebDeps } from './deps.js';
import type { Recorder } from './server.js';
import type { ActionResult } from './types.js';

export function actionRoutes(app: FastifyInstance, deps: WebDeps, record: Recorder): void {
  /** Runs one action, audits ok or failed (with the error's message), and answers as the CLI would say it. */
  const act = async (req: FastifyRequest, run: (name: string, by: string) => Promise<string>): Promise<ActionResult> => {
    const caller = req.caller as Caller;
    const what = actionOf(req.url)!;
    const name = (req.params as { name?: string }).name ?? '';
    try {
      const message = await run(name, `${caller.via} (${caller.principal.name})`);
      deps.trigger();
      await record(caller.principal, caller.via, what.action, what.target, 'ok', message);
      return { ok: true, message };
    } catch (e) {
      await record(caller.principal, caller.via, what.action, what.target, 'failed', (e as Error).message);
      throw e;
    }
  };
  const now = () => new Date(deps.now());

  app.post('/api/services/:name/stop', (req) => act(req, async (name, by) =>
    `service/${name} ${(await setSuspended(deps.store, name, true, now(), by)) ? 'stopped' : 'already stopped'}`));

  app.post('/api/services/:name/start', (req) => act(req, async (name, by) =>
    `service/${name} ${(await setSuspended(deps.store, name, false, now(), by)) ? 'started' : 'already started'}`));

  app.post('/api/services/:name/restart', (req) => act(req, async (name) =>
    `service/${name} restarting (revision ${await restartService(deps.store, name, now())})`));

  app.post('/api/services/:name/scale', (req) => act(req, async (name) => {
    const replicas = (req.body as { replicas?: unknown } | undefined)?.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0 || replicas > 1000) {
      throw new HttpError(400, `replicas takes a number from 0 to 1000, got ${JSON.stringify(replicas ?? null)}`);
    }
    // Held to the policy's replica limits of the service's source, as `carte scale` is.
    const r = await scaleService(deps.store, name, replicas, now(), (source) => rulesFor(deps.admission.policy, source).rules.replicas);
    if (!r) return `service/${name} already has ${replicas} replicas`;
    const note = r.source !== 'cli' ? ` (it belongs to source ${r.source}: its next sync puts the manifests' replicas back)` : '';
    return `service/${name} scaled ${r.from} → ${replicas}${note}`;
  }));

  app.post('/api/services/:name/rollback', (req) => act(req, async (name) => {
    const to = (req.body as { to?: unknown } | undefined)?.to;
    if (to !== undefined && to !== null && (typeof to !== 'number' || !Number.isInteger(to) || to < 1)) {
      throw new HttpError(400, `to takes a revision number, got ${JSON.stringify(to)}`);
    }
    // Admitted again under today's policy, as `carte rollback` does.
    const r = await rollbackService(deps.store, name, { to: typeof to === 'number' ? to : undefined, now: () => new Date(deps.now()), admission: deps.admission });
    const note = r.source !== 'cli' ? ` (it belongs to source ${r.source}: its next sync puts the spec of its manifests back)` : '';
    return `service/${name} rolled back to revision ${r.to} (now revision ${r.revision})${note}`;
  }));

  app.post('/api/sync', (req) => act(req, async () => {
    const r = await deps.sync();
    if (!r.sources.length) return 'no sources to sync: the daemon watches no folder or Git repository';
    return r.sources.map((s) => `${s.id}: ${s.ok ? 'synced' : 'refused'}${s.lines.length ? `: ${s.lines.join('; ')}` : ''}`).join('\n');
  }));
}
