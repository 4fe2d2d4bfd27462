// Users and API tokens: CARTE_HOME/users.json (0600), read by the CLI and the
// daemon, written only by the CLI's admin commands. Readers take the file as
// it is (it is only ever replaced whole); writers hold users.lock around
// read-modify-write, and write durably (temp file, fsync, rename).
//
// A damaged or unreadable file is an error naming it, never "no users": a
// dashboard that silently had no users would show the "create the first user"
// page to anyone.
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { CarteError, ConflictError, NotFoundError, UsageError } from '../errors.js';
import { removeLeftovers, writeFileDurably } from '../util/durable-json-file.js';
import { acquireLock } from '../util/lock.js';
import { checkAuthName } from './names.js';
import { DEFAULT_SCRYPT, hashPassword, parseHash, PASSWORD_MAX, verifyHash, type ScryptParams } from './password.js';
import { isTokenShaped, newToken, newTokenId, tokenDigest } from './tokens.js';
import { ROLES, type AuthStore, type Principal, type Role, type TokenRow, type UserRow } from './types.js';

export const USERS_FILE = 'users.json';

interface StoredUser extends UserRow {
  hash: string;
}

interface StoredToken extends TokenRow {
  /** SHA-256 (hex) of the token; the token itself is never stored. */
  sha256: string;
}

interface UsersData {
  version: 1;
  users: StoredUser[];
  tokens: StoredToken[];
}

const TOKEN_ID = /^t[0-9a-f]{8}$/;

export interface FileAuthStoreOptions {
  /** scrypt cost for new hashes (tests lower it; stored hashes keep theirs). */
  scrypt?: ScryptParams;
  now?: () => Date;
}

export class FileAuthStore implements AuthStore {
  readonly file: string;
  readonly lockPath: string;
  private readonly scrypt: ScryptParams;
  private readonly now: () => Date;
  private dummy: Promise<string> | null = null;

  constructor(readonly home: string, opts: FileAuthStoreOptions = {}) {
    this.file = path.join(home, USERS_FILE);
    this.lockPath = path.join(home, 'users.lock');
    this.scrypt = opts.scrypt ?? DEFAULT_SCRYPT;
    this.now = opts.now ?? (() => new Date());
  }

  // ---- reading (CLI and daemon) ----

  private async read(): Promise<UsersData> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.file, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { version: 1, users: [], tokens: [] };
      if (code === 'EACCES') throw new CarteError('io', `failed to read ${this.file}: permission denied (users and tokens need root: run carte as root)`, { cause: e });
      throw new CarteError('io', `failed to read ${this.file}: ${(e as Error).message}`, { cause: e });
    }
    let text: string;
    try {
      const st = await handle.stat();
      // It holds password hashes: readable by others, they could be cracked offline.
      if ((st.mode & 0o077) !== 0) {
        throw new CarteError('store-corrupt',
          `refusing to use ${this.file}: it is open to group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
          `run "chmod 600 ${this.file}" (and think about who may have read its password hashes)`);
      }
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
    const problem = (why: string) => new CarteError('store-corrupt',
      `failed to read ${this.file}: ${why}; carte only ever replaces it whole, so it was edited by hand or damaged: ` +
      `restore it from a backup, or move it away and add the users and tokens again ("carte user add", "carte token create")`);
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw problem(`it is not valid JSON (${(e as Error).message})`);
    }
    const why = shapeProblem(data);
    if (why) throw problem(why);
    return data as UsersData;
  }

  /** Runs `change` on the freshest data under the lock and writes the result (nothing when it throws). */
  private async update<T>(change: (d: UsersData) => T): Promise<T> {
    try {
      mkdirSync(this.home, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new CarteError('io', `failed to create CARTE_HOME ${this.home}: ${(e as Error).message} (set CARTE_HOME or --home to a writable folder)`, { cause: e });
    }
    const lock = await acquireLock(this.lockPath);
    try {
      await removeLeftovers(this.file);
      const data = await this.read();
      const result = change(data);
      if (lock.compromised) throw new CarteError('store-locked', `failed to update ${this.file}: lost its lock ${this.lockPath} (this process stalled); nothing was written, retry`);
      await writeFileDurably(this.file, JSON.stringify(data, null, 1) + '\n');
      return result;
    } finally {
      await lock.release();
    }
  }

  async hasUsers(): Promise<boolean> {
    return (await this.read()).users.length > 0;
  }

  async listUsers(): Promise<UserRow[]> {
    return (await this.read()).users.map(({ name, role, createdAt }) => ({ name, role, createdAt }));
  }

  async listTokens(): Promise<TokenRow[]> {
    return (await this.read()).tokens.map(({ id, name, role, createdAt, expiresAt }) => ({ id, name, role, createdAt, expiresAt }));
  }

  async verifyPassword(name: string, password: string): Promise<Principal | null> {
    const user = (await this.read()).users.find((u) => u.name === name);
    // An unknown user costs one scrypt too, of the same cost: the time does not tell names apart.
    // An oversized password is hashed as a short one would be (no user has one), never whole.
    const tooLong = Buffer.byteLength(password) > PASSWORD_MAX;
    const ok = await verifyHash(tooLong ? '' : password, user && !tooLong ? user.hash : await this.dummyHash());
    return user && ok && !tooLong ? { kind: 'user', name: user.name, role: user.role } : null;
  }

  async verifyToken(token: string): Promise<Principal | null> {
    if (!isTokenShaped(token)) return null;
    // Looked up by its SHA-256: comparing digests of a 256-bit secret leaks nothing usable by timing.
    const digest = tokenDigest(token);
    const t = (await this.read()).tokens.find((x) => x.sha256 === digest);
    if (!t) return null;
    if (t.expiresAt !== null && Date.parse(t.expiresAt) <= this.now().getTime()) return null;
    return { kind: 'token', name: t.name, role: t.role };
  }

  /**
   * A value that changes when the user's password or role changes, or the
   * user is removed (null then): a session keeps the stamp of its login and
   * ends when it differs. Derived from the hash (a new salt every passwd).
   */
  async userStamp(name: string): Promise<string | null> {
    const user = (await this.read()).users.find((u) => u.name === name);
    if (!user) return null;
    return createHash('sha256').update(`${user.name}\0${user.role}\0${user.hash}`).digest('hex').slice(0, 32);
  }

  private dummyHash(): Promise<string> {
    return (this.dummy ??= hashPassword(randomUUID(), this.scrypt));
  }

  // ---- writing (the CLI's admin commands) ----

  async addUser(name: string, role: Role, password: string): Promise<UserRow> {
    checkAuthName('user', name);
    checkRole(role);
    const hash = await hashPassword(password, this.scrypt);
    return this.update((d) => {
      if (d.users.some((u) => u.name === name)) {
        throw new ConflictError(`user "${name}" already exists: to change its password run "carte user passwd ${name}"; to start over, "carte user rm ${name}" first`);
      }
      const row: UserRow = { name, role, createdAt: this.now().toISOString() };
      d.users.push({ ...row, hash });
      return row;
    });
  }

  async removeUser(name: string): Promise<void> {
    await this.update((d) => {
      const i = d.users.findIndex((u) => u.name === name);
      if (i < 0) throw unknownUser(name);
      d.users.splice(i, 1);
    });
  }

  async setPassword(name: string, password: string): Promise<void> {
    const hash = await hashPassword(password, this.scrypt);
    await this.update((d) => {
      const user = d.users.find((u) => u.name === name);
      if (!user) throw unknownUser(name);
      user.hash = hash;
    });
  }

  /** Makes a token; the returned `token` is the only time it exists outside the caller. */
  async createToken(name: string, role: Role, expiresAt: Date | null): Promise<{ row: TokenRow; token: string }> {
    checkAuthName('token', name);
    if (TOKEN_ID.test(name)) throw new UsageError(`"${name}" is not a valid token name: it looks like a token id (t and 8 hex digits); choose another`);
    checkRole(role);
    const token = newToken();
    return this.update((d) => {
      if (d.tokens.some((t) => t.name === name)) {
        throw new ConflictError(`a token named "${name}" already exists: choose another name, or "carte token rm ${name}" first`);
      }
      let id = newTokenId();
      while (d.tokens.some((t) => t.id === id)) id = newTokenId();
      const row: TokenRow = { id, name, role, createdAt: this.now().toISOString(), expiresAt: expiresAt?.toISOString() ?? null };
      d.tokens.push({ ...row, sha256: tokenDigest(token) });
      return { row, token };
    });
  }

  /** Removes the token with this id, else the one with this name; returns it. */
  async removeToken(idOrName: string): Promise<TokenRow> {
    return this.update((d) => {
      let i = d.tokens.findIndex((t) => t.id === idOrName);
      if (i < 0) i = d.tokens.findIndex((t) => t.name === idOrName);
      if (i < 0) throw new NotFoundError(`no token with id or name "${idOrName}" (see "carte token list")`);
      const [t] = d.tokens.splice(i, 1);
      const { id, name, role, createdAt, expiresAt } = t!;
      return { id, name, role, createdAt, expiresAt };
    });
  }
}

export function unknownUser(name: string): NotFoundError {
  return new NotFoundError(`no user "${name}" (see "carte user list")`);
}

export function checkRole(role: string): asserts role is Role {
  if (!(ROLES as readonly string[]).includes(role)) {
    throw new UsageError(`"${role}" is not a role: use viewer (sees), operator (also acts) or admin (also manages users and tokens)`);
  }
}

/** What is wrong with the file's structure, or null; says which entry. */
function shapeProblem(d: unknown): string | null {
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return 'it is not a JSON object';
  const o = d as Record<string, unknown>;
  if (o.version !== 1) return `its version is ${JSON.stringify(o.version)}, not 1 (written by another carte?)`;
  if (!Array.isArray(o.users)) return '"users" is not a list';
  if (!Array.isArray(o.tokens)) return '"tokens" is not a list';
  const isRole = (r: unknown) => (ROLES as readonly unknown[]).includes(r);
  for (const [i, u] of (o.users as Record<string, unknown>[]).entries()) {
    if (typeof u?.name !== 'string' || !isRole(u.role) || typeof u.createdAt !== 'string') return `users[${i}] lacks a name, a role or createdAt`;
    if (typeof u.hash !== 'string' || !parseHash(u.hash)) return `users[${i}] ("${u.name}") has no valid password hash`;
  }
  for (const [i, t] of (o.tokens as Record<string, unknown>[]).entries()) {
    if (typeof t?.id !== 'string' || typeof t.name !== 'string' || !isRole(t.role) || typeof t.createdAt !== 'string') return `tokens[${i}] lacks an id, a name, a role or createdAt`;
    if (!(t.expiresAt === null || typeof t.expiresAt === 'string')) return `tokens[${i}] ("${t.name}") has a bad expiresAt`;
    if (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256)) return `tokens[${i}] ("${t.name}") has no valid sha256`;
  }
  return null;
}
