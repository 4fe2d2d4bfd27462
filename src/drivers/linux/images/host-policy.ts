// Which host files `COPY --from=host` may take: the rules, as pure functions
// on paths (no file access; host-sources.ts applies them to the disk).
//
// carte builds as root for people who are not root (issue "trust boundary"),
// so a build must not become a way to read what its author could not:
// host files come only from the system's program and library folders, and a
// deny list (password hashes, home folders, carte's own state, kernel
// filesystems, private keys) holds whatever the server policy's prefixes say.

/** The folders host files may come from unless the server policy says otherwise. */
export const DEFAULT_HOST_COPY_PREFIXES: readonly string[] = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/etc/ssl/certs', '/usr/share/zoneinfo'];

/**
 * Never readable by a build, whatever the prefixes say (CARTE_HOME is added
 * per builder). `/etc/shadow-` and `/etc/gshadow-` are the backups `shadow`'s
 * tools keep: the same hashes.
 */
export const ALWAYS_DENIED_HOST_PATHS: readonly string[] = ['/etc/shadow', '/etc/shadow-', '/etc/gshadow', '/etc/gshadow-', '/root', '/home', '/proc', '/sys', '/dev', '/run'];

export interface HostCopyRules {
  /** The prefixes as configured, for messages. */
  prefixes: readonly string[];
  /** The prefixes and their real paths (/bin and /usr/bin on Debian, where /bin is a link). */
  allowed: readonly string[];
  /** The deny list and CARTE_HOME, with their real paths. */
  denied: readonly string[];
}

/** `p` is `folder` or below it (both absolute and normalized). */
export function isWithin(p: string, folder: string): boolean {
  return p === folder || folder === '/' || p.startsWith(`${folder}/`);
}

/** Normalizes an absolute path: no trailing slash, no `.` or `..`. */
const normal = (p: string) => (p.length > 1 ? `/${p.split('/').filter((c) => c && c !== '.').reduce<string[]>((acc, c) => (c === '..' ? acc.slice(0, -1) : [...acc, c]), []).join('/')}` : p);

/**
 * Rules from the configured prefixes and CARTE_HOME; `realpathOf` gives a
 * path's real path (null when it does not exist), so both spellings match.
 */
export function makeHostCopyRules(prefixes: readonly string[], home: string | undefined, realpathOf: (p: string) => string | null): HostCopyRules {
  const withReal = (paths: readonly string[]) => {
    const out: string[] = [];
    for (const p of paths.map(normal)) for (const q of [p, realpathOf(p)]) if (q && !out.includes(q)) out.push(q);
    return out;
  };
  return {
    prefixes: prefixes.map(normal),
    allowed: withReal(prefixes),
    denied: withReal([...ALWAYS_DENIED_HOST_PATHS, ...(home ? [home] : [])]),
  };
}

export type HostRefusal =
  | { kind: 'outside' }
  | { kind: 'denied'; entry: string }
  | { kind: 'key-name' }
  | { kind: 'key-header' }
  | { kind: 'ssh-folder'; folder: string }
  | { kind: 'unreadable'; mode: number }
  | { kind: 'special'; what: string }
  | { kind: 'missing' }
  | { kind: 'loop' }
  /** A folder on the way that someone other than root may change (then swap an entry for a link mid-copy). */
  | { kind: 'writable'; folder: string; uid: number; mode: number };

/** Only root can change what `dir` holds: root's, and not group/other-writable unless sticky (as /tmp). */
export function onlyRootChanges(st: { uid: number; mode: number }): boolean {
  return st.uid === 0 && (!(st.mode & 0o022) || (st.mode & 0o1000) !== 0);
}

const KEY_NAME = /^(id_(rsa|dsa|ecdsa|ed25519)(_sk)?|ssh_host_.+_key)$/;

/**
 * What the name alone says about a private key: `check-header` for `*.pem`
 * and `*.key`, which are certificates as often as keys (/etc/ssl/certs is full
 * of .pem files), so only their contents decide.
 */
export function privateKeyByName(p: string): HostRefusal | 'check-header' | null {
  const parts = p.split('/');
  const ssh = parts.indexOf('.ssh');
  if (ssh >= 0) return { kind: 'ssh-folder', folder: parts.slice(0, ssh + 1).join('/') || '/' };
  const base = parts.at(-1) ?? '';
  if (KEY_NAME.test(base)) return { kind: 'key-name' };
  return /\.(pem|key)$/i.test(base) ? 'check-header' : null;
}

/** PEM armour of any private key: PKCS#8, RSA, EC, DSA, OpenSSH, encrypted. */
export function hasPrivateKeyHeader(text: string): boolean {
  return /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(text);
}

/** Judges one absolute, normalized path by the rules: prefixes first, then the deny list, then key names. */
export function judgeHostPath(p: string, rules: HostCopyRules): HostRefusal | null {
  if (!rules.allowed.some((a) => isWithin(p, a))) return { kind: 'outside' };
  const entry = rules.denied.find((d) => isWithin(p, d));
  if (entry) return { kind: 'denied', entry };
  const key = privateKeyByName(p);
  return key === 'check-header' ? null : key;
}

/**
 * Who a refusal is about: the source itself (noun `it`), a path inside a
 * copied folder or a program's library (a noun), or a link (`X leads to T`).
 * `path` is the host path the noun stands for.
 */
export type Subject = { noun: string; path: string } | { link: string; target: string };

/**
 * The reason part of a refusal, one line; the Cartefile location and
 * `COPY --from=host SRC: ` go in front.
 */
export function explainHostRefusal(subject: Subject, r: HostRefusal, rules: HostCopyRules): string {
  const list = rules.prefixes.join(', ');
  // A noun takes "is …", a link takes ", …": "X is outside …" / "X leads to T, outside …".
  const lead = 'noun' in subject ? `${subject.noun} is` : `${subject.link} leads to ${subject.target},`;
  const about = 'noun' in subject ? subject.path : subject.target;
  switch (r.kind) {
    case 'outside':
      if ('noun' in subject && subject.noun === 'it') return list ? `not allowed by the server policy (host files may come from ${list})` : 'not allowed by the server policy (it allows no host files)';
      return `${lead} outside the allowed host folders (${list || 'there are none'})`;
    case 'denied':
      if (about !== r.entry) return `${lead} inside ${r.entry}, which no build may read, whatever the server policy says`;
      return 'noun' in subject ? `${lead} a path no build may read, whatever the server policy says` : `${lead} which no build may read, whatever the server policy says`;
    case 'key-name':
      return `${lead} a private key file, which no build may read`;
    case 'key-header':
      return `${lead} a file holding a PRIVATE KEY, which no build may read`;
    case 'ssh-folder':
      return `${lead} inside the SSH folder ${r.folder}, which no build may read`;
    case 'unreadable':
      return `${lead} readable only by its owner or group (mode ${(r.mode & 0o7777).toString(8).padStart(4, '0')}), and a build copies only host files every user may read`;
    case 'special':
      return `${lead} ${r.what}, which a build does not copy`;
    case 'missing':
      return `${lead} missing on this machine`;
    case 'loop':
      return `${lead} a loop of symbolic links`;
    case 'writable':
      return `${lead} in ${r.folder}, which ${r.uid === 0 ? 'others may change' : `user ${r.uid} owns`} (mode ${(r.mode & 0o7777).toString(8).padStart(4, '0')}): a build copies host files only from folders only root can change (an entry could be swapped for a link mid-copy)`;
  }
}
