// `carte daemon`: the long-running composition root. It holds the converge
// lock for its whole life (so `carte apply` without a daemon never converges
// beside it), sweeps what a crash left half-made, adopts what runs, watches
// the store and its sources, and reconciles for ever.
import fs from 'node:fs';
import { LinuxDriver } from '../drivers/linux/driver.js';
import { CarteError } from '../errors.js';
import type { Logger } from '../log.js';
import { Reconciler } from '../reconciler/reconciler.js';
import { FolderSource } from '../reconciler/sources/folder.js';
import { GitSource, type GitSourceOptions } from '../reconciler/sources/git.js';
import { Store } from '../store/store.js';
import { acquireLock, type HeldLock } from '../util/lock.js';
import { processAlive } from '../util/process.js';
import { ApiServer } from './api.js';
import { daemonPaths } from './paths.js';

export interface DaemonOptions {
  home: string;
  log: Logger;
  driver: LinuxDriver;
  watch: string[];
  git: GitSourceOptions[];
  resyncMs?: number;
}

export interface RunningDaemon {
  reconciler: Reconciler;
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
  const store = Store.open(home);
  const started = performance.now();
  const swept = await driver.gc();
  if (swept.removed.length) log.info({ removed: swept.removed }, 'swept leftovers at start');
  for (const f of swept.failures) log.warn({ step: f.step, resource: f.resource, err: f.error }, 'could not sweep');

  const reconciler = new Reconciler({ store, driver, log, resyncMs: opts.resyncMs });
  const trigger = () => reconciler.trigger();
  const sources: Array<FolderSource | GitSource> = [
    ...opts.watch.map((dir) => new FolderSource(dir, store, log, trigger)),
    ...opts.git.map((g) => new GitSource(g, home, store, log, trigger)),
  ];
  const api = new ApiServer(daemonPaths(home).socket, log);
  api.route('POST', '/v1/reconcile', async () => {
    trigger();
    return { triggered: true };
  });
  const syncAll = async () => ({ sources: await Promise.all(sources.map(async (s) => ({ id: s.id, ...(await s.sync()) }))) });
  api.route('POST', '/v1/sync', syncAll);
  api.route('POST', '/v1/webhook', syncAll);

  // The state file is replaced whole on every write: a rename in CARTE_HOME.
  const storeWatch = fs.watch(home, (_e, name) => {
    if (name === 'state.json') trigger();
  });
  await api.listen();
  reconciler.start();
  await reconciler.pass(); // the first pass: adopt what runs, act on the difference
  log.info({ ms: Math.round(performance.now() - started), sources: sources.map((s) => s.id) }, 'daemon ready');
  for (const s of sources) await s.start();

  return {
    reconciler,
    async stop() {
      storeWatch.close();
      for (const s of sources) await s.stop();
      await reconciler.stop();
      await api.close();
      await lock.release();
      log.info('daemon stopped; instances keep running');
    },
  };
}
