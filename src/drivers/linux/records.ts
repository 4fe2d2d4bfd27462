// The instance record (CARTE_HOME/instances/NAME/instance.json) and where a
// home keeps each instance's things. The record is carte's memory of an
// instance across restarts of carte: what it was made from, when, its
// address, and where in the kernel it lives (network namespace, cgroup), so
// a later carte finds them even if its naming rules changed since.
//
// Files per instance:
//   CARTE_HOME/instances/NAME/      instance.json (the record), bundle/ (config.json, rootfs
//                                   mount), upper/, work/, etc/, container.log; with secrets,
//                                   secret-config/ (a tmpfs holding config.json, which
//                                   bundle/config.json links to) and secret-volumes/ (tmpfs
//                                   staged until runc create returns)
//   /run/carte/HOMEID/NAME/         conmon pid, exit code, oom marker, attach socket (tmpfs:
//                                   runtime state does not outlive a reboot, nor do containers)
//   CARTE_HOME/logs/previous/NAME.log   the log of NAME's previous life
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';

export interface InstanceRecord {
  name: string;
  service: string;
  labels: Record<string, string>;
  image: string;
  imageId: string;
  createdAt: string;
  startedAt: string | null;
  ip: string | null;
  /**
   * The host end of its veth pair and its eth0's MAC, for the firewall's
   * anti-spoofing rules. Absent in records of carte before them (then found
   * from the namespace).
   */
  veth?: string | null;
  mac?: string | null;
  /** Network namespace name (under /run/netns). Absent in records of carte before homes were scoped. */
  netns?: string;
  /** Cgroup path (relative to each hierarchy). Absent in records of carte before homes were scoped. */
  cgroupPath?: string;
}

/** A record as read: there, absent, or there but unreadable (garbage, truncated by hand or a full disk). */
export type RecordRead =
  | { kind: 'ok'; record: InstanceRecord }
  | { kind: 'none' }
  | { kind: 'unreadable'; problem: string };

/** The short id of a home: 8 hex of the sha256 of its absolute path. Names its run folder, netns and cgroups. */
export function homeIdOf(home: string): string {
  return createHash('sha256').update(path.resolve(home)).digest('hex').slice(0, 8);
}

/** The run folder's entry where registry calls keep their authfiles (not an instance: gc leaves it). */
export const REGISTRY_RUN_DIR = 'registry';

export class HomePaths {
  readonly home: string;
  readonly homeId: string;
  readonly instancesDir: string;
  readonly volumesDir: string;
  readonly previousLogsDir: string;
  /** tmpfs folder of runtime state (runc root, conmon files); one per CARTE_HOME. */
  readonly runRoot: string;

  constructor(home: string, runRoot?: string) {
    this.home = path.resolve(home);
    this.homeId = homeIdOf(this.home);
    this.instancesDir = path.join(this.home, 'instances');
    this.volumesDir = path.join(this.home, 'volumes');
    this.previousLogsDir = path.join(this.home, 'logs', 'previous');
    this.runRoot = runRoot ?? path.join('/run/carte', this.homeId);
  }

  dir(name: string, ...rest: string[]): string {
    return path.join(this.instancesDir, name, ...rest);
  }

  runDir(name: string, ...rest: string[]): string {
    return path.join(this.runRoot, name, ...rest);
  }

  recordFile(name: string): string {
    return this.dir(name, 'instance.json');
  }
}

function parseRecord(file: string, text: string): RecordRead {
  try {
    const r = JSON.parse(text) as InstanceRecord | null;
    if (!r || typeof r !== 'object' || typeof r.name !== 'string' || typeof r.service !== 'string') {
      return { kind: 'unreadable', problem: `instance record ${file} is unreadable: not an instance record` };
    }
    return { kind: 'ok', record: r };
  } catch (e) {
    return { kind: 'unreadable', problem: `instance record ${file} is unreadable: ${(e as Error).message}` };
  }
}

/**
 * Reads a record; never throws. Synchronous on purpose for listings (a few
 * tiny files per instance; see observe.ts).
 */
export function readRecordSync(paths: HomePaths, name: string): RecordRead {
  const file = paths.recordFile(name);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'none' };
    return { kind: 'unreadable', problem: `instance record ${file} is unreadable: ${(e as Error).message}` };
  }
  return parseRecord(file, text);
}

export async function readRecord(paths: HomePaths, name: string): Promise<InstanceRecord | null> {
  const file = paths.recordFile(name);
  const text = await fsp.readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  const r = parseRecord(file, text);
  return r.kind === 'ok' ? r.record : null;
}

/**
 * Writes a record atomically: a temporary file, fsync, rename over the old
 * one. A carte killed at any instant leaves the old record or the new one,
 * never a torn mix (a torn one would make the instance `lost`).
 */
export async function writeRecord(paths: HomePaths, r: InstanceRecord): Promise<void> {
  const file = paths.recordFile(r.name);
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await fsp.open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(JSON.stringify(r, null, 1));
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsp.rename(tmp, file);
}

/** Where an instance lives in the kernel: its network namespace and its cgroup. */
export interface Placement {
  netns: string;
  netnsPath: string;
  cgroupPath: string;
}

export interface NamingRules {
  paths: HomePaths;
  bridge: string;
  cgroupParent: string;
}

/** Names a new instance gets: scoped by the home, so two homes' `web-1` never meet. */
export function newPlacement(rules: NamingRules, name: string): Placement {
  const netns = `carte-${rules.paths.homeId}-${name}`;
  return { netns, netnsPath: path.join('/run/netns', netns), cgroupPath: path.posix.join(rules.cgroupParent, rules.paths.homeId, name) };
}

/**
 * Where an existing instance lives: as its record says; for a record of an
 * older carte (without these fields), that carte's names
 * (`<bridge>-<name>`, `<cgroupParent>/<name>`); without a readable record,
 * as its bundle's config.json says, else the names a new one would get.
 */
export function placementOf(rules: NamingRules, name: string, read: RecordRead = readRecordSync(rules.paths, name)): Placement {
  if (read.kind === 'ok') {
    const netns = read.record.netns ?? `${rules.bridge}-${name}`;
    return {
      netns, netnsPath: path.join('/run/netns', netns),
      cgroupPath: read.record.cgroupPath ?? path.posix.join(rules.cgroupParent, name),
    };
  }
  try {
    const config = JSON.parse(fs.readFileSync(rules.paths.dir(name, 'bundle', 'config.json'), 'utf8')) as {
      linux?: { cgroupsPath?: string; namespaces?: Array<{ type: string; path?: string }> };
    };
    const netnsPath = config.linux?.namespaces?.find((n) => n.type === 'network')?.path;
    const cgroupPath = config.linux?.cgroupsPath;
    if (netnsPath && cgroupPath) return { netns: path.basename(netnsPath), netnsPath, cgroupPath };
  } catch {
    // No bundle written yet (or unreadable): the names a new instance gets.
  }
  return newPlacement(rules, name);
}
