import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DriverError } from '../../src/errors.js';
import { kill9, waitForOutput } from '../helpers/process.js';
import { eventually, execOut, instance, logText, useTestHost } from '../helpers/linux.js';

const CHILD = fileURLToPath(new URL('../helpers/driver-child.js', import.meta.url));

describe('linux driver: lifecycle', function () {
  this.timeout(60_000);
  const host = useTestHost();

  const find = async (name: string) => (await host().driver.list()).find((i) => i.name === name);

  it('keeps stdout and stderr apart in the log, with tail', async () => {
    await host().driver.create(instance('log-1', { command: ['sh', '-c', 'echo one; echo two >&2; echo three; exec busybox sleep 1000'] }));
    await eventually(async () => (await logText(host(), 'log-1')).includes('three'), 5000, 'output');
    // Order holds within a stream; across stdout and stderr (two pipes) it may not.
    const lines = (await logText(host(), 'log-1')).split('\n');
    assert.deepEqual(lines.filter((l) => l.startsWith('stdout')), ['stdout: one', 'stdout: three']);
    assert.deepEqual(lines.filter((l) => l.startsWith('stderr')), ['stderr: two']);
    const tail: string[] = [];
    for await (const l of host().driver.logs('log-1', { tail: 1 })) tail.push(l.text);
    assert.equal(tail.length, 1);
  });

  it('follows the log until aborted', async () => {
    await host().driver.create(instance('follow-1', { command: ['sh', '-c', 'for i in 1 2 3; do echo line$i; busybox sleep 0.3; done; exec busybox sleep 1000'] }));
    const abort = new AbortController();
    const seen: string[] = [];
    for await (const l of host().driver.logs('follow-1', { follow: true, signal: abort.signal })) {
      seen.push(l.text);
      if (seen.length === 3) abort.abort();
    }
    assert.deepEqual(seen, ['line1', 'line2', 'line3']);
  });

  it('execs inside a running instance and passes its exit code back', async () => {
    await host().driver.create(instance('exec-1', { command: ['busybox', 'sleep', '1000'], env: { GREETING: 'hi' } }));
    assert.deepEqual(await execOut(host(), 'exec-1', ['sh', '-c', 'echo $GREETING from $(busybox hostname)']), { code: 0, out: 'hi from exec-1\n' });
    assert.equal((await execOut(host(), 'exec-1', ['sh', '-c', 'exit 7'])).code, 7);
  });

  it('stops with SIGTERM within the grace period, or SIGKILL after it', async () => {
    await host().driver.create(instance('term-1', { command: ['sh', '-c', 'trap "echo got TERM; exit 0" TERM; while true; do busybox sleep 0.1; done'] }));
    await host().driver.create(instance('stubborn-1', { command: ['sh', '-c', 'trap "" TERM; while true; do busybox sleep 0.1; done'] }));
    await host().driver.stop('term-1', 5000);
    const term = await find('term-1');
    assert.deepEqual([term?.state, term?.exitCode], ['exited', 0]);
    assert.match(await logText(host(), 'term-1'), /got TERM/);
    await host().driver.stop('stubborn-1', 300);
    const killed = await find('stubborn-1');
    assert.deepEqual([killed?.state, killed?.exitCode], ['exited', 137]);
    await host().driver.stop('stubborn-1', 300); // idempotent
  });

  it('keeps a container running after the process that made it is killed, and its exit code known', async () => {
    const opts = { home: host().home, bridge: host().bridge, subnet: host().subnet, cgroupParent: host().cgroupParent };
    const child = spawn(process.execPath, [CHILD, JSON.stringify(opts), JSON.stringify(instance('orphan-1', { command: ['sh', '-c', 'busybox sleep 1; exit 42'] }))], { stdio: ['ignore', 'pipe', 'inherit'] });
    await waitForOutput(child, 'created');
    assert.equal(await kill9(child), true);
    assert.equal((await find('orphan-1'))?.state, 'running', 'still running after its parent was SIGKILLed');
    const done = await eventually(async () => {
      const i = await find('orphan-1');
      return i?.state === 'exited' ? i : undefined;
    }, 10_000, 'the container to exit');
    assert.equal(done.exitCode, 42);
    assert.equal(done.oomKilled, false);
    assert.ok(done.finishedAt);
  });

  it('fails a create at a named step and leaves nothing behind', async () => {
    await assert.rejects(host().driver.create(instance('bad-1', { image: 'test/nothere:1' })), /image "test\/nothere:1" not found/);
    await assert.rejects(host().driver.create(instance('bad-2', { volumes: [{ kind: 'host', hostPath: '/nonexistent/carte', mountPath: '/x', readOnly: true }] })), (e: unknown) => {
      assert.ok(e instanceof DriverError);
      assert.equal(e.message, 'failed to mount a volume into bad-2: host path /nonexistent/carte does not exist (create it, or fix spec.volumes[].hostPath)');
      return true;
    });
    await assert.rejects(host().driver.create(instance('bad-3', { command: ['/no/such/program'] })), /failed to create \(runc\) bad-3/);
    for (const name of ['bad-1', 'bad-2', 'bad-3']) {
      assert.equal(await find(name), undefined);
      assert.equal(fs.existsSync(path.join(host().home, 'instances', name)), false);
      assert.equal(fs.existsSync(host().driver.placement(name).netnsPath), false);
    }
  });

  it('shows changes made behind its back: runtime state deleted, netns deleted', async () => {
    await host().driver.create(instance('drift-1', { command: ['busybox', 'sleep', '1000'] }));
    await host().driver.create(instance('drift-2', { command: ['busybox', 'sleep', '1000'] }));
    execFileSync(host().driver.runtime.path, ['--root', host().driver.runtime.root, 'delete', '--force', 'drift-1']);
    execFileSync('ip', ['netns', 'delete', host().driver.placement('drift-2').netns]);
    assert.equal((await find('drift-1'))?.state, 'lost');
    assert.deepEqual((await find('drift-2'))?.problems, [`network namespace ${host().driver.placement('drift-2').netnsPath} is gone`]);
    for (const n of ['drift-1', 'drift-2']) assert.deepEqual((await host().driver.remove(n)).failures, []);
    assert.equal(await find('drift-1'), undefined);
  });

  it('removes idempotently', async () => {
    await host().driver.create(instance('twice-1', { command: ['busybox', 'sleep', '1000'] }));
    assert.deepEqual((await host().driver.remove('twice-1')).failures, []);
    assert.deepEqual((await host().driver.remove('twice-1')).failures, []);
    assert.deepEqual((await host().driver.remove('never-existed')).failures, []);
  });
});
