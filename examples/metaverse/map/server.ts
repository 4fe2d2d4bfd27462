// Map: rooms and their map data, in Redis.
//
//   POST   /v1/rooms {name, map, capacity?}  (Bearer) → 201 room | 409 too_many_rooms
//   GET    /v1/rooms                         → 200 {items: [summary]}
//   GET    /v1/rooms/ID                      → 200 room (with map) | 404
//   PUT    /v1/rooms/ID {name?, map?}        (Bearer, creator) → 200 room, version + 1 | 403
//   DELETE /v1/rooms/ID                      (Bearer, creator) → 204
//   POST   /v1/rooms/ID/join                 (Bearer) → 200 {room, players} | 409 room_full
//   POST   /v1/rooms/ID/leave                (Bearer) → 204
//   GET    /v1/rooms/ID/players              → 200 {players}
//   GET    /health                           → 200 when Redis answers, else 503
//
// Limits: a request body (name + map) of at most MAX_MAP_BYTES, a map at most
// MAX_MAP_DEPTH levels deep, at most MAX_ROOMS_PER_USER rooms per creator.
import { envInt, redisTarget, tokenSecret } from '../lib/config.js';
import { readJson, requireUser, router, sendJson, serve, startOrExit } from '../lib/http.js';
import { makeLog } from '../lib/log.js';
import { Redis } from '../lib/redis.js';
import { MAX_MAP_DEPTH, parseCapacity, parseMap, parseRoomName, Rooms } from './rooms.js';

const log = makeLog('map');

startOrExit(log, () => {
  const env = process.env;
  const port = envInt(env, 'PORT', 8082, { min: 1, max: 65535 });
  const secret = tokenSecret(env);
  const maxMap = envInt(env, 'MAX_MAP_BYTES', 256 << 10, { min: 1024, max: 16 << 20 });
  const maxDepth = envInt(env, 'MAX_MAP_DEPTH', MAX_MAP_DEPTH, { min: 1, max: 256 });
  const maxRooms = envInt(env, 'MAX_ROOMS_PER_USER', 20, { min: 1, max: 100_000 });
  const redis = new Redis(redisTarget(env), log);
  redis.start();
  const rooms = new Rooms(redis, maxRooms);

  const handler = router([
    { method: 'GET', path: '/health', handler: ({ res }) => sendJson(res, redis.ready ? 200 : 503, { status: redis.ready ? 'ok' : 'redis unavailable' }) },
    {
      method: 'POST', path: '/v1/rooms', handler: async ({ req, res, log }) => {
        const user = requireUser(req, secret);
        const body = await readJson(req, maxMap);
        const room = await rooms.create(user.sub, parseRoomName(body.name), parseMap(body.map, maxDepth), parseCapacity(body.capacity));
        log.info('room created', { room: room.id, owner: user.sub });
        sendJson(res, 201, room, { location: `/v1/rooms/${room.id}` });
      },
    },
    { method: 'GET', path: '/v1/rooms', handler: async ({ res }) => sendJson(res, 200, { items: await rooms.list() }) },
    { method: 'GET', path: '/v1/rooms/:id', handler: async ({ res, params }) => sendJson(res, 200, await rooms.get(params.id!)) },
    {
      method: 'PUT', path: '/v1/rooms/:id', handler: async ({ req, res, params }) => {
        const user = requireUser(req, secret);
        const body = await readJson(req, maxMap);
        const changes = {
          ...(body.name !== undefined ? { name: parseRoomName(body.name) } : {}),
          ...(body.map !== undefined ? { map: parseMap(body.map, maxDepth) } : {}),
        };
        sendJson(res, 200, await rooms.update(params.id!, user.sub, changes));
      },
    },
    {
      method: 'DELETE', path: '/v1/rooms/:id', handler: async ({ req, res, params }) => {
        await rooms.remove(params.id!, requireUser(req, secret).sub);
        sendJson(res, 204, null);
      },
    },
    {
      method: 'POST', path: '/v1/rooms/:id/join', handler: async ({ req, res, params }) => {
        const players = await rooms.join(params.id!, requireUser(req, secret).sub);
        sendJson(res, 200, { room: params.id, players });
      },
    },
    {
      method: 'POST', path: '/v1/rooms/:id/leave', handler: async ({ req, res, params }) => {
        await rooms.leave(params.id!, requireUser(req, secret).sub);
        sendJson(res, 204, null);
      },
    },
    { method: 'GET', path: '/v1/rooms/:id/players', handler: async ({ res, params }) => sendJson(res, 200, { players: await rooms.players(params.id!) }) },
  ], log);

  serve(handler, port, log, () => redis.close());
});
