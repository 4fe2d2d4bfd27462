// The metaverse servers' logic, without containers: tokens, the Redis wire
// protocol, request rules, the Game protocol and fan-out decisions, the
// asset catalog on a real folder.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Catalog, parseUploadQuery } from '../../../examples/metaverse/asset/catalog.js';
import { envInt, redisAddress, tokenSecret } from '../../../examples/metaverse/lib/config.js';
import { HttpError, matchPath } from '../../../examples/metaverse/lib/http.js';
import { encodeCommand, RedisReplyError, ReplyParser } from '../../../examples/metaverse/lib/resp.js';
import { signToken, verifyToken } from '../../../examples/metaverse/lib/token.js';
import { checkPassword, hashPassword, parseCredentials } from '../../../examples/metaverse/login/accounts.js';
import { LocalRooms } from '../../../examples/metaverse/game/local-rooms.js';
import { LineReader, parseClientMessage, parseDatagram, shouldDeliver } from '../../../examples/metaverse/game/protocol.js';
import { parseCapacity, parseMap } from '../../../examples/metaverse/map/rooms.js';
import { checkLocalHost, parseDuration } from '../../../examples/metaverse/loadgen/loadgen.js';
import { tempDir } from '../../helpers/paths.js';

const SECRET = 'a-secret-of-16-chars';
const httpError = (status: number, code: string) => (e: unknown) => e instanceof HttpError && e.status === status && e.code === code;

describe('metaverse: session tokens', () => {
  it('verify what was signed, and refuse tampering, expiry, another secret and another use', () => {
    const t = signToken({ sub: 'alice', exp: 2000, use: 'session' }, SECRET);
    assert.deepEqual(verifyToken(t, SECRET, 'session', 1000), { sub: 'alice', exp: 2000, use: 'session' });
    const [body, sig] = t.split('.');
    const forged = `${Buffer.from(JSON.stringify({ sub: 'mallory', exp: 2000, use: 'session' })).toString('base64url')}.${sig}`;
    assert.throws(() => verifyToken(forged, SECRET, 'session', 1000), { message: 'token signature is invalid' });
    assert.throws(() => verifyToken(t, SECRET, 'session', 2000), { message: 'token has expired' });
    assert.throws(() => verifyToken(t, 'another-secret-16ch', 'session', 1000), { message: 'token signature is invalid' });
    assert.throws(() => verifyToken(t, SECRET, 'udp', 1000), { message: 'token is not valid here' });
    assert.throws(() => verifyToken(`${body}`, SECRET, 'session', 1000), { message: 'token is malformed' });
  });
});

describe('metaverse: Redis wire protocol', () => {
  it('encodes commands as arrays of bulk strings', () => {
    assert.equal(encodeCommand(['SET', 'k', 'héllo', 5]).toString(), '*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nhéllo\r\n$1\r\n5\r\n');
  });

  it('parses every reply type, across chunk boundaries anywhere', () => {
    const wire = Buffer.from('+OK\r\n-ERR wrong type\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*3\r\n$1\r\na\r\n:1\r\n*-1\r\n*0\r\n');
    for (let cut = 0; cut <= wire.length; cut++) {
      const p = new ReplyParser();
      const replies = [...p.push(wire.subarray(0, cut)), ...p.push(wire.subarray(cut))];
      assert.equal(replies.length, 7, `cut at ${cut}`);
      assert.deepEqual([replies[0], replies[2], replies[3], replies[4], replies[5], replies[6]], ['OK', 42, 'hello', null, ['a', 1, null], []]);
      assert.ok(replies[1] instanceof RedisReplyError && replies[1].message === 'ERR wrong type');
    }
  });
});

describe('metaverse: configuration and routes', () => {
  it('refuses bad settings by name', () => {
    assert.equal(envInt({ PORT: '8080' }, 'PORT', 1), 8080);
    assert.equal(envInt({}, 'PORT', 1), 1);
    assert.throws(() => envInt({ PORT: 'http' }, 'PORT', 1, { min: 1, max: 65535 }), { message: 'PORT="http" must be a whole number from 1 to 65535' });
    assert.deepEqual(redisAddress('redis://redis:6379'), { host: 'redis', port: 6379 });
    assert.throws(() => redisAddress('redis:6379'), { message: 'REDIS_URL="redis:6379" must look like redis://HOST:PORT' });
    assert.throws(() => tokenSecret({ TOKEN_SECRET: 'short' }), { message: 'TOKEN_SECRET must have at least 16 characters' });
    assert.throws(() => tokenSecret({}), { message: 'TOKEN_SECRET is not set' });
  });

  it('matches path patterns with parameters', () => {
    assert.deepEqual(matchPath(['v1', 'rooms', ':id', 'join'], '/v1/rooms/12/join'), { id: '12' });
    assert.equal(matchPath(['v1', 'rooms', ':id'], '/v1/rooms/12/join'), null);
    assert.deepEqual(matchPath(['v1', 'assets', ':id'], '/v1/assets/a%20b'), { id: 'a b' });
  });
});

describe('metaverse: Login', () => {
  it('accepts sensible names and passwords, and says what is wrong otherwise', () => {
    assert.deepEqual(parseCredentials({ name: 'alice_1', password: 'long enough' }), { name: 'alice_1', password: 'long enough' });
    assert.throws(() => parseCredentials({ name: 'Al', password: 'long enough' }), httpError(400, 'bad_name'));
    assert.throws(() => parseCredentials({ name: 'alice', password: 'short' }), httpError(400, 'bad_password'));
    assert.throws(() => parseCredentials({ name: 'alice' }), httpError(400, 'bad_password'));
  });

  it('stores a salted scrypt hash, never the password, and checks it', async () => {
    const a = await hashPassword('alice', 'wonderland', 1024);
    const b = await hashPassword('alice', 'wonderland', 1024);
    assert.equal(JSON.stringify(a).includes('wonderland'), false);
    assert.notEqual(a.kdf.hash, b.kdf.hash, 'salted');
    assert.deepEqual([a.kdf.alg, a.kdf.N, a.kdf.r, a.kdf.p], ['scrypt', 1024, 8, 1]);
    assert.equal(await checkPassword(a, 'wonderland'), true);
    assert.equal(await checkPassword(a, 'wonderlanD'), false);
  });
});

describe('metaverse: Asset catalog (on a real folder)', () => {
  let dir: string;
  beforeEach(() => (dir = tempDir()));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('checks upload fields', () => {
    assert.deepEqual(parseUploadQuery(new URLSearchParams('name=hat.png&category=hats&price=5')), { name: 'hat.png', category: 'hats', price: 5 });
    assert.throws(() => parseUploadQuery(new URLSearchParams('name=hat.png&category=Hats')), httpError(400, 'bad_category'));
    assert.throws(() => parseUploadQuery(new URLSearchParams('name=&category=hats')), httpError(400, 'bad_name'));
    assert.throws(() => parseUploadQuery(new URLSearchParams('name=x&category=hats&price=-1')), httpError(400, 'bad_price'));
  });

  it('streams an asset to disk with its size and hash, lists it by category, removes it', async () => {
    const c = new Catalog(dir);
    const bytes = Buffer.alloc(300_000, 7);
    const meta = await c.create(Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]), 1 << 20, { name: 'a', category: 'hats', price: 1, owner: 'alice', contentType: 'model/gltf-binary' });
    assert.deepEqual([meta.size, meta.sha256], [300_000, createHash('sha256').update(bytes).digest('hex')]);
    assert.ok(fs.readFileSync(c.contentPath(meta.id)).equals(bytes));
    assert.deepEqual((await c.list({ category: 'hats' })).map((m) => m.id), [meta.id]);
    assert.deepEqual(await c.list({ category: 'pets' }), []);
    await c.remove(meta.id);
    await assert.rejects(c.get(meta.id), httpError(404, 'not_found'));
  });

  it('refuses an upload over the limit and leaves nothing behind', async () => {
    const c = new Catalog(dir);
    await assert.rejects(c.create(Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), 1000, { name: 'a', category: 'hats', price: 1, owner: 'alice', contentType: 'x' }), httpError(413, 'too_large'));
    assert.deepEqual([fs.readdirSync(path.join(dir, 'files')), fs.readdirSync(path.join(dir, 'meta')), fs.readdirSync(path.join(dir, 'tmp'))], [[], [], []]);
  });
});

describe('metaverse: Map rules', () => {
  it('wants a JSON object as map and a sane capacity', () => {
    assert.deepEqual(parseMap({ w: 1 }), { w: 1 });
    assert.throws(() => parseMap([1]), httpError(400, 'bad_map'));
    assert.equal(parseCapacity(undefined), 32);
    assert.throws(() => parseCapacity(0), httpError(400, 'bad_capacity'));
  });
});

describe('metaverse: Game protocol and fan-out', () => {
  it('splits lines across chunks and refuses endless ones', () => {
    const r = new LineReader();
    assert.deepEqual(r.push('{"t":"ping"}\n{"t":'), ['{"t":"ping"}']);
    assert.deepEqual(r.push('"leave"}\r\n'), ['{"t":"leave"}']);
    assert.throws(() => new LineReader().push('x'.repeat(17 * 1024)), { message: 'a message may have at most 16384 bytes' });
  });

  it('parses each message type and explains a bad one', () => {
    assert.deepEqual(parseClientMessage('{"t":"move","x":1,"y":2,"z":3,"ts":9}'), { t: 'move', x: 1, y: 2, z: 3, ts: 9 });
    assert.deepEqual(parseClientMessage('{"t":"join","room":"4"}'), { t: 'join', room: '4' });
    assert.throws(() => parseClientMessage('{"t":"move","x":1e9,"y":0,"z":0}'), { code: 'bad_move' });
    assert.throws(() => parseClientMessage('{"t":"join","room":4}'), { code: 'bad_join' });
    assert.throws(() => parseClientMessage('{"t":"fly"}'), { message: 'unknown message type "fly" (hello, join, move, chat, leave, ping)' });
    assert.throws(() => parseClientMessage('nope'), { code: 'bad_json' });
    assert.deepEqual(parseDatagram(Buffer.from('{"ticket":"t","x":1,"y":2,"z":3}')), { ticket: 't', x: 1, y: 2, z: 3 });
  });

  it('relays others\' moves, never a player\'s own; chat to everyone', () => {
    assert.equal(shouldDeliver({ t: 'move', player: 'a', x: 0, y: 0, z: 0 }, 'a'), false);
    assert.equal(shouldDeliver({ t: 'move', player: 'a', x: 0, y: 0, z: 0 }, 'b'), true);
    assert.equal(shouldDeliver({ t: 'chat', from: 'a', text: 'hi' }, 'a'), true);
  });

  it('subscribes a replica to a room with its first local player, unsubscribes with its last', () => {
    const rooms = new LocalRooms<string>();
    assert.equal(rooms.add('1', 'a'), true);
    assert.equal(rooms.add('1', 'b'), false);
    assert.equal(rooms.remove('1', 'a'), false);
    assert.equal(rooms.remove('1', 'a'), false, 'twice is once');
    assert.equal(rooms.remove('1', 'b'), true);
    assert.deepEqual(rooms.entries(), []);
  });
});

describe('metaverse: load generator bounds', () => {
  it('reads durations and targets only this machine', () => {
    assert.equal(parseDuration('60s'), 60_000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.throws(() => parseDuration('1h'), { message: '"1h" is not a duration (use e.g. 60s, 2m, 500ms)' });
    assert.doesNotThrow(() => checkLocalHost('127.0.0.1'));
    assert.throws(() => checkLocalHost('93.184.216.34'), /is not an address of this machine/);
  });
});
