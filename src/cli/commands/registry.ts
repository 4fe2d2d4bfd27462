// carte login / logout / pull / push. Pulls and pushes run in this process
// (file work and skopeo; no daemon needed); logins are checked against the
// registry before they are stored, encrypted (src/registry/credentials.ts).
import fs from 'node:fs';
import { CarteError, UsageError } from '../../errors.js';
import { formatSize } from '../../drivers/linux/images/build.js';
import { allowsPlainHttp } from '../../schema/image-reference.js';
import { pullImage, pushImage } from '../../drivers/linux/images/registry.js';
import { runSkopeo } from '../../drivers/linux/images/skopeo.js';
import { normalizeRef } from '../../drivers/linux/images/store.js';
import { loadRegistriesConfig } from '../../registry/config.js';
import { RegistryCredentials } from '../../registry/credentials.js';
import type { Context } from '../context.js';
import { imageTools, registryAccess } from '../linux.js';
import { write } from '../output.js';

export interface TransferCliOptions {
  /** The daemon config file, for its registries.insecure. */
  config?: string;
  quiet?: boolean;
}

const REGISTRY = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?$/;

function checkRegistry(cmd: string, registry: string): void {
  if (!REGISTRY.test(registry)) throw new UsageError(`${cmd}: "${registry}" is not a registry (use host or host:port, e.g. 127.0.0.1:5000)`);
}

/** Progress only on a terminal: a script's output stays the one result line. */
const progress = (opts: TransferCliOptions) => (!opts.quiet && process.stderr.isTTY ? (line: string) => process.stderr.write(`${line}\n`) : undefined);

export async function pull(ctx: Context, ref: string, opts: TransferCliOptions = {}): Promise<void> {
  const { images } = await imageTools(ctx);
  const access = registryAccess(ctx, loadRegistriesConfig(opts.config).insecure);
  const r = await pullImage(images, ref, access, { onProgress: progress(opts) });
  write(`${r.upToDate ? 'up to date' : 'pulled'} ${r.name} (digest ${r.digest}, id ${r.image.id.slice(0, 12)}, ${formatSize(r.image.size)})`);
}

export async function push(ctx: Context, source: string, dest: string, opts: TransferCliOptions = {}): Promise<void> {
  const { images } = await imageTools(ctx);
  const access = registryAccess(ctx, loadRegistriesConfig(opts.config).insecure);
  const r = await pushImage(images, source, dest, access, { onProgress: progress(opts) });
  write(`pushed ${normalizeRef(source)} to ${r.ref} (digest ${r.digest})`);
}

export interface LoginOptions {
  username?: string;
  passwordStdin?: boolean;
  config?: string;
}

/** The password: the first line of standard input (--password-stdin), else asked on the terminal without echo. */
async function readPassword(opts: LoginOptions): Promise<string> {
  let text: string;
  if (opts.passwordStdin) {
    if (process.stdin.isTTY) throw new UsageError('login: --password-stdin reads the password from a pipe, e.g. cat token | carte login REGISTRY -u USER --password-stdin');
    text = fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  } else if (process.stdin.isTTY) {
    text = await askHidden('Password: ');
  } else {
    throw new UsageError('login: give the password with --password-stdin (it is never taken as an argument)');
  }
  if (!text) throw new UsageError('login: the password is empty');
  if (text.includes('\n')) throw new UsageError('login: the password is one line');
  return text;
}

function askHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let text = '';
    const done = (e: Error | null) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (e) reject(e);
      else resolve(text);
    };
    const onData = (b: Buffer) => {
      for (const ch of b.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new UsageError('login: cancelled'));
        if (ch === '\u007f') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export async function login(ctx: Context, registry: string, opts: LoginOptions): Promise<void> {
  checkRegistry('login', registry);
  if (!opts.username) throw new UsageError('login: name the user with -u USER');
  const password = await readPassword(opts);
  const access = registryAccess(ctx, loadRegistriesConfig(opts.config).insecure);
  // Checked with the registry first: a wrong password is refused here, not at the first pull.
  await runSkopeo({
    what: `login ${registry}`, authRoot: access.authRoot, auth: null, timeoutMs: 60_000,
    args: ['login', ...(allowsPlainHttp(registry, access.insecure) ? ['--tls-verify=false'] : []), '-u', opts.username, '--password-stdin', registry],
    stdin: password,
  });
  await new RegistryCredentials(ctx.home, () => ctx.vault().key()).set(registry, { username: opts.username, password });
  write(`logged in to ${registry} as ${opts.username} (kept encrypted in ${ctx.home}/registries)`);
}

export async function logout(ctx: Context, registry: string): Promise<void> {
  checkRegistry('logout', registry);
  const removed = await new RegistryCredentials(ctx.home, () => ctx.vault().key()).remove(registry);
  if (!removed) throw new CarteError('registry', `not logged in to ${registry}`, { exitCode: 1 });
  write(`logged out of ${registry}`);
}
