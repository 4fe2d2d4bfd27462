// A real registry for the root tier: Debian's docker-registry on a free port
// of 127.0.0.1 with its own storage folder (and htpasswd basic auth when
// asked), stopped by its PID after. The bcrypt line for htpasswd comes from
// the system's crypt(3) through perl (libxcrypt knows $2b$): no npm package.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from './metaverse.js';
import { tempDir } from './paths.js';

export interface TestRegistry {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Its storage folder (blobs under docker/registry/v2/blobs/sha256/xx/HEX/data). */
  storage: string;
  /** The stored blob file of a digest. */
  blobFile(digest: string): string;
  stop(): Promise<void>;
}

const BCRYPT64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export function bcryptLine(user: string, password: string): string {
  const salt = [...randomBytes(22)].map((b) => BCRYPT64[b % 64]).join('').replace(/.$/, 'u');
  const hash = execFileSync('perl', ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`], { encoding: 'utf8' });
  if (!hash.startsWith('$2b$')) throw new Error('the system crypt(3) made no bcrypt hash');
  return `${user}:${hash}`;
}

export async function startRegistry(opts: { auth?: { user: string; password: string }; address?: string } = {}): Promise<TestRegistry> {
  const dir = tempDir('carte-registry-');
  const storage = path.join(dir, 'data');
  fs.mkdirSync(storage);
  const port = await freePort();
  let auth = '';
  if (opts.auth) {
    fs.writeFileSync(path.join(dir, 'htpasswd'), `${bcryptLine(opts.auth.user, opts.auth.password)}\n`);
    auth = `auth:\n  htpasswd:\n    realm: carte-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  }
  fs.writeFileSync(path.join(dir, 'config.yml'), `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
http:
  addr: ${opts.address ?? '127.0.0.1'}:${port}
  secret: carte-test-${port}
${auth}`);
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const host = `${opts.address ?? '127.0.0.1'}:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
    if (ok) return { host, storage, stop, blobFile: (d) => path.join(storage, 'docker/registry/v2/blobs/sha256', d.slice(7, 9), d.slice(7), 'data') };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`docker-registry did not start: ${stderr}`);
}
