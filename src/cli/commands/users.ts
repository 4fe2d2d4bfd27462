// `carte user …` and `carte token …`: the people and scripts that may use the
// dashboard and the HTTP API (CARTE_HOME/users.json, src/auth/store.ts).
// Secrets are printed once, on creation, and never stored: a generated
// password, a new token.
import fs from 'node:fs';
import { FileAuthStore, checkRole, unknownUser } from '../../auth/store.js';
import { checkAuthName } from '../../auth/names.js';
import { checkPassword, generatePassword, PASSWORD_MAX } from '../../auth/password.js';
import type { TokenRow } from '../../auth/types.js';
import { UsageError } from '../../errors.js';
import { parseDuration } from '../../schema/units.js';
import type { Context } from '../context.js';
import { table, write } from '../output.js';

const store = (ctx: Context) => new FileAuthStore(ctx.home, { now: ctx.now });
const iso = (t: string) => t.replace(/\.\d+Z$/, 'Z');

function checkOutput(cmd: string, output: string | undefined): void {
  if (output !== undefined && output !== 'json') throw new UsageError(`${cmd}: unknown output format "${output}" (use json)`);
}

/**
 * The password piped in on standard input (one line; its line break
 * dropped), or null when nothing was: a terminal, or empty input.
 */
export function passwordFromStdin(read: () => Buffer | null = readStdin): string | null {
  const bytes = read();
  if (bytes === null || bytes.length === 0) return null;
  const text = bytes.toString('utf8').replace(/\r?\n$/, '');
  checkPassword(text);
  return text;
}

function readStdin(): Buffer | null {
  if (process.stdin.isTTY) return null;
  const chunks: Buffer[] = [];
  const chunk = Buffer.alloc(4096);
  let total = 0;
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, chunk, 0, chunk.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue; // a non-blocking pipe: wait for more
      if (code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    total += n;
    // Bounded while read: an endless pipe must not fill memory.
    if (total > PASSWORD_MAX + 2) throw new UsageError(`the password is too long: use at most ${PASSWORD_MAX} bytes`);
    chunks.push(Buffer.from(chunk.subarray(0, n)));
  }
  return Buffer.concat(chunks, total);
}

/** A password given on stdin, else a generated one (printed once by the caller). */
function newPassword(): { password: string; generated: boolean } {
  const given = passwordFromStdin();
  return given === null ? { password: generatePassword(), generated: true } : { password: given, generated: false };
}

const GENERATED = (p: string) => `password: ${p}\n(generated; shown only now: give it to the user, who can change it with "carte user passwd")`;

export async function userAdd(ctx: Context, name: string, opts: { role?: string }): Promise<void> {
  checkAuthName('user', name);
  if (opts.role === undefined) throw new UsageError('user add: give --role viewer, operator or admin');
  checkRole(opts.role);
  const { password, generated } = newPassword();
  const row = await store(ctx).addUser(name, opts.role, password);
  write(`user/${row.name} created (role ${row.role})`);
  if (generated) write(GENERATED(password));
}

export async function userList(ctx: Context, opts: { output?: string }): Promise<void> {
  checkOutput('user list', opts.output);
  const users = await store(ctx).listUsers();
  if (opts.output === 'json') return write(JSON.stringify({ items: users }, null, 2));
  if (!users.length) {
    process.stderr.write('no users (add one with "carte user add NAME --role admin")\n');
    return;
  }
  write(table(['NAME', 'ROLE', 'CREATED'], users.map((u) => [u.name, u.role, iso(u.createdAt)])));
}

export async function userRm(ctx: Context, name: string): Promise<void> {
  await store(ctx).removeUser(name);
  write(`user/${name} removed (their dashboard sessions end at their next request)`);
}

export async function userPasswd(ctx: Context, name: string): Promise<void> {
  const s = store(ctx);
  // Before asking for stdin: an unknown name fails first, without consuming a generated password.
  if (!(await s.listUsers()).some((u) => u.name === name)) throw unknownUser(name);
  const { password, generated } = newPassword();
  await s.setPassword(name, password);
  write(`user/${name} password changed (their dashboard sessions end at their next request)`);
  if (generated) write(GENERATED(password));
}

/** `--expires 30d` → the instant, from now. */
export function expiryOf(text: string | undefined, now: Date): Date | null {
  if (text === undefined) return null;
  const p = parseDuration(text);
  if (!p.ok || p.value <= 0) throw new UsageError(`--expires: ${p.ok ? `"${text}" is not a positive duration` : p.message.replace('500ms, 30s, 5m or 1h', '12h, 30d or 365d')}`);
  return new Date(now.getTime() + p.value);
}

export async function tokenCreate(ctx: Context, opts: { name?: string; role?: string; expires?: string }): Promise<void> {
  if (opts.name === undefined) throw new UsageError('token create: give --name NAME (what the token is for, e.g. ci)');
  checkAuthName('token', opts.name);
  if (opts.role === undefined) throw new UsageError('token create: give --role viewer, operator or admin');
  checkRole(opts.role);
  const expires = expiryOf(opts.expires, ctx.now());
  const { row, token } = await store(ctx).createToken(opts.name, opts.role, expires);
  // The token alone on stdout, so TOKEN=$(carte token create …) works; the rest on stderr.
  process.stderr.write(`token/${row.name} created (id ${row.id}, role ${row.role}, ${row.expiresAt ? `expires ${iso(row.expiresAt)}` : 'never expires'}); ` +
    'it is shown only now: store it (send it as "Authorization: Bearer <token>")\n');
  write(token);
}

const expiryText = (t: TokenRow, now: Date) => (t.expiresAt === null ? 'never' : `${iso(t.expiresAt)}${Date.parse(t.expiresAt) <= now.getTime() ? ' (expired)' : ''}`);

export async function tokenList(ctx: Context, opts: { output?: string }): Promise<void> {
  checkOutput('token list', opts.output);
  const tokens = await store(ctx).listTokens();
  if (opts.output === 'json') return write(JSON.stringify({ items: tokens }, null, 2));
  if (!tokens.length) {
    process.stderr.write('no tokens (make one with "carte token create --name NAME --role ROLE")\n');
    return;
  }
  const now = ctx.now();
  write(table(['ID', 'NAME', 'ROLE', 'CREATED', 'EXPIRES'], tokens.map((t) => [t.id, t.name, t.role, iso(t.createdAt), expiryText(t, now)])));
}

export async function tokenRm(ctx: Context, idOrName: string): Promise<void> {
  const t = await store(ctx).removeToken(idOrName);
  write(`token/${t.name} removed (id ${t.id})`);
}
