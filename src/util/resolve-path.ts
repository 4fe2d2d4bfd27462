// Resolves a path one component at a time, as the kernel does, so that a
// caller can judge every symbolic link on the way *before* it is followed:
// realpath only says where a path ends, not that it went through /etc or a
// folder someone else controls on the way there. `..` is taken on the real
// folder reached so far (physically, like the kernel), never lexically across
// a link, so `link/../x` cannot be used to step around a check.
import fsp from 'node:fs/promises';
import path from 'node:path';

/** One symbolic link met on the way. */
export interface LinkHop {
  /** The link's own path; its folder is real (every link before it is resolved). */
  link: string;
  /** Its text, as readlink gives it. */
  text: string;
  /** Where the text points, made absolute against the link's folder (not resolved further). */
  target: string;
}

export type Resolved<R> =
  | { kind: 'found'; real: string }
  /** `at` (a real folder joined with one name) does not exist, or a file stands where a folder is needed. */
  | { kind: 'missing'; at: string }
  | { kind: 'loop'; at: string }
  /** The link check refused a hop; nothing past it was looked at. */
  | { kind: 'refused'; hop: LinkHop; reason: R };

/** Linux gives up after 40 links (MAXSYMLINKS); so do we. */
const MAX_LINKS = 40;

/**
 * Resolves `p` (absolute, or relative to `start`, which must be a real folder)
 * and calls `judge` on each link before following it; a non-null answer stops
 * the walk. Root can lstat anything, so "missing" is only reported past the
 * links `judge` accepted: nothing is learnt about places it refused.
 */
export async function resolvePath<R>(start: string, p: string, judge: (hop: LinkHop) => R | null | Promise<R | null>): Promise<Resolved<R>> {
  let current = path.isAbsolute(p) ? '/' : start;
  let rest = p.split('/').filter((c) => c !== '');
  let links = 0;
  while (rest.length) {
    const name = rest.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      current = path.dirname(current);
      continue;
    }
    const next = path.join(current, name);
    const st = await fsp.lstat(next).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return null;
      throw e;
    });
    if (!st) return { kind: 'missing', at: next };
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return { kind: 'loop', at: next };
      const text = await fsp.readlink(next);
      const hop = { link: next, text, target: path.resolve(current, text) };
      const reason = await judge(hop);
      if (reason !== null) return { kind: 'refused', hop, reason };
      rest = [...text.split('/').filter((c) => c !== ''), ...rest];
      if (path.isAbsolute(text)) current = '/';
      continue;
    }
    if (rest.length && !st.isDirectory()) return { kind: 'missing', at: next };
    current = next;
  }
  return { kind: 'found', real: current };
}
