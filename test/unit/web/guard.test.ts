import assert from 'node:assert/strict';
import { hostAllowed, isLoopbackHost, parseHttpAddress, httpSetting } from '../../../src/web/address.js';
import { actionOf, bearerToken, csrfOk, HttpError, isPublic, neededRole, statusOf } from '../../../src/web/guard.js';
import { FailureLimiter } from '../../../src/web/limiter.js';
import { Sessions, sessionCookieOptions } from '../../../src/web/sessions.js';
import { cacheControlFor } from '../../../src/web/static.js';
import { CarteError, NotFoundError } from '../../../src/errors.js';

const alice = { kind: 'user' as const, name: 'alice', role: 'operator' as const };

describe('web: roles, CSRF and tokens', () => {
  it('viewers read, operators act, admins read the audit', () => {
    assert.equal(neededRole('GET', '/api/services'), 'viewer');
    assert.equal(neededRole('GET', '/api/events/stream'), 'viewer');
    assert.equal(neededRole('GET', '/metrics'), 'viewer');
    assert.equal(neededRole('POST', '/api/services/web/restart'), 'operator');
    assert.equal(neededRole('POST', '/api/sync'), 'operator');
    assert.equal(neededRole('GET', '/api/audit'), 'admin');
    assert.equal(neededRole('GET', '/api/audit?limit=5'), 'admin');
  });

  it('only session, login and logout are open', () => {
    assert.equal(isPublic('GET', '/api/session'), true);
    assert.equal(isPublic('POST', '/api/login'), true);
    assert.equal(isPublic('POST', '/api/logout'), true);
    assert.equal(isPublic('GET', '/api/login'), false);
    assert.equal(isPublic('POST', '/api/session'), false);
    assert.equal(isPublic('GET', '/api/services'), false);
  });

  it('the CSRF header must be exactly the session token', () => {
    assert.equal(csrfOk('abc123', 'abc123'), true);
    assert.equal(csrfOk('abc123', 'abc124'), false);
    assert.equal(csrfOk('abc123', 'abc12'), false);
    assert.equal(csrfOk('abc123', undefined), false);
    assert.equal(csrfOk('abc123', ''), false);
    assert.equal(csrfOk('abc123', ['abc123', 'abc123']), false);
  });

  it('reads a bearer token, nothing else', () => {
    assert.equal(bearerToken('Bearer carte_xyz'), 'carte_xyz');
    assert.equal(bearerToken('bearer carte_xyz '), 'carte_xyz');
    assert.equal(bearerToken('Basic dXNlcjpwYXNz'), null);
    assert.equal(bearerToken('Bearer a b'), null);
    assert.equal(bearerToken(undefined), null);
  });

  it('names the action and target of action routes', () => {
    assert.deepEqual(actionOf('/api/services/web/scale'), { action: 'scale', target: 'service/web', service: 'web' });
    assert.deepEqual(actionOf('/api/services/web/restart?x=1'), { action: 'restart', target: 'service/web', service: 'web' });
    assert.deepEqual(actionOf('/api/sync'), { action: 'sync', target: 'sources' });
    assert.equal(actionOf('/api/login'), null);
    assert.equal(actionOf('/api/services/web/explode'), null);
  });

  it('maps errors to statuses', () => {
    assert.equal(statusOf(new NotFoundError('x')), 404);
    assert.equal(statusOf(new CarteError('conflict', 'x')), 409);
    assert.equal(statusOf(new CarteError('usage', 'x')), 400);
    assert.equal(statusOf(new HttpError(429, 'x')), 429);
    assert.equal(statusOf(Object.assign(new Error('bad json'), { statusCode: 400 })), 400);
    assert.equal(statusOf(new Error('boom')), 500);
  });
});

describe('web: the Host header (DNS rebinding)', () => {
  it('a loopback listener answers only loopback hosts (any port: SSH tunnels); others take any Host', () => {
    const lo = { host: '127.0.0.1', port: 7070 };
    for (const h of ['127.0.0.1:7070', 'localhost:7070', 'LOCALHOST:7070', '127.0.0.2:7070', '[::1]:7070', '127.0.0.1', '127.0.0.1:8080', 'localhost']) assert.equal(hostAllowed(h, lo), true, h);
    for (const h of ['evil.example:7070', 'evil.example', '127.0.0.1:99999', 'localhost.evil.example:7070', '10.0.0.1:7070', '', undefined, '127.0.0.1:7070:1', 'a@127.0.0.1:7070']) {
      assert.equal(hostAllowed(h, lo), false, String(h));
    }
    assert.equal(hostAllowed('localhost', { host: '::1', port: 80 }), true);
    assert.equal(hostAllowed('[::1]:8080', { host: '::1', port: 8080 }), true);
    assert.equal(hostAllowed('dash.example.org', { host: '0.0.0.0', port: 8080 }), true);
    assert.equal(hostAllowed('dash.example.org', { host: '10.0.0.2', port: 8080 }), true);
    assert.deepEqual(['127.9.9.9', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1', '0.0.0.0', '::', '128.0.0.1'].map(isLoopbackHost), [true, true, true, true, true, false, false, false]);
  });
});

describe('web: sessions', () => {
  it('a session lasts its lifetime, then is gone', () => {
    const s = new Sessions(1000);
    const a = s.create(alice, 'stamp1', 10_000);
    assert.equal(a.expiresAt, 11_000);
    assert.match(a.id, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.csrf, a.id);
    assert.equal(s.find(a.id, 10_999)?.principal.name, 'alice');
    assert.equal(s.find(a.id, 11_000), null);
    assert.equal(s.size, 0);
    assert.equal(s.find(undefined, 0), null);
    assert.equal(s.find('nope', 0), null);
  });

  it('keeps at most its limit, dropping the oldest; sweep forgets expired ones', () => {
    const s = new Sessions(1000, 2);
    const a = s.create(alice, 'x', 0);
    const b = s.create(alice, 'x', 500);
    const c = s.create(alice, 'x', 600);
    assert.equal(s.find(a.id, 700), null);
    assert.ok(s.find(b.id, 700));
    s.sweep(1550);
    assert.equal(s.size, 1);
    assert.ok(s.find(c.id, 1550));
    s.drop(c.id);
    assert.equal(s.size, 0);
  });

  it('the cookie is HttpOnly, SameSite=Strict, for the whole site, with its expiry', () => {
    assert.deepEqual(sessionCookieOptions(86_400_000, false), { httpOnly: true, sameSite: 'strict', path: '/', expires: new Date(86_400_000), secure: false });
  });
});

describe('web: login failures per name', () => {
  it('refuses after the limit within the window, until it ends; a success clears it', () => {
    const l = new FailureLimiter(3, 60_000);
    for (let i = 0; i < 3; i++) {
      assert.equal(l.retryAfter('bob', 1000), 0);
      l.fail('bob', 1000);
    }
    assert.equal(l.retryAfter('bob', 1000), 60);
    assert.equal(l.retryAfter('bob', 30_500), 31);
    assert.equal(l.retryAfter('carol', 30_500), 0);
    assert.equal(l.retryAfter('bob', 61_000), 0);
    l.fail('bob', 61_000);
    assert.equal(l.retryAfter('bob', 61_000), 0);
    l.clear('bob');
    assert.equal(l.retryAfter('bob', 61_000), 0);
  });
});

describe('web: --http', () => {
  it('parses ADDR:PORT and off', () => {
    assert.deepEqual(parseHttpAddress('127.0.0.1:7070'), { host: '127.0.0.1', port: 7070 });
    assert.deepEqual(parseHttpAddress('[::1]:8080'), { host: '::1', port: 8080 });
    assert.deepEqual(parseHttpAddress('localhost:0'), { host: 'localhost', port: 0 });
    assert.equal(parseHttpAddress('off'), null);
  });

  it('refuses anything else, naming the flag and the form', () => {
    for (const bad of ['7070', '127.0.0.1', '127.0.0.1:70000', ':7070', 'a b:1', '']) {
      assert.throws(() => parseHttpAddress(bad), { message: `daemon: --http takes ADDR:PORT (e.g. 127.0.0.1:7070, 0.0.0.0:8080, [::1]:7070) or off, got "${bad}"` });
    }
    assert.throws(() => parseHttpAddress('x', 'CARTE_HTTP'), /^UsageError: daemon: CARTE_HTTP takes/);
  });

  it('the flag wins over CARTE_HTTP, which wins over the default', () => {
    assert.deepEqual(httpSetting('off', { CARTE_HTTP: '0.0.0.0:1' }), { text: 'off', from: '--http' });
    assert.deepEqual(httpSetting(undefined, { CARTE_HTTP: '0.0.0.0:1' }), { text: '0.0.0.0:1', from: 'CARTE_HTTP' });
    assert.deepEqual(httpSetting(undefined, {}), { text: '127.0.0.1:7070', from: '--http' });
  });
});

describe('web: static files', () => {
  it('hashed names are immutable, others revalidated', () => {
    assert.equal(cacheControlFor('app.3f9a1c2b.js'), 'public, max-age=31536000, immutable');
    assert.equal(cacheControlFor('app-3f9a1c2bd0.css'), 'public, max-age=31536000, immutable');
    assert.equal(cacheControlFor('app.js'), 'no-cache');
    assert.equal(cacheControlFor('index.html'), 'no-cache');
  });
});
