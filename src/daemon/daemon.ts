// `carte daemon`: the long-running composition root. It holds the converge
// lock for its whole life (so `carte apply` without a daemon never converges
// beside it), sweeps what a crash left half-made, adopts what runs, watches
// the store and its sources, and reconciles for ever.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LinuxDriver } from '../drivers/linux/driver.js';
import { CarteError } from '../errors.js';
import type { Logger } from '../log.js';
import { Reconciler } from '../reconciler/reconciler.js';
import { FolderSource } from '../reconciler/sources/folder.js';
import { GitSource, type GitSourceOptions } from '../reconciler/sources/git.js';
import { Store } from '../store/store.js';
import { hostRealPath } from '../policy/facts.js';
import { LivePolicy } from '../policy/live.js';
import { rulesFor } from '../policy/policy.js';
import { checkStoredServices } from '../policy/recheck.js';
import { DiskQuota } from '../reconciler/disk-quota.js';
import { acquireLock, type HeldLock } from '../util/lock.js';
import { withDeadline } from '../util/timers.js';
import { processAlive } from '../util/process.js';
import { Gateway } from '../gateway/gateway.js';
import { Scaler } from '../scaler/scaler.js';
import { recordEvent, type StateData } from '../store/state.js';
import type { SecretVault } from '../secrets/vault.js';
import type { SourceContext } from '../reconciler/sources/record.js';
import { AlertEngine } from '../alerts/engine.js';
import { defaultAlertsConfig, type AlertsConfig } from '../alerts/config.js';
import type { AlertsView } from '../alerts/types.js';
import { WebhookSender } from '../alerts/webhook.js';
import { Collector } from '../metrics/collector.js';
import { HostReader } from '../metrics/host.js';
import { PERSIST_FILE } from '../metrics/persist.js';
import { renderPrometheus } from '../metrics/prometheus.js';
import { parseSeriesQuery } from '../metrics/query.js';
import type { MetricsView } from '../metrics/types.js';
import { instanceRecords } from '../api/status.js';
import { ApiServer, RawReply } from './api.js';
import { FileAuthStore } from '../auth/store.js';
import { FileAuditLog } from '../audit/log.js';
import type { HttpAddress } from '../web/address.js';
import { DEFAULT_STATIC_DIR, WebServer } from '../web/server.js';
import { daemonPaths } from './paths.js';

/** The daemon exits within this long of SIGTERM, whatever is in flight. */
export const SHUTDOWN_MS = 5000;

/** Memory kept for the host and carte by default when the scaler caps scale-ups (its --memory-reserve). */
export const DEFAULT_MEMORY_RESERVE = 512 * 2 ** 20;

export interface DaemonOptions {
  home: string;
  log: Logger;
  driver: LinuxDriver;
  watch: string[];
  git: GitSourceOptions[];
  resyncMs?: number;
  /** Bind address of published ports that name none (default all interfaces). */
  publishAddress?: string;
  /** Scaler settings: sampling interval, memory kept for the host and carte. */
  scaler?: { intervalMs?: number; memoryReserveBytes?: number };
  /** The server policy every source's manifests are admitted under, reloaded on change (default: the built-in one, fixed). */
  policy?: LivePolicy;
  /** Gateway timings (tests shorten them). */
  gateway?: { holdMs?: number; retryBindMs?: number; udpIdleMs?: number };
  /** How often services' disk use is measured against their quota (default 30 s). */
  diskIntervalMs?: number;
  /** Secret values (CARTE_HOME/secrets) and the key that opens them: for instances and SealedSecrets. */
  vault?: SecretVault;
  /** Alert rules and webhooks (the daemon config's `alerts:` section; default: the built-in rules, no webhooks). */
  alerts?: AlertsConfig;
  /** Metrics sampling interval (default 10 s) and how often the history is saved (default 1 h). */
  metrics?: { intervalMs?: number; persistEveryMs?: number };
  /** The dashboard's address and the flag or variable it came from (for errors); null or absent: no dashboard. */
  http?: { address: HttpAddress; flag: string } | null;
}

export interface RunningDaemon {
  reconciler: Reconciler;
  gateway: Gateway;
  scaler: Scaler;
  /** Alerts firing and recently resolved (src/alerts/). */
  alerts: AlertsView;
  /** The metrics collector (src/metrics/). */
  metrics: MetricsView;
  /** Where the dashboard listens (the port bound when 0 was asked), or null. */
  http: HttpAddress | null;
  stop(): Promise<void>;
}

/**
 * Takes the converge lock. Its holder writes its pid beside it, so a holder
 * killed with SIGKILL is recognised at once (its pid is gone) and its lock
 * taken over, instead of waiting out the lock's stale time.
 */
export async function takeConvergeLock(home: string): Promise<HeldLock> {
  const { convergeLock, convergePid } = daemonPaths(home);
  for (let attempt = 0; ; attempt++) {
    try {
      const lock = await acquireLock(convergeLock, { timeoutMs: 0 });
      fs.writeFileSync(convergePid, `${process.pid}\n`);
      return lock;
    } catch (e) {
      if ((e as CarteError).code !== 'store-locked') throw e;
      const holder = Number((fs.existsSync(convergePid) ? fs.readFileSync(convergePid, 'utf8') : '').trim() || 0) || null;
      if (attempt === 0 && holder !== null && !processAlive(holder)) {
        fs.rmSync(`${convergeLock}.lock`, { recursive: true, force: true });
        continue;
      }
      throw new CarteError('conflict', `another carte process (pid ${holder ?? '?'}: a daemon, or a carte apply converging) holds ${convergeLock}; only one may converge CARTE_HOME at a time`);
    }
  }
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const { home, log, driver } = opts;
  const lock = await takeConvergeLock(home);
  const store = Store.open(home, { onRecover: (i) => log.error({ generation: i.generation, reason: i.reason, damagedFile: i.damagedFile }, 'state file was damaged; recovered from a good generation') });
  const started = performance.now();
  const swept = await driver.gc();
  if (swept.removed.length) log.info({ removed: swept.removed }, 'swept leftovers at start');
  for (const f of swept.failures) log.warn({ step: f.step, resource: f.resource, err: f.error }, 'could not sweep');

  const live = opts.policy ?? LivePolicy.fixed();
  const gateway = new Gateway({
    log: log.child({ component: 'gateway' }),
    defaultAddress: opts.publishAddress ?? '0.0.0.0',
    ...opts.gateway,
    setServiceAddresses: (ips) => driver.setServiceAddresses(ips),
    serviceSockets: driver.serviceSockets,
    setNetworkAccess: (access) => driver.setNetworkAccess(access),
    // Read at each update: a reloaded policy counts at once.
    accessRules: (source) => (source === null ? live.current.rules : rulesFor(live.current, source).rules).network,
    wake: async (service) => {
      await wakeService(store, service);
      reconciler.trigger();
    },
    hurry: (service) => reconciler.hurry(service),
    onPortErrors: (errors) => void recordPortErrors(store, errors).catch((e: Error) => log.error({ err: e.message }, 'could not record port errors')),
  });
  const reconciler = new Reconciler({
    store, driver, log, resyncMs: opts.resyncMs, beforeStop: (i, grace) => gateway.drain(i, grace), secrets: opts.vault,
    hostCopyPrefixes: (source) => rulesFor(live.current, source).rules.builds.hostCopyPrefixes,
  });
  const scaler = new Scaler({
    store, driver, log: log.child({ component: 'scaler' }), activity: (s) => gateway.activity(s), trigger: () => reconciler.trigger(),
    intervalMs: opts.scaler?.intervalMs, windowFile: daemonPaths(home).scalerWindow, totalMemoryBytes: os.totalmem(), memoryReserveBytes: opts.scaler?.memoryReserveBytes ?? DEFAULT_MEMORY_RESERVE,
  });
  // Per-service disk quotas from each service's source section of the policy.
  const diskQuota = new DiskQuota({
    driver, store, log: log.child({ component: 'disk' }), intervalMs: opts.diskIntervalMs,
    evict: (instance, reason) => reconciler.evict(instance, reason),
    quotaOf: async (service) => {
      const source = (await store.readShared()).services[service]?.source;
      return source === undefined ? null : rulesFor(live.current, source).rules.disk.perServiceBytes;
    },
  });
  reconciler.onMembership((m) => {
    void gateway.update(m);
    scaler.observe(m);
    diskQuota.observe(m);
  });
  const trigger = () => reconciler.trigger();
  // The collector samples the instances the store knows (their restarts and readiness with them),
  // the gateway's services and the host; each instance with its own deadline, so none holds up a round.
  const collector = new Collector({
    log: log.child({ component: 'metrics' }),
    stats: (name) => driver.stats(name),
    targets: async () => {
      const data = await store.readShared();
      const records = instanceRecords(data as StateData);
      return {
        instances: Object.entries(records).map(([name, r]) => ({ name, service: r.service, restarts: r.restarts ?? 0, ready: r.ready === true })).sort((a, b) => (a.name < b.name ? -1 : 1)),
        services: Object.keys(data.services).sort(),
      };
    },
    traffic: (service) => gateway.traffic(service),
    host: new HostReader(home),
    intervalMs: opts.metrics?.intervalMs,
    persistFile: path.join(home, PERSIST_FILE),
    persistEveryMs: opts.metrics?.persistEveryMs,
  });
  // Alerts read the store and the collector's latest sample on their own interval; webhooks are
  // posted in the background by their own workers: neither ever holds up the loop.
  const alertsConfig = opts.alerts ?? defaultAlertsConfig();
  const webhooks = alertsConfig.webhooks.length ? new WebhookSender({ webhooks: alertsConfig.webhooks, log: log.child({ component: 'webhooks' }) }) : null;
  const alerts = new AlertEngine({
    // The collector's MetricsView: memory-high reads its latest sample.
    metrics: collector,
    store, log: log.child({ component: 'alerts' }), config: alertsConfig, webhooks,
    scalerReasons: () => Object.fromEntries(Object.entries(scaler.current()).map(([s, st]) => [s, st.decision.reason])),
  });
  // Read at each admission: a reloaded policy counts from the next sync on.
  const admission: SourceContext = { get policy() { return live.current; }, home, realpath: hostRealPath, vault: opts.vault };
  const sources: Array<FolderSource | GitSource> = [
    ...opts.watch.map((dir) => new FolderSource(dir, store, log, trigger, admission)),
    ...opts.git.map((g) => new GitSource(g, home, store, log, trigger, admission)),
  ];
  const api = new ApiServer(daemonPaths(home).socket, log);
  api.route('POST', '/v1/reconcile', async () => {
    trigger();
    return { triggered: true };
  });
  const syncAll = async () => ({ sources: await Promise.all(sources.map(async (s) => ({ id: s.id, ...(await s.sync()) }))) });
  api.route('POST', '/v1/sync', syncAll);
  api.route('GET', '/v1/scaler', async () => scaler.current());
  api.route('GET', '/v1/gateway', async () => {
    const services = Object.keys((await store.readShared()).services).sort();
    return { listening: gateway.listening(), activity: Object.fromEntries(services.map((s) => [s, gateway.activity(s)])) };
  });
  api.route('POST', '/v1/webhook', syncAll);
  api.route('GET', '/v1/alerts', async () => ({ active: alerts.active(), recent: alerts.recent() }));
  api.route('GET', '/v1/metrics/latest', async () => collector.latest());
  api.route('GET', '/v1/metrics/series', async (_body, query) => collector.series(parseSeriesQuery(query, Date.now())));
  api.route('GET', '/v1/metrics/known', async () => ({ instance: collector.known('instance'), service: collector.known('service'), host: collector.known('host') }));
  api.route('GET', '/v1/metrics', async () => {
    const r = await renderPrometheus(collector, alerts);
    return new RawReply(r.contentType, r.body);
  });

  // A new policy: every source is admitted again under it (a refused set keeps its last good one
  // running, as for any bad manifest), and stored services that no longer fit it are named.
  live.onReload((outcome) => {
    if (outcome.kind === 'unchanged') return;
    void (async () => {
      if (outcome.kind === 'refused') {
        log.error({ problems: outcome.lines }, 'the server policy file changed but is refused; the policy in force stays');
        await store.update((data) => recordEvent(data, new Date(), { type: 'Warning', object: 'policy', reason: 'PolicyRefused', message: `${outcome.lines.join('; ')}; the policy in force stays` }));
        return;
      }
      log.info({ policy: outcome.file ?? 'built-in' }, 'server policy reloaded');
      await store.update((data) => {
        const now = new Date();
        recordEvent(data, now, { type: 'Normal', object: 'policy', reason: 'PolicyReloaded', message: `read ${outcome.file ?? 'the built-in policy'}; every source is admitted again under it` });
        for (const v of checkStoredServices(data, admission)) {
          recordEvent(data, now, { type: 'Warning', object: `service/${v.service}`, reason: 'PolicyViolation', message: `no longer fits the server policy: ${v.problems.join('; ')}; it keeps running as applied until its manifest changes` });
        }
      });
      await Promise.all(sources.map((s) => s.readmit()));
    })().catch((e: Error) => log.error({ err: e.message }, 'could not act on the reloaded policy'));
  });
  // The dashboard (src/web/): the same store operations as the CLI, behind users, tokens and the audit.
  const web = opts.http ? new WebServer({
    log: log.child({ component: 'web' }), store, auth: new FileAuthStore(home), audit: new FileAuditLog(home), alerts,
    metrics: collector, prometheus: () => renderPrometheus(collector, alerts),
    driver, sync: syncAll, trigger, admission, staticDir: DEFAULT_STATIC_DIR, now: Date.now,
  }) : null;
  let http: HttpAddress | null = null;
  if (web && opts.http) {
    // A taken port stops the daemon here, naming the flag, before it starts anything.
    try {
      http = await web.listen(opts.http.address, opts.http.flag);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }
  const unwatchPolicy = live.watch();

  // The state file is replaced whole on every write: a rename in CARTE_HOME.
  const storeWatch = fs.watch(home, (_e, name) => {
    if (name === 'state.json') trigger();
  });
  await api.listen();
  reconciler.start();
  await reconciler.pass();
  scaler.start(); // the first pass: adopt what runs, act on the difference
  diskQuota.start();
  await collector.start();
  await alerts.start();
  log.info({ ms: Math.round(performance.now() - started), sources: sources.map((s) => s.id), policy: live.current.file ?? 'built-in', dashboard: http ? `http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${http.port}/` : 'off' }, 'daemon ready');
  for (const s of sources) await s.start();

  return {
    reconciler,
    gateway,
    scaler,
    alerts,
    metrics: collector,
    http,
    async stop() {
      // Whatever is in flight, the daemon is gone within SHUTDOWN_MS: nothing here waits on the
      // world for long. Instances keep running; actions half-way are finished by the next start.
      const started = performance.now();
      const step = (what: string, p: Promise<unknown>, ms: number) =>
        withDeadline(p.then(() => true), ms, false).then((ok) => ok || log.warn({ step: what, ms }, 'shutdown step cut short'));
      storeWatch.close();
      unwatchPolicy();
      if (web) await step('close dashboard', web.close(), 500);
      await step('stop sources', Promise.all(sources.map((s) => s.stop())), 1000);
      await step('stop scaler', scaler.stop(), 1000);
      await step('stop disk quota', diskQuota.stop(), 500);
      await step('stop alerts', alerts.stop(), 500);
      await step('stop metrics and save their history', collector.stop(), 800);
      if (webhooks) await step('stop webhooks', webhooks.close(), 300);
      await step('stop reconciler', reconciler.stop({ abandon: true, flushTimeoutMs: 1500 }), 2000);
      await step('close gateway', gateway.close(), 1000);
      await step('end the socket binder', driver.serviceSockets.close(), 500);
      await step('close api', api.close(), 500);
      await step('release lock', lock.release(), 500);
      log.info({ ms: Math.round(performance.now() - started) }, 'daemon stopped; instances keep running');
    },
  };
}

/** Activation from zero: one instance (or autoscale.min) for a service asleep at zero. */
export async function wakeService(store: Store, service: string, now = new Date()): Promise<void> {
  await store.update((data) => {
    const s = data.services[service];
    const a = s?.revision.spec.autoscale;
    if (!s || !a || s.suspended) return;
    const replicas = Math.max(1, a.min);
    if ((s.autoscaled?.replicas ?? s.revision.spec.replicas) >= replicas) return;
    s.autoscaled = { replicas, at: now.toISOString(), reason: 'a connection arrived while it slept at zero' };
    recordEvent(data, now, { type: 'Normal', object: `service/${service}`, reason: 'Woken', message: `0→${replicas}: a connection arrived while it slept at zero` });
  });
}

/** Writes the gateway's port problems, with an event when one appears or clears. */
export async function recordPortErrors(store: Store, errors: Record<string, string>, now = new Date()): Promise<void> {
  await store.update((data: StateData) => {
    const before = data.portErrors ?? {};
    for (const [service, problem] of Object.entries(errors)) {
      if (before[service] !== problem) recordEvent(data, now, { type: 'Warning', object: `service/${service}`, reason: 'PortUnavailable', message: problem });
    }
    for (const service of Object.keys(before)) {
      if (!(service in errors) && data.services[service]) recordEvent(data, now, { type: 'Normal', object: `service/${service}`, reason: 'PortServed', message: 'every port of it is served again' });
    }
    data.portErrors = errors;
  });
}
