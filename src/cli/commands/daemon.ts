import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SHUTDOWN_MS, startDaemon } from '../../daemon/daemon.js';
import { UsageError } from '../../errors.js';
import { daemonLogger } from '../../log.js';
import type { GitSourceOptions } from '../../reconciler/sources/git.js';
import { parseDuration, parseMemory } from '../../schema/units.js';
import type { Context } from '../context.js';
import { linuxDriver } from '../linux.js';
import { LivePolicy } from '../../policy/live.js';
import { loadAlertsConfig } from '../../alerts/config.js';
import { loadRegistriesConfig } from '../../registry/config.js';
import { httpSetting, parseHttpAddress } from '../../web/address.js';

export interface DaemonOptions {
  watch?: string[];
  git?: string;
  branch: string;
  path: string;
  interval: string;
  resync: string;
  config?: string;
  logLevel: string;
  publishAddress: string;
  metricsInterval: string;
  collectInterval: string;
  diskInterval: string;
  memoryReserve: string;
  http?: string;
}

function duration(flag: string, text: string): number {
  const p = parseDuration(text);
  if (!p.ok) throw new UsageError(`daemon: ${flag}: ${p.message}`);
  return p.value;
}

/** The collector's interval: at least 1 s (each round reads every instance), at most 1 min (the history's minute steps). */
function collectInterval(text: string): number {
  const ms = duration('--collect-interval', text);
  if (ms < 1000 || ms > 60_000) throw new UsageError(`daemon: --collect-interval: ${text} is not between 1s and 1m`);
  return ms;
}

function memory(flag: string, text: string): number {
  const p = parseMemory(text);
  if (!p.ok) throw new UsageError(`daemon: ${flag}: ${p.message}`);
  return p.value;
}

/** Sources from flags and an optional YAML config file: { watch: [dir], git: [{ url, branch, path, interval }] }. */
export function daemonSources(opts: DaemonOptions): { watch: string[]; git: GitSourceOptions[] } {
  const watch = [...(opts.watch ?? [])];
  const git: GitSourceOptions[] = [];
  if (opts.git) git.push({ url: opts.git, branch: opts.branch, path: opts.path, intervalMs: duration('--interval', opts.interval) });
  if (opts.config) {
    let cfg: { watch?: string[]; git?: Array<{ url: string; branch?: string; path?: string; interval?: string }> };
    try {
      cfg = parseYaml(fs.readFileSync(opts.config, 'utf8')) ?? {};
    } catch (e) {
      throw new UsageError(`daemon: cannot read config ${opts.config}: ${(e as Error).message}`);
    }
    const base = path.dirname(path.resolve(opts.config));
    watch.push(...(cfg.watch ?? []).map((d) => path.resolve(base, d)));
    for (const g of cfg.git ?? []) {
      if (!g.url) throw new UsageError(`daemon: ${opts.config}: every git entry needs a url`);
      git.push({ url: g.url, branch: g.branch ?? 'main', path: g.path ?? '.', intervalMs: duration('git interval', g.interval ?? '30s') });
    }
  }
  for (const d of watch) if (!fs.existsSync(d)) throw new UsageError(`daemon: --watch ${d}: no such folder`);
  return { watch, git };
}

export async function daemon(ctx: Context, opts: DaemonOptions): Promise<void> {
  const sources = daemonSources(opts);
  const httpText = httpSetting(opts.http);
  const httpAddress = parseHttpAddress(httpText.text, httpText.from);
  // A bad alerts section stops the daemon here, located, before it takes anything over.
  const alerts = loadAlertsConfig(opts.config);
  const registries = loadRegistriesConfig(opts.config);
  // A broken policy file stops the daemon here, with its located problems: never run with no policy or half of one.
  // Then it is read again on SIGHUP and whenever the file changes (src/policy/live.ts).
  const policy = new LivePolicy(await ctx.policy(), await ctx.policyLocation());
  const log = daemonLogger(opts.logLevel as 'info');
  policy.onError = (e) => log.error({ err: e.message }, 'reading the server policy again failed; the policy in force stays');
  process.on('SIGHUP', () => void policy.reload().catch(policy.onError));
  const driver = await linuxDriver({ ...ctx, log }, { underPolicy: () => policy.current, insecureRegistries: registries.insecure });
  const running = await startDaemon({ home: ctx.home, log, driver, ...sources, policy, resyncMs: duration('--resync', opts.resync), publishAddress: opts.publishAddress,
    scaler: { intervalMs: duration('--metrics-interval', opts.metricsInterval), memoryReserveBytes: memory('--memory-reserve', opts.memoryReserve) },
    diskIntervalMs: duration('--disk-interval', opts.diskInterval),
    vault: ctx.vault(),
    alerts,
    metrics: { intervalMs: collectInterval(opts.collectInterval) },
    http: httpAddress ? { address: httpAddress, flag: httpText.from } : null,
  });
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      // A second signal means now.
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  // Exit within SHUTDOWN_MS of the signal even if a step hangs; and exit for real when done,
  // whatever timers or sockets are still open (probes, held connections).
  setTimeout(() => {
    log.warn({ ms: SHUTDOWN_MS }, 'shutdown took too long; exiting now');
    process.exit(0);
  }, SHUTDOWN_MS - 300).unref();
  await running.stop();
  process.exit(0);
}
