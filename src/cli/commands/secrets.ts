import fs from 'node:fs';
import path from 'node:path';
import { grantSecret, listSecrets, removeSecret, rotateKey, setSecret } from '../../api/secrets.js';
import { NotFoundError, UsageError } from '../../errors.js';
import { formatMemory } from '../../schema/units.js';
import { NAME_PATTERN, SECRET_KEY_PATTERN } from '../../schema/service-schema.js';
import { isRecipient } from '../../secrets/age.js';
import { sealedSecretYaml } from '../../secrets/sealed.js';
import type { SecretValues } from '../../secrets/vault.js';
import type { Context } from '../context.js';
import { convergeAfterChange } from '../converge.js';
import { age, table, write } from '../output.js';
import { timeoutOf } from './services.js';

/** All values of one secret together, at most (Kubernetes' limit too): they live in memory and on a tmpfs per instance. */
export const SECRET_MAX_BYTES = 1024 * 1024;

export interface ValueOptions {
  fromLiteral?: string[];
  fromFile?: string[];
}

const NAME = new RegExp(NAME_PATTERN);
const KEY = new RegExp(SECRET_KEY_PATTERN);

function checkName(name: string): void {
  if (!NAME.test(name)) throw new UsageError(`"${name}" is not a valid secret name (lowercase letters, digits and "-", starting with a letter, at most 40 characters)`);
}

/**
 * The values given on the command line: --from-literal key=value,
 * --from-file [key=]file, else standard input as key "value". Errors name
 * keys and files, never a value.
 */
export function readValues(opts: ValueOptions, stdin: () => Buffer | null = readStdin): SecretValues {
  const values: SecretValues = {};
  const add = (key: string, value: Buffer, what: string) => {
    if (!KEY.test(key)) throw new UsageError(`${what}: "${key}" is not a valid secret key (letters, digits, "-", "_" and ".")`);
    if (values[key]) throw new UsageError(`${what}: key "${key}" is given twice`);
    values[key] = value;
  };
  for (const l of opts.fromLiteral ?? []) {
    const i = l.indexOf('=');
    if (i <= 0) throw new UsageError('--from-literal takes key=value (the key before the first "=")');
    add(l.slice(0, i), Buffer.from(l.slice(i + 1)), '--from-literal');
  }
  for (const f of opts.fromFile ?? []) {
    const i = f.indexOf('=');
    const [key, file] = i > 0 ? [f.slice(0, i), f.slice(i + 1)] : [path.basename(f), f];
    let bytes: Buffer;
    try {
      bytes = readAtMost(file, SECRET_MAX_BYTES);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw new UsageError(`--from-file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    add(key, bytes, `--from-file ${file}`);
  }
  if (!Object.keys(values).length) {
    const input = stdin();
    if (input === null) throw new UsageError('give the values with --from-literal key=value or --from-file key=file, or the value of key "value" on standard input');
    values.value = input;
  }
  const size = Object.values(values).reduce((n, v) => n + v.length, 0);
  if (size > SECRET_MAX_BYTES) throw new UsageError(`the values add up to ${formatMemory(size)}; a secret holds at most ${formatMemory(SECRET_MAX_BYTES)}`);
  return values;
}

/** Standard input whole, or null when it is a terminal (nothing was piped in). */
function readStdin(): Buffer | null {
  if (process.stdin.isTTY) return null;
  return readAtMost(0, SECRET_MAX_BYTES);
}

/**
 * A file or descriptor read whole, refused once it passes `limit`: a secret
 * read from /dev/zero or an endless pipe must not fill the server's memory.
 */
export function readAtMost(file: string | number, limit: number): Buffer {
  const fd = typeof file === 'number' ? file : fs.openSync(file, 'r');
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    const chunk = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue; // a non-blocking pipe: wait for more
        if ((e as NodeJS.ErrnoException).code === 'EOF') break;
        throw e;
      }
      if (n === 0) break;
      total += n;
      if (total > limit) throw new UsageError(`${typeof file === 'number' ? 'standard input' : file} holds more than ${formatMemory(limit)}; a secret holds at most ${formatMemory(limit)}`);
      chunks.push(Buffer.from(chunk.subarray(0, n)));
    }
    return Buffer.concat(chunks, total);
  } finally {
    if (typeof file !== 'number') fs.closeSync(fd);
  }
}

export async function set(ctx: Context, name: string, opts: ValueOptions & { force?: boolean; wait?: boolean; timeout?: string; start?: boolean; usableBy?: string[] }): Promise<void> {
  checkName(name);
  const usableBy = opts.usableBy?.map((p) => p.trim());
  if (usableBy?.some((p) => !p)) throw new UsageError('--usable-by takes a source id or pattern, e.g. cli, folder:/srv/carte/*, git:*');
  const values = readValues(opts);
  const r = await setSecret(ctx.store(), ctx.vault(), name, values, { force: opts.force, now: ctx.now(), usableBy });
  write(`secret/${name} ${r.action}`);
  for (const s of r.rolled) write(`service/${s} rolling: secret ${name} changed`);
  if (!r.rolled.length || opts.start === false) return;
  await convergeAfterChange(ctx, { wait: opts.wait === true, timeoutMs: timeoutOf(opts), services: r.rolled });
}

export async function grant(ctx: Context, name: string, opts: { usableBy?: string[] }): Promise<void> {
  const usableBy = (opts.usableBy ?? []).map((p) => p.trim());
  if (!usableBy.length || usableBy.some((p) => !p)) throw new UsageError('secret grant: give --usable-by SOURCE at least once (a source id or pattern: cli, folder:/srv/carte/*, git:*)');
  const r = await grantSecret(ctx.store(), name, [...new Set(usableBy)], ctx.now());
  write(`secret/${name} ${r === 'updated' ? `usable by ${usableBy.join(', ')}` : 'unchanged'}`);
}

export async function list(ctx: Context): Promise<void> {
  const now = ctx.now();
  const rows = listSecrets(await ctx.store().read());
  if (!rows.length) {
    write('no secrets');
    return;
  }
  write(table(['NAME', 'KEYS', 'SOURCE', 'USABLE BY', 'UPDATED', 'USED BY'], rows.map((r) => [r.name, r.keys.join(','), r.source, r.usableBy.join(','), age(r.updatedAt, now), r.users.join(',') || '<none>'])));
}

export async function get(ctx: Context, name: string): Promise<void> {
  const s = (await ctx.store().read()).secrets?.[name];
  if (!s) throw new NotFoundError(`secret "${name}" not found`);
  write(s.keys.join('\n'));
}

export async function rm(ctx: Context, name: string, opts: { force?: boolean }): Promise<void> {
  const r = await removeSecret(ctx.store(), ctx.vault(), name, { force: opts.force, now: ctx.now() });
  write(`secret/${name} removed`);
  if (r.users.length) ctx.log.warn(`${r.users.map((u) => `service/${u}`).join(', ')} still ${r.users.length === 1 ? 'uses' : 'use'} secret ${name}: ${r.users.length === 1 ? 'its' : 'their'} new instances will fail to start until it is set again`);
}

export async function seal(ctx: Context, name: string, opts: ValueOptions & { publicKey?: string; source?: string }): Promise<void> {
  checkName(name);
  if (opts.publicKey !== undefined && !isRecipient(opts.publicKey)) {
    throw new UsageError(`--public-key: "${opts.publicKey}" is not an age public key (age1…, as "carte secret public-key" prints on the server)`);
  }
  const values = readValues(opts);
  const recipient = opts.publicKey ?? (await ctx.vault().key()).recipient;
  if (opts.source !== undefined && !/^(cli|git:\S+|folder:\/\S*)$/.test(opts.source)) {
    throw new UsageError(`--source: "${opts.source}" is not a source id: write it as carte get shows it (git:URL#BRANCH:PATH, folder:/PATH, or cli)`);
  }
  process.stdout.write(await sealedSecretYaml(recipient, name, values, opts.source));
}

export async function publicKey(ctx: Context): Promise<void> {
  write((await ctx.vault().key()).recipient);
}

export async function rotate(ctx: Context, opts: { keepOld?: boolean }): Promise<void> {
  const r = await rotateKey(ctx.store(), ctx.vault(), { keepOld: opts.keepOld, now: ctx.now() });
  write(`new public key: ${r.recipient}`);
  write(`${r.secrets.length} ${r.secrets.length === 1 ? 'secret' : 'secrets'} encrypted again${r.secrets.length ? `: ${r.secrets.join(', ')}` : ''}`);
  write(opts.keepOld
    ? 'the old keys still open (SealedSecrets sealed to them keep working); seal them again, then remove the old AGE-SECRET-KEY lines from the key file'
    : `${r.dropped} old ${r.dropped === 1 ? 'key' : 'keys'} dropped: SealedSecrets sealed to the old public key must be sealed again`);
}
