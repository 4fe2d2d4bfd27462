// A small Redis client: one TCP connection, pipelined commands answered in
// order, reconnect with backoff. Subscriber mode (for the Game fan-out) uses
// its own connection and re-subscribes after a reconnect.
import net from 'node:net';
import type { Log } from './log.js';
import { encodeCommand, RedisReplyError, ReplyParser, type Reply } from './resp.js';

export class RedisUnavailable extends Error {
  constructor(detail: string) {
    super(`redis is unavailable: ${detail}`);
  }
}

interface Pending { resolve(r: Reply): void; reject(e: Error): void }

class Connection {
  protected socket: net.Socket | null = null;
  protected connected = false;
  private closing = false;
  private backoff = 100;
  private readyWaiters: Array<() => void> = [];

  constructor(protected readonly addr: { host: string; port: number }, protected readonly log: Log, private readonly role: string) {}

  get ready(): boolean {
    return this.connected;
  }

  start(): void {
    if (this.closing) return;
    const parser = new ReplyParser();
    const s = net.connect({ host: this.addr.host, port: this.addr.port });
    s.setNoDelay(true);
    s.setKeepAlive(true, 10_000);
    this.socket = s;
    s.on('connect', () => {
      this.connected = true;
      this.backoff = 100;
      this.log.info('redis connected', { role: this.role, host: this.addr.host, port: this.addr.port });
      this.onConnect();
      this.readyWaiters.splice(0).forEach((f) => f());
    });
    s.on('data', (chunk) => {
      let replies: Reply[];
      try {
        replies = parser.push(chunk);
      } catch (e) {
        this.log.error('redis protocol error', { error: (e as Error).message });
        s.destroy();
        return;
      }
      for (const r of replies) this.onReply(r);
    });
    s.on('error', (e) => this.log.debug('redis socket error', { role: this.role, error: e.message }));
    s.on('close', () => {
      const was = this.connected;
      this.connected = false;
      this.socket = null;
      this.onDisconnect(new RedisUnavailable(was ? 'connection lost' : `cannot connect to ${this.addr.host}:${this.addr.port}`));
      if (this.closing) return;
      if (was) this.log.warn('redis connection lost, reconnecting', { role: this.role });
      setTimeout(() => this.start(), this.backoff).unref();
      this.backoff = Math.min(this.backoff * 2, 2000);
    });
  }

  /** Resolves once connected (or at once if connected); rejects after timeoutMs. */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new RedisUnavailable(`not connected after ${timeoutMs} ms`)), timeoutMs);
      this.readyWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const s = this.socket;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.once('close', () => resolve());
      s.end(encodeCommand(['QUIT']));
      setTimeout(() => s.destroy(), 1000).unref();
    });
  }

  protected write(args: ReadonlyArray<string | number | Buffer>): void {
    this.socket!.write(encodeCommand(args));
  }

  protected onConnect(): void {}
  protected onReply(_r: Reply): void {}
  protected onDisconnect(_e: Error): void {}
}

/** Request/response commands, pipelined. */
export class Redis extends Connection {
  private pending: Pending[] = [];

  constructor(addr: { host: string; port: number }, log: Log) {
    super(addr, log, 'commands');
  }

  /** Sends one command; rejects with RedisUnavailable when not connected, or with the server's error. */
  command(...args: Array<string | number | Buffer>): Promise<Reply> {
    if (!this.connected) return Promise.reject(new RedisUnavailable('not connected'));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.write(args);
    });
  }

  async str(...args: Array<string | number | Buffer>): Promise<string | null> {
    const r = await this.command(...args);
    if (r instanceof RedisReplyError) throw r;
    return r === null ? null : String(r);
  }

  async int(...args: Array<string | number | Buffer>): Promise<number> {
    const r = await this.command(...args);
    if (r instanceof RedisReplyError) throw r;
    return Number(r);
  }

  async list(...args: Array<string | number | Buffer>): Promise<Array<string | null>> {
    const r = await this.command(...args);
    if (r instanceof RedisReplyError) throw r;
    if (!Array.isArray(r)) return [];
    return r.map((x) => (x === null ? null : String(x)));
  }

  protected override onReply(r: Reply): void {
    const p = this.pending.shift();
    if (!p) return;
    if (r instanceof RedisReplyError) p.reject(r);
    else p.resolve(r);
  }

  protected override onDisconnect(e: Error): void {
    this.pending.splice(0).forEach((p) => p.reject(e));
  }
}

/** Pub/sub: subscribe to channels, get their messages; survives reconnects. */
export class Subscriber extends Connection {
  private channels = new Set<string>();

  constructor(addr: { host: string; port: number }, log: Log, private readonly onMessage: (channel: string, message: string) => void) {
    super(addr, log, 'subscriber');
  }

  subscribe(channel: string): void {
    if (this.channels.has(channel)) return;
    this.channels.add(channel);
    if (this.connected) this.write(['SUBSCRIBE', channel]);
  }

  unsubscribe(channel: string): void {
    if (!this.channels.delete(channel)) return;
    if (this.connected) this.write(['UNSUBSCRIBE', channel]);
  }

  protected override onConnect(): void {
    if (this.channels.size) this.write(['SUBSCRIBE', ...this.channels]);
  }

  protected override onReply(r: Reply): void {
    if (Array.isArray(r) && r[0] === 'message' && typeof r[1] === 'string' && typeof r[2] === 'string') this.onMessage(r[1], r[2]);
  }
}
