// Rooms: a map (any JSON object: tiles, spawn points...) that players join.
// Stored in Redis:
//   metaverse:rooms:seq             last room id
//   metaverse:rooms                 sorted set of ids by creation time
//   metaverse:rooms:owner:NAME      sorted set of the ids NAME owns (score = id): the per-user cap
//   metaverse:room:ID               hash: name, owner, capacity, version, createdAt, updatedAt, map (JSON)
//   metaverse:room:ID:players       set of user names in the room
import { HttpError } from '../lib/http.js';
import type { Redis } from '../lib/redis.js';

export interface RoomSummary { id: string; name: string; owner: string; capacity: number; version: number; players: number; createdAt: string; updatedAt: string }
export interface Room extends RoomSummary { map: Record<string, unknown> }

export const roomKey = (id: string) => `metaverse:room:${id}`;
export const playersKey = (id: string) => `metaverse:room:${id}:players`;
export const ownerKey = (user: string) => `metaverse:rooms:owner:${user}`;

/** How deep a map may nest: deeper JSON is no real map, and storing it (JSON.stringify recurses) would overflow the stack. */
export const MAX_MAP_DEPTH = 32;

export function parseRoomName(v: unknown): string {
  if (typeof v !== 'string' || v.trim().length < 1 || v.length > 64) throw new HttpError(400, 'bad_name', 'name must be a string of 1 to 64 characters');
  return v.trim();
}

export function parseMap(v: unknown, maxDepth = MAX_MAP_DEPTH): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'bad_map', 'map must be a JSON object (e.g. {"width": 64, "height": 64, "tiles": [...]})');
  if (depth(v) > maxDepth) throw new HttpError(400, 'bad_map', `map nests objects and arrays more than ${maxDepth} levels deep`);
  return v as Record<string, unknown>;
}

/** How many objects/arrays deep a parsed JSON value goes (a scalar is 0), without recursion. */
export function depth(v: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    max = Math.max(max, d);
    for (const child of Object.values(x)) if (typeof child === 'object' && child !== null) stack.push([child, d + 1]);
  }
  return max;
}

export function parseCapacity(v: unknown): number {
  if (v === undefined) return 32;
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 1000) throw new HttpError(400, 'bad_capacity', 'capacity must be a whole number from 1 to 1000');
  return v as number;
}

function checkRoomId(id: string): string {
  if (!/^[0-9]{1,12}$/.test(id)) throw new HttpError(404, 'not_found', `no room "${id}"`);
  return id;
}

const FIELDS = ['name', 'owner', 'capacity', 'version', 'createdAt', 'updatedAt'] as const;

export class Rooms {
  /** maxPerOwner: how many rooms one user may own at a time. */
  constructor(private readonly redis: Redis, private readonly maxPerOwner = 20) {}

  /**
   * Claims a slot in the owner's set before the room is written, and gives
   * it back when refused or when the write fails. The set is ordered by id
   * (ids only grow), so of two creates racing for the last slot the older id
   * wins and the newer one sees itself past the cap: never more than the cap,
   * on any number of Map replicas, without a lock.
   */
  async create(owner: string, name: string, map: Record<string, unknown>, capacity: number): Promise<Room> {
    const id = String(await this.redis.int('INCR', 'metaverse:rooms:seq'));
    await this.redis.command('ZADD', ownerKey(owner), id, id);
    try {
      const rank = await this.redis.int('ZRANK', ownerKey(owner), id);
      if (rank >= this.maxPerOwner) {
        throw new HttpError(409, 'too_many_rooms', `${owner} already has ${this.maxPerOwner} rooms, the most one user may have: delete one first`);
      }
      const now = new Date().toISOString();
      await this.redis.multi([
        ['HSET', roomKey(id), 'name', name, 'owner', owner, 'capacity', capacity, 'version', 1, 'createdAt', now, 'updatedAt', now, 'map', JSON.stringify(map)],
        ['ZADD', 'metaverse:rooms', Date.now(), id],
      ]);
      return { id, name, owner, capacity, version: 1, players: 0, createdAt: now, updatedAt: now, map };
    } catch (e) {
      // ZREM works even on a full Redis. Should it fail too, Redis is gone:
      // the first error says so, and the claimed slot stays taken.
      await this.redis.command('ZREM', ownerKey(owner), id).catch(() => {});
      throw e;
    }
  }

  async summary(id: string): Promise<RoomSummary | null> {
    const [v, players] = await Promise.all([this.redis.list('HMGET', roomKey(checkRoomId(id)), ...FIELDS), this.redis.int('SCARD', playersKey(id))]);
    if (v[0] === null) return null;
    return { id, name: v[0]!, owner: v[1]!, capacity: Number(v[2]), version: Number(v[3]), createdAt: v[4]!, updatedAt: v[5]!, players };
  }

  async get(id: string): Promise<Room> {
    const [s, map] = await Promise.all([this.summary(id), this.redis.str('HGET', roomKey(checkRoomId(id)), 'map')]);
    if (!s || map === null) throw new HttpError(404, 'not_found', `no room "${id}"`);
    return { ...s, map: JSON.parse(map) as Record<string, unknown> };
  }

  async list(): Promise<RoomSummary[]> {
    const ids = (await this.redis.list('ZRANGE', 'metaverse:rooms', 0, -1)).filter((x): x is string => x !== null);
    const all = await Promise.all(ids.map((id) => this.summary(id)));
    return all.filter((r): r is RoomSummary => r !== null);
  }

  private async owned(id: string, user: string): Promise<RoomSummary> {
    const s = await this.summary(id);
    if (!s) throw new HttpError(404, 'not_found', `no room "${id}"`);
    if (s.owner !== user) throw new HttpError(403, 'forbidden', `room ${id} was created by ${s.owner}; only its creator may change it`);
    return s;
  }

  async update(id: string, user: string, changes: { name?: string; map?: Record<string, unknown> }): Promise<Room> {
    await this.owned(id, user);
    const fields: Array<string | number> = ['updatedAt', new Date().toISOString()];
    if (changes.name !== undefined) fields.push('name', changes.name);
    if (changes.map !== undefined) fields.push('map', JSON.stringify(changes.map));
    await this.redis.command('HSET', roomKey(id), ...fields);
    await this.redis.int('HINCRBY', roomKey(id), 'version', 1);
    return this.get(id);
  }

  /** The room and its place in both sets go together (MULTI), so the owner's slot is freed exactly when the room is gone. */
  async remove(id: string, user: string): Promise<void> {
    await this.owned(id, user);
    await this.redis.multi([['DEL', roomKey(id), playersKey(id)], ['ZREM', 'metaverse:rooms', id], ['ZREM', ownerKey(user), id]]);
  }

  /** Adds the player; 409 when the room is full (the add is undone). */
  async join(id: string, user: string): Promise<string[]> {
    const s = await this.summary(id);
    if (!s) throw new HttpError(404, 'not_found', `no room "${id}"`);
    const added = await this.redis.int('SADD', playersKey(id), user);
    if (added && (await this.redis.int('SCARD', playersKey(id))) > s.capacity) {
      await this.redis.int('SREM', playersKey(id), user);
      throw new HttpError(409, 'room_full', `room ${id} is full (${s.capacity} players)`);
    }
    return this.players(id);
  }

  async leave(id: string, user: string): Promise<void> {
    if (!(await this.summary(id))) throw new HttpError(404, 'not_found', `no room "${id}"`);
    await this.redis.int('SREM', playersKey(id), user);
  }

  async players(id: string): Promise<string[]> {
    return (await this.redis.list('SMEMBERS', playersKey(checkRoomId(id)))).filter((x): x is string => x !== null).sort();
  }
}
