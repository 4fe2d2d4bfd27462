// What every part of the Linux driver shares: the tools it runs and where one
// CARTE_HOME keeps its things. Built once by LinuxDriver; the step modules
// (create, observe, cleanup, exec) are functions of it, so each reads as the
// steps of one job without a class around it.
import type { Logger } from '../../log.js';
import type { CgroupLayout } from './cgroups.js';
import type { Runner } from './exec.js';
import type { ImageStore } from './images/store.js';
import type { CniNetwork } from './network.js';
import type { HomePaths, NamingRules } from './records.js';
import type { Runtime } from './runtime.js';
import type { parseHostRlimits } from './spec.js';

export interface DriverContext {
  paths: HomePaths;
  log: Logger;
  runner: Runner;
  runtime: Runtime;
  network: CniNetwork;
  images: ImageStore;
  conmon: string;
  /** Cgroups of this home's instances go under `<cgroupParent>/<homeId>/`. */
  cgroupParent: string;
  cgroupRoot: string;
  layout: CgroupLayout;
  /** Per-instance log cap (conmon truncates at it); also the cap of each kept previous log. */
  logMaxBytes: number;
  /** How many previous logs are kept (the oldest go first). */
  previousLogLimit: number;
  rlimits: ReturnType<typeof parseHostRlimits>;
  /**
   * Free bytes the filesystem holding CARTE_HOME must keep (the server
   * policy's disk.reserve): below it no instance is created, so the state
   * file can always be written. 0: no reserve. Read at each create (the
   * daemon's policy may be reloaded).
   */
  diskReserveBytes: () => number;
}

/** The naming rules placementOf() needs, from the context. */
export function namingRules(ctx: DriverContext): NamingRules {
  return { paths: ctx.paths, bridge: ctx.network.opts.bridge, cgroupParent: ctx.cgroupParent };
}
