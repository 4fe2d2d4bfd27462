// A small Redis client: one TCP connection, pipelined commands answered in
// order, reconnect with backoff. Subscriber mode (for the Game fan-out) uses
// its own connection and re-subscribes after a reconnect.
//
// Every connection, the first and each reconnect, opens with a handshake
// before anything else is sent: AUTH with the password when there is one,
// else PING. Only its OK makes the connection ready, so a Redis that wants a
// password we lack (NOAUTH) or refuses ours (WRONGPASS) leaves the server
// unready (its /health answers 503) with one clear log line, and it keeps
// retrying, so it recovers when Redis or its password is fixed.
import net from 'node:net';
import type { RedisTarget } from './config.js';
import type { Log } from './log.js';
import { encodeCommand, RedisReplyError, ReplyParser, type Reply } from './resp.js';

export class RedisUnavailable extends Error {
  constructor(detail: string) {
    super(`redis is unavailable: ${detail}`);
  }
}

/**
 * Error replies that mean "the database cannot take this now", not "this
 * command is wrong": the servers answer them like a lost connection (503,
 * try again), not as a bug (500). OOM is what a full Redis says to every
 * write once used memory passes `maxmemory` under `noeviction` (see
 * redis/Cartefile); LOADING comes right after a restart, while the AOF is read.
 */
const UNAVAILABLE_REPLIES: Record<string, string> = {
  OOM: 'it is out of memory (maxmemory reached) and refuses writes until space is freed',
  LOADING: 'it is still loading its data after a restart',
  MISCONF: 'it cannot save its data (see the redis log) and refuses writes',
  BUSY: 'it is busy running a script',
};

/** The error a command's promise rejects with for an error reply. */
export function replyError(e: RedisReplyError): Error {
  const detail = UNAVAILABLE_REPLIES[/^[A-Z]+/.exec(e.message)?.[0] ?? ''];
  return detail ? new RedisUnavailable(detail) : e;
}

/**
 * What a refused handshake means, for the log (never the password): AUTH's
 * or PING's error reply and whether we sent a password.
 */
export function handshakeRefusal(reply: string, withPassword: boolean): string {
  if (/^NOAUTH\b/.test(reply)) return 'redis requires a password: set REDIS_PASSWORD to the password of its requirepass';
  if (/^WRONGPASS\b/.test(reply) || (withPassword && /^ERR invalid password/.test(reply))) return 'redis refused the password in REDIS_PASSWORD: it must be the password of its requirepass';
  const busy = UNAVAILABLE_REPLIES[/^[A-Z]+/.exec(reply)?.[0] ?? ''];
  return busy ? `redis is unavailable: ${busy}` : `redis refused the connection: ${reply}`;
}

/** AUTH's answer when Redis has no password at all: we are let in anyway. */
const NO_PASSWORD_SET = /called without any password configured/;

interface Pending { resolve(r: Reply): void; reject(e: Error): void }

class Connection {
  protected socket: net.Socket | null = null;
  protected connected = false;
  private closing = false;
  private backoff = 100;
  private readyWaiters: Array<() => void> = [];
  /** The last refused handshake's reason, logged once as an error until it changes or a handshake succeeds. */
  private refused: string | null = null;

  constructor(protected readonly addr: RedisTarget, protected readonly log: Log, private readonly role: string) {}

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
    let handshaking = true;
    s.on('connect', () => {
      s.write(encodeCommand(this.addr.password !== undefined ? ['AUTH', this.addr.password] : ['PING']));
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
      for (const r of replies) {
        if (!handshaking) {
          this.onReply(r);
          continue;
        }
        handshaking = false;
        if (!this.handshakeDone(r)) {
          s.destroy();
          return;
        }
      }
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

  /** The handshake's reply: true when the connection may be used (and it is now ready). */
  private handshakeDone(r: Reply): boolean {
    if (r instanceof RedisReplyError && !(this.addr.password !== undefined && NO_PASSWORD_SET.test(r.message))) {
      const why = handshakeRefusal(r.message, this.addr.password !== undefined);
      if (why !== this.refused) this.log.error(why, { role: this.role, host: this.addr.host, port: this.addr.port });
      else this.log.debug(why, { role: this.role });
      this.refused = why;
      return false;
    }
    if (r instanceof RedisReplyError) this.log.warn('redis has no password set: REDIS_PASSWORD is not needed (anyone who reaches it may use it)', { role: this.role });
    this.refused = null;
    this.connected = true;
    this.backoff = 100;
    this.log.info('redis connected', { role: this.role, host: this.addr.host, port: this.addr.port, auth: this.addr.password !== undefined });
    this.onConnect();
    this.readyWaiters.splice(0).forEach((f) => f());
    return true;
  }

  /** Resolves once connected (or at once if connected); rejects after timeoutMs. */
  waitReady(timeoutMs: number): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new RedisUnavailable(`not connected after ${timeoutMs} ms${this.refused ? ` (${this.refused})` : ''}`)), timeoutMs);
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

  constructor(addr: RedisTarget, log: Log) {
    super(addr, log, 'commands');
  }

  /** Sends one command; rejects with RedisUnavailable when not connected (or Redis is full), or with the server's error. */
  async command(...args: Array<string | number | Buffer>): Promise<Reply> {
    const r = await this.send(args);
    if (r instanceof RedisReplyError) throw replyError(r);
    return r;
  }

  /**
   * MULTI, the commands, EXEC: applied all together or not at all. All of it
   * is written in one go, so no other request's command can slip in between
   * on this shared connection. Resolves with EXEC's replies, one per command;
   * rejects on the first error (a full Redis refuses at queue time and
   * aborts the lot).
   */
  async multi(commands: ReadonlyArray<ReadonlyArray<string | number | Buffer>>): Promise<Reply[]> {
    if (!this.connected) throw new RedisUnavailable('not connected');
    const replies = await Promise.all([['MULTI'], ...commands, ['EXEC']].map((c) => this.send(c)));
    const queued = replies.slice(1, -1).find((r) => r instanceof RedisReplyError);
    if (queued) throw replyError(queued as RedisReplyError);
    const exec = replies[replies.length - 1]!;
    if (exec instanceof RedisReplyError) throw replyError(exec);
    if (!Array.isArray(exec)) throw new RedisUnavailable('the transaction was aborted');
    const failed = exec.find((r) => r instanceof RedisReplyError);
    if (failed) throw replyError(failed as RedisReplyError);
    return exec;
  }

  async str(...args: Array<string | number | Buffer>): Promise<string | null> {
    const r = await this.command(...args);
    return r === null ? null : String(r);
  }

  async int(...args: Array<string | number | Buffer>): Promise<number> {
    return Number(await this.command(...args));
  }

  async list(...args: Array<string | number | Buffer>): Promise<Array<string | null>> {
    const r = await this.command(...args);
    if (!Array.isArray(r)) return [];
    return r.map((x) => (x === null ? null : String(x)));
  }

  /** One command's reply, error replies included (as values). */
  private send(args: ReadonlyArray<string | number | Buffer>): Promise<Reply> {
    if (!this.connected) return Promise.reject(new RedisUnavailable('not connected'));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.write(args);
    });
  }

  protected override onReply(r: Reply): void {
    this.pending.shift()?.resolve(r);
  }

  protected override onDisconnect(e: Error): void {
    this.pending.splice(0).forEach((p) => p.reject(e));
  }
}

/** Pub/sub: subscribe to channels, get their messages; survives reconnects. */
export class Subscriber extends Connection {
  private channels = new Set<string>();

  constructor(addr: RedisTarget, log: Log, private readonly onMessage: (channel: string, message: string) => void) {
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
