// Brings the metaverse demo up and down with carte, as a user would:
//
//   node dist/examples/metaverse/demo.js up      (make demo)
//     builds the five images (cached after the first run), starts
//     `carte daemon --watch manifests/` in the background unless one runs,
//     waits until every service is converged, prints the endpoints.
//   node dist/examples/metaverse/demo.js down    (make demo-down)
//     stops that daemon, deletes the five services (their instances stop),
//     keeps the volumes (accounts, rooms, assets).
//   node dist/examples/metaverse/demo.js images  builds the images only.
//   node dist/examples/metaverse/demo.js rotate  new values for the secret
//     "metaverse" (the daemon rolls the services that use it).
//
// The manifests hold no credential: the session-token key and Redis's
// password are the secret "metaverse", which `up` makes on its first run
// (ensureSecret) through `carte secret set`, as an administrator would.
//
// The functions are exported for the e2e test and the benchmark, which run
// the same steps on a CARTE_HOME of their own.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { Endpoints } from './loadgen/client.js';

/** The checkout (this file runs compiled, from dist/examples/metaverse/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CARTE = path.join(ROOT, 'bin', 'carte');
export const MANIFESTS = path.join(ROOT, 'manifests');
/** The compiled servers: the build context of the four Node images. */
const COMPILED = path.join(ROOT, 'dist', 'examples', 'metaverse');
const SOURCES = path.join(ROOT, 'examples', 'metaverse');

export const SERVICES = ['redis', 'login', 'asset', 'map', 'game'] as const;
export const IMAGES: ReadonlyArray<{ tag: string; cartefile: string; context: string }> = [
  { tag: 'metaverse/redis:7', cartefile: path.join(SOURCES, 'redis', 'Cartefile'), context: path.join(SOURCES, 'redis') },
  ...(['login', 'asset', 'map', 'game'] as const).map((s) => ({ tag: `metaverse/${s}:1.0`, cartefile: path.join(SOURCES, s, 'Cartefile'), context: COMPILED })),
];

export interface Result { code: number | null; stdout: string; stderr: string }
export type Carte = (args: string[]) => Promise<Result>;

export function carteWith(env: NodeJS.ProcessEnv): Carte {
  return (args) => new Promise((resolve, reject) => {
    const child = spawn(CARTE, args, { env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function must(carte: Carte, args: string[]): Promise<string> {
  const r = await carte(args);
  if (r.code !== 0) throw new Error(`carte ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Builds the five images; the servers must have been compiled (make build). */
export async function buildImages(carte: Carte, say: (line: string) => void = () => {}): Promise<void> {
  if (!fs.existsSync(path.join(COMPILED, 'login', 'server.js'))) throw new Error(`${COMPILED} has no compiled servers: run "make build" first`);
  // The images run the compiled ES modules without the checkout's package.json.
  fs.writeFileSync(path.join(COMPILED, 'package.json'), '{ "type": "module" }\n');
  for (const img of IMAGES) {
    const started = performance.now();
    await must(carte, ['build', '-q', '-t', img.tag, '-f', img.cartefile, img.context]);
    say(`image ${img.tag} built in ${((performance.now() - started) / 1000).toFixed(1)}s`);
  }
}

/** The secret the manifests name, and its keys. */
export const SECRET = 'metaverse';
export const SECRET_KEYS = ['redis-password', 'redis.conf', 'token'] as const;

/**
 * Fresh values for the secret: the session-token key (TOKEN_SECRET) and
 * Redis's password, 32 random bytes each in hex, and the Redis config that
 * requires that password (the image reads it first: redis/Cartefile). Only
 * the password goes in the config: the secret is kept across runs, so a
 * setting put there would not follow a change of the checkout; the others
 * are flags in the Cartefile.
 */
export function secretValues(random: (n: number) => Buffer = randomBytes): Record<(typeof SECRET_KEYS)[number], string> {
  const password = random(32).toString('hex');
  return {
    token: random(32).toString('hex'),
    'redis-password': password,
    'redis.conf': `# The metaverse demo's Redis password (made by examples/metaverse/demo.ts; the servers get it as REDIS_PASSWORD).\nrequirepass ${password}\n`,
  };
}

/**
 * The sources that apply the demo's manifests: the daemon watching `dir`
 * (folder:<absolute dir>) and `carte apply` (cli), which `up` uses when a
 * daemon it did not start already runs. A secret set with `carte secret set`
 * is usable by cli only unless granted (docs/security.md, "Secrets").
 */
export function secretGrant(dir: string): string[] {
  return ['cli', `folder:${path.resolve(dir)}`];
}

/** The USABLE BY column of `carte secret list` for `name`, cut where the header's columns start (a path may hold spaces). */
export function usableByOf(list: string, name: string): string[] | null {
  const [head = '', ...rows] = list.split('\n');
  const from = head.indexOf('USABLE BY');
  const to = head.indexOf('UPDATED');
  if (from < 0 || to < from) return null;
  const row = rows.find((r) => r.split(/\s+/)[0] === name);
  return row ? row.slice(from, to).trim().split(',').filter(Boolean) : null;
}

/** Whether a grant pattern (`*`: any characters, as in the policy's match) covers a source. */
export function covers(pattern: string, source: string): boolean {
  return new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(source);
}

/**
 * Makes sure the secret "metaverse" exists with its keys and is usable by the
 * sources that apply `dir`. Made on the first run only: later runs keep it
 * (new values would log every player out and roll every service), unless
 * `rotate`. A grant is changed only with the values, which no command prints:
 * one that lacks a source (the checkout moved) is set again with new values.
 * The values go to `carte secret set` in files (0600, in a 0700 folder removed
 * after), never as arguments, which `ps` would show.
 */
export async function ensureSecret(carte: Carte, dir: string, say: (line: string) => void = () => {}, opts: { rotate?: boolean } = {}): Promise<'created' | 'kept' | 'granted' | 'rotated'> {
  const grant = secretGrant(dir);
  const got = await carte(['secret', 'get', SECRET]);
  if (got.code !== 0 && !got.stderr.includes(`secret "${SECRET}" not found`)) throw new Error(`carte secret get ${SECRET} failed (exit ${got.code}):\n${got.stderr.trim()}`);
  let usable: string[] = [];
  if (got.code === 0) {
    const keys = got.stdout.split('\n').filter(Boolean);
    const missing = SECRET_KEYS.filter((k) => !keys.includes(k));
    if (missing.length && !opts.rotate) {
      throw new Error(`secret "${SECRET}" exists without ${missing.length === 1 ? 'key' : 'keys'} ${missing.join(', ')}, which the manifests use: `
        + 'run "node dist/examples/metaverse/demo.js rotate" to set them all (the services that use it roll)');
    }
    usable = usableByOf(await must(carte, ['secret', 'list']), SECRET) ?? [];
    const lacking = grant.filter((g) => !usable.some((p) => covers(p, g)));
    if (!opts.rotate && !lacking.length) return 'kept';
    if (!opts.rotate) {
      // The checkout moved: grant the secret to this folder too (its values stay; nothing rolls).
      const usableBy = [...new Set([...usable, ...grant])];
      await must(carte, ['secret', 'grant', SECRET, ...usableBy.flatMap((g) => ['--usable-by', g])]);
      say(`secret ${SECRET} granted to ${lacking.join(', ')} (the checkout moved?); now usable by ${usableBy.join(', ')}`);
      return 'granted';
    }
  }
  const usableBy = [...new Set([...usable, ...grant])];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'carte-demo-secret-'));
  try {
    const args = ['secret', 'set', SECRET, '--no-start'];
    for (const [key, value] of Object.entries(secretValues())) {
      const file = path.join(tmp, key);
      fs.writeFileSync(file, value, { mode: 0o600, flag: 'wx' });
      args.push('--from-file', `${key}=${file}`);
    }
    for (const g of usableBy) args.push('--usable-by', g);
    await must(carte, args);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const did = got.code !== 0 ? 'created' : 'rotated';
  say(`secret ${SECRET} ${did}: keys ${SECRET_KEYS.join(', ')}, usable by ${usableBy.join(', ')}; kept encrypted in CARTE_HOME/secrets`);
  return did;
}

export interface ServiceRow { name: string; ready: string; phase: string }

/** Rows of `carte get` (NAME READY STATUS ...). */
export function parseGet(table: string): ServiceRow[] {
  return table.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 3)
    .map(([name, ready, phase]) => ({ name: name!, ready: ready!, phase: phase! }));
}

/** Waits until each service is Converged (or Idle: asleep at zero, woken by a request). */
export async function waitConverged(carte: Carte, names: readonly string[], timeoutMs: number, say: (line: string) => void = () => {}): Promise<ServiceRow[]> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const rows = parseGet(await must(carte, ['get'])).filter((r) => names.includes(r.name));
    const summary = rows.map((r) => `${r.name} ${r.ready} ${r.phase}`).join(', ');
    if (summary !== last) say(`  ${summary || 'waiting for the daemon to apply manifests/'}`);
    last = summary;
    if (rows.length === names.length && rows.every((r) => r.phase === 'Converged' || r.phase === 'Idle')) return rows;
    if (Date.now() > deadline) throw new Error(`not converged after ${timeoutMs / 1000}s: ${summary}\nsee "carte status" and "carte events"`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export interface Endpoint { service: string; name: string; protocol: string; port: number }

/** The published ports the manifests declare. */
export function endpoints(dir: string): Endpoint[] {
  const out: Endpoint[] = [];
  for (const f of fs.readdirSync(dir).filter((n) => /\.ya?ml$/.test(n)).sort()) {
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))) {
      const m = doc.toJS() as { metadata?: { name?: string }; spec?: { ports?: Array<{ name?: string; port: number; protocol?: string; publish?: number | { port: number } }> } };
      for (const p of m.spec?.ports ?? []) {
        if (p.publish === undefined) continue;
        out.push({ service: m.metadata!.name!, name: p.name ?? String(p.port), protocol: p.protocol ?? 'tcp', port: typeof p.publish === 'number' ? p.publish : p.publish.port });
      }
    }
  }
  return out;
}

/**
 * Copies the demo's manifests into `dir` with every published port moved by
 * `portOffset` (and Game kept at `gameMin` replicas or more, without its
 * class-hours schedule, when given), for the tests and the benchmark, which
 * run the demo on a home and bridge of their own. Returns where the servers
 * are published.
 */
export function copyManifests(dir: string, opts: { portOffset: number; gameMin?: number }): Endpoints {
  const published: Record<string, number> = {};
  for (const f of fs.readdirSync(MANIFESTS).filter((n) => n.endsWith('.yaml'))) {
    const doc = YAML.parseDocument(fs.readFileSync(path.join(MANIFESTS, f), 'utf8'));
    const m = doc.toJS() as { metadata: { name: string }; spec: { ports?: Array<{ name: string; publish?: number }> } };
    (m.spec.ports ?? []).forEach((p, i) => {
      if (typeof p.publish !== 'number') return;
      doc.setIn(['spec', 'ports', i, 'publish'], p.publish + opts.portOffset);
      published[`${m.metadata.name}/${p.name}`] = p.publish + opts.portOffset;
    });
    if (m.metadata.name === 'game' && opts.gameMin !== undefined) {
      doc.setIn(['spec', 'autoscale', 'min'], opts.gameMin);
      doc.deleteIn(['spec', 'autoscale', 'schedule']);
    }
    fs.writeFileSync(path.join(dir, f), doc.toString());
  }
  return { host: '127.0.0.1', login: published['login/http']!, asset: published['asset/http']!, map: published['map/http']!, game: published['game/session']!, gameUdp: published['game/position']! };
}

const home = () => process.env.CARTE_HOME ?? '/var/lib/carte';
const pidFile = () => path.join(home(), 'demo-daemon.pid');
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const ourDaemon = (): number | null => {
  const pid = Number(fs.existsSync(pidFile()) ? fs.readFileSync(pidFile(), 'utf8').trim() : NaN);
  return Number.isInteger(pid) && alive(pid) ? pid : null;
};

async function up(): Promise<void> {
  const carte = carteWith(process.env);
  const say = (l: string) => console.log(l);
  await buildImages(carte, say);
  await ensureSecret(carte, MANIFESTS, say);
  const running = /^daemon: running/m.test(await must(carte, ['status']));
  if (running && !ourDaemon()) {
    say('a carte daemon already runs on this CARTE_HOME: applying manifests/ through it');
    await must(carte, ['apply', '-f', MANIFESTS]);
  } else if (!running) {
    fs.mkdirSync(home(), { recursive: true });
    const logFile = path.join(home(), 'demo-daemon.log');
    const out = fs.openSync(logFile, 'a');
    const child = spawn(CARTE, ['daemon', '--watch', MANIFESTS], { detached: true, stdio: ['ignore', out, out] });
    child.unref();
    fs.writeFileSync(pidFile(), `${child.pid}\n`);
    say(`daemon started (pid ${child.pid}), watching ${MANIFESTS}; its log: ${logFile}`);
  } else {
    say(`daemon already running (pid ${ourDaemon()}), watching ${MANIFESTS}`);
  }
  say('waiting for the services to converge:');
  await waitConverged(carte, SERVICES, 180_000, say);
  say('\nthe metaverse is up; on this machine:');
  for (const e of endpoints(MANIFESTS)) {
    const url = e.protocol === 'tcp' && e.service !== 'game' ? `http://127.0.0.1:${e.port}/health` : `${e.protocol}://127.0.0.1:${e.port}`;
    say(`  ${e.service.padEnd(6)} ${e.name.padEnd(9)} ${url}`);
  }
  // The daemon's dashboard (default address; CARTE_HTTP moves it).
  const http = process.env.CARTE_HTTP ?? '127.0.0.1:7070';
  if (http !== 'off') say(`  dashboard        http://${http}/   (first user: ./bin/carte user add NAME --role admin)`);
  say(`\nnext:
  node dist/examples/metaverse/loadgen/loadgen.js --players 80 --duration 60s   # a class of students
  ./bin/carte get && ./bin/carte events                                           # watch carte scale
  make demo-down                                                                  # stop it (volumes kept)`);
}

async function down(): Promise<void> {
  const carte = carteWith(process.env);
  const pid = ourDaemon();
  if (pid) {
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 20_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) throw new Error(`daemon pid ${pid} did not stop within 20s`);
    console.log(`daemon (pid ${pid}) stopped`);
  } else if (/^daemon: running/m.test(await must(carte, ['status']))) {
    throw new Error('a carte daemon that make demo did not start runs on this CARTE_HOME: stop it first (it would put the services back)');
  }
  fs.rmSync(pidFile(), { force: true });
  const stored = parseGet(await must(carte, ['get'])).map((r) => r.name).filter((n) => (SERVICES as readonly string[]).includes(n));
  if (stored.length) process.stdout.write(await must(carte, ['delete', '--force', ...stored]));
  console.log('the metaverse is down; its volumes (accounts, rooms, assets) are kept in CARTE_HOME/volumes');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const cmd = process.argv[2];
  const action = cmd === 'up' ? up : cmd === 'down' ? down : cmd === 'images' ? () => buildImages(carteWith(process.env), console.log)
    : cmd === 'rotate' ? () => ensureSecret(carteWith(process.env), MANIFESTS, console.log, { rotate: true }) : null;
  if (!action) {
    console.error('usage: node dist/examples/metaverse/demo.js up|down|images|rotate');
    process.exit(2);
  }
  action().catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  });
}
