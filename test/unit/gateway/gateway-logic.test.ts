import assert from 'node:assert/strict';
import { gatewayFirewall, gatewayNames } from '../../../src/drivers/linux/gateway-netns.js';
import { addressPlan } from '../../../src/drivers/linux/network.js';
import { choose, type Candidate } from '../../../src/gateway/balance.js';
import { wantedListeners } from '../../../src/gateway/listeners.js';
import { Upstreams } from '../../../src/gateway/upstreams.js';
import { desiredServices, type Membership } from '../../../src/reconciler/reconciler.js';
import { effectiveReplicas, syncServiceIndexes } from '../../../src/store/state.js';
import { serviceDoc, stateWith } from '../../helpers/state.js';

const c = (name: string, active = 0, failedUntil = 0): Candidate => ({ name, ip: `10.0.0.${name.slice(-1)}`, active, failedUntil });

describe('gateway: balancing', () => {
  it('round-robin takes each candidate in turn', () => {
    const list = [c('a-1'), c('a-2'), c('a-3')];
    let cursor = 0;
    const picks: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = choose(list, 'round-robin', cursor, 0)!;
      picks.push(r.pick.name);
      cursor = r.cursor;
    }
    assert.deepEqual(picks, ['a-1', 'a-2', 'a-3', 'a-1', 'a-2', 'a-3']);
  });

  it('least-connections takes the least busy, ties in turn', () => {
    assert.equal(choose([c('a-1', 3), c('a-2', 1), c('a-3', 2)], 'least-connections', 0, 0)!.pick.name, 'a-2');
    const tied = [c('a-1', 1), c('a-2', 1), c('a-3', 4)];
    assert.deepEqual([0, 1, 2].map((k) => choose(tied, 'least-connections', k, 0)!.pick.name), ['a-1', 'a-2', 'a-1']);
  });

  it('avoids an instance that just refused while others remain, and uses it when it is the only one', () => {
    const list = [c('a-1', 0, 5000), c('a-2')];
    assert.deepEqual([0, 1, 2].map((k) => choose(list, 'round-robin', k, 1000)!.pick.name), ['a-2', 'a-2', 'a-2']);
    assert.equal(choose([c('a-1', 0, 5000)], 'round-robin', 0, 1000)!.pick.name, 'a-1');
    assert.equal(choose(list, 'round-robin', 0, 1000, new Set(['a-1', 'a-2'])), null);
    assert.equal(choose([], 'least-connections', 0, 0), null);
  });
});

describe('gateway: listeners from desired state', () => {
  it('serves every port on the service address and published ports on the host; HTTP hosts share one listener', () => {
    const data = stateWith([
      serviceDoc('login', { ports: [{ port: 8080, publish: { port: 80, host: 'login.local' } }] }),
      serviceDoc('asset', { ports: [{ port: 8080, publish: { port: 80, host: 'Asset.Local' } }] }),
      serviceDoc('game', { ports: [{ port: 7000, publish: 7000 }, { port: 7001, protocol: 'udp', publish: { port: 7001, address: '127.0.0.1' } }] }),
      serviceDoc('worker'),
    ]);
    const listeners = wantedListeners(desiredServices(data), { login: '10.77.240.1', asset: '10.77.240.2', game: '10.77.240.3' }, '0.0.0.0');
    assert.deepEqual(listeners.map((l) => [l.key, l.published]), [
      ['tcp 10.77.240.2:8080', false], ['http 0.0.0.0:80', true], ['tcp 10.77.240.3:7000', false], ['tcp 0.0.0.0:7000', true],
      ['udp 10.77.240.3:7001', false], ['udp 127.0.0.1:7001', true], ['tcp 10.77.240.1:8080', false],
    ]);
    const http = listeners.find((l) => l.kind === 'http');
    assert.ok(http && http.kind === 'http');
    assert.deepEqual(http.routes, {
      'asset.local': { service: 'asset', port: 8080, balance: 'round-robin' },
      'login.local': { service: 'login', port: 8080, balance: 'round-robin' },
    });
  });
});

describe('gateway: wildcard published ports', () => {
  it('are listeners of their own beside the service addresses on the same port (those are not the host\'s)', () => {
    const data = stateWith([
      serviceDoc('login', { ports: [{ port: 8080, publish: 8080 }] }),
      serviceDoc('admin', { ports: [{ port: 8080 }] }),
      serviceDoc('game', { ports: [{ port: 7001, protocol: 'udp', publish: 7001 }] }),
      serviceDoc('dns', { ports: [{ port: 7001, protocol: 'udp' }] }),
    ]);
    const listeners = wantedListeners(desiredServices(data), { login: '10.77.240.1', admin: '10.77.240.2', game: '10.77.240.3', dns: '10.77.240.4' }, '0.0.0.0');
    assert.deepEqual(listeners.map((l) => l.key), ['tcp 10.77.240.2:8080', 'udp 10.77.240.4:7001', 'udp 10.77.240.3:7001', 'udp 0.0.0.0:7001', 'tcp 10.77.240.1:8080', 'tcp 0.0.0.0:8080']);
  });
});

describe('gateway: service addresses', () => {
  it('splits the subnet: instances below, services in the top sixteenth', () => {
    const p = addressPlan('10.77.0.0/16');
    assert.equal(p.instanceRangeEnd, '10.77.239.255');
    assert.equal(p.serviceAddress(1), '10.77.240.1');
    assert.equal(p.serviceAddress(4094), '10.77.255.254');
    assert.equal(p.serviceAddress(4095), null, 'never the broadcast address');
    assert.equal(p.bridgeAddress, '10.77.0.1', 'host-local\'s default gateway: the host\'s address on the bridge');
    const small = addressPlan('10.200.7.0/24');
    assert.equal(small.instanceRangeEnd, '10.200.7.239');
    assert.deepEqual([1, 14, 15].map((i) => small.serviceAddress(i)), ['10.200.7.241', '10.200.7.254', null]);
    assert.throws(() => addressPlan('10.0.0.0/30'), /expected an IPv4 CIDR of \/28 or larger/);
  });

  it('live in a namespace per bridge, joined by a veth named for it (≤ 15 characters)', () => {
    const names = gatewayNames('carte0');
    assert.deepEqual({ ...names, mac: undefined }, { netns: 'carte-gw-carte0', netnsPath: '/run/netns/carte-gw-carte0', veth: 'gw-carte0', mac: undefined });
    assert.match(names.mac, /^02(:[0-9a-f]{2}){5}$/, 'locally administered, unicast');
    assert.equal(gatewayNames('carte0').mac, names.mac, 'the same every time');
    assert.equal(gatewayNames('abcdefghijkl').veth, 'gw-abcdefghijkl');
    const long = gatewayNames('abcdefghijklmno').veth;
    assert.match(long, /^gw-abcd[0-9a-f]{8}$/);
    assert.notEqual(long, gatewayNames('abcdefghijklmnp').veth);
  });

  it('which take in only what comes from the subnet, and refuse the host\'s bridge address', () => {
    assert.equal(gatewayFirewall('10.77.0.0/16', '10.77.0.1'), `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -s 10.77.0.1/32 -j REJECT --reject-with icmp-admin-prohibited
-A INPUT -i eth0 -s 10.77.0.0/16 -j ACCEPT
COMMIT
`);
  });

  it('gives each service a stable slot, the lowest free, and frees it on delete', () => {
    const data = stateWith([serviceDoc('b'), serviceDoc('a')]);
    assert.deepEqual(data.serviceIndex, { a: 1, b: 2 });
    delete data.services.a;
    syncServiceIndexes(data);
    assert.deepEqual(data.serviceIndex, { b: 2 });
    stateWith([serviceDoc('c'), serviceDoc('d')], 'cli', data);
    assert.deepEqual(data.serviceIndex, { b: 2, c: 1, d: 3 });
  });

  it('takes the autoscaler\'s replica count within the current bounds', () => {
    const data = stateWith([serviceDoc('web', { ports: [{ port: 80 }], resources: { cpu: '500m' }, autoscale: { min: 0, max: 3, cpu: '70%', idleToZero: '5m' } })]);
    const s = data.services.web!;
    assert.equal(effectiveReplicas(s), 0);
    s.autoscaled = { replicas: 7, at: '', reason: '' };
    assert.equal(effectiveReplicas(s), 3);
    assert.equal(desiredServices(data)[0]!.spec.replicas, 3);
    s.suspended = true;
    assert.equal(effectiveReplicas(s), 0);
  });
});

describe('gateway: upstreams', () => {
  const data = stateWith([
    serviceDoc('web', { replicas: 2 }),
    serviceDoc('sleepy', { ports: [{ port: 80 }], resources: { cpu: '500m' }, autoscale: { min: 0, max: 2, cpu: '70%', idleToZero: '5m' } }),
    serviceDoc('off', { replicas: 0 }),
  ]);
  const target = (service: string) => ({ service, port: 80, balance: 'round-robin' as const });
  const membership = (instances: Membership['instances'], replicas: Record<string, number> = {}): Membership => ({
    services: desiredServices(data).map((d) => (replicas[d.name] === undefined ? d : { ...d, spec: { ...d.spec, replicas: replicas[d.name]! } })),
    instances, addresses: {},
  });

  it('leases ready instances only and counts activity', async () => {
    const u = new Upstreams({ wake: () => assert.fail('no wake') });
    u.update(membership([{ name: 'web-1', service: 'web', ip: '10.0.0.1', ready: true }, { name: 'web-2', service: 'web', ip: '10.0.0.2', ready: false }]));
    const a = await u.acquire(target('web'), Date.now());
    const b = await u.acquire(target('web'), Date.now());
    assert.deepEqual([a?.instance, b?.instance], ['web-1', 'web-1']);
    assert.equal(u.activityOf('web').active, 2);
    a!.release();
    a!.release();
    assert.deepEqual({ ...u.activityOf('web'), lastActivityAt: null }, { active: 1, waiting: 0, connections: 2, requests: 0, lastActivityAt: null });
    assert.equal(await u.acquire(target('off'), Date.now() + 10_000), null, 'nothing will come: refused at once');
  });

  it('holds connections for a service at zero, asks to wake it, and hands over the first ready instance', async () => {
    const woken: string[] = [];
    const u = new Upstreams({ wake: (s) => woken.push(s) });
    u.update(membership([]));
    const pending = u.acquire(target('sleepy'), Date.now() + 5000);
    const second = u.acquire(target('sleepy'), Date.now() + 5000);
    await new Promise((r) => setImmediate(r));
    assert.equal(u.waitingFor('sleepy'), 2);
    assert.equal(u.activityOf('sleepy').waiting, 2, 'waiting connections are traffic: the scaler must not put it back to sleep');
    u.update(membership([{ name: 'sleepy-1', service: 'sleepy', ip: '10.0.0.9', ready: false }], { sleepy: 1 }));
    assert.equal(u.waitingFor('sleepy'), 2, 'not ready yet: still waiting');
    u.update(membership([{ name: 'sleepy-1', service: 'sleepy', ip: '10.0.0.9', ready: true }], { sleepy: 1 }));
    assert.deepEqual([(await pending)?.instance, (await second)?.instance], ['sleepy-1', 'sleepy-1']);
    assert.deepEqual(woken, ['sleepy', 'sleepy']);
  });

  it('gives up at the deadline', async () => {
    const u = new Upstreams({ wake: () => undefined });
    u.update(membership([]));
    assert.equal(await u.acquire(target('sleepy'), Date.now() + 30), null);
  });

  it('drains: no new leases for the instance, resolves when its last connection ends', async () => {
    const u = new Upstreams({ wake: () => undefined });
    u.update(membership([{ name: 'web-1', service: 'web', ip: '10.0.0.1', ready: true }, { name: 'web-2', service: 'web', ip: '10.0.0.2', ready: true }]));
    const lease = (await u.acquire(target('web'), Date.now()))!;
    assert.equal(lease.instance, 'web-1');
    let drained = false;
    const done = u.drain('web-1', 60_000).then(() => (drained = true));
    for (let i = 0; i < 3; i++) assert.equal((await u.acquire(target('web'), Date.now()))?.instance, 'web-2');
    await new Promise((r) => setImmediate(r));
    assert.equal(drained, false);
    lease.release();
    await done;
    assert.equal(drained, true);
    const started = Date.now();
    await u.drain('web-2', 50);
    assert.ok(Date.now() - started >= 40, 'waits out the grace while connections stay open');
  });
});
