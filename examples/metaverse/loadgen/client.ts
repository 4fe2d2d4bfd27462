// Clients of the four servers, for the load generator and the tests: HTTP
// calls that return status and JSON, and a Game session over TCP + UDP.
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';

export interface Endpoints { host: string; login: number; asset: number; map: number; game: number; gameUdp: number }

export const DEFAULT_ENDPOINTS: Endpoints = { host: '127.0.0.1', login: 8080, asset: 8081, map: 8082, game: 7000, gameUdp: 7001 };

export interface HttpResult<T = Record<string, unknown>> { status: number; body: T; bytes: Buffer }

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

/** One HTTP request; the body is JSON (object), a Buffer, or nothing. Never throws for a status. */
export function call<T = Record<string, unknown>>(host: string, port: number, method: string, path: string, opts: { token?: string; json?: unknown; data?: Buffer; timeoutMs?: number } = {}): Promise<HttpResult<T>> {
  return new Promise((resolve, reject) => {
    const payload = opts.json !== undefined ? Buffer.from(JSON.stringify(opts.json)) : opts.data;
    const headers: http.OutgoingHttpHeaders = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (payload) {
      headers['content-length'] = payload.length;
      headers['content-type'] = opts.json !== undefined ? 'application/json' : 'application/octet-stream';
    }
    const req = http.request({ host, port, method, path, headers, agent, timeout: opts.timeoutMs ?? 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        let body: unknown = {};
        if (String(res.headers['content-type'] ?? '').startsWith('application/json') && bytes.length) {
          try {
            body = JSON.parse(bytes.toString('utf8'));
          } catch {
            body = { raw: bytes.toString('utf8') };
          }
        }
        resolve({ status: res.statusCode ?? 0, body: body as T, bytes });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export type GameMessage = { t: string; [k: string]: unknown };

/** A player's Game session: line-delimited JSON over TCP, positions over UDP. */
export class GameClient {
  readonly received: GameMessage[] = [];
  private socket: net.Socket | null = null;
  private udp: dgram.Socket | null = null;
  private waiters: Array<{ match: (m: GameMessage) => boolean; resolve: (m: GameMessage) => void }> = [];
  private partial = '';
  instance = '';
  ticket = '';
  closed = false;
  /** Called for every message (the load generator measures fan-out here). */
  onMessage: (m: GameMessage) => void = () => {};
  onClose: () => void = () => {};

  constructor(private readonly ep: Endpoints) {}

  /** Connects and says hello; resolves with the replica that answered. */
  async connect(token: string, timeoutMs = 15_000): Promise<string> {
    this.closed = false;
    this.partial = '';
    const s = net.connect({ host: this.ep.host, port: this.ep.game });
    s.setNoDelay(true);
    s.setEncoding('utf8');
    this.socket = s;
    s.on('data', (chunk: string) => {
      const lines = (this.partial + chunk).split('\n');
      this.partial = lines.pop()!;
      for (const line of lines) {
        if (!line) continue;
        const m = JSON.parse(line) as GameMessage;
        this.received.push(m);
        if (this.received.length > 1000) this.received.splice(0, 500);
        this.onMessage(m);
        this.waiters = this.waiters.filter((w) => {
          if (!w.match(m)) return true;
          w.resolve(m);
          return false;
        });
      }
    });
    s.on('error', () => {});
    s.on('close', () => {
      this.closed = true;
      this.onClose();
    });
    const welcome = this.waitFor((m) => m.t === 'welcome' || m.t === 'error', timeoutMs);
    this.send({ t: 'hello', token });
    const w = await welcome;
    if (w.t === 'error') throw new Error(`hello refused: ${String(w.message)}`);
    this.instance = String(w.instance);
    return this.instance;
  }

  send(msg: object): void {
    if (!this.socket || this.closed) throw new Error('game session is closed');
    this.socket.write(`${JSON.stringify(msg)}\n`);
  }

  async join(room: string, timeoutMs = 15_000): Promise<GameMessage> {
    const joined = this.waitFor((m) => (m.t === 'joined' && m.room === room) || m.t === 'error', timeoutMs);
    this.send({ t: 'join', room });
    const j = await joined;
    if (j.t === 'error') throw new Error(`join refused: ${String(j.message)}`);
    this.ticket = String(j.ticket);
    return j;
  }

  /** A position over UDP (no answer: it shows up at the other players). */
  moveUdp(x: number, y: number, z: number): void {
    if (!this.udp) {
      this.udp = dgram.createSocket('udp4');
      this.udp.on('error', () => {});
    }
    this.udp.send(JSON.stringify({ ticket: this.ticket, x, y, z, ts: Date.now() }), this.ep.gameUdp, this.ep.host);
  }

  /** Resolves with the first message (already received or coming) that matches. */
  waitFor(match: (m: GameMessage) => boolean, timeoutMs = 15_000, includeReceived = false): Promise<GameMessage> {
    if (includeReceived) {
      const seen = this.received.find(match);
      if (seen) return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching game message within ${timeoutMs} ms (last: ${JSON.stringify(this.received.slice(-3))})`));
      }, timeoutMs);
      const done = (m: GameMessage) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.waiters.push({ match, resolve: done });
    });
  }

  close(): void {
    this.socket?.end();
    this.socket?.destroy();
    this.udp?.close();
    this.udp = null;
    this.closed = true;
  }
}
