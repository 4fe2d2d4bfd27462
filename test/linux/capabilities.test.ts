// Capabilities: Docker's default set without NET_RAW, changed by capDrop and
// capAdd; ICMP echo (ping) still works through ICMP datagram sockets.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { buildProbeImage, CLEAN, execOut, instance, traces, useTestHost, type TestHost } from '../helpers/linux.js';

const SLEEP = ['busybox', 'sleep', '1000'];

async function capEff(host: TestHost, name: string): Promise<string> {
  const status = await execOut(host, name, ['busybox', 'cat', '/proc/1/status']);
  return /CapEff:\s+([0-9a-f]+)/.exec(status.out)![1]!;
}

describe('linux driver: capabilities', function () {
  this.timeout(60_000);
  const host = useTestHost();
  before(async () => buildProbeImage(host(), 'test/probe:1'));

  it('gives Docker\'s default set without NET_RAW: no raw sockets, but ICMP echo works', async () => {
    await host().driver.create(instance('cap-def-1', { image: 'test/probe:1', command: SLEEP }));
    // Docker's default is a80425fb; bit 13 (NET_RAW, 0x2000) is the difference.
    assert.equal(await capEff(host(), 'cap-def-1'), '00000000a80405fb');
    assert.deepEqual(await execOut(host(), 'cap-def-1', ['/bin/probe', 'raw-socket', 'icmp-socket']), {
      code: 0, out: 'raw-socket: Operation not permitted\nicmp-socket: ok\n',
    });
    assert.deepEqual(await execOut(host(), 'cap-def-1', ['busybox', 'cat', '/proc/sys/net/ipv4/ping_group_range']), { code: 0, out: '0\t2147483647\n' });
    // The host side of the test's own bridge answers an echo sent through an ICMP datagram socket (what
    // iputils ping uses without NET_RAW; busybox 1.35's ping only tries a raw socket, so it cannot).
    const gateway = /inet (\d+\.\d+\.\d+\.\d+)\//.exec(execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', host().bridge]).toString())![1]!;
    assert.deepEqual(await execOut(host(), 'cap-def-1', ['/bin/probe', `ping:${gateway}`]), { code: 0, out: `ping:${gateway}: ok\n` });
    // The host's own setting is untouched: the sysctl is per network namespace.
    assert.notEqual(execFileSync('sysctl', ['-n', 'net.ipv4.ping_group_range']).toString().trim(), '0\t2147483647');
  });

  it('drops ALL and adds back what is named', async () => {
    await host().driver.create(instance('cap-min-1', { command: SLEEP, security: { capDrop: ['ALL'], capAdd: ['NET_BIND_SERVICE'] } }));
    assert.equal(await capEff(host(), 'cap-min-1'), '0000000000000400');
    await host().driver.create(instance('cap-some-1', { command: SLEEP, security: { capDrop: ['chown', 'CAP_KILL'], capAdd: ['net_raw'] } }));
    assert.equal(await capEff(host(), 'cap-some-1'), '00000000a80425da');
    assert.deepEqual(await execOut(host(), 'cap-some-1', ['busybox', 'chown', '1:1', '/bin']), { code: 1, out: 'chown: /bin: Operation not permitted\n' });
  });

  it('refuses an unknown capability name, leaving nothing behind', async () => {
    await assert.rejects(host().driver.create(instance('cap-bad-1', { command: SLEEP, security: { capAdd: ['NET_FOO'] } })), {
      message: 'failed to set the capabilities of instance cap-bad-1: capAdd names "NET_FOO", which is not a Linux capability (use a name from capabilities(7) without the CAP_ prefix, e.g. NET_BIND_SERVICE, or ALL)',
    });
    await host().driver.gc({ keep: new Set(['cap-def-1', 'cap-min-1', 'cap-some-1']) });
    await Promise.all(['cap-def-1', 'cap-min-1', 'cap-some-1'].map((n) => host().driver.remove(n)));
    assert.deepEqual(traces(host()), CLEAN);
  });
});
