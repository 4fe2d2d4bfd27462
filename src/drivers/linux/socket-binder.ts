// Listening sockets on service addresses, for the gateway: made inside the
// gateway's network namespace by the binder child (socket-binder-child.ts),
// passed back over Node's IPC channel, and accepted on here, in the daemon,
// which stays in the host's namespace (its upstream connections to instances
// go from there, as before). Node has no setns(); a child started in the
// namespace by nsenter, which keeps the IPC descriptor open across its exec,
// is the smallest way to make a socket there.
//
// The child is started on the first request and kept (binding is rare: when
// a service or port appears). If it exits, requests waiting on it fail (the
// gateway reports the port and tries again later) and the next request
// starts a new one: no restart loop when something keeps it from starting.
import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../log.js';
import type { ServiceSockets } from '../driver.js';
import { findExecutable, type Runner } from './exec.js';

const CHILD = fileURLToPath(new URL('./socket-binder-child.js', import.meta.url));
const START_TIMEOUT_MS = 10_000;

/** Options of every TCP server handed out: connections arrive paused, half-close allowed, Nagle off. */
export const PROXY_SERVER_OPTIONS: net.ServerOpts = { allowHalfOpen: true, pauseOnConnect: true, noDelay: true };

type Reply =
  | { type: 'ready'; netns: number }
  | { type: 'bound'; id: number }
  | { type: 'error'; id: number; code: string; message: string }
  | { type: 'stray'; id: number }
  | { type: 'stray-datagram'; id: number; data: string; address: string; port: number };

type Pending =
  | { kind: 'tcp'; server: net.Server; resolve(): void; reject(e: Error): void }
  | { kind: 'udp'; onMessage: (msg: Buffer, from: dgram.RemoteInfo) => void; resolve(socket: dgram.Socket): void; reject(e: Error): void };

/** A bind error as the gateway knows it from a local bind (code EADDRINUSE, …). */
function bindError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

export class SocketBinder implements ServiceSockets {
  private child: ChildProcess | null = null;
  /** The inode of the namespace the child runs in. */
  private childNetns: number | null = null;
  private starting: Promise<ChildProcess> | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending & { child: ChildProcess }>();
  /** Where each id's sockets go once the daemon holds them (strays accepted by the child meanwhile). */
  private readonly adopted = new Map<number, net.Server | dgram.Socket>();

  constructor(private readonly runner: Runner, private readonly log: Logger, private readonly netnsPath: string) {}

  async tcp(address: string, port: number, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
    const server = net.createServer(PROXY_SERVER_OPTIONS, onConnection);
    await this.request<void>((resolve, reject) => ({ kind: 'tcp', server, resolve: () => resolve(), reject }), 'tcp', address, port);
    return server;
  }

  async udp(address: string, port: number, onMessage: (msg: Buffer, from: dgram.RemoteInfo) => void): Promise<dgram.Socket> {
    return this.request<dgram.Socket>((resolve, reject) => ({ kind: 'udp', onMessage, resolve, reject }), 'udp', address, port);
  }

  /** Ends the child (a later request starts another); sockets handed out keep working (the daemon holds its own descriptors). */
  async close(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      child.ref(); // until it is gone
      child.kill('SIGTERM');
      await gone;
    }
  }

  private async request<T>(
    make: (resolve: (v: T) => void, reject: (e: Error) => void) => Pending,
    kind: 'tcp' | 'udp', address: string, port: number,
  ): Promise<T> {
    const child = await this.start();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { ...make(resolve, reject), child });
      this.holdOpen(child);
      child.send({ type: 'bind', id, kind, address, port }, (e) => {
        if (!e || !this.pending.delete(id)) return;
        this.holdOpen(child);
        reject(e);
      });
    });
  }

  /**
   * The running child, or a new one once it says it runs in the gateway's
   * namespace. One in a namespace that is no longer the gateway's (removed
   * and made again) is ended first.
   */
  private async start(): Promise<ChildProcess> {
    if (this.child) {
      const now = (await fs.promises.stat(this.netnsPath).catch(() => null))?.ino;
      if (now === this.childNetns) return this.child;
      this.child.kill('SIGKILL');
      this.child = null;
    }
    this.starting ??= this.spawn().finally(() => (this.starting = null));
    return this.starting;
  }

  /** The child's pid while it runs (for tests and describe). */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  private async spawn(): Promise<ChildProcess> {
    const nsenter = findExecutable('nsenter') ?? 'nsenter';
    const expected = (await fs.promises.stat(this.netnsPath).catch(() => null))?.ino;
    if (expected === undefined) throw bindError('EBINDER', `the gateway's network namespace ${this.netnsPath} does not exist`);
    // A small heap: it only binds sockets.
    const child = this.runner.spawn(nsenter, [`--net=${this.netnsPath}`, '--', process.execPath, '--max-semi-space-size=1', '--max-old-space-size=32', CHILD], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    // Neither the child nor its channel keeps the daemon (or a test) alive, except while an answer is awaited.
    child.unref();
    child.channel?.ref();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the socket binder did not start within ${START_TIMEOUT_MS / 1000} s`));
      }, START_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`could not start the socket binder: ${e.message}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        const why = `the socket binder exited (${signal ?? `code ${code}`})`;
        // Unexpected unless it was let go first (close, or a namespace made again).
        if (this.child === child) {
          this.child = null;
          this.log.warn({ netns: this.netnsPath, code, signal }, 'socket binder exited; the next bind starts another');
        }
        for (const [id, p] of this.pending) {
          if (p.child !== child) continue;
          this.pending.delete(id);
          p.reject(bindError('EBINDER', why));
        }
        reject(new Error(why));
      });
      child.on('message', (m: Reply, handle?: net.Server | net.Socket | dgram.Socket) => {
        switch (m.type) {
          case 'ready':
            clearTimeout(timer);
            if (m.netns !== expected) {
              child.kill('SIGKILL');
              reject(new Error(`the socket binder runs in namespace ${m.netns}, not ${this.netnsPath} (${expected})`));
              return;
            }
            this.child = child;
            this.childNetns = expected;
            this.holdOpen(child);
            resolve(child);
            return;
          case 'bound':
          case 'error': {
            const p = this.pending.get(m.id);
            this.pending.delete(m.id);
            this.holdOpen(child);
            if (m.type === 'error') p?.reject(bindError(m.code, m.message));
            else if (!handle || !p) (handle as net.Server | dgram.Socket | undefined)?.close(); // nobody waits for it any more
            else this.adopt(child, m.id, p, handle as net.Server | dgram.Socket);
            return;
          }
          case 'stray':
            this.stray(m.id, handle as net.Socket | undefined);
            return;
          case 'stray-datagram':
            this.adopted.get(m.id)?.emit('message', Buffer.from(m.data, 'base64'), { address: m.address, family: net.isIPv6(m.address) ? 'IPv6' : 'IPv4', port: m.port, size: Buffer.byteLength(m.data, 'base64') });
            return;
        }
      });
    });
  }

  /** The channel keeps the process alive only while an answer from `child` is awaited. */
  private holdOpen(child: ChildProcess): void {
    const awaited = [...this.pending.values()].some((p) => p.child === child);
    if (awaited) child.channel?.ref();
    else child.channel?.unref();
  }

  /**
   * Takes over a socket the child bound, synchronously (a stray from the
   * child may follow at once), then tells the child to close its copy.
   */
  private adopt(child: ChildProcess, id: number, p: Pending, handle: net.Server | dgram.Socket): void {
    if (p.kind === 'tcp') {
      const { server } = p;
      const failed = (e: Error) => {
        (handle as net.Server).close(); // Node's own wrapper of the received socket: the descriptor goes with it
        p.reject(e);
      };
      server.once('error', failed);
      // Documented: listen(handle) takes any object with a `_handle`; this server then owns the socket.
      server.listen(handle as net.Server, () => {
        server.off('error', failed);
        p.resolve();
      });
      this.adopted.set(id, server);
      server.once('close', () => this.adopted.delete(id));
    } else {
      const socket = handle as dgram.Socket;
      socket.on('message', p.onMessage);
      this.adopted.set(id, socket);
      socket.once('close', () => this.adopted.delete(id));
      p.resolve(socket);
    }
    child.send({ type: 'release', id });
  }

  /** A connection the child accepted before it let go of the socket: made like the server's own. */
  private stray(id: number, socket: net.Socket | undefined): void {
    if (!socket) return;
    const server = this.adopted.get(id);
    if (!(server instanceof net.Server)) {
      socket.destroy();
      return;
    }
    socket.pause();
    socket.allowHalfOpen = true;
    socket.setNoDelay(true);
    server.emit('connection', socket);
  }
}
