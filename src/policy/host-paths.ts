// Which host folders may never be bind-mounted into a container, whatever the
// server policy says, and how a written path is compared: normalized (so
// `/srv/data/../../etc` is /etc) and through its real path where it exists
// (so a symlink into /etc is /etc). A mount of a folder that *contains* one
// of these exposes it as much as a mount of the folder itself.
import path from 'node:path';

/** Resolves a path through symlinks; null when it does not exist. Injected so admission stays pure. */
export type RealPath = (p: string) => string | null;

export interface RefusedLocation {
  path: string;
  /** Why it is refused, for the message: `a system folder`, `CARTE_HOME, carte's own state`. */
  what: string;
}

/** System folders: the host's configuration, users, kernel interfaces, devices, sockets. */
export const SYSTEM_FOLDERS = ['/etc', '/root', '/home', '/boot', '/proc', '/sys', '/dev', '/run', '/var/run'] as const;

/**
 * Container runtimes' sockets and state: a container that reaches one of these
 * can start a privileged container of its own. Most live under /run (refused
 * already); the ones elsewhere, and the usual /var/run aliases, are listed.
 */
export const RUNTIME_LOCATIONS = [
  '/var/run/docker.sock', '/run/docker.sock', '/var/lib/docker', '/run/docker', '/var/run/docker',
  '/run/containerd', '/var/run/containerd', '/var/lib/containerd',
  '/run/crio', '/var/run/crio', '/var/lib/crio', '/run/podman', '/var/run/podman', '/var/lib/containers', '/run/containers',
  '/run/runc', '/var/lib/kubelet', '/var/lib/cni', '/var/lib/carte',
] as const;

export function refusedLocations(home: string): RefusedLocation[] {
  return [
    { path: '/', what: 'the whole host' },
    ...SYSTEM_FOLDERS.map((p) => ({ path: p, what: 'a system folder' })),
    ...RUNTIME_LOCATIONS.map((p) => ({ path: p, what: p === '/var/lib/carte' ? "carte's default state folder" : "a container runtime's socket or state" })),
    { path: path.posix.resolve(home), what: "CARTE_HOME, carte's own state" },
  ];
}

/** `a` is `b` or lies below it. */
export function isWithin(a: string, b: string): boolean {
  return a === b || b === '/' || a.startsWith(`${b}/`);
}

/**
 * The real location of `p`: its deepest existing ancestor resolved through
 * symlinks, with the rest appended (a folder that does not exist yet would be
 * made through a symlinked parent, so the parent is what counts).
 */
export function resolveReal(p: string, realpath: RealPath): string {
  const normal = path.posix.resolve(p);
  const rest: string[] = [];
  for (let at = normal; ; at = path.posix.dirname(at)) {
    const real = realpath(at);
    if (real !== null) return path.posix.join(real, ...rest.reverse());
    if (at === '/') return normal;
    rest.push(path.posix.basename(at));
  }
}

/** The refused location `p` collides with (is, is inside, or contains), checked on `p` as given; null if none. */
export function collision(p: string, locations: readonly RefusedLocation[]): { location: RefusedLocation; how: 'is' | 'inside' | 'contains' } | null {
  // `/` only collides by being `/`: everything is inside it.
  for (const l of locations) {
    if (p === l.path) return { location: l, how: 'is' };
  }
  for (const l of locations) {
    if (l.path !== '/' && isWithin(p, l.path)) return { location: l, how: 'inside' };
  }
  for (const l of locations) {
    if (l.path !== '/' && isWithin(l.path, p)) return { location: l, how: 'contains' };
  }
  return null;
}
