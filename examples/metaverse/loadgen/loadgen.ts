// The load generator: N simulated students (default 80) do what a student
// does in the metaverse, through the gateway's published ports on this
// machine, for a bounded time, and a summary is printed:
//   sign up, log in, browse assets, download two, upload one, list rooms,
//   join one (Map), connect to Game, join the room there, then until the end:
//   a position by UDP 4 times a second, a chat line every 5 s, a look at the
//   assets and rooms every 10 s; finally leave.
// A game session that ends (a replica stopped or was killed) is reconnected
// and counted; it is not an error.
//
//   node dist/examples/metaverse/loadgen/loadgen.js [--players 80] [--duration 60s]
//       [--ramp 20s] [--rooms 8] [--host 127.0.0.1] [--ports login=8080,asset=8081,map=8082,game=7000,game-udp=7001]
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { call, DEFAULT_ENDPOINTS, GameClient, type Endpoints, type HttpResult } from './client.js';

export interface LoadOptions {
  players: number;
  durationMs: number;
  rampMs: number;
  rooms: number;
  endpoints: Endpoints;
  /** Progress lines (default: none). */
  say?: (line: string) => void;
}

export interface OpStats { count: number; errors: number; p50: number; p99: number }

export interface Summary {
  players: number;
  seconds: number;
  httpRequests: number;
  messagesSent: number;
  messagesReceived: number;
  reconnects: number;
  errors: number;
  firstErrors: string[];
  ops: Record<string, OpStats>;
  fanout: { count: number; p50: number; p99: number };
}

export const LIMITS = { players: 500, durationMs: 600_000 };

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parses "60s", "2m", "500ms" into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a duration (use e.g. 60s, 2m, 500ms)`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
}

/** The load generator only targets this machine: loopback or one of its own addresses. */
export function checkLocalHost(host: string): void {
  const own = Object.values(os.networkInterfaces()).flat().map((i) => i?.address);
  if (host === 'localhost' || host.startsWith('127.') || host === '::1' || own.includes(host)) return;
  throw new Error(`--host ${host} is not an address of this machine; the load generator only targets carte's gateway here`);
}

class Recorder {
  readonly samples = new Map<string, number[]>();
  readonly errorCounts = new Map<string, number>();
  readonly firstErrors: string[] = [];
  httpRequests = 0;
  messagesSent = 0;
  messagesReceived = 0;
  reconnects = 0;
  readonly fanout: number[] = [];

  error(op: string, message: string): void {
    this.errorCounts.set(op, (this.errorCounts.get(op) ?? 0) + 1);
    if (this.firstErrors.length < 10) this.firstErrors.push(`${op}: ${message}`);
  }

  /** Times one HTTP operation; a status other than `expect` is an error. */
  async http<T>(op: string, expect: number, f: () => Promise<HttpResult<T>>): Promise<HttpResult<T> | null> {
    const t0 = performance.now();
    this.httpRequests++;
    try {
      const r = await f();
      if (r.status !== expect) {
        this.error(op, `HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        return null;
      }
      this.sample(op, performance.now() - t0);
      return r;
    } catch (e) {
      this.error(op, (e as Error).message);
      return null;
    }
  }

  sample(op: string, ms: number): void {
    let s = this.samples.get(op);
    if (!s) this.samples.set(op, (s = []));
    s.push(ms);
  }
}

interface Room { id: string }

async function setupRooms(rec: Recorder, ep: Endpoints, runId: string, count: number): Promise<string[]> {
  const teacher = { name: `t${runId}`, password: `teacher-${runId}` };
  await rec.http('signup', 201, () => call(ep.host, ep.login, 'POST', '/v1/signup', { json: teacher }));
  const login = await rec.http<{ token: string }>('login', 200, () => call(ep.host, ep.login, 'POST', '/v1/login', { json: teacher }));
  if (!login) throw new Error(`the teacher cannot log in: ${rec.firstErrors.join('; ')}`);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const map = { width: 64, height: 64, spawn: { x: 32, y: 32 }, tiles: Array.from({ length: 64 }, (_, r) => 'g'.repeat(60) + String(r % 10).repeat(4)) };
    const r = await rec.http<Room>('rooms.create', 201, () => call(ep.host, ep.map, 'POST', '/v1/rooms', { token: login.body.token, json: { name: `class ${runId} room ${i + 1}`, map, capacity: 100 } }));
    if (r) ids.push(r.body.id);
  }
  if (!ids.length) throw new Error(`no room could be created: ${rec.firstErrors.join('; ')}`);
  return ids;
}

async function player(rec: Recorder, ep: Endpoints, runId: string, index: number, room: string, until: number): Promise<void> {
  const me = { name: `s${runId}-${index}`, password: `student-${runId}-${index}` };
  if (!(await rec.http('signup', 201, () => call(ep.host, ep.login, 'POST', '/v1/signup', { json: me })))) return;
  const login = await rec.http<{ token: string }>('login', 200, () => call(ep.host, ep.login, 'POST', '/v1/login', { json: me }));
  if (!login) return;
  const token = login.body.token;

  const browse = async () => {
    const list = await rec.http<{ items: Array<{ id: string; size: number }> }>('assets.list', 200, () => call(ep.host, ep.asset, 'GET', '/v1/assets'));
    await rec.http('rooms.list', 200, () => call(ep.host, ep.map, 'GET', '/v1/rooms'));
    return list?.body.items ?? [];
  };
  const items = await browse();
  for (const item of items.sort(() => Math.random() - 0.5).slice(0, 2)) {
    const got = await rec.http('assets.download', 200, () => call(ep.host, ep.asset, 'GET', `/v1/assets/${item.id}/content`));
    if (got && got.bytes.length !== item.size) rec.error('assets.download', `asset ${item.id}: ${got.bytes.length} bytes, expected ${item.size}`);
  }
  const upload = randomBytes(16_384 + Math.floor(Math.random() * 49_152));
  await rec.http('assets.upload', 201, () => call(ep.host, ep.asset, 'POST', `/v1/assets?name=${me.name}.glb&category=${['hats', 'pets', 'tools'][index % 3]}&price=${index}`, { token, data: upload }));
  if (!(await rec.http('rooms.join', 200, () => call(ep.host, ep.map, 'POST', `/v1/rooms/${room}/join`, { token })))) return;

  const game = new GameClient(ep);
  game.onMessage = (m) => {
    rec.messagesReceived++;
    if (m.t === 'move' && m.player !== me.name && typeof m.ts === 'number') rec.fanout.push(Date.now() - m.ts);
    if (m.t === 'error') rec.error('game', `${String(m.code)}: ${String(m.message)}`);
  };
  const enter = async (op: string) => {
    const t0 = performance.now();
    try {
      await game.connect(token);
      await game.join(room);
      rec.sample(op, performance.now() - t0);
      return true;
    } catch (e) {
      rec.error(op, (e as Error).message);
      return false;
    }
  };
  if (!(await enter('game.join'))) return;
  let x = Math.random() * 64;
  let y = Math.random() * 64;
  let nextChat = Date.now() + Math.random() * 5000;
  let nextBrowse = Date.now() + 5000 + Math.random() * 5000;
  while (Date.now() < until) {
    if (game.closed) {
      // The replica went away (scaled down, updated, killed): come back, as a game client does.
      rec.reconnects++;
      await sleep(200);
      if (!(await enter('game.reconnect'))) await sleep(1000);
      continue;
    }
    x = Math.max(0, Math.min(64, x + (Math.random() - 0.5) * 2));
    y = Math.max(0, Math.min(64, y + (Math.random() - 0.5) * 2));
    game.moveUdp(x, y, 0);
    rec.messagesSent++;
    if (Date.now() >= nextChat) {
      game.send({ t: 'chat', text: `hello from ${me.name}`, ts: Date.now() });
      rec.messagesSent++;
      nextChat = Date.now() + 5000;
    }
    if (Date.now() >= nextBrowse) {
      nextBrowse = Date.now() + 10_000;
      void browse();
    }
    await sleep(250);
  }
  if (!game.closed) game.send({ t: 'leave' });
  game.close();
  await rec.http('rooms.leave', 204, () => call(ep.host, ep.map, 'POST', `/v1/rooms/${room}/leave`, { token }));
}

export async function runLoad(opts: LoadOptions): Promise<Summary> {
  if (!(opts.players >= 1 && opts.players <= LIMITS.players)) throw new Error(`--players must be from 1 to ${LIMITS.players}`);
  if (!(opts.durationMs >= 1000 && opts.durationMs <= LIMITS.durationMs)) throw new Error(`--duration must be from 1s to ${LIMITS.durationMs / 60_000}m`);
  checkLocalHost(opts.endpoints.host);
  const say = opts.say ?? (() => {});
  const rec = new Recorder();
  const runId = randomBytes(3).toString('hex');
  const started = performance.now();
  const rooms = await setupRooms(rec, opts.endpoints, runId, opts.rooms);
  say(`run ${runId}: ${rooms.length} rooms created; ${opts.players} players arrive over ${opts.rampMs / 1000}s and play until ${opts.durationMs / 1000}s`);
  const until = Date.now() + opts.durationMs;
  const progress = setInterval(() => say(`  ${((performance.now() - started) / 1000).toFixed(0)}s: ${rec.httpRequests} requests, ${rec.messagesSent} sent, ${rec.messagesReceived} received, ${[...rec.errorCounts.values()].reduce((a, b) => a + b, 0)} errors`), 10_000);
  try {
    await Promise.all(Array.from({ length: opts.players }, async (_, i) => {
      await sleep((i * opts.rampMs) / opts.players);
      await player(rec, opts.endpoints, runId, i + 1, rooms[i % rooms.length]!, until);
    }));
  } finally {
    clearInterval(progress);
  }
  const seconds = (performance.now() - started) / 1000;
  const ops: Record<string, OpStats> = {};
  for (const op of [...new Set([...rec.samples.keys(), ...rec.errorCounts.keys()])].sort()) {
    const s = [...(rec.samples.get(op) ?? [])].sort((a, b) => a - b);
    ops[op] = { count: s.length + (rec.errorCounts.get(op) ?? 0), errors: rec.errorCounts.get(op) ?? 0, p50: pct(s, 50), p99: pct(s, 99) };
  }
  const f = [...rec.fanout].sort((a, b) => a - b);
  return {
    players: opts.players, seconds, httpRequests: rec.httpRequests, messagesSent: rec.messagesSent, messagesReceived: rec.messagesReceived,
    reconnects: rec.reconnects, errors: [...rec.errorCounts.values()].reduce((a, b) => a + b, 0), firstErrors: rec.firstErrors,
    ops, fanout: { count: f.length, p50: pct(f, 50), p99: pct(f, 99) },
  };
}

export function formatSummary(s: Summary): string {
  const lines = [
    `${s.players} players, ${s.seconds.toFixed(1)} s`,
    `HTTP requests ${s.httpRequests} (${(s.httpRequests / s.seconds).toFixed(1)}/s); game messages sent ${s.messagesSent} (${(s.messagesSent / s.seconds).toFixed(0)}/s), received ${s.messagesReceived} (${(s.messagesReceived / s.seconds).toFixed(0)}/s); game reconnects ${s.reconnects}`,
    `errors ${s.errors}`,
    '',
    `${'operation'.padEnd(18)}${'count'.padStart(7)}${'errors'.padStart(8)}${'p50 ms'.padStart(10)}${'p99 ms'.padStart(10)}`,
    ...Object.entries(s.ops).map(([op, o]) => `${op.padEnd(18)}${String(o.count).padStart(7)}${String(o.errors).padStart(8)}${o.p50.toFixed(1).padStart(10)}${o.p99.toFixed(1).padStart(10)}`),
    `${'move fan-out'.padEnd(18)}${String(s.fanout.count).padStart(7)}${'-'.padStart(8)}${s.fanout.p50.toFixed(1).padStart(10)}${s.fanout.p99.toFixed(1).padStart(10)}`,
  ];
  if (s.firstErrors.length) lines.push('', 'first errors:', ...s.firstErrors.map((e) => `  ${e}`));
  return lines.join('\n');
}

function parseArgs(argv: string[]): LoadOptions {
  const opts: LoadOptions = { players: 80, durationMs: 60_000, rampMs: 20_000, rooms: 8, endpoints: { ...DEFAULT_ENDPOINTS } };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--players': opts.players = Number(value); break;
      case '--duration': opts.durationMs = parseDuration(value); break;
      case '--ramp': opts.rampMs = parseDuration(value); break;
      case '--rooms': opts.rooms = Number(value); break;
      case '--host': opts.endpoints.host = value; break;
      case '--ports':
        for (const pair of value.split(',')) {
          const [k, v] = pair.split('=');
          const key = ({ login: 'login', asset: 'asset', map: 'map', game: 'game', 'game-udp': 'gameUdp' } as const)[k as 'login'];
          if (!key || !Number.isInteger(Number(v))) throw new Error(`--ports: "${pair}" is not one of login=, asset=, map=, game=, game-udp= with a port`);
          opts.endpoints[key] = Number(v);
        }
        break;
      default: throw new Error(`unknown flag ${flag} (--players, --duration, --ramp, --rooms, --host, --ports)`);
    }
  }
  if (!(opts.rooms >= 1 && opts.rooms <= 100)) throw new Error('--rooms must be from 1 to 100');
  return opts;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    const summary = await runLoad({ ...opts, say: (l) => console.log(l) });
    console.log(`\n${formatSummary(summary)}`);
    process.exit(summary.errors ? 1 : 0);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(2);
  }
}
