// What viewers read: services, one service in detail, metrics, logs, alerts,
// live events (SSE), and for admins the audit.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Driver } from '../drivers/driver.js';
import { INSTANCE_NAME } from '../drivers/linux/create.js';
import { NotFoundError } from '../errors.js';
import { EventFeed, resumeAfter, sseMessage } from './events.js';
import { HttpError } from './guard.js';
import type { WebDeps } from './deps.js';
import type { AlertsResponse, AuditResponse, LogsResponse, ServiceDetail, ServiceRow } from './types.js';
import { DETAIL_EVENTS, EMPTY_SNAPSHOT, eventRow, instanceRows, markers, serviceAlerts, serviceEvents, serviceRows } from './views.js';
import { seriesQuery, serviceSeries } from './series.js';

/** Seconds between SSE comments that keep idle connections (and proxies) open. */
const SSE_HEARTBEAT_MS = 15_000;
/** How often an open event stream checks that its user or token still holds (and before each event). */
export const SSE_RECHECK_MS = 10_000;

async function hasPreviousLog(driver: Pick<Driver, 'logs'>, name: string): Promise<boolean> {
  try {
    for await (const _ of driver.logs(name, { previous: true, tail: 0 })) break;
    return true;
  } catch {
    return false;
  }
}

function intParam(value: unknown, name: string, dflt: number, min: number, max: number): number {
  if (value === undefined || value === '') return dflt;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `${name} takes a whole number from ${min} to ${max}, got "${String(value)}"`);
  return n;
}

export function readRoutes(app: FastifyInstance, deps: WebDeps, feed: EventFeed, stillHolds: (req: FastifyRequest) => Promise<boolean>): void {
  const latest = () => deps.metrics?.latest() ?? EMPTY_SNAPSHOT;

  app.get('/api/services', async (): Promise<ServiceRow[]> => serviceRows(await deps.store.readShared(), latest(), deps.now()));

  app.get('/api/services/:name', async (req): Promise<ServiceDetail> => {
    const { name } = req.params as { name: string };
    const data = await deps.store.readShared();
    const row = serviceRows(data, latest(), deps.now()).find((s) => s.name === name);
    if (!row) throw new HttpError(404, `service "${name}" not found`);
    const observed = (await deps.driver.list()).filter((i) => i.service === name);
    const withPrevious = new Set<string>();
    for (const i of observed) if (await hasPreviousLog(deps.driver, i.name)) withPrevious.add(i.name);
    const events = serviceEvents(data, name);
    return {
      service: row,
      instances: instanceRows(data, observed, latest(), name, withPrevious),
      events: events.slice(-DETAIL_EVENTS).map(eventRow),
      markers: markers(events),
      alerts: serviceAlerts(deps.alerts.recent(), name, data),
    };
  });

  app.get('/api/metrics/latest', async () => latest());

  app.get('/api/metrics/series', async (req) => {
    const q = seriesQuery(req.query as Record<string, unknown>, deps.now());
    if (!deps.metrics) return { t: [], v: [], stepMs: 0 };
    // A service's CPU, memory, network and I/O: the sum of its instances' series.
    if (q.kind === 'service' && !Object.hasOwn(SERVICE_FIELDS, q.metric)) return serviceSeries(deps.metrics, q, await deps.store.readShared());
    return deps.metrics.series(q);
  });

  app.get('/api/instances/:name/logs', async (req): Promise<LogsResponse> => {
    const { name } = req.params as { name: string };
    const query = req.query as Record<string, unknown>;
    const tail = intParam(query.tail, 'tail', 200, 0, 5000);
    const previous = query.previous === '1' || query.previous === 'true';
    // Only what could be an instance's name reaches the driver (no '/', no '..').
    if (!INSTANCE_NAME.test(name)) throw new HttpError(404, `instance "${name}" not found`);
    if (!previous && !(await deps.driver.list()).some((i) => i.name === name)) {
      if (await hasPreviousLog(deps.driver, name)) throw new HttpError(404, `instance "${name}" not found; its previous life's output is kept: ask with previous=1`);
      throw new HttpError(404, `instance "${name}" not found`);
    }
    const lines: string[] = [];
    try {
      for await (const line of deps.driver.logs(name, { tail, previous })) lines.push(line.text);
    } catch (e) {
      if (e instanceof NotFoundError) throw new HttpError(404, previous ? `instance "${name}" has no previous life's output kept` : e.message);
      throw e;
    }
    return { instance: name, lines };
  });

  app.get('/api/alerts', async (): Promise<AlertsResponse> => ({ active: deps.alerts.active(), recent: deps.alerts.recent() }));

  app.get('/api/audit', async (req): Promise<AuditResponse> => {
    const limit = intParam((req.query as Record<string, unknown>).limit, 'limit', 500, 1, 20_000);
    return { entries: await deps.audit.list({ limit }) };
  });

  app.get('/api/events/stream', async (req, reply) => {
    const after = resumeAfter(req.headers['last-event-id'], (req.query as Record<string, unknown>).lastEventId);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // Reconnect after 2 s when the daemon restarts; an EventSource sends Last-Event-ID by itself.
    res.write('retry: 2000\n\n');
    let unsubscribe: () => void = () => {};
    let heartbeat: NodeJS.Timeout | undefined;
    let recheck: NodeJS.Timeout | undefined;
    let ended = false;
    const stop = () => {
      ended = true;
      clearInterval(heartbeat);
      clearInterval(recheck);
      unsubscribe();
    };
    // Checks and writes run one after another, so events keep their order and
    // none is sent once the user is removed (or changed) or the token is.
    let chain = Promise.resolve();
    const checked = (then: () => void) => {
      chain = chain.then(async () => {
        if (ended) return;
        const holds = await stillHolds(req).catch(() => false);
        if (ended) return;
        if (holds) then();
        else {
          stop();
          res.end();
        }
      });
    };
    try {
      unsubscribe = await feed.subscribe((rows) => checked(() => {
        for (const r of rows) res.write(sseMessage(r));
      }), after);
    } catch (e) {
      // The answer has begun: end it; the EventSource tries again after `retry`.
      deps.log.warn({ err: (e as Error).message }, 'could not start an event stream');
      res.end();
      return;
    }
    if (ended) {
      unsubscribe(); // a check ended it while it subscribed
      return;
    }
    heartbeat = setInterval(() => res.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    recheck = setInterval(() => checked(() => {}), SSE_RECHECK_MS);
    if (req.raw.destroyed) stop();
    else res.on('close', stop);
  });
}

/** ServiceSample's numeric fields: a service's own series, from the gateway. */
const SERVICE_FIELDS: Record<string, true> = { connections: true, requestsPerSec: true, errorsPerSec: true, latencyP50Ms: true, latencyP95Ms: true, latencyP99Ms: true };
