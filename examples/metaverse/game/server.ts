// Game: realtime play. TCP sessions (line-delimited JSON) for hello, join,
// chat and reliable moves; UDP datagrams for frequent position updates.
// Replicas share nothing but Redis: each room is a pub/sub channel, so a
// move that reaches any replica (even by UDP on another replica than the
// player's TCP session) is relayed to every player of the room everywhere.
//
// Redis keys (besides Map's metaverse:room:ID, which must exist to join):
//   channel metaverse:game:room:ID        room events (enter, move, chat, left)
//   hash    metaverse:game:room:ID:pos    player → last position (JSON)
//   zset    metaverse:game:room:ID:seen   player → last seen (ms); a crashed
//                                         replica's players fade out after 15 s
//   string  metaverse:game:ticket:SID     the room a session's UDP ticket is good for
//                                         (tickets.ts): gone on leave, room change,
//                                         disconnect and shutdown
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { envInt, redisTarget, tokenSecret } from '../lib/config.js';
import { onStop, startOrExit } from '../lib/http.js';
import { makeLog } from '../lib/log.js';
import { Redis, RedisUnavailable, Subscriber } from '../lib/redis.js';
import { signToken, TokenError, verifyToken } from '../lib/token.js';
import { LocalRooms } from './local-rooms.js';
import { LineReader, parseClientMessage, parseDatagram, ProtocolError, shouldDeliver, type Position, type RoomEvent } from './protocol.js';
import { TICKET_TTL_MS, TicketCache, ticketKey } from './tickets.js';

const log = makeLog('game');
const channel = (room: string) => `metaverse:game:room:${room}`;
const posKey = (room: string) => `${channel(room)}:pos`;
const seenKey = (room: string) => `${channel(room)}:seen`;
const PRESENCE_MS = 15_000;
/** A client that does not read gets no more moves past this (chat still queues). */
const SLOW_CLIENT_BYTES = 1 << 20;

/** sid: random, names this TCP session in the UDP tickets it gets. */
interface Session { socket: net.Socket; sid: string; player: string | null; room: string | null }

startOrExit(log, () => {
  const env = process.env;
  const tcpPort = envInt(env, 'TCP_PORT', 7000, { min: 1, max: 65535 });
  const udpPort = envInt(env, 'UDP_PORT', 7001, { min: 1, max: 65535 });
  const healthPort = envInt(env, 'HEALTH_PORT', 7002, { min: 1, max: 65535 });
  const secret = tokenSecret(env);
  const addr = redisTarget(env);
  const instance = os.hostname();
  const local = new LocalRooms<Session>();
  const sessions = new Set<Session>();
  const counters = { sessions: 0, received: 0, relayed: 0, udp: 0, udpRejected: 0, ticketLookups: 0 };

  const redis = new Redis(addr, log);
  const sub = new Subscriber(addr, log, (ch, text) => {
    const room = ch.slice(channel('').length);
    let event: RoomEvent;
    try {
      event = JSON.parse(text) as RoomEvent;
    } catch {
      log.warn('ignored a malformed room event', { channel: ch });
      return;
    }
    for (const s of local.members(room)) {
      if (!s.player || !shouldDeliver(event, s.player)) continue;
      if (event.t === 'move' && s.socket.writableLength > SLOW_CLIENT_BYTES) continue;
      send(s, event);
      counters.relayed++;
    }
  });
  redis.start();
  sub.start();
  const tickets = new TicketCache((sid) => {
    counters.ticketLookups++;
    return redis.str('GET', ticketKey(sid));
  }, envInt(env, 'TICKET_CACHE_MS', 1000, { max: 10_000 }));

  const send = (s: Session, msg: object) => {
    if (!s.socket.destroyed) s.socket.write(`${JSON.stringify(msg)}\n`);
  };
  const publish = async (room: string, event: RoomEvent) => {
    await redis.command('PUBLISH', channel(room), JSON.stringify(event));
  };

  const move = async (player: string, room: string, p: Position & { ts?: number }) => {
    await redis.command('HSET', posKey(room), player, JSON.stringify({ x: p.x, y: p.y, z: p.z }));
    await publish(room, { t: 'move', player, x: p.x, y: p.y, z: p.z, ...(p.ts !== undefined ? { ts: p.ts } : {}) });
  };

  const snapshot = async (room: string) => {
    const names = (await redis.list('ZRANGEBYSCORE', seenKey(room), Date.now() - PRESENCE_MS, '+inf')).filter((x): x is string => x !== null).sort();
    const pos = names.length ? await redis.list('HMGET', posKey(room), ...names) : [];
    return names.map((name, i) => ({ name, ...(JSON.parse(pos[i] ?? '{"x":0,"y":0,"z":0}') as Position) }));
  };

  const leave = async (s: Session) => {
    const { room, player } = s;
    if (!room || !player) return;
    s.room = null;
    // The UDP ticket goes first: no position of this player relayed after this.
    tickets.revoke(s.sid);
    if (local.remove(room, s)) sub.unsubscribe(channel(room));
    await redis.command('DEL', ticketKey(s.sid));
    await redis.command('ZREM', seenKey(room), player);
    await redis.command('HDEL', posKey(room), player);
    await publish(room, { t: 'left', player });
  };

  const handle = async (s: Session, line: string) => {
    const m = parseClientMessage(line);
    counters.received++;
    if (m.t === 'ping') return send(s, { t: 'pong', id: m.id ?? null });
    if (m.t === 'hello') {
      try {
        s.player = verifyToken(m.token, secret, 'session').sub;
      } catch (e) {
        if (e instanceof TokenError) throw new ProtocolError('unauthorized', `${e.message}: log in again`);
        throw e;
      }
      return send(s, { t: 'welcome', player: s.player, instance });
    }
    const player = s.player;
    if (!player) throw new ProtocolError('not_authenticated', 'send {"t":"hello","token":...} first');
    if (m.t === 'join') {
      if (!(await redis.int('EXISTS', `metaverse:room:${m.room}`))) throw new ProtocolError('no_such_room', `no room "${m.room}" (create it with Map first)`);
      if (s.room) await leave(s);
      s.room = m.room;
      if (local.add(m.room, s)) sub.subscribe(channel(m.room));
      await redis.command('ZADD', seenKey(m.room), Date.now(), player);
      const here = await redis.str('HGET', posKey(m.room), player);
      const p = here ? (JSON.parse(here) as Position) : { x: 0, y: 0, z: 0 };
      if (!here) await redis.command('HSET', posKey(m.room), player, JSON.stringify(p));
      await redis.command('SET', ticketKey(s.sid), m.room, 'PX', TICKET_TTL_MS);
      tickets.grant(s.sid, m.room);
      // exp is only a backstop: the ticket key above is what keeps it good.
      const ticket = signToken({ sub: player, room: m.room, sid: s.sid, use: 'udp', exp: Math.floor(Date.now() / 1000) + 12 * 3600 }, secret);
      send(s, { t: 'joined', room: m.room, players: await snapshot(m.room), ticket });
      await publish(m.room, { t: 'enter', player, ...p });
      return;
    }
    if (m.t === 'leave') return leave(s);
    if (!s.room) throw new ProtocolError('not_in_room', 'join a room first');
    if (m.t === 'move') return move(player, s.room, m);
    if (m.t === 'chat') await publish(s.room, { t: 'chat', from: player, text: m.text, ...(m.ts !== undefined ? { ts: m.ts } : {}) });
  };

  const tcp = net.createServer((socket) => {
    const s: Session = { socket, sid: randomBytes(12).toString('base64url'), player: null, room: null };
    sessions.add(s);
    counters.sessions++;
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    const reader = new LineReader();
    // Messages of one session are handled in order, one at a time.
    let queue = Promise.resolve();
    socket.on('data', (chunk: string) => {
      let lines: string[];
      try {
        lines = reader.push(chunk);
      } catch (e) {
        send(s, { t: 'error', code: (e as ProtocolError).code, message: (e as Error).message });
        socket.end();
        return;
      }
      for (const line of lines) {
        queue = queue.then(() => handle(s, line)).catch((e: Error) => {
          if (e instanceof ProtocolError) send(s, { t: 'error', code: e.code, message: e.message });
          else {
            log.warn('message failed', { player: s.player, error: e.message });
            const why = e instanceof RedisUnavailable ? e.message : 'the game server cannot reach its database right now';
            send(s, { t: 'error', code: 'unavailable', message: `${why}; try again` });
          }
        });
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sessions.delete(s);
      queue = queue.then(() => leave(s)).catch(() => {});
    });
  });
  tcp.listen(tcpPort, () => log.info('listening', { tcp: tcpPort, udp: udpPort, health: healthPort }));

  const udp = dgram.createSocket('udp4');
  // A datagram counts: signed ticket (no Redis), then its session still in
  // that room (the cache: at most one Redis read per ticket per TICKET_CACHE_MS).
  udp.on('message', (buf) => {
    counters.udp++;
    let d: ReturnType<typeof parseDatagram>;
    let t: ReturnType<typeof verifyToken>;
    try {
      d = parseDatagram(buf);
      t = verifyToken(d.ticket, secret, 'udp');
    } catch {
      counters.udpRejected++;
      return;
    }
    if (typeof t.sid !== 'string') {
      counters.udpRejected++; // a ticket from before tickets were bound to sessions
      return;
    }
    tickets.room(t.sid).then((room) => {
      if (room === null || room !== String(t.room)) counters.udpRejected++;
      else return move(t.sub, room, d);
    }).catch(() => counters.udpRejected++);
  });
  udp.bind(udpPort);

  const health = http.createServer((req, res) => {
    const ok = redis.ready && sub.ready;
    const body = JSON.stringify(req.url === '/stats' ? { instance, players: sessions.size, ...counters } : { status: ok ? 'ok' : 'redis unavailable' });
    res.writeHead(ok || req.url === '/stats' ? 200 : 503, { 'content-type': 'application/json' }).end(`${body}\n`);
  });
  health.listen(healthPort);

  // Presence: players this replica serves are seen now, and their tickets
  // stay good; others fade out, their tickets run out.
  const presence = setInterval(() => {
    for (const [room, members] of local.entries()) {
      const args = [...members].filter((s) => s.player).flatMap((s) => [Date.now(), s.player!]);
      if (args.length) redis.command('ZADD', seenKey(room), ...args).catch(() => {});
      for (const s of members) redis.command('PEXPIRE', ticketKey(s.sid), TICKET_TTL_MS).catch(() => {});
    }
    tickets.prune();
  }, 5000);
  presence.unref();

  onStop(log, envInt(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, { min: 100 }), async () => {
    tcp.close();
    udp.close();
    clearInterval(presence);
    // Tell every player to reconnect (carte sends them to another replica), then let go.
    await Promise.all([...sessions].map(async (s) => {
      send(s, { t: 'bye', reason: 'server stopping; reconnect' });
      await leave(s).catch(() => {});
      s.socket.end();
    }));
    health.close();
    await Promise.all([redis.close(), sub.close()]);
  });
});
