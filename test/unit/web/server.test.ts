// The server's decisions through fastify's inject: a real store in a temporary
// home; users, tokens and the audit are small in-memory stand-ins of the
// AuthStore and AuditLog contracts (the e2e test uses the real ones).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { AuditEntry, AuditLog } from '../../../src/audit/types.js';
import type { Principal, Role } from '../../../src/auth/types.js';
import { Store } from '../../../src/store/store.js';
import { cliLogger } from '../../../src/log.js';
import { DEFAULT_POLICY } from '../../../src/policy/policy.js';
import type { WebAuth, WebDeps } from '../../../src/web/deps.js';
import { NO_USERS, WebServer } from '../../../src/web/server.js';
import { commitApply, planApply } from '../../../src/api/apply.js';
import { request, serviceDoc } from '../../helpers/state.js';
import { tempDir } from '../../helpers/paths.js';

class FakeAuth implements WebAuth {
  users = new Map<string, { password: string; role: Role; stamp: number }>();
  tokens = new Map<string, Principal>();
  async hasUsers() { return this.users.size > 0; }
  async listUsers() { return [...this.users].map(([name, u]) => ({ name, role: u.role, createdAt: '' })); }
  async verifyPassword(name: string, password: string) {
    const u = this.users.get(name);
    return u && u.password === password ? { kind: 'user' as const, name, role: u.role } : null;
  }
  async verifyToken(token: string) { return this.tokens.get(token) ?? null; }
  async userStamp(name: string) { const u = this.users.get(name); return u ? `${u.role}:${u.stamp}` : null; }
}

class FakeAudit implements AuditLog {
  entries: AuditEntry[] = [];
  async record(e: AuditEntry) { this.entries.push(e); }
  async list() { return this.entries; }
}

describe('web: the server', () => {
  let home: string;
  let auth: FakeAuth;
  let audit: FakeAudit;
  let server: WebServer;
  let store: Store;
  let now = 0;

  beforeEach(async () => {
    now = Date.parse('2026-12-01T10:00:00Z');
    home = tempDir('carte-web-');
    store = Store.open(home);
    await store.update((data) => {
      const req = request([serviceDoc('web', { replicas: 2 })]);
      commitApply(data, req, planApply(data, req), new Date(now));
    });
    auth = new FakeAuth();
    audit = new FakeAudit();
    const staticDir = path.join(home, 'web');
    fs.mkdirSync(staticDir);
    fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>carte</title>');
    const deps: WebDeps = {
      log: cliLogger('silent'), store, auth, audit,
      alerts: { active: () => [], recent: () => [], onChange: () => () => {} },
      metrics: null,
      driver: { list: async () => [], logs: () => { throw new Error('no logs'); } },
      sync: async () => ({ sources: [] }),
      trigger: () => {},
      admission: { policy: DEFAULT_POLICY, home, realpath: (p: string) => p },
      prometheus: async () => ({ contentType: 'text/plain; version=0.0.4', body: 'carte_up 1\n' }),
      staticDir,
      now: () => now,
    };
    server = new WebServer(deps, { sessionTtlMs: 3600_000 });
  });

  afterEach(async () => {
    await server.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const login = async (name: string, password: string) => {
    const r = await server.inject({ method: 'POST', url: '/api/login', payload: { name, password } });
    const cookie = String(r.headers['set-cookie'] ?? '').split(';')[0]!;
    return { r, cookie, csrf: (r.json() as { csrf: string }).csrf };
  };

  it('with no users: says so, and every other route answers 401 with the command to run', async () => {
    const s = await server.inject({ url: '/api/session' });
    assert.equal(s.statusCode, 200);
    assert.deepEqual(s.json(), { usersExist: false, user: null, csrf: null });
    for (const url of ['/api/services', '/api/alerts', '/api/audit', '/metrics']) {
      const r = await server.inject({ url });
      assert.equal(r.statusCode, 401, url);
      assert.deepEqual(r.json(), { error: NO_USERS });
    }
  });

  it('signs in with a HttpOnly SameSite=Strict cookie, reads services, signs out', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    const { r, cookie, csrf } = await login('vic', 'pw-vic');
    assert.equal(r.statusCode, 200);
    const set = String(r.headers['set-cookie']);
    assert.match(set, /^carte_session=[A-Za-z0-9_-]{43}; Path=\/; Expires=Tue, 01 Dec 2026 11:00:00 GMT; HttpOnly; SameSite=Strict$/);
    assert.deepEqual(r.json(), { usersExist: true, user: { name: 'vic', role: 'viewer' }, csrf });
    const s = await server.inject({ url: '/api/session', headers: { cookie } });
    assert.deepEqual(s.json(), { usersExist: true, user: { name: 'vic', role: 'viewer' }, csrf });
    const list = await server.inject({ url: '/api/services', headers: { cookie } });
    assert.equal(list.statusCode, 200);
    assert.deepEqual((list.json() as Array<{ name: string; desired: number; revision: number; autoscaled: boolean; traffic: null }>).map((x) => [x.name, x.desired, x.revision, x.autoscaled, x.traffic]), [['web', 2, 1, false, null]]);
    // Signing out needs the CSRF header like every POST: another site cannot sign you out.
    const forged = await server.inject({ method: 'POST', url: '/api/logout', headers: { cookie } });
    assert.equal(forged.statusCode, 403);
    assert.equal((await server.inject({ url: '/api/services', headers: { cookie } })).statusCode, 200);
    const out = await server.inject({ method: 'POST', url: '/api/logout', headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(out.statusCode, 200);
    assert.equal((await server.inject({ url: '/api/services', headers: { cookie } })).statusCode, 401);
    assert.deepEqual(audit.entries.map((e) => `${e.via} ${e.who.name} ${e.action} ${e.target} ${e.result}`), ['dashboard vic login user/vic ok']);
  });

  it('a wrong password is 401 and audited as failed, without the password', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    const { r } = await login('vic', 'guess');
    assert.equal(r.statusCode, 401);
    assert.deepEqual(r.json(), { error: 'wrong user name or password' });
    assert.equal(r.headers['set-cookie'], undefined);
    assert.deepEqual(audit.entries.map((e) => [e.action, e.result, e.detail]), [['login', 'failed', 'wrong user name or password']]);
    assert.ok(!JSON.stringify(audit.entries).includes('guess'));
  });

  it('the sixth wrong password for a name within 5 min is 429 with Retry-After, even with the right one', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    for (let i = 0; i < 5; i++) assert.equal((await login('vic', `wrong${i}`)).r.statusCode, 401);
    const { r } = await login('vic', 'pw-vic');
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '300');
    assert.deepEqual(r.json(), { error: 'too many wrong passwords for "vic": try again in 300 s' });
    now += 300_000;
    assert.equal((await login('vic', 'pw-vic')).r.statusCode, 200);
  });

  it('more than 30 sign-ins a minute from one address are 429 with Retry-After, whatever the names', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    for (let i = 0; i < 30; i++) assert.equal((await login(`name${i}`, 'x')).r.statusCode, 401);
    const { r } = await login('vic', 'pw-vic');
    assert.equal(r.statusCode, 429);
    assert.match(String(r.headers['retry-after']), /^[1-6]?\d$/);
    assert.match((r.json() as { error: string }).error, /^too many sign-ins from this address: try again in \d+ s$/);
    // Not audited: a flood would fill the audit (each of the 30 before it is).
    assert.equal(audit.entries.length, 30);
    assert.ok(audit.entries.every((e) => e.result === 'failed'));
    // Other routes are not limited by it.
    assert.equal((await server.inject({ url: '/api/session' })).statusCode, 200);
  });

  it('a POST with a cookie needs the CSRF header: refused 403, audited, nothing changed', async () => {
    auth.users.set('ops', { password: 'pw-ops', role: 'operator', stamp: 1 });
    const { cookie, csrf } = await login('ops', 'pw-ops');
    for (const headers of [{ cookie }, { cookie, 'x-csrf-token': 'forged' }]) {
      const r = await server.inject({ method: 'POST', url: '/api/services/web/restart', headers });
      assert.equal(r.statusCode, 403);
      assert.deepEqual(r.json(), { error: 'the x-csrf-token header is missing or wrong: reload the page (scripts: use a bearer token)' });
    }
    assert.equal((await store.read()).services.web!.revision.revision, 1);
    const ok = await server.inject({ method: 'POST', url: '/api/services/web/restart', headers: { cookie, 'x-csrf-token': csrf } });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { ok: true, message: 'service/web restarting (revision 2)' });
    assert.equal((await store.read()).services.web!.revision.revision, 2);
    assert.deepEqual(audit.entries.slice(1).map((e) => `${e.who.name} ${e.via} ${e.action} ${e.target} ${e.result} ${e.detail}`), [
      'ops dashboard restart service/web refused operator: no valid x-csrf-token header',
      'ops dashboard restart service/web refused operator: no valid x-csrf-token header',
      'ops dashboard restart service/web ok service/web restarting (revision 2)',
    ]);
  });

  it('a viewer is refused actions (403, audited, nothing changed) and admins alone read the audit', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    auth.users.set('ops', { password: 'pw-ops', role: 'operator', stamp: 1 });
    const v = await login('vic', 'pw-vic');
    const r = await server.inject({ method: 'POST', url: '/api/services/web/scale', headers: { cookie: v.cookie, 'x-csrf-token': v.csrf }, payload: { replicas: 5 } });
    assert.equal(r.statusCode, 403);
    assert.deepEqual(r.json(), { error: 'vic has the viewer role: this needs operator' });
    assert.equal((await store.read()).services.web!.revision.spec.replicas, 2);
    assert.deepEqual(audit.entries.at(-1), { at: '2026-12-01T10:00:00.000Z', who: { kind: 'user', name: 'vic' }, via: 'dashboard', action: 'scale', target: 'service/web', result: 'refused', detail: 'viewer: needs the operator role' });
    const o = await login('ops', 'pw-ops');
    assert.equal((await server.inject({ url: '/api/audit', headers: { cookie: o.cookie } })).statusCode, 403);
    auth.users.set('adm', { password: 'pw-adm', role: 'admin', stamp: 1 });
    const a = await login('adm', 'pw-adm');
    const list = await server.inject({ url: '/api/audit', headers: { cookie: a.cookie } });
    assert.equal(list.statusCode, 200);
    assert.equal((list.json() as { entries: AuditEntry[] }).entries.length, audit.entries.length);
  });

  it('a removed user or a new password ends the session at its next request', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    const { cookie } = await login('vic', 'pw-vic');
    assert.equal((await server.inject({ url: '/api/services', headers: { cookie } })).statusCode, 200);
    auth.users.get('vic')!.stamp = 2;
    const r = await server.inject({ url: '/api/services', headers: { cookie } });
    assert.equal(r.statusCode, 401);
    assert.deepEqual(r.json(), { error: 'your session ended (the user was removed, or its password or role changed): sign in again' });
    assert.match(String(r.headers['set-cookie']), /^carte_session=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Strict$/);
    const again = await login('vic', 'pw-vic');
    auth.users.delete('vic');
    assert.equal((await server.inject({ url: '/api/services', headers: { cookie: again.cookie } })).statusCode, 401);
  });

  it('a session ends at its expiry', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    const { cookie } = await login('vic', 'pw-vic');
    now += 3600_000;
    assert.equal((await server.inject({ url: '/api/services', headers: { cookie } })).statusCode, 401);
  });

  it('a bearer token acts without CSRF and is audited via api; a bad token is 401', async () => {
    auth.users.set('adm', { password: 'x', role: 'admin', stamp: 1 });
    auth.tokens.set('carte_ci', { kind: 'token', name: 'ci', role: 'operator' });
    const r = await server.inject({ method: 'POST', url: '/api/services/web/scale', headers: { authorization: 'Bearer carte_ci' }, payload: { replicas: 3 } });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { ok: true, message: 'service/web scaled 2 → 3' });
    assert.deepEqual(audit.entries.at(-1), { at: '2026-12-01T10:00:00.000Z', who: { kind: 'token', name: 'ci' }, via: 'api', action: 'scale', target: 'service/web', result: 'ok', detail: 'service/web scaled 2 → 3' });
    const bad = await server.inject({ url: '/api/services', headers: { authorization: 'Bearer carte_nope' } });
    assert.equal(bad.statusCode, 401);
    const metrics = await server.inject({ url: '/metrics', headers: { authorization: 'Bearer carte_ci' } });
    assert.equal(metrics.statusCode, 200);
    assert.equal(metrics.body, 'carte_up 1\n');
  });

  it('failed actions answer with the status of the error and are audited as failed', async () => {
    auth.users.set('adm', { password: 'x', role: 'admin', stamp: 1 });
    auth.tokens.set('carte_ci', { kind: 'token', name: 'ci', role: 'operator' });
    const headers = { authorization: 'Bearer carte_ci' };
    const missing = await server.inject({ method: 'POST', url: '/api/services/nope/restart', headers });
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { error: 'service "nope" not found' });
    const bad = await server.inject({ method: 'POST', url: '/api/services/web/scale', headers, payload: { replicas: 'lots' } });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(bad.json(), { error: 'replicas takes a number from 0 to 1000, got "lots"' });
    const none = await server.inject({ method: 'POST', url: '/api/services/web/rollback', headers });
    assert.equal(none.statusCode, 409);
    assert.deepEqual(none.json(), { error: 'service "web" has no earlier revision to roll back to' });
    assert.deepEqual(audit.entries.map((e) => `${e.action} ${e.target} ${e.result}`), ['restart service/nope failed', 'scale service/web failed', 'rollback service/web failed']);
  });

  it('stop, start, scale, rollback and sync answer as the CLI says it, and the events name who asked', async () => {
    auth.tokens.set('carte_ci', { kind: 'token', name: 'ci', role: 'operator' });
    const post = async (url: string, payload?: unknown) => {
      const r = await server.inject({ method: 'POST', url, headers: { authorization: 'Bearer carte_ci' }, ...(payload === undefined ? {} : { payload: payload as object }) });
      assert.equal(r.statusCode, 200, r.body);
      return (r.json() as { message: string }).message;
    };
    assert.equal(await post('/api/services/web/stop'), 'service/web stopped');
    assert.equal(await post('/api/services/web/stop'), 'service/web already stopped');
    assert.equal(await post('/api/services/web/start'), 'service/web started');
    assert.equal(await post('/api/services/web/scale', { replicas: 3 }), 'service/web scaled 2 → 3');
    assert.equal(await post('/api/services/web/scale', { replicas: 3 }), 'service/web already has 3 replicas');
    assert.equal(await post('/api/services/web/rollback', {}), 'service/web rolled back to revision 1 (now revision 3)');
    assert.equal(await post('/api/sync'), 'no sources to sync: the daemon watches no folder or Git repository');
    const events = (await store.read()).events.map((e) => `${e.reason}: ${e.message}`);
    assert.deepEqual(events.slice(1, 3), ['Stopped: stopped by api (ci): held at zero instances', 'Started: started by api (ci)']);
    assert.equal((await store.read()).services.web!.revision.spec.replicas, 2);
    assert.deepEqual(audit.entries.map((e) => `${e.action} ${e.result}`), ['stop ok', 'stop ok', 'start ok', 'scale ok', 'scale ok', 'rollback ok', 'sync ok']);
  });

  it('an autoscaled service is not scaled by hand: 409', async () => {
    await store.update((data) => {
      const req = request([serviceDoc('auto', { resources: { cpu: '500m' }, autoscale: { min: 1, max: 3, cpu: '50%' } })]);
      commitApply(data, req, planApply(data, req), new Date(now));
    });
    auth.tokens.set('carte_ci', { kind: 'token', name: 'ci', role: 'operator' });
    const r = await server.inject({ method: 'POST', url: '/api/services/auto/scale', headers: { authorization: 'Bearer carte_ci' }, payload: { replicas: 2 } });
    assert.equal(r.statusCode, 409);
    assert.match((r.json() as { error: string }).error, /^service "auto" is autoscaled \(1–3 replicas\)/);
  });

  it('serves the page with a strict CSP and an ETag; unknown API routes are JSON 404s', async () => {
    const r = await server.inject({ url: '/' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['content-security-policy'], "default-src 'self';script-src 'self';style-src 'self';img-src 'self' data:;font-src 'self';connect-src 'self';object-src 'none';base-uri 'none';form-action 'self';frame-ancestors 'none'");
    assert.equal(r.headers['strict-transport-security'], undefined);
    const again = await server.inject({ url: '/', headers: { 'if-none-match': String(r.headers.etag) } });
    assert.equal(again.statusCode, 304);
    assert.equal((await server.inject({ url: '/services/web' })).body, r.body);
    assert.equal((await server.inject({ url: '/%2e%2e%2fstate.json' })).statusCode, 404);
    assert.equal((await server.inject({ url: '/.hidden.js' })).statusCode, 404);
    const api = await server.inject({ url: '/api/nope' });
    assert.equal(api.statusCode, 401); // not signed in comes first
    auth.tokens.set('carte_v', { kind: 'token', name: 'v', role: 'viewer' });
    for (const url of ['/api/nope', '/api/services/web/nope', '/api/instances/web-1']) {
      const r404 = await server.inject({ url, headers: { authorization: 'Bearer carte_v' } });
      assert.equal(r404.statusCode, 404, url);
      assert.equal(r404.headers['content-type'], 'application/json; charset=utf-8');
      assert.deepEqual(r404.json(), { error: `no route GET ${url}` });
    }
  });

  it('every loopback address shares one sign-in bucket: 127.0.0.2, ::1 and ::ffff:127.x do not get a new one', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    let n = 0;
    const from = (remoteAddress: string) => server.inject({ method: 'POST', url: '/api/login', remoteAddress, payload: { name: `name${n++}`, password: 'x' } });
    for (let i = 0; i < 30; i++) assert.equal((await from(`127.0.${i}.1`)).statusCode, 401);
    for (const ip of ['127.0.0.1', '127.0.0.2', '127.1.2.3', '::1', '::ffff:127.0.0.9']) {
      const r = await from(ip);
      assert.equal(r.statusCode, 429, ip);
      assert.match((r.json() as { error: string }).error, /^too many sign-ins from this address: try again in \d+ s$/);
    }
    assert.equal((await from('10.0.0.5')).statusCode, 401, 'another address has its own bucket');
  });

  it('at most 2 password checks run and 16 wait: the next sign-in is 429 at once, and the API does not wait', async () => {
    auth.tokens.set('carte_ci', { kind: 'token', name: 'ci', role: 'viewer' });
    const releases: Array<() => void> = [];
    auth.verifyPassword = () => new Promise((resolve) => releases.push(() => resolve(null)));
    const done: Array<{ statusCode: number; json(): unknown; headers: Record<string, unknown> }> = [];
    const all = Array.from({ length: 20 }, (_, i) => server.inject({ method: 'POST', url: '/api/login', remoteAddress: `10.0.0.${i + 1}`, payload: { name: `u${i}`, password: 'x' } }).then((r) => (done.push(r), r)));
    for (let i = 0; i < 500 && done.length < 2; i++) await new Promise((r) => setTimeout(r, 2));
    assert.deepEqual(done.map((r) => [r.statusCode, r.json(), r.headers['retry-after']]), [
      [429, { error: 'too many sign-ins at once: try again in a moment' }, '1'],
      [429, { error: 'too many sign-ins at once: try again in a moment' }, '1'],
    ]);
    assert.equal(releases.length, 2, 'two checks run');
    assert.equal((await server.inject({ url: '/api/services', headers: { authorization: 'Bearer carte_ci' } })).statusCode, 200);
    for (let i = 0; i < 500 && done.length < 20; i++) {
      releases.shift()?.();
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.deepEqual((await Promise.all(all)).map((r) => r.statusCode).sort(), [...Array(18).fill(401), 429, 429]);
  });

  it('sign-in names: one that is no user name is 400 before any check, audited as (invalid name); an unknown user as (unknown user)', async () => {
    auth.users.set('vic', { password: 'pw-vic', role: 'viewer', stamp: 1 });
    let checks = 0;
    const verify = auth.verifyPassword.bind(auth);
    auth.verifyPassword = (n, p) => (checks++, verify(n, p));
    for (const name of ['vic\n2026-12-01T10:00:00Z user/root cli delete service/web ok', '\u001b[31mred', 'Hunter2!', 'x'.repeat(33)]) {
      const { r } = await login(name, 'whatever');
      assert.equal(r.statusCode, 400, name);
      assert.deepEqual(r.json(), { error: 'that is not a valid user name: user names are 1 to 32 characters, lowercase letters, digits, ".", "_" or "-", starting with a letter' });
    }
    assert.equal(checks, 0);
    const unknown = await login('correcthorsebattery', 'whatever');
    assert.equal(unknown.r.statusCode, 401);
    assert.equal((await login('vic', 'nope')).r.statusCode, 401);
    assert.deepEqual(audit.entries.map((e) => `${e.who.name} ${e.target} ${e.result} ${e.detail}`), [
      ...Array(4).fill('(invalid name) user/(invalid name) failed not a valid user name'),
      '(unknown user) user/(unknown user) failed wrong user name or password',
      'vic user/vic failed wrong user name or password',
    ]);
    assert.ok(!JSON.stringify(audit.entries).includes('correcthorse'));
  });
});

