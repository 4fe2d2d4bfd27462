// The metaverse servers' logic, without containers: tokens, the Redis wire
// protocol, request rules, the Game protocol and fan-out decisions, the
// asset catalog on a real folder.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Catalog, parseUploadQuery } from '../../../examples/metaverse/asset/catalog.js';
import { attachment, delivery, normalizeContentType, parseMediaType } from '../../../examples/metaverse/asset/content-type.js';
import { envInt, redisAddress, redisTarget, tokenSecret } from '../../../examples/metaverse/lib/config.js';
import { HttpError, matchPath } from '../../../examples/metaverse/lib/http.js';
import { makeLog } from '../../../examples/metaverse/lib/log.js';
import { handshakeRefusal, Redis, RedisUnavailable, replyError, Subscriber } from '../../../examples/metaverse/lib/redis.js';
import { encodeCommand, RedisReplyError, ReplyParser } from '../../../examples/metaverse/lib/resp.js';
import { signToken, verifyToken } from '../../../examples/metaverse/lib/token.js';
import { checkPassword, hashPassword, parseCredentials } from '../../../examples/metaverse/login/accounts.js';
import { clientAddress, parseTrustedProxies } from '../../../examples/metaverse/login/limits.js';
import { LocalRooms } from '../../../examples/metaverse/game/local-rooms.js';
import { LineReader, parseClientMessage, parseDatagram, shouldDeliver } from '../../../examples/metaverse/game/protocol.js';
import { TicketCache } from '../../../examples/metaverse/game/tickets.js';
import { depth, parseCapacity, parseMap } from '../../../examples/metaverse/map/rooms.js';
import { call, GameClient } from '../../../examples/metaverse/loadgen/client.js';
import { checkLocalHost, parseDuration } from '../../../examples/metaverse/loadgen/loadgen.js';
import { freePort, getJson, Processes, REDIS_PASSWORD, SECRET as SERVER_SECRET, sendDatagram, until } from '../../helpers/metaverse.js';
import { ROOT, tempDir } from '../../helpers/paths.js';

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
    assert.deepEqual(redisTarget({}), { host: 'redis', port: 6379 });
    assert.deepEqual(redisTarget({ REDIS_URL: 'redis://db:7000', REDIS_PASSWORD: '' }), { host: 'db', port: 7000 }, 'empty is unset');
    assert.deepEqual(redisTarget({ REDIS_PASSWORD: 'p4ss' }), { host: 'redis', port: 6379, password: 'p4ss' });
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

describe('metaverse: what Asset serves as-is (content-type.ts)', () => {
  it('parses a Content-Type whatever its case, spacing and parameters', () => {
    assert.deepEqual(parseMediaType(' Image/PNG ; Foo = "a;b\\"c" ;charset=UTF-8'), { essence: 'image/png', params: { foo: 'a;b"c', charset: 'UTF-8' } });
    assert.deepEqual(parseMediaType('text/html'), { essence: 'text/html', params: {} });
    for (const bad of [undefined, '', 'html', '/png', 'image/', 'image/png; =x', 'ima ge/png', 'image/png; a="unterminated']) assert.equal(parseMediaType(bad), null, String(bad));
    assert.equal(normalizeContentType('TEXT/Plain; Charset=UTF-8; x=1'), 'text/plain; charset=utf-8');
    assert.equal(normalizeContentType('not a type'), 'application/octet-stream');
    assert.equal(normalizeContentType(undefined), 'application/octet-stream');
  });

  const cases: Array<[string, string, string | undefined]> = [
    ['image/png', 'image/png', undefined],
    ['IMAGE/JPEG; q=1', 'image/jpeg', undefined],
    ['model/gltf-binary', 'model/gltf-binary', undefined],
    ['text/plain', 'text/plain; charset=utf-8', undefined],
    ['text/plain; charset=us-ascii', 'text/plain; charset=utf-8', undefined],
    ['text/plain; charset=utf-7', 'application/octet-stream', 'attachment'],
    ['text/html', 'application/octet-stream', 'attachment'],
    ['text/html; charset=utf-8', 'application/octet-stream', 'attachment'],
    ['image/svg+xml', 'application/octet-stream', 'attachment'],
    ['application/javascript', 'application/octet-stream', 'attachment'],
    ['application/xhtml+xml', 'application/octet-stream', 'attachment'],
    ['garbage', 'application/octet-stream', 'attachment'],
  ];
  for (const [stored, type, disposition] of cases) {
    it(`serves "${stored}" as ${type}${disposition ? ', a download' : ''}, always with nosniff and a sandbox CSP`, () => {
      const h = delivery(stored, 'x.bin');
      assert.equal(h['content-type'], type);
      assert.equal(h['content-disposition']?.split(';')[0], disposition);
      assert.equal(h['x-content-type-options'], 'nosniff');
      assert.equal(h['content-security-policy'], "default-src 'none'; sandbox");
    });
  }

  it('offers a download under a safe ASCII name and the exact name encoded (RFC 6266, 8187)', () => {
    assert.equal(attachment('évil "x";%.svg'), `attachment; filename="_vil _x___.svg"; filename*=UTF-8''%C3%A9vil%20%22x%22%3B%25.svg`);
    assert.equal(attachment("it's (a)*.html"), `attachment; filename="it's (a)*.html"; filename*=UTF-8''it%27s%20%28a%29%2A.html`);
    assert.equal(attachment('../../etc/passwd'), `attachment; filename="passwd"; filename*=UTF-8''passwd`);
    assert.equal(attachment('dir\\'), `attachment; filename="download"; filename*=UTF-8''download`);
  });
});

describe('metaverse: rules behind the limits', () => {
  it('Map: measures nesting without recursion and refuses maps deeper than the cap', () => {
    assert.deepEqual([depth(1), depth({}), depth({ a: [1, { b: [] }] })], [0, 1, 4]);
    let deep: unknown = {};
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.equal(depth(deep), 100_001);
    assert.throws(() => parseMap({ a: deep }), { message: 'map nests objects and arrays more than 32 levels deep' });
    assert.doesNotThrow(() => parseMap({ a: { b: { c: 1 } } }, 3));
    assert.throws(() => parseMap({ a: { b: { c: {} } } }, 3), httpError(400, 'bad_map'));
  });

  it('Redis: a full (OOM) or loading Redis is "unavailable" (503), other error replies stay errors', () => {
    const oom = replyError(new RedisReplyError("OOM command not allowed when used memory > 'maxmemory'."));
    assert.ok(oom instanceof RedisUnavailable);
    assert.equal(oom.message, 'redis is unavailable: it is out of memory (maxmemory reached) and refuses writes until space is freed');
    assert.ok(replyError(new RedisReplyError('LOADING Redis is loading the dataset in memory')) instanceof RedisUnavailable);
    const wrong = new RedisReplyError('WRONGTYPE Operation against a key holding the wrong kind of value');
    assert.equal(replyError(wrong), wrong);
  });

  it('Redis: a refused AUTH or PING says what to fix, never the password', () => {
    assert.equal(handshakeRefusal('NOAUTH Authentication required.', false), 'redis requires a password: set REDIS_PASSWORD to the password of its requirepass');
    assert.equal(handshakeRefusal('WRONGPASS invalid username-password pair or user is disabled.', true), 'redis refused the password in REDIS_PASSWORD: it must be the password of its requirepass');
    assert.equal(handshakeRefusal('ERR invalid password', true), 'redis refused the password in REDIS_PASSWORD: it must be the password of its requirepass', 'Redis before 6');
    assert.equal(handshakeRefusal('LOADING Redis is loading the dataset in memory', false), 'redis is unavailable: it is still loading its data after a restart');
    assert.equal(handshakeRefusal('ERR unknown command', false), 'redis refused the connection: ERR unknown command');
  });

  it('Redis image: maxmemory below the 128Mi limit, and nothing evicted', () => {
    const cartefile = fs.readFileSync(path.join(ROOT, 'examples', 'metaverse', 'redis', 'Cartefile'), 'utf8');
    const cmd = JSON.parse(/^CMD (.*)$/m.exec(cartefile)![1]!) as string[];
    assert.equal(cmd[cmd.indexOf('--maxmemory') + 1], '96mb');
    assert.equal(cmd[cmd.indexOf('--maxmemory-policy') + 1], 'noeviction');
  });

  it('Login: the client address is the socket\'s peer; X-Forwarded-For only through a trusted proxy', () => {
    const none = parseTrustedProxies('');
    const proxies = parseTrustedProxies(' 10.0.0.1, ::1 ');
    assert.equal(clientAddress('::ffff:203.0.113.9', '198.51.100.1', none), '203.0.113.9', 'no trusted proxy: the header is ignored');
    assert.equal(clientAddress('10.0.0.1', undefined, proxies), '10.0.0.1');
    assert.equal(clientAddress('::ffff:10.0.0.1', 'forged, 198.51.100.7', proxies), '198.51.100.7');
    assert.equal(clientAddress('10.0.0.1', '198.51.100.7, ::1', proxies), '198.51.100.7', 'the nearest hop that is not a proxy');
    assert.equal(clientAddress('10.0.0.1', 'not-an-ip', proxies), '10.0.0.1');
    assert.equal(clientAddress(undefined, undefined, none), 'unknown');
    assert.throws(() => parseTrustedProxies('10.0.0.0/8'), { message: 'TRUSTED_PROXIES: "10.0.0.0/8" is not an IP address (list proxies\' addresses, comma-separated)' });
  });

  it('Game: a ticket\'s room is read once per cache period, and a revoke here wins at once', async () => {
    let now = 0;
    let rooms: Record<string, string | null> = { s1: '3' };
    const reads: string[] = [];
    const gates: Array<() => void> = [];
    const cache = new TicketCache(async (sid) => {
      reads.push(sid);
      await new Promise<void>((r) => gates.push(r));
      return rooms[sid] ?? null;
    }, 1000, () => now);
    const a = cache.room('s1');
    const b = cache.room('s1');
    gates.shift()!();
    assert.deepEqual([await a, await b, reads], ['3', '3', ['s1']], 'one read for two datagrams');
    now = 999;
    assert.equal(await cache.room('s1'), '3');
    assert.equal(reads.length, 1, 'still cached');
    now = 1000;
    rooms = {};
    const c = cache.room('s1');
    gates.shift()!();
    assert.equal(await c, null, 'revoked elsewhere: seen after the cache period');
    cache.grant('s1', '4');
    assert.equal(await cache.room('s1'), '4');
    now = 3000;
    rooms = { s1: '4' };
    const stale = cache.room('s1');
    cache.revoke('s1');
    gates.shift()!();
    assert.equal(await stale, '4');
    assert.equal(await cache.room('s1'), null, 'the read that was under way does not undo the revoke');
    cache.prune();
    assert.equal(cache.size, 1);
    now = 5000;
    cache.prune();
    assert.equal(cache.size, 0);
  });
});

describe('metaverse: the servers as processes, against a real redis-server', function () {
  this.timeout(30_000);
  const procs = new Processes();
  let redis: Redis;
  let redisPort = 0;
  let dataDir = '';
  const ports = { login: 0, asset: 0, map: 0, game: 0, gameUdp: 0, gameHealth: 0, game2: 0, game2Udp: 0, game2Health: 0 };
  const host = '127.0.0.1';
  const session = (name: string) => signToken({ sub: name, exp: Math.floor(Date.now() / 1000) + 3600, use: 'session' }, SERVER_SECRET);
  const errorOf = (r: { body: Record<string, unknown> }) => r.body.error as { code: string; message: string };

  before(async function () {
    if (spawnSync('redis-server', ['--version']).status !== 0) this.skip();
    const r = await procs.redis();
    redis = r.client;
    redisPort = r.port;
    const common = { REDIS_URL: `redis://127.0.0.1:${r.port}`, REDIS_PASSWORD };
    for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
    dataDir = tempDir('carte-metaverse-asset-');
    await Promise.all([
      procs.server('login', { ...common, PORT: String(ports.login), SCRYPT_N: '1024', LOGIN_MAX_FAILURES_PER_NAME: '3', LOGIN_MAX_FAILURES_PER_ADDRESS: '8', TRUSTED_PROXIES: '127.0.0.1' }, ports.login),
      procs.server('asset', { PORT: String(ports.asset), DATA_DIR: dataDir }, ports.asset),
      procs.server('map', { ...common, PORT: String(ports.map), MAX_ROOMS_PER_USER: '3', MAX_MAP_BYTES: '4096' }, ports.map),
      procs.server('game', { ...common, TCP_PORT: String(ports.game), UDP_PORT: String(ports.gameUdp), HEALTH_PORT: String(ports.gameHealth) }, ports.gameHealth),
      procs.server('game', { ...common, TCP_PORT: String(ports.game2), UDP_PORT: String(ports.game2Udp), HEALTH_PORT: String(ports.game2Health) }, ports.game2Health),
    ]);
  });

  after(async () => {
    await redis?.close();
    await procs.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  describe('Asset', () => {
    const upload = (name: string, type: string, body: string) => new Promise<{ status: number; id: string }>((resolve, reject) => {
      const req = http.request({ host, port: ports.asset, method: 'POST', path: `/v1/assets?name=${encodeURIComponent(name)}&category=tests`, headers: { authorization: `Bearer ${session('uploader')}`, 'content-type': type } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, id: String((JSON.parse(text) as { id?: string }).id) }));
      });
      req.on('error', reject);
      req.end(body);
    });
    const get = (urlPath: string) => new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
      http.get({ host, port: ports.asset, path: urlPath, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      }).on('error', reject);
    });

    it('serves an HTML upload as an octet-stream download, never as HTML', async () => {
      const up = await upload('page "one".html', 'Text/HTML; charset=utf-8', '<script>alert(document.cookie)</script>');
      assert.equal(up.status, 201);
      const r = await get(`/v1/assets/${up.id}/content`);
      assert.equal(r.status, 200);
      assert.equal(r.text, '<script>alert(document.cookie)</script>', 'the bytes, unchanged');
      assert.equal(r.headers['content-type'], 'application/octet-stream');
      assert.equal(r.headers['content-disposition'], `attachment; filename="page _one_.html"; filename*=UTF-8''page%20%22one%22.html`);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.equal(r.headers['content-security-policy'], "default-src 'none'; sandbox");
      const svg = await upload('logo.svg', 'image/svg+xml', '<svg onload="alert(1)"/>');
      assert.equal((await get(`/v1/assets/${svg.id}/content`)).headers['content-type'], 'application/octet-stream');
    });

    it('serves a PNG as image/png, inline, with nosniff and the sandbox CSP; thumbnails follow the same rule', async () => {
      const up = await upload('hat.png', ' IMAGE/PNG ', '\x89PNG');
      const r = await get(`/v1/assets/${up.id}/content`);
      assert.deepEqual([r.headers['content-type'], r.headers['content-disposition'], r.headers['x-content-type-options'], r.headers['content-security-policy']],
        ['image/png', undefined, 'nosniff', "default-src 'none'; sandbox"]);
      const meta = await get(`/v1/assets/${up.id}`);
      assert.equal((JSON.parse(meta.text) as { contentType: string }).contentType, 'image/png');
      const putThumb = (type: string) => new Promise<number>((resolve, reject) => {
        const req = http.request({ host, port: ports.asset, method: 'PUT', path: `/v1/assets/${up.id}/thumbnail`, headers: { authorization: `Bearer ${session('uploader')}`, 'content-type': type } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end('<html>');
      });
      assert.equal(await putThumb('text/html'), 200);
      const html = await get(`/v1/assets/${up.id}/thumbnail`);
      assert.deepEqual([html.headers['content-type'], html.headers['content-disposition'], html.headers['content-security-policy']],
        ['application/octet-stream', `attachment; filename="hat.png.thumbnail"; filename*=UTF-8''hat.png.thumbnail`, "default-src 'none'; sandbox"]);
      assert.equal(await putThumb('image/webp'), 200);
      const webp = await get(`/v1/assets/${up.id}/thumbnail`);
      assert.deepEqual([webp.headers['content-type'], webp.headers['content-disposition'], webp.headers['x-content-type-options']], ['image/webp', undefined, 'nosniff']);
    });
  });

  describe('Map', () => {
    const create = (user: string, name = 'room') => call<{ id: string }>(host, ports.map, 'POST', '/v1/rooms', { token: session(user), json: { name, map: { w: 1 } } });

    it('caps the rooms one user owns (409 too_many_rooms); deleting one frees its slot; others are not affected', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) ids.push((await create('builder')).body.id);
      const refused = await create('builder');
      assert.deepEqual([refused.status, refused.body], [409, { error: { code: 'too_many_rooms', message: 'builder already has 3 rooms, the most one user may have: delete one first' } }]);
      assert.equal((await create('neighbour')).status, 201);
      assert.equal((await call(host, ports.map, 'DELETE', `/v1/rooms/${ids[0]}`, { token: session('builder') })).status, 204);
      assert.equal((await create('builder')).status, 201);
      assert.equal((await create('builder')).status, 409);
      assert.equal(await redis.int('ZCARD', 'metaverse:rooms:owner:builder'), 3);
    });

    it('never lets concurrent creates pass the cap', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => create('racer', `r${i}`)));
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 201, 201, 409, 409, 409, 409, 409]);
      assert.equal(await redis.int('ZCARD', 'metaverse:rooms:owner:racer'), 3);
      const listed = await call<{ items: Array<{ owner: string }> }>(host, ports.map, 'GET', '/v1/rooms');
      assert.equal(listed.body.items.filter((r) => r.owner === 'racer').length, 3);
    });

    it('bounds the map: too deep is 400, too large is 413, on create and on update', async () => {
      let deep: unknown = 1;
      for (let i = 0; i < 40; i++) deep = { d: deep };
      const bad = await call(host, ports.map, 'POST', '/v1/rooms', { token: session('mapper'), json: { name: 'deep', map: deep } });
      assert.deepEqual([bad.status, errorOf(bad).code], [400, 'bad_map']);
      const id = (await create('mapper')).body.id;
      const big = await call(host, ports.map, 'PUT', `/v1/rooms/${id}`, { token: session('mapper'), json: { map: { tiles: 'x'.repeat(5000) } } });
      assert.deepEqual([big.status, errorOf(big).code], [413, 'too_large']);
      const deeper = await call(host, ports.map, 'PUT', `/v1/rooms/${id}`, { token: session('mapper'), json: { map: { b: deep } } });
      assert.deepEqual([deeper.status, errorOf(deeper).code], [400, 'bad_map']);
    });
  });

  describe('Login', () => {
    const attempt = (name: string, password: string, from = '192.0.2.1') => new Promise<{ status: number; body: Record<string, unknown>; retryAfter?: string }>((resolve, reject) => {
      const payload = JSON.stringify({ name, password });
      const req = http.request({ host, port: ports.login, method: 'POST', path: '/v1/login', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-forwarded-for': from } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown>, retryAfter: res.headers['retry-after'] }));
      });
      req.on('error', reject);
      req.end(payload);
    });
    const signup = async (name: string) => assert.equal((await call(host, ports.login, 'POST', '/v1/signup', { json: { name, password: `${name}-password` } })).status, 201);

    it('refuses a name after its failures (429 with Retry-After), even with the right password; other names log in', async () => {
      await signup('carol');
      await signup('dave');
      for (let i = 0; i < 3; i++) assert.equal((await attempt('carol', 'not-the-password')).status, 401);
      const locked = await attempt('carol', 'carol-password');
      assert.equal(locked.status, 429);
      assert.deepEqual(locked.body, { error: { code: 'too_many_attempts', message: `too many failed logins for "carol": try again in ${locked.retryAfter} s` } });
      assert.ok(Number(locked.retryAfter) >= 299 && Number(locked.retryAfter) <= 300, String(locked.retryAfter));
      assert.equal((await attempt('dave', 'dave-password')).status, 200);
      assert.equal((await attempt('carol', 'carol-password')).status, 429, 'another name\'s success resets nothing');
    });

    it('counts successes for nothing, and a burst of parallel guesses cannot outrun the limit', async () => {
      await signup('erin');
      for (let i = 0; i < 5; i++) assert.equal((await attempt('erin', 'erin-password', '192.0.2.2')).status, 200);
      const burst = await Promise.all(Array.from({ length: 10 }, () => attempt('erin', 'a-wrong-guess', '192.0.2.2')));
      assert.deepEqual(burst.map((r) => r.status).sort(), [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    });

    it('refuses an address after its failures across names, not other addresses', async () => {
      for (let i = 0; i < 8; i++) assert.equal((await attempt(`guess${i}`, 'wrong-password', '198.51.100.20')).status, 401);
      const locked = await attempt('guess-more', 'wrong-password', '198.51.100.20');
      assert.deepEqual([locked.status, locked.body], [429, { error: { code: 'too_many_attempts', message: `too many failed logins from your address: try again in ${locked.retryAfter} s` } }]);
      await signup('frank');
      assert.equal((await attempt('frank', 'frank-password', '198.51.100.20')).status, 429);
      assert.equal((await attempt('frank', 'frank-password', '198.51.100.21')).status, 200);
    });
  });

  describe('Game: UDP tickets end with the stay in the room', () => {
    const clients: GameClient[] = [];
    const endpoints = (tcp: number, udp: number) => ({ host, login: ports.login, asset: ports.asset, map: ports.map, game: tcp, gameUdp: udp });
    const player = async (name: string, room: string) => {
      const c = new GameClient(endpoints(ports.game, ports.gameUdp));
      clients.push(c);
      await c.connect(session(name));
      await c.join(room);
      return c;
    };
    const rejected = async (port: number) => Number((await getJson(port, '/stats')).body.udpRejected);
    const room = async (owner: string) => (await call<{ id: string }>(host, ports.map, 'POST', '/v1/rooms', { token: session(owner), json: { name: 'arena', map: {} } })).body.id;
    /** Sends a position with `ticket` to a replica's UDP port until `watcher` sees it (true) or the replica counts it rejected (false). */
    const deliver = async (ticket: string, udpPort: number, healthPort: number, watcher: GameClient, x: number) => {
      const before = await rejected(healthPort);
      const seen = watcher.waitFor((m) => m.t === 'move' && m.x === x, 3000).then(() => true, () => false);
      await sendDatagram(udpPort, { ticket, x, y: 0, z: 0 });
      return Promise.race([seen, until(async () => (await rejected(healthPort)) > before, 'the datagram to be rejected', 3000).then(() => false)]);
    };
    after(() => clients.forEach((c) => c.close()));

    it('accepts a ticket while its session is in the room, on any replica; refuses it after leave, on every replica', async () => {
      const id = await room('game-host');
      const a = await player('gina', id);
      const b = await player('hank', id);
      assert.equal(await deliver(a.ticket, ports.gameUdp, ports.gameHealth, b, 1), true);
      assert.equal(await deliver(a.ticket, ports.game2Udp, ports.game2Health, b, 2), true, 'another replica relays it');
      const payload = JSON.parse(Buffer.from(a.ticket.split('.')[0]!, 'base64url').toString()) as { sid: string };
      assert.equal(await redis.str('GET', `metaverse:game:ticket:${payload.sid}`), id);
      const ttl = await redis.int('PTTL', `metaverse:game:ticket:${payload.sid}`);
      assert.ok(ttl > 0 && ttl <= 30_000, String(ttl));
      const left = b.waitFor((m) => m.t === 'left' && m.player === 'gina');
      a.send({ t: 'leave' });
      await left;
      assert.equal(await redis.str('GET', `metaverse:game:ticket:${payload.sid}`), null);
      assert.equal(await deliver(a.ticket, ports.gameUdp, ports.gameHealth, b, 3), false, 'refused on its own replica at once');
      await until(async () => !(await deliver(a.ticket, ports.game2Udp, ports.game2Health, b, 4)), 'the other replica to refuse it (its cache lasts 1 s)', 5000);
    });

    it('refuses the old room\'s ticket after a room change, and any ticket after a disconnect', async () => {
      const [r1, r2] = [await room('game-host2'), await room('game-host2')];
      const a = await player('ivan', r1);
      const watch1 = await player('judy', r1);
      const watch2 = await player('kim', r2);
      const first = a.ticket;
      await a.join(r2);
      assert.notEqual(a.ticket, first);
      assert.equal(await deliver(first, ports.gameUdp, ports.gameHealth, watch1, 5), false);
      assert.equal(await deliver(a.ticket, ports.gameUdp, ports.gameHealth, watch2, 6), true);
      const second = a.ticket;
      const left = watch2.waitFor((m) => m.t === 'left' && m.player === 'ivan');
      a.close();
      await left;
      assert.equal(await deliver(second, ports.gameUdp, ports.gameHealth, watch2, 7), false);
    });

    it('refuses a ticket without a session id (from before) and reads Redis at most once a second per ticket', async () => {
      const id = await room('game-host3');
      const watcher = await player('liam', id);
      const old = signToken({ sub: 'mallory', room: id, use: 'udp', exp: Math.floor(Date.now() / 1000) + 3600 }, SERVER_SECRET);
      assert.equal(await deliver(old, ports.gameUdp, ports.gameHealth, watcher, 8), false);
      const a = await player('mona', id);
      const lookups = Number((await getJson(ports.game2Health, '/stats')).body.ticketLookups);
      const seen = watcher.waitFor((m) => m.t === 'move' && m.player === 'mona' && m.x === 99, 5000);
      for (let i = 0; i < 100; i++) await sendDatagram(ports.game2Udp, { ticket: a.ticket, x: i, y: 0, z: 0 });
      await seen;
      assert.ok(Number((await getJson(ports.game2Health, '/stats')).body.ticketLookups) - lookups <= 2);
    });
  });

  describe('a full Redis (OOM replies)', () => {
    afterEach(async () => {
      await redis.command('CONFIG', 'SET', 'maxmemory', '0');
    });

    it('is a 503 with a clear message, not a crash; reads still work', async () => {
      await redis.command('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      await redis.command('CONFIG', 'SET', 'maxmemory', '1');
      const expected = { error: { code: 'unavailable', message: 'redis is unavailable: it is out of memory (maxmemory reached) and refuses writes until space is freed' } };
      const signup = await call(host, ports.login, 'POST', '/v1/signup', { json: { name: 'nora', password: 'nora-password' } });
      assert.deepEqual([signup.status, signup.body], [503, expected]);
      const login = await call(host, ports.login, 'POST', '/v1/login', { json: { name: 'dave', password: 'dave-password' } });
      assert.deepEqual([login.status, login.body], [503, expected]);
      const created = await call(host, ports.map, 'POST', '/v1/rooms', { token: session('olga'), json: { name: 'full', map: {} } });
      assert.deepEqual([created.status, created.body], [503, expected]);
      assert.equal(await redis.int('EXISTS', 'metaverse:rooms:owner:olga'), 0, 'the claimed slot was given back');
      assert.equal((await call(host, ports.map, 'GET', '/v1/rooms')).status, 200);
      await redis.command('CONFIG', 'SET', 'maxmemory', '0');
      assert.equal((await call(host, ports.login, 'POST', '/v1/signup', { json: { name: 'nora', password: 'nora-password' } })).status, 201);
    });
  });

  describe('the Redis password (REDIS_PASSWORD)', () => {
    const connectionsReceived = async () => Number(/^total_connections_received:(\d+)/m.exec((await redis.str('INFO', 'stats'))!)![1]);
    const logLines = (out: string) => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string; role?: string });

    it('a wrong or missing one leaves the server up but unready (503), saying why once, with no stack trace; it keeps retrying', async () => {
      const [mapPort, loginPort] = [await freePort(), await freePort()];
      const url = `redis://127.0.0.1:${redisPort}`;
      const before = await connectionsReceived();
      const wrong = await procs.server('map', { REDIS_URL: url, REDIS_PASSWORD: 'not-the-password', PORT: String(mapPort), LOG_LEVEL: 'info' }, mapPort, 503);
      const missing = await procs.server('login', { REDIS_URL: url, PORT: String(loginPort), LOG_LEVEL: 'info', SCRYPT_N: '1024' }, loginPort, 503);
      await until(async () => (await connectionsReceived()) >= before + 8, 'both servers to try a few times');
      assert.deepEqual(await getJson(mapPort, '/health'), { status: 503, body: { status: 'redis unavailable' } });
      const created = await call(host, mapPort, 'POST', '/v1/rooms', { token: session('pat'), json: { name: 'r', map: {} } });
      assert.deepEqual([created.status, created.body], [503, { error: { code: 'unavailable', message: 'redis is unavailable: not connected' } }]);
      assert.equal((await call(host, loginPort, 'POST', '/v1/signup', { json: { name: 'quinn', password: 'quinn-password' } })).status, 503);
      assert.deepEqual([wrong.exitCode, missing.exitCode], [null, null], 'still running');
      const [wrongOut, missingOut] = [procs.outputOf(wrong), procs.outputOf(missing)];
      assert.deepEqual(logLines(wrongOut).filter((l) => l.level === 'error' || l.msg === 'redis connected').map((l) => l.msg),
        ['redis refused the password in REDIS_PASSWORD: it must be the password of its requirepass'], 'one error line for many refusals');
      assert.deepEqual(logLines(missingOut).filter((l) => l.level === 'error' || l.msg === 'redis connected').map((l) => l.msg),
        ['redis requires a password: set REDIS_PASSWORD to the password of its requirepass']);
      for (const out of [wrongOut, missingOut]) {
        assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
        assert.equal(out.includes('not-the-password') || out.includes(REDIS_PASSWORD), false, 'no password in the log');
      }
    });

    it('every reconnect logs in again, commands and pub/sub alike, and the servers come back', async () => {
      const target = { host, port: redisPort, password: REDIS_PASSWORD };
      const quiet = makeLog('test', 'error');
      const client = new Redis(target, quiet);
      const messages: string[] = [];
      const sub = new Subscriber(target, quiet, (_ch, m) => messages.push(m));
      client.start();
      sub.start();
      sub.subscribe('metaverse:test:reauth');
      try {
        await Promise.all([client.waitReady(5000), sub.waitReady(5000)]);
        const id = await client.int('CLIENT', 'ID');
        assert.ok(await redis.int('CLIENT', 'KILL', 'SKIPME', 'yes') >= 7, 'every connection but ours dropped (servers\', client\'s, subscriber\'s)');
        const again = await until(async () => {
          const n = await client.int('CLIENT', 'ID');
          return n !== id && n;
        }, 'the client to reconnect and log in');
        assert.ok(again > id);
        await until(async () => {
          await redis.command('PUBLISH', 'metaverse:test:reauth', 'hello');
          return messages.includes('hello');
        }, 'the subscriber to reconnect, log in and subscribe again');
        for (const port of [ports.login, ports.map, ports.gameHealth, ports.game2Health]) await until(async () => (await getJson(port, '/health')).status === 200, `the server on ${port} to be healthy again`);
      } finally {
        await client.close();
        await sub.close();
      }
    });
  });
});
