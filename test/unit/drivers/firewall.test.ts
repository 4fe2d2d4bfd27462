// The host's firewall rules, rendered (pure): what a bridge's chains hold,
// and the restore input that brings the tables there from what they hold.
import assert from 'node:assert/strict';
import { chainNames, jumpRules, normalizeAccess, renderFirewall, restoreInput, type FirewallInstance } from '../../../src/drivers/linux/firewall.js';

const inst = (name: string, ip: string, veth: string | null = `veth-${name}`, mac: string | null = '02:00:00:00:00:01'): FirewallInstance =>
  ({ name, service: name.replace(/-\d+$/, ''), ip, veth, mac });

describe('firewall rules', () => {
  it('names its chains after the bridge, within iptables\' 28 characters', () => {
    const n = chainNames('carte-longname1');
    assert.deepEqual([n.input, n.output, n.forward, n.service(12), n.l2], [
      'CARTE-carte-longname1-IN', 'CARTE-carte-longname1-OUT', 'CARTE-carte-longname1-FWD', 'CARTE-carte-longname1-S12', 'CARTE-carte-longname1-L2',
    ]);
    assert.ok(n.ownIp.test('CARTE-carte-longname1-S3'));
    // Another bridge whose name starts alike is not this one's.
    assert.equal(chainNames('ct1').ownIp.test('CARTE-ct1-a-IN'), false);
    assert.deepEqual(jumpRules('br0').ip, [
      '-A INPUT -i br0 -m comment --comment "carte br0" -j CARTE-br0-IN',
      '-A FORWARD -i br0 -m comment --comment "carte br0" -j CARTE-br0-FWD',
      '-A FORWARD -o br0 -m comment --comment "carte br0" -j CARTE-br0-FWD',
      '-A OUTPUT -o br0 -m comment --comment "carte br0" -j CARTE-br0-OUT',
    ]);
  });

  it('with no access: replies and ping only into the host, root only out of it, instances to anywhere, nothing else into the bridge', () => {
    const r = renderFirewall('br0', [inst('web-1', '10.9.0.2', 'vethaaaa', '02:00:00:00:00:0a')], { hostPorts: [], restricted: [] });
    assert.deepEqual(r.ip.chains, ['CARTE-br0-IN', 'CARTE-br0-OUT', 'CARTE-br0-FWD']);
    assert.deepEqual(r.ip.rules, [
      '-A CARTE-br0-IN -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A CARTE-br0-IN -p icmp -m icmp --icmp-type 8 -j ACCEPT',
      '-A CARTE-br0-IN -j REJECT --reject-with icmp-admin-prohibited',
      '-A CARTE-br0-OUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A CARTE-br0-OUT -m owner --socket-exists ! --uid-owner 0 -j REJECT --reject-with icmp-admin-prohibited',
      '-A CARTE-br0-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A CARTE-br0-FWD -i br0 -o br0 -j ACCEPT',
      '-A CARTE-br0-FWD -i br0 -m devgroup ! --dst-group 0xca7e -j ACCEPT',
      '-A CARTE-br0-FWD -j DROP',
    ]);
    assert.deepEqual(r.l2, {
      chains: ['CARTE-br0-L2'],
      rules: [
        '-A CARTE-br0-L2 -i vethaaaa -p IPv4 -d Multicast -j DROP',
        '-A CARTE-br0-L2 -i vethaaaa -s 02:00:00:00:00:0a -p ARP --arp-ip-src 10.9.0.2 --arp-mac-src 02:00:00:00:00:0a -j RETURN',
        '-A CARTE-br0-L2 -i vethaaaa -s 02:00:00:00:00:0a -p IPv4 --ip-src 10.9.0.2 -j RETURN',
        '-A CARTE-br0-L2 -i vethaaaa -j DROP',
      ],
    });
  });

  it('opens host ports: published ones to every instance (on their address), the policy\'s to the services it names', () => {
    const r = renderFirewall('br0', [inst('a-1', '10.9.0.3'), inst('b-1', '10.9.0.2'), inst('a-2', '10.9.0.10')], {
      hostPorts: [
        { port: 8080, protocol: 'tcp', address: null, from: null },
        { port: 53, protocol: 'udp', address: '192.168.1.5', from: null },
        { port: 5432, protocol: 'tcp', address: null, from: ['a'] },
        { port: 9, protocol: 'tcp', address: '::1', from: null },
      ],
      restricted: [],
    });
    assert.deepEqual(r.ip.rules.filter((l) => l.startsWith('-A CARTE-br0-IN')), [
      '-A CARTE-br0-IN -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A CARTE-br0-IN -p icmp -m icmp --icmp-type 8 -j ACCEPT',
      '-A CARTE-br0-IN -s 10.9.0.3/32 -p tcp -m tcp --dport 5432 -j ACCEPT',
      '-A CARTE-br0-IN -s 10.9.0.10/32 -p tcp -m tcp --dport 5432 -j ACCEPT',
      '-A CARTE-br0-IN -p tcp -m tcp --dport 8080 -j ACCEPT',
      '-A CARTE-br0-IN -d 192.168.1.5/32 -p udp -m udp --dport 53 -j ACCEPT',
      '-A CARTE-br0-IN -j REJECT --reject-with icmp-admin-prohibited',
    ]);
  });

  it('restricts a service to its allowed services\' instances, on their addresses and its service address; refuses the rest at once', () => {
    const instances = [inst('redis-1', '10.9.0.5'), inst('login-1', '10.9.0.6'), inst('game-1', '10.9.0.7'), inst('game-2', '10.9.0.8')];
    const r = renderFirewall('br0', instances, { hostPorts: [], restricted: [{ service: 'redis', address: '10.9.15.1', from: ['login'] }] });
    assert.deepEqual(r.ip.chains, ['CARTE-br0-IN', 'CARTE-br0-OUT', 'CARTE-br0-FWD', 'CARTE-br0-S1']);
    assert.deepEqual(r.ip.rules.filter((l) => /-A CARTE-br0-(FWD|S1) /.test(l)), [
      '-A CARTE-br0-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A CARTE-br0-FWD -d 10.9.0.5/32 -m comment --comment "to redis" -j CARTE-br0-S1',
      '-A CARTE-br0-FWD -d 10.9.15.1/32 -m comment --comment "to redis" -j CARTE-br0-S1',
      '-A CARTE-br0-FWD -i br0 -o br0 -j ACCEPT',
      '-A CARTE-br0-FWD -i br0 -m devgroup ! --dst-group 0xca7e -j ACCEPT',
      '-A CARTE-br0-FWD -j DROP',
      '-A CARTE-br0-S1 -s 10.9.0.5/32 -j ACCEPT',
      '-A CARTE-br0-S1 -s 10.9.0.6/32 -j ACCEPT',
      '-A CARTE-br0-S1 -p tcp -j REJECT --reject-with tcp-reset',
      '-A CARTE-br0-S1 -j REJECT --reject-with icmp-port-unreachable',
    ]);
    // Every instance on the bridge is allowed anyway (or the service has no instance and no address): no chain at all.
    assert.deepEqual(renderFirewall('br0', instances.slice(0, 2), { hostPorts: [], restricted: [{ service: 'redis', address: '10.9.15.1', from: ['login'] }] }).ip.chains.length, 3);
    assert.deepEqual(renderFirewall('br0', instances.slice(1), { hostPorts: [], restricted: [{ service: 'redis', address: null, from: ['login'] }] }).ip.chains.length, 3);
  });

  it('leaves out layer-2 rules for an instance whose veth or MAC is unknown', () => {
    assert.deepEqual(renderFirewall('br0', [inst('a-1', '10.9.0.2', null)], { hostPorts: [], restricted: [] }).l2.rules, []);
  });

  it('orders access the same however it was given', () => {
    const a = { hostPorts: [{ port: 2, protocol: 'udp' as const, address: null, from: ['b', 'a', 'a'] }, { port: 1, protocol: 'tcp' as const, address: null, from: null }], restricted: [{ service: 'z', address: null, from: ['y', 'x'] }, { service: 'a', address: null, from: [] }] };
    assert.deepEqual(normalizeAccess(a), {
      hostPorts: [{ port: 1, protocol: 'tcp', address: null, from: null }, { port: 2, protocol: 'udp', address: null, from: ['a', 'b'] }],
      restricted: [{ service: 'a', address: null, from: [] }, { service: 'z', address: null, from: ['x', 'y'] }],
    });
  });
});

describe('firewall restore input', () => {
  const desired = renderFirewall('br0', [], { hostPorts: [], restricted: [] });
  const jumps = jumpRules('br0');

  it('from nothing: declares the chains, inserts the jumps first in their chains, fills the chains', () => {
    assert.equal(restoreInput('ip', 'br0', '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n', desired.ip), [
      '*filter',
      ':CARTE-br0-IN - [0:0]', ':CARTE-br0-OUT - [0:0]', ':CARTE-br0-FWD - [0:0]',
      '-I OUTPUT 1 -o br0 -m comment --comment "carte br0" -j CARTE-br0-OUT',
      '-I FORWARD 1 -o br0 -m comment --comment "carte br0" -j CARTE-br0-FWD',
      '-I FORWARD 1 -i br0 -m comment --comment "carte br0" -j CARTE-br0-FWD',
      '-I INPUT 1 -i br0 -m comment --comment "carte br0" -j CARTE-br0-IN',
      ...desired.ip.rules,
      'COMMIT', '',
    ].join('\n'));
    assert.equal(restoreInput('l2', 'br0', '*nat\n:PREROUTING ACCEPT\n', desired.l2), '*nat\n:CARTE-br0-L2 RETURN\n-I PREROUTING 1 -j CARTE-br0-L2\n');
  });

  it('when all is there: flushes and fills the chains, touches no jump; a stale chain and repeated or foreign jumps go', () => {
    const saved = [
      '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD DROP [0:0]', ':OUTPUT ACCEPT [0:0]',
      ':CARTE-br0-FWD - [0:0]', ':CARTE-br0-IN - [0:0]', ':CARTE-br0-OUT - [0:0]', ':CARTE-br0-S4 - [0:0]', ':CARTE-br0-x-IN - [0:0]',
      ...jumps.ip, jumps.ip[0]!, '-A FORWARD -i br0 -j CARTE-br0-FWD', '-A INPUT -i br0-x -m comment --comment "carte br0-x" -j CARTE-br0-x-IN',
      '-A CARTE-br0-FWD -d 10.9.0.5/32 -j CARTE-br0-S4', 'COMMIT',
    ].join('\n');
    assert.equal(restoreInput('ip', 'br0', saved, desired.ip), [
      '*filter',
      ':CARTE-br0-IN - [0:0]', ':CARTE-br0-OUT - [0:0]', ':CARTE-br0-FWD - [0:0]', ':CARTE-br0-S4 - [0:0]',
      jumps.ip[0]!.replace('-A', '-D'),
      '-D FORWARD -i br0 -j CARTE-br0-FWD',
      '-X CARTE-br0-S4',
      ...desired.ip.rules,
      'COMMIT', '',
    ].join('\n'));
  });

  it('to nothing: flushes, unhooks and deletes every chain of the bridge; nothing there is nothing to do', () => {
    const saved = ['*filter', ':INPUT ACCEPT [0:0]', ':CARTE-br0-IN - [0:0]', jumps.ip[0]!, '-A CARTE-br0-IN -j ACCEPT', 'COMMIT'].join('\n');
    assert.equal(restoreInput('ip', 'br0', saved, null), `*filter\n:CARTE-br0-IN - [0:0]\n${jumps.ip[0]!.replace('-A', '-D')}\n-X CARTE-br0-IN\nCOMMIT\n`);
    assert.equal(restoreInput('l2', 'br0', '*nat\n:CARTE-br0-L2 RETURN\n-A PREROUTING -j CARTE-br0-L2\n', null), '*nat\n:CARTE-br0-L2 RETURN\n-D PREROUTING -j CARTE-br0-L2\n-X CARTE-br0-L2\n');
    assert.equal(restoreInput('ip', 'br0', '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n', null), null);
  });
});
