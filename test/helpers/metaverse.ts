// The metaverse servers as local processes (the compiled dist/ files, no
// containers) against a real redis-server on a free loopback port: for
// tests of what each server enforces, end to end over its real sockets.
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { makeLog } from '../../examples/metaverse/lib/log.js';
import { Redis } from '../../examples/metaverse/lib/redis.js';
import { ROOT } from './paths.js';

export const SECRET = 'metaverse-test-secret-16+';
/** The local redis-server's requirepass, as the demo's Redis has one. */
export const REDIS_PASSWORD = 'metaverse-test-redis-password';
const SERVERS = path.join(ROOT, 'dist', 'examples', 'metaverse');

/** A port nothing listens on right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function until<T>(check: () => Promise<T | undefined | false>, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** GET a JSON document (a health or stats page). */
export function getJson(port: number, urlPath: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) as Record<string, unknown> : {} }));
    }).on('error', reject);
  });
}

/** One raw UDP datagram. */
export function sendDatagram(port: number, payload: object): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.send(JSON.stringify(payload), port, '127.0.0.1', (e) => {
      s.close();
      if (e) reject(e);
      else resolve();
    });
  });
}

export class Processes {
  private children: ChildProcess[] = [];
  private output = new Map<ChildProcess, string>();

  /** redis-server on a free port, nothing saved, requiring REDIS_PASSWORD; `client` logs in with it. */
  async redis(): Promise<{ port: number; client: Redis }> {
    const port = await freePort();
    const child = this.spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--requirepass', REDIS_PASSWORD], {});
    const client = new Redis({ host: '127.0.0.1', port, password: REDIS_PASSWORD }, makeLog('test', 'error'));
    client.start(); // retries until redis-server listens
    await client.waitReady(10_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${this.output.get(child)}`);
    });
    return { port, client };
  }

  /** One of the four servers, ready (its /health answers `status`, 200 by default, on `healthPort`). */
  async server(name: 'login' | 'asset' | 'map' | 'game', env: Record<string, string>, healthPort: number, status = 200): Promise<ChildProcess> {
    const child = this.spawn(process.execPath, [path.join(SERVERS, name, 'server.js')], { TOKEN_SECRET: SECRET, LOG_LEVEL: 'warn', ...env });
    await until(async () => {
      if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${this.output.get(child)}`);
      return (await getJson(healthPort, '/health')).status === status;
    }, `${name}'s health to answer ${status}`).catch((e: Error) => {
      throw new Error(`${e.message}\n${this.output.get(child)}`);
    });
    return child;
  }

  /** What a process this started wrote (stdout and stderr, the last 4000 characters). */
  outputOf(child: ChildProcess): string {
    return this.output.get(child) ?? '';
  }

  /** SIGTERMs what this started (by pid) and waits for each to exit. */
  async stop(): Promise<void> {
    await Promise.all(this.children.map((c) => new Promise<void>((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) return resolve();
      const kill = setTimeout(() => c.kill('SIGKILL'), 5000);
      c.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      c.kill('SIGTERM');
    })));
    this.children = [];
  }

  private spawn(cmd: string, args: string[], env: Record<string, string>): ChildProcess {
    const child = spawn(cmd, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    this.output.set(child, '');
    const keep = (d: Buffer) => this.output.set(child, (this.output.get(child)! + d.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return child;
  }
}
