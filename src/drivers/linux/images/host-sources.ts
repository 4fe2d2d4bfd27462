// Applies host-policy.ts to the disk for `COPY --from=host`: a source is
// judged where it is named, at every symbolic link on the way (before the
// link is followed, so nothing is learnt about places that are refused), and
// where it really is; a folder is judged entry by entry, since the copy
// dereferences links inside it too. Only host files every user of the
// machine may read are copied: the build runs as root, its author does not.
import { createReadStream, realpathSync } from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { resolvePath } from '../../../util/resolve-path.js';
import { explainHostRefusal, hasPrivateKeyHeader, judgeHostPath, makeHostCopyRules, onlyRootChanges, privateKeyByName, type HostCopyRules, type HostRefusal, type Subject } from './host-policy.js';

/** Rules for these prefixes and CARTE_HOME, with the real paths of both as they are on this machine. */
export function hostCopyRules(prefixes: readonly string[], home: string | undefined): HostCopyRules {
  return makeHostCopyRules(prefixes, home, (p) => {
    try {
      return realpathSync(p);
    } catch {
      return null;
    }
  });
}

/** A part of a host folder the copy leaves out, relative to the folder, and why. */
export interface LeftOut {
  sub: string;
  reason: string;
}

export type HostCheck =
  | { kind: 'ok'; real: string; leftOut: LeftOut[] }
  /** The named path itself does not exist (a link on the way that leads nowhere is a refusal). */
  | { kind: 'missing' }
  /** `reason` completes "COPY --from=host SRC: …". */
  | { kind: 'refused'; reason: string };

class Refused extends Error {
  constructor(readonly subject: Subject, readonly refusal: HostRefusal) {
    super(refusal.kind);
  }
}

/**
 * Checks a host path a build would copy: a source (`name` "it") or a library
 * of one (`name` "its library /lib/…"). Returns its real path, which is what
 * must then be copied (so the copy reads what was checked).
 *
 * Inside a folder, what the rules refuse is left out rather than failing the
 * build: the folder is the machine's, its author cannot change it, and the
 * very folders the defaults allow hold such entries on Debian
 * (/usr/share/zoneinfo/localtime → /etc/localtime, /usr/lib/ssl/private →
 * /etc/ssl/private). Nothing refused is copied either way.
 */
export async function checkHostPath(p: string, name: string, rules: HostCopyRules): Promise<HostCheck> {
  const named = path.resolve(p);
  try {
    const reachable = new Set<string>();
    const real = await resolveChecked(named, name, named, rules, reachable);
    if (real === null) return { kind: 'missing' };
    const leftOut: LeftOut[] = [];
    await checkEntry(real, { noun: name, path: named }, rules, { seen: new Set(), reachable }, (sub, e) => leftOut.push({ sub: path.relative(named, sub), reason: explainHostRefusal(e.subject, e.refusal, rules) }));
    return { kind: 'ok', real, leftOut };
  } catch (e) {
    if (e instanceof Refused) return { kind: 'refused', reason: explainHostRefusal(e.subject, e.refusal, rules) };
    throw e;
  }
}

/** Where `named` really is, every link on the way judged; null when `named` itself is missing. */
async function resolveChecked(named: string, name: string, physical: string, rules: HostCopyRules, reachable: Set<string>, inRealFolder = false): Promise<string | null> {
  const first = judgeHostPath(named, rules);
  if (first) throw new Refused({ noun: name, path: named }, first);
  const linkName = (link: string) => (link === physical ? name : link);
  let last = null as string | null;
  // A folder's entries start from the folder, whose path is real: no need to walk it again from /.
  const res = await resolvePath(inRealFolder ? path.dirname(physical) : '/', inRealFolder ? path.basename(physical) : physical, (hop) => {
    const r = judgeHostPath(hop.target, rules);
    if (!r) last = hop.target;
    return r;
  });
  switch (res.kind) {
    case 'refused':
      throw new Refused({ link: linkName(res.hop.link), target: res.hop.target }, res.reason);
    case 'loop':
      throw new Refused({ noun: name, path: named }, { kind: 'loop' });
    case 'missing':
      // Missing before any link: the path itself does not exist. After one: it is a link that leads nowhere.
      if (last === null) return null;
      throw new Refused({ link: name, target: last }, { kind: 'missing' });
    case 'found': {
      // Every link was judged on the way; this catches what no link explains.
      const final = res.real === named ? null : judgeHostPath(res.real, rules);
      if (final) throw new Refused({ link: name, target: res.real }, final);
      await checkReachable(res.real, reachable);
      return res.real;
    }
  }
}

/**
 * Every folder above `real` lets everyone in (o+x): otherwise its author
 * could not reach the file. And only root can change it: the copy reads by
 * name after this check, so a folder another user may write would let them
 * swap an entry for a link to /etc between the two.
 */
async function checkReachable(real: string, reachable: Set<string>): Promise<void> {
  for (let dir = path.dirname(real); dir !== '/' && !reachable.has(dir); dir = path.dirname(dir)) {
    const st = await fsp.stat(dir);
    if (!(st.mode & 0o001)) throw new Refused({ noun: dir, path: dir }, { kind: 'unreadable', mode: st.mode });
    if (!onlyRootChanges(st)) throw new Refused({ noun: real, path: real }, { kind: 'writable', folder: dir, uid: st.uid, mode: st.mode });
    reachable.add(dir);
  }
}

/** Judges a real file or folder (and, for a folder, all it holds, as the dereferencing copy will read it). */
interface Walk {
  /** Real folders being walked: a link back to one is a loop the dereferencing copy would never finish. */
  seen: Set<string>;
  /** Folders already found open to everyone. */
  reachable: Set<string>;
}

async function checkEntry(real: string, subject: { noun: string; path: string }, rules: HostCopyRules, walk: Walk, leaveOut: (named: string, e: Refused) => void): Promise<void> {
  const st = await fsp.stat(real);
  if (st.isFile()) {
    if (!(st.mode & 0o004)) throw new Refused(subject, { kind: 'unreadable', mode: st.mode });
    if ((privateKeyByName(subject.path) === 'check-header' || privateKeyByName(real) === 'check-header') && (await holdsPrivateKey(real))) {
      throw new Refused(subject, { kind: 'key-header' });
    }
    return;
  }
  if (!st.isDirectory()) throw new Refused(subject, { kind: 'special', what: kindOf(st) });
  if ((st.mode & 0o005) !== 0o005) throw new Refused(subject, { kind: 'unreadable', mode: st.mode });
  if (!onlyRootChanges(st)) throw new Refused(subject, { kind: 'writable', folder: real, uid: st.uid, mode: st.mode });
  if (walk.seen.has(real)) throw new Refused(subject, { kind: 'loop' });
  walk.seen.add(real);
  for (const entry of (await fsp.readdir(real)).sort()) {
    const physical = path.join(real, entry);
    const named = path.join(subject.path, entry);
    try {
      const inner = await resolveChecked(named, named, physical, rules, walk.reachable, true);
      if (inner === null) throw new Refused({ noun: named, path: named }, { kind: 'missing' });
      await checkEntry(inner, { noun: named, path: named }, rules, walk, leaveOut);
    } catch (e) {
      if (!(e instanceof Refused)) throw e;
      leaveOut(named, e);
    }
  }
  walk.seen.delete(real);
}

function kindOf(st: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a device node';
}

/** Streams the file looking for PEM private-key armour (a bundle may hold a key after many certificates). */
async function holdsPrivateKey(file: string): Promise<boolean> {
  let carry = '';
  for await (const chunk of createReadStream(file, { encoding: 'latin1' })) {
    const text = carry + (chunk as string);
    if (hasPrivateKeyHeader(text)) return true;
    carry = text.slice(-64);
  }
  return false;
}
