// exec: aborting ends the command and everything it started; output that
// nobody asked for goes nowhere.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { processAlive } from '../../src/util/process.js';
import { eventually, execOut, instance, useTestHost, type TestHost } from '../helpers/linux.js';

const CHILD = fileURLToPath(new URL('../helpers/driver-child.js', import.meta.url));

/** Host pids of processes in the instance's cgroup whose command line is exactly `args`. */
function pidsOf(host: TestHost, name: string, args: string[]): number[] {
  const cgroup = `:${host.driver.cgroupPath(name)}`;
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').slice(0, -1);
      if (cmdline.join(' ') !== args.join(' ')) continue;
      if (fs.readFileSync(`/proc/${d}/cgroup`, 'utf8').split('\n').some((l) => l.endsWith(cgroup))) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('linux driver: exec', function () {
  this.timeout(60_000);
  const host = useTestHost();

  before(async () => {
    await host().driver.create(instance('ex-1', { command: ['busybox', 'sleep', '1000'] }));
  });

  it('ends an aborted command and every process it started, and resolves 137', async () => {
    const abort = new AbortController();
    const done = host().driver.exec('ex-1', ['sh', '-c', 'busybox sleep 4242001 & busybox sleep 4242002 & exec busybox sleep 4242003'], { signal: abort.signal });
    const sleeps = ['4242001', '4242002', '4242003'].map((n) => ['busybox', 'sleep', n]);
    const pids = await eventually(async () => {
      const found = sleeps.map((a) => pidsOf(host(), 'ex-1', a));
      return found.every((p) => p.length === 1) ? found.flat() : undefined;
    }, 10_000, 'the three sleeps to run');
    await new Promise((r) => setTimeout(r, 300));
    abort.abort();
    assert.equal(await done, 137);
    // Zombies (reparented to an init that never reaps) are not running.
    assert.deepEqual(pids.filter(processAlive), []);
  });

  it('with reapAll (probes), nothing a command started survives it: not a setsid daemon, not after a normal exit, not after an abort', async () => {
    const daemonize = ['sh', '-c', 'busybox setsid busybox sleep 4242021 </dev/null >/dev/null 2>&1 & busybox sleep 4242022 & exit 0'];
    assert.equal(await host().driver.exec('ex-1', daemonize, { reapAll: true }), 0);
    const left = [...pidsOf(host(), 'ex-1', ['busybox', 'sleep', '4242021']), ...pidsOf(host(), 'ex-1', ['busybox', 'sleep', '4242022'])];
    assert.deepEqual(left.filter(processAlive), [], 'the detached sleeps were ended with the command');
    // Without reapAll an exec's background processes live on (as with docker exec).
    assert.equal(await host().driver.exec('ex-1', ['sh', '-c', 'busybox setsid busybox sleep 4242023 </dev/null >/dev/null 2>&1 & exit 0']), 0);
    const kept = await eventually(async () => {
      const p = pidsOf(host(), 'ex-1', ['busybox', 'sleep', '4242023']).filter(processAlive);
      return p.length ? p : undefined;
    }, 5000, 'the detached sleep');
    for (const pid of kept) process.kill(pid, 'SIGKILL'); // started by this test
    // Aborted: the detached one goes too, and no sub-cgroup is left under the instance's.
    const abort = new AbortController();
    const done = host().driver.exec('ex-1', ['sh', '-c', 'busybox setsid busybox sleep 4242024 </dev/null >/dev/null 2>&1 & exec busybox sleep 4242025'], { signal: abort.signal, reapAll: true });
    await eventually(async () => pidsOf(host(), 'ex-1', ['busybox', 'sleep', '4242024']).length === 1, 10_000, 'the detached sleep');
    abort.abort();
    assert.equal(await done, 137);
    assert.deepEqual(pidsOf(host(), 'ex-1', ['busybox', 'sleep', '4242024']).filter(processAlive), []);
    const sub = fs.readdirSync(`/sys/fs/cgroup/pids${host().driver.cgroupPath('ex-1')}`, { withFileTypes: true }).filter((e) => e.isDirectory());
    assert.deepEqual(sub.map((e) => e.name), []);
  });

  it('ends a command that ignores SIGTERM', async () => {
    const abort = new AbortController();
    const done = host().driver.exec('ex-1', ['sh', '-c', 'trap "" TERM; busybox sleep 4242011; busybox sleep 4242012'], { signal: abort.signal });
    const pids = await eventually(async () => {
      const p = pidsOf(host(), 'ex-1', ['busybox', 'sleep', '4242011']);
      return p.length ? p : undefined;
    }, 10_000, 'the sleep to run');
    abort.abort();
    assert.equal(await done, 137);
    assert.deepEqual(pids.filter(processAlive), []);
    assert.deepEqual(pidsOf(host(), 'ex-1', ['busybox', 'sleep', '4242012']).filter(processAlive), []);
  });

  it('is fine with an abort after the command finished, and with one before it started', async () => {
    const abort = new AbortController();
    assert.equal(await host().driver.exec('ex-1', ['sh', '-c', 'exit 3'], { signal: abort.signal }), 3);
    abort.abort();
    assert.equal(await host().driver.exec('ex-1', ['true'], { signal: abort.signal }), 137);
    assert.deepEqual(await execOut(host(), 'ex-1', ['busybox', 'echo', 'still here']), { code: 0, out: 'still here\n' });
  });

  it("discards the output of an exec given no streams (it never reaches the caller's stdout)", async () => {
    const opts = { home: host().home, bridge: host().bridge, subnet: host().subnet, cgroupParent: host().cgroupParent };
    const child = spawn(process.execPath, [CHILD, JSON.stringify(opts), 'null', 'exec', JSON.stringify({ name: 'ex-1', command: ['sh', '-c', 'echo LEAKED-OUT; echo LEAKED-ERR >&2'] })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((r) => child.on('close', r));
    assert.equal(code, 0, err);
    assert.equal(out, 'exit 0\n');
    assert.equal(err, '');
  });
});
