// Who may reach what (allowFrom, the policy's defaults and host ports),
// decided from desired state; and the gateway's check on service addresses.
import assert from 'node:assert/strict';
import { allowedFrom, DEFAULT_ACCESS_RULES, describeAllowed, networkAccess, type AccessRules, type AccessRulesOf } from '../../../src/model/access.js';
import type { Membership } from '../../../src/model/instances.js';
import { Upstreams } from '../../../src/gateway/upstreams.js';
import { desiredServices } from '../../../src/reconciler/reconciler.js';
import { serviceDoc, stateWith } from '../../helpers/state.js';

const rules = (over: Partial<AccessRules> = {}, bySource: Record<string, Partial<AccessRules>> = {}): AccessRulesOf =>
  (source) => ({ ...DEFAULT_ACCESS_RULES, ...over, ...(source === null ? {} : bySource[source]) });

/** login and game from cli, redis (allowFrom as given) from cli, a class's web from Git. */
function services(redisAllowFrom?: string[]) {
  let data = stateWith([serviceDoc('login'), serviceDoc('game'), serviceDoc('redis', redisAllowFrom ? { allowFrom: redisAllowFrom } : {})]);
  data = stateWith([serviceDoc('web')], 'git:class', data);
  return desiredServices(data);
}

describe('access: allowFrom', () => {
  it('a manifest\'s list, with the service itself; "*" is everyone', () => {
    const all = services(['login']);
    const redis = all.find((s) => s.name === 'redis')!;
    const a = allowedFrom(redis, all, rules());
    assert.deepEqual(a, { kind: 'services', services: ['login', 'redis'], why: 'manifest' });
    assert.equal(describeAllowed(redis, a), 'login');
    assert.equal(describeAllowed(redis, allowedFrom({ ...redis, spec: { ...redis.spec, allowFrom: [] } }, all, rules())), 'no other service (allowFrom: [])');
    const star = allowedFrom({ ...redis, spec: { ...redis.spec, allowFrom: ['*'] } }, all, rules());
    assert.deepEqual(star, { kind: 'all', why: 'manifest' });
    assert.equal(describeAllowed(redis, star), 'every service (allowFrom: ["*"])');
  });

  it('without one, the policy\'s default for the service\'s source: same-source (built in), all, none', () => {
    const all = services();
    const redis = all.find((s) => s.name === 'redis')!;
    const web = all.find((s) => s.name === 'web')!;
    assert.deepEqual(allowedFrom(redis, all, rules()), { kind: 'services', services: ['game', 'login', 'redis'], why: 'same-source' });
    assert.equal(describeAllowed(redis, allowedFrom(redis, all, rules())), 'every service of source cli');
    assert.deepEqual(allowedFrom(web, all, rules()), { kind: 'services', services: ['web'], why: 'same-source' });
    assert.deepEqual(allowedFrom(web, all, rules({}, { 'git:class': { allowFromDefault: 'all' } })), { kind: 'all', why: 'policy' });
    assert.equal(describeAllowed(web, { kind: 'all', why: 'policy' }), 'every service (the server policy\'s allowFromDefault)');
    assert.deepEqual(allowedFrom(redis, all, rules({ allowFromDefault: 'none' })), { kind: 'services', services: ['redis'], why: 'none' });
    assert.equal(describeAllowed(redis, allowedFrom(redis, all, rules({ allowFromDefault: 'none' }))), 'no other service (the server policy\'s allowFromDefault)');
  });
});

describe('access: for the firewall', () => {
  const m = (redisAllowFrom?: string[]): Pick<Membership, 'services' | 'addresses'> => ({ services: services(redisAllowFrom), addresses: { redis: '10.77.240.3', login: '10.77.240.1' } });

  it('publishes ports to every instance (a wildcard address is any), restricts each service not every service may reach', () => {
    const a = networkAccess(m(['login']), [{ port: 8080, protocol: 'tcp', address: '0.0.0.0' }, { port: 7001, protocol: 'udp', address: '127.0.0.1' }], rules());
    assert.deepEqual(a.hostPorts, [
      { port: 8080, protocol: 'tcp', address: null, from: null },
      { port: 7001, protocol: 'udp', address: '127.0.0.1', from: null },
    ]);
    assert.deepEqual(a.restricted, [
      { service: 'login', address: '10.77.240.1', from: ['game', 'login', 'redis'] },
      { service: 'game', address: null, from: ['game', 'login', 'redis'] },
      { service: 'redis', address: '10.77.240.3', from: ['login', 'redis'] },
      { service: 'web', address: null, from: ['web'] },
    ]);
    assert.deepEqual(networkAccess(m(), [], rules({ allowFromDefault: 'all' })).restricted, []);
  });

  it('the policy\'s host ports: to every instance when every section lists them, else to the services whose sections do', () => {
    assert.deepEqual(networkAccess(m(), [], rules({ hostPorts: [{ port: 53, protocol: 'udp' }] })).hostPorts, [{ port: 53, protocol: 'udp', address: null, from: null }]);
    assert.deepEqual(networkAccess(m(), [], rules({ hostPorts: [{ port: 53, protocol: 'udp' }] }, { 'git:class': { hostPorts: [] } })).hostPorts, [
      { port: 53, protocol: 'udp', address: null, from: ['game', 'login', 'redis'] },
    ]);
    assert.deepEqual(networkAccess(m(), [], rules({}, { 'git:class': { hostPorts: [{ port: 5432, protocol: 'tcp' }] } })).hostPorts, [
      { port: 5432, protocol: 'tcp', address: null, from: ['web'] },
    ]);
  });
});

describe('access: the gateway\'s check on service addresses', () => {
  const membership = (instances: Membership['instances']): Membership => ({ services: services(['login']), instances, addresses: {} });
  const restricted = [{ service: 'redis', from: ['login'] }];

  it('admits the allowed services\' instances and the service\'s own, refuses others; a service not restricted admits all', async () => {
    const u = new Upstreams({ wake: () => undefined });
    u.update(membership([
      { name: 'login-1', service: 'login', ip: '10.77.0.2', ready: true },
      { name: 'game-1', service: 'game', ip: '10.77.0.3', ready: false },
      { name: 'redis-1', service: 'redis', ip: '10.77.0.4', ready: true },
    ]), restricted);
    const deadline = Date.now() + 1000;
    assert.equal(await u.admits('redis', '10.77.0.2', deadline), true);
    assert.equal(await u.admits('redis', '10.77.0.4', deadline), true);
    assert.equal(await u.admits('redis', '10.77.0.3', deadline), false);
    assert.equal(await u.admits('game', '10.77.0.3', deadline), true);
    // Kept when a membership comes without restrictions (a drain re-reads the last one).
    u.update(membership([{ name: 'game-1', service: 'game', ip: '10.77.0.3', ready: true }]));
    assert.equal(await u.admits('redis', '10.77.0.3', deadline), false);
  });

  it('waits for the next membership to learn whose an unknown address is, and refuses it at the deadline', async () => {
    const u = new Upstreams({ wake: () => undefined });
    u.update(membership([]), restricted);
    const pending = u.admits('redis', '10.77.0.9', Date.now() + 5000);
    u.update(membership([{ name: 'login-2', service: 'login', ip: '10.77.0.9', ready: false }]));
    assert.equal(await pending, true);
    const started = Date.now();
    assert.equal(await u.admits('redis', '10.77.0.10', Date.now() + 100), false);
    assert.ok(Date.now() - started < 1000);
  });
});
