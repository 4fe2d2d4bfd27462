// The metaverse demo end to end: its images, its manifests (published ports
// moved to free ones, Game kept at two replicas) and a real daemon, driven
// only through the gateway's published ports, as players reach it.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { buildImages, carteWith, copyManifests, ensureSecret, MANIFESTS, SERVICES, waitConverged } from '../../examples/metaverse/demo.js';
import { call, GameClient, type Endpoints } from '../../examples/metaverse/loadgen/client.js';
import { gatewayNames } from '../../src/drivers/linux/gateway-netns.js';
import { homeIdOf } from '../../src/drivers/linux/records.js';
import { makeE2eEnv, type E2eEnv } from '../helpers/e2e.js';
import { eventually, firewallRules, requireRoot } from '../helpers/linux.js';
import { tempDir } from '../helpers/paths.js';

describe('metaverse demo (root: its images, manifests and a real daemon)', function () {
  this.timeout(240_000);
  let e: E2eEnv | undefined;
  let dir = '';
  let ep: Endpoints;
  let daemon: ChildProcess;
  const clients: GameClient[] = [];
  const login = async (name: string) => {
    await call(ep.host, ep.login, 'POST', '/v1/signup', { json: { name, password: `${name}-password` } });
    const r = await call<{ token: string }>(ep.host, ep.login, 'POST', '/v1/login', { json: { name, password: `${name}-password` } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.token;
  };
  const instances = async () => JSON.parse((await e!.carte(['get', 'instances', '-o', 'json'])).stdout).items as Array<{ name: string; service: string; pid: number; state: string }>;

  before(async function () {
    requireRoot(this);
    e = makeE2eEnv();
    dir = tempDir('carte-metaverse-');
    ep = copyManifests(dir, { portOffset: 20_000 + 100 * Math.floor(Math.random() * 150), gameMin: 2 });
    await buildImages(carteWith(e.env));
    assert.equal(await ensureSecret(carteWith(e.env), dir), 'created');
    daemon = e.daemon(['--watch', dir, '--publish-address', '127.0.0.1']);
    await waitConverged(carteWith(e.env), SERVICES, 120_000);
  });

  after(async () => {
    for (const c of clients) c.close();
    await e?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs all five services, each from its own image', async () => {
    const running = (await instances()).filter((i) => i.state === 'running').map((i) => i.service);
    assert.deepEqual([...new Set(running)].sort(), ['asset', 'game', 'login', 'map', 'redis']);
    assert.equal(running.filter((s) => s === 'game').length, 2);
  });

  it('keeps its credentials in the secret only: Redis refuses a client without its password; no value in the manifests or the state', async () => {
    assert.equal(await ensureSecret(carteWith(e!.env), dir), 'kept', 'a second make demo keeps the secret');
    const login = (await instances()).find((i) => i.service === 'login' && i.state === 'running')!;
    const redis = (await instances()).find((i) => i.service === 'redis' && i.state === 'running')!;
    // Inside a Login container (node, and "redis" resolves there), as another container reaches Redis; the
    // password comes from the container's own environment, never from this command line.
    const probe = `const net = require('node:net');
      const talk = (lines) => new Promise((resolve, reject) => {
        const s = net.connect(6379, 'redis');
        let got = '';
        s.on('data', (d) => { got += d; if (got.split('\\r\\n').length > lines.length) { s.destroy(); resolve(got.split('\\r\\n').slice(0, lines.length)); } });
        s.on('error', reject);
        s.write(lines.map((l) => l + '\\r\\n').join(''));
      });
      (async () => {
        const out = { noAuth: await talk(['PING']), wrong: await talk(['AUTH not-the-password', 'PING']), right: await talk(['AUTH ' + process.env.REDIS_PASSWORD, 'PING']),
          token: process.env.TOKEN_SECRET, password: process.env.REDIS_PASSWORD };
        process.stdout.write(JSON.stringify(out));
      })().catch((err) => { console.error(err.message); process.exit(1); });`;
    const r = await e!.carte(['exec', login.name, '--', 'node', '-e', probe]);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { noAuth: string[]; wrong: string[]; right: string[]; token: string; password: string };
    assert.deepEqual(got.noAuth, ['-NOAUTH Authentication required.']);
    assert.deepEqual(got.wrong, ['-WRONGPASS invalid username-password pair or user is disabled.', '-NOAUTH Authentication required.']);
    assert.deepEqual(got.right, ['+OK', '+PONG']);
    assert.match(got.token, /^[0-9a-f]{64}$/);
    assert.match(got.password, /^[0-9a-f]{64}$/);
    const home = e!.home;
    const places = [
      ...fs.readdirSync(home).filter((f) => f.startsWith('state')).map((f) => path.join(home, f)).filter((f) => fs.statSync(f).isFile()),
      ...fs.readdirSync(dir).map((f) => path.join(dir, f)),
      ...fs.readdirSync(MANIFESTS).map((f) => path.join(MANIFESTS, f)),
    ];
    assert.ok(places.some((f) => path.basename(f) === 'state.json'));
    const outputs = await Promise.all([['get', '-o', 'yaml'], ['describe', 'service', 'redis'], ['describe', 'service', 'login'], ['events'], ['secret', 'list'], ['logs', login.name], ['logs', redis.name]].map((a) => e!.carte(a)));
    for (const value of [got.token, got.password]) {
      for (const f of places) assert.equal(fs.readFileSync(f, 'utf8').includes(value), false, `a value in ${f}`);
      for (const o of outputs) assert.equal(o.stdout.includes(value) || o.stderr.includes(value), false, 'a value in the CLI\'s output');
    }
  });

  it('only the servers that use Redis reach it: Asset is refused by name and by address, Login is not', async () => {
    const running = (await instances()).filter((i) => i.state === 'running') as Array<{ name: string; service: string; ip?: string }>;
    const asset = running.find((i) => i.service === 'asset')!;
    const login = running.find((i) => i.service === 'login')!;
    const redisIp = running.find((i) => i.service === 'redis')!.ip!;
    // A bounded attempt from inside a container: "refused" (reset or rejected) or "open".
    const probe = (host: string) => `const s = require('node:net').connect(6379, ${JSON.stringify(host)});
      const done = (w) => { s.destroy(); process.stdout.write(w, () => process.exit(0)); };
      s.setTimeout(3000, () => done('timeout'));
      s.on('data', () => done('open'));
      s.on('connect', () => s.write('PING\\r\\n'));
      s.on('error', () => done('refused'));`;
    const from = async (i: { name: string }, host: string) => {
      const r = await e!.carte(['exec', i.name, '--', 'node', '-e', probe(host)]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    assert.deepEqual([await from(asset, 'redis'), await from(asset, redisIp)], ['refused', 'refused']);
    assert.deepEqual([await from(login, 'redis'), await from(login, redisIp)], ['open', 'open']);
    assert.match((await e!.carte(['describe', 'service', 'redis'])).stdout, /Allowed from: game, login, map\n/);
  });

  it('Login: signs up and logs in; refuses duplicates, wrong passwords and bad requests with JSON errors', async () => {
    const alice = { name: 'alice', password: 'wonderland' };
    const signup = await call(ep.host, ep.login, 'POST', '/v1/signup', { json: alice });
    assert.equal(signup.status, 201);
    assert.equal(signup.body.name, 'alice');
    assert.deepEqual(await call(ep.host, ep.login, 'POST', '/v1/signup', { json: alice }).then((r) => [r.status, r.body]),
      [409, { error: { code: 'user_exists', message: 'user "alice" already exists (log in, or pick another name)' } }]);
    assert.deepEqual(await call(ep.host, ep.login, 'POST', '/v1/login', { json: { name: 'alice', password: 'not-her-password' } }).then((r) => [r.status, r.body]),
      [401, { error: { code: 'invalid_credentials', message: 'wrong name or password' } }]);
    assert.deepEqual(await call(ep.host, ep.login, 'POST', '/v1/signup', { json: { name: 'Bob!', password: 'x' } }).then((r) => [r.status, (r.body.error as { code: string }).code]), [400, 'bad_name']);
    assert.deepEqual(await call(ep.host, ep.login, 'POST', '/v1/login', { data: Buffer.from('{nope') }).then((r) => [r.status, (r.body.error as { code: string }).code]), [400, 'bad_json']);
    const ok = await call<{ token: string; name: string }>(ep.host, ep.login, 'POST', '/v1/login', { json: alice });
    assert.equal(ok.status, 200);
    const me = await call(ep.host, ep.login, 'GET', '/v1/me', { token: ok.body.token });
    assert.equal(me.body.name, 'alice');
    assert.equal((await call(ep.host, ep.login, 'GET', '/v1/me', { token: `${ok.body.token}x` })).status, 401);
  });

  it('Asset: an upload comes back byte for byte from the volume; listed by category; only its owner deletes it', async () => {
    const owner = await login('asset-owner');
    const other = await login('asset-other');
    const bytes = randomBytes(1 << 20);
    const up = await call<{ id: string; size: number; sha256: string; owner: string }>(ep.host, ep.asset, 'POST', '/v1/assets?name=castle.glb&category=buildings&price=120', { token: owner, data: bytes });
    assert.equal(up.status, 201, JSON.stringify(up.body));
    assert.deepEqual([up.body.size, up.body.owner, up.body.sha256], [bytes.length, 'asset-owner', createHash('sha256').update(bytes).digest('hex')]);
    const down = await call(ep.host, ep.asset, 'GET', `/v1/assets/${up.body.id}/content`);
    assert.equal(down.status, 200);
    assert.ok(down.bytes.equals(bytes), 'the same bytes');
    const listed = await call<{ items: Array<{ id: string }> }>(ep.host, ep.asset, 'GET', '/v1/assets?category=buildings');
    assert.deepEqual(listed.body.items.map((i) => i.id), [up.body.id]);
    assert.equal((await call(ep.host, ep.asset, 'POST', '/v1/assets?name=x&category=buildings', { data: bytes.subarray(0, 10) })).status, 401);
    assert.equal((await call(ep.host, ep.asset, 'DELETE', `/v1/assets/${up.body.id}`, { token: other })).status, 403);
    assert.equal((await call(ep.host, ep.asset, 'DELETE', `/v1/assets/${up.body.id}`, { token: owner })).status, 204);
    assert.equal((await call(ep.host, ep.asset, 'GET', `/v1/assets/${up.body.id}/content`)).status, 404);
  });

  it('Map: rooms are created, listed, joined and left; only the creator changes the map', async () => {
    const creator = await login('map-creator');
    const guest = await login('map-guest');
    const room = await call<{ id: string; version: number }>(ep.host, ep.map, 'POST', '/v1/rooms', { token: creator, json: { name: 'plaza', map: { width: 8, height: 8 } } });
    assert.equal(room.status, 201, JSON.stringify(room.body));
    const id = room.body.id;
    assert.deepEqual((await call(ep.host, ep.map, 'POST', `/v1/rooms/${id}/join`, { token: guest })).body, { room: id, players: ['map-guest'] });
    assert.deepEqual((await call(ep.host, ep.map, 'GET', `/v1/rooms/${id}/players`)).body, { players: ['map-guest'] });
    assert.equal((await call(ep.host, ep.map, 'PUT', `/v1/rooms/${id}`, { token: guest, json: { map: { width: 1 } } })).status, 403);
    const updated = await call<{ version: number; map: unknown }>(ep.host, ep.map, 'PUT', `/v1/rooms/${id}`, { token: creator, json: { map: { width: 16, height: 16 } } });
    assert.deepEqual([updated.status, updated.body.version, updated.body.map], [200, 2, { width: 16, height: 16 }]);
    assert.equal((await call(ep.host, ep.map, 'POST', `/v1/rooms/${id}/leave`, { token: guest })).status, 204);
    const listed = await call<{ items: Array<{ id: string; players: number }> }>(ep.host, ep.map, 'GET', '/v1/rooms');
    assert.deepEqual(listed.body.items.find((r) => r.id === id)?.players, 0);
  });

  let room = '';
  let a: GameClient;
  let b: GameClient;
  let tokenA = '';

  it('Game: two players on different replicas see each other\'s moves (TCP and UDP) and chat', async () => {
    tokenA = await login('player-a');
    const tokenB = await login('player-b');
    room = (await call<{ id: string }>(ep.host, ep.map, 'POST', '/v1/rooms', { token: tokenA, json: { name: 'arena', map: {} } })).body.id;
    a = new GameClient(ep);
    clients.push(a);
    await a.connect(tokenA);
    // least-connections sends the next session to the other replica; retry in case another test's session lingers.
    for (let i = 0; i < 5; i++) {
      b = new GameClient(ep);
      clients.push(b);
      if ((await b.connect(tokenB)) !== a.instance) break;
      b.close();
    }
    assert.notEqual(b!.instance, a.instance, 'the two players are on different replicas');
    await a.join(room);
    const joined = await b!.join(room);
    assert.deepEqual((joined.players as Array<{ name: string }>).map((p) => p.name), ['player-a', 'player-b']);
    const seen = b!.waitFor((m) => m.t === 'move' && m.player === 'player-a' && m.x === 3);
    a.send({ t: 'move', x: 3, y: 4, z: 0, ts: Date.now() });
    await seen;
    const chat = a.waitFor((m) => m.t === 'chat' && m.from === 'player-b');
    b!.send({ t: 'chat', text: 'hi from the other replica' });
    assert.equal((await chat).text, 'hi from the other replica');
    // UDP goes to whichever replica the gateway picks; the room hears it all the same.
    await eventually(async () => {
      a.moveUdp(7, 8, 9);
      return b!.waitFor((m) => m.t === 'move' && m.player === 'player-a' && m.x === 7, 1000).then(() => true, () => false);
    }, 15_000, 'a UDP move to reach the other replica\'s player');
  });

  it('Game: when a replica is killed mid-session its players reconnect and play on', async () => {
    const victim = (await instances()).find((i) => i.name === a.instance)!;
    const closed = new Promise<void>((resolve) => (a.onClose = resolve));
    process.kill(victim.pid, 'SIGKILL'); // an instance this test's daemon started
    await closed;
    await eventually(async () => {
      try {
        await a.connect(tokenA, 5000);
        return true;
      } catch {
        return false;
      }
    }, 60_000, 'player-a to reconnect');
    await a.join(room);
    const seen = b.waitFor((m) => m.t === 'move' && m.player === 'player-a' && m.x === 11);
    a.send({ t: 'move', x: 11, y: 0, z: 0 });
    await seen;
    await eventually(async () => (await instances()).filter((i) => i.service === 'game' && i.state === 'running').length === 2, 60_000, 'carte to bring game back to 2 replicas');
  });

  it('comes down as make demo-down takes it: daemon stopped, services deleted, nothing left behind', async () => {
    for (const c of clients) c.close();
    const env = e!;
    const running = (await instances()).filter((i) => i.state === 'running').map((i) => i.name).sort();
    assert.ok(running.length >= 6, running.join(' '));
    daemon.kill('SIGTERM'); // the daemon this test started
    await new Promise<void>((resolve) => (daemon.exitCode !== null ? resolve() : daemon.once('exit', () => resolve())));
    assert.deepEqual((await instances()).filter((i) => i.state === 'running').map((i) => i.name).sort(), running, 'stopping the daemon leaves the instances running');
    const down = await env.carte(['delete', '--force', 'asset', 'game', 'login', 'map', 'redis']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /^service\/asset deleted\nservice\/game deleted\nservice\/login deleted\nservice\/map deleted\nservice\/redis deleted\n/);
    assert.deepEqual(await instances(), []);
    const bridge = env.env.CARTE_BRIDGE!;
    const netns = fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns').filter((n) => n.startsWith(`carte-${homeIdOf(env.home)}-`)) : [];
    assert.deepEqual(netns, [], 'no network namespaces left');
    assert.equal(execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }).includes(`lo:${bridge}`), false, 'no service addresses on lo');
    assert.equal(execFileSync('ip', ['-n', gatewayNames(bridge).netns, '-o', '-4', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }), '', 'no service addresses left in the gateway\'s namespace');
    const cgroups = `/sys/fs/cgroup/memory${env.env.CARTE_CGROUP_PARENT}/${homeIdOf(env.home)}`;
    assert.deepEqual(fs.existsSync(cgroups) ? fs.readdirSync(cgroups, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [], [], 'no instance cgroups left');
    assert.equal(fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(env.home), false, 'no mounts left');
    // The bridge stays, and with it its firewall chains, but no rule names an instance, a service or a published port.
    assert.deepEqual(firewallRules({ bridge }).filter((l) => / -i veth| -[sd] \d/.test(l)), [], 'no firewall rules of instances or services left');
    assert.ok(fs.existsSync(path.join(env.home, 'volumes', 'assets')) && fs.existsSync(path.join(env.home, 'volumes', 'redis-data')), 'the volumes are kept');
  });
});
