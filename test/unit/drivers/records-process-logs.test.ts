// Without root: instance records (damaged ones, older ones), where an
// instance lives, the process-tree walk that ends an aborted exec, and the
// bounds of previous logs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readLog } from '../../../src/drivers/linux/logs.js';
import { execFileSync } from 'node:child_process';
import { boundPreviousLogs, checkPreviousLogName, keepPreviousLog, previousLogPath, readPreviousLog } from '../../../src/drivers/linux/previous-logs.js';
import { HomePaths, homeIdOf, newPlacement, placementOf, readRecordSync } from '../../../src/drivers/linux/records.js';
import { sessionMembers, type ProcEntry } from '../../../src/util/process-tree.js';
import { tempDir } from '../../helpers/paths.js';

const homes: string[] = [];
after(() => {
  for (const h of homes.splice(0)) fs.rmSync(h, { recursive: true, force: true });
});

function homeWith(files: Record<string, string>): HomePaths {
  const home = tempDir('carte-records-');
  homes.push(home);
  const paths = new HomePaths(home, '/nonexistent/run');
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(paths.home, rel)), { recursive: true });
    fs.writeFileSync(path.join(paths.home, rel), text);
  }
  return paths;
}

const RECORD = { name: 'web-1', service: 'web', labels: {}, image: 'i:1', imageId: 'x', createdAt: '', startedAt: null, ip: null };

describe('instance records', () => {
  it('reads a record, tells an absent one, and reports a damaged one instead of throwing', () => {
    const paths = homeWith({
      'instances/web-1/instance.json': JSON.stringify(RECORD),
      'instances/cut-1/instance.json': JSON.stringify(RECORD).slice(0, 30),
      'instances/null-1/instance.json': 'null',
    });
    assert.equal(readRecordSync(paths, 'web-1').kind, 'ok');
    assert.deepEqual(readRecordSync(paths, 'none-1'), { kind: 'none' });
    const cut = readRecordSync(paths, 'cut-1');
    assert.equal(cut.kind, 'unreadable');
    assert.match((cut as { problem: string }).problem, /^instance record .*cut-1\/instance\.json is unreadable: /);
    assert.deepEqual(readRecordSync(paths, 'null-1'), { kind: 'unreadable', problem: `instance record ${paths.recordFile('null-1')} is unreadable: not an instance record` });
  });

  it('places new instances by home id; keeps the names an older record implies', () => {
    const paths = homeWith({ 'instances/old-1/instance.json': JSON.stringify({ ...RECORD, name: 'old-1' }) });
    const rules = { paths, bridge: 'carte0', cgroupParent: '/carte' };
    const id = homeIdOf(paths.home);
    assert.match(id, /^[0-9a-f]{8}$/);
    assert.deepEqual(newPlacement(rules, 'web-1'), { netns: `carte-${id}-web-1`, netnsPath: `/run/netns/carte-${id}-web-1`, cgroupPath: `/carte/${id}/web-1` });
    assert.deepEqual(placementOf(rules, 'old-1'), { netns: 'carte0-old-1', netnsPath: '/run/netns/carte0-old-1', cgroupPath: '/carte/old-1' });
    assert.deepEqual(placementOf(rules, 'none-1'), newPlacement(rules, 'none-1'));
  });
});

describe('process tree: who an aborted exec must end', () => {
  const p = (pid: number, ppid: number, sid: number, state = 'S'): ProcEntry => ({ pid, ppid, sid, state });
  // 100 is runc exec; 200 the exec'd process (session leader); 201, 202 its children;
  // 203 a grandchild that called setsid; 300 an orphan of the session, reparented to
  // the container's init (50); 301 a zombie of the session; 400 unrelated.
  const procs = [p(50, 1, 50), p(100, 10, 10), p(200, 100, 200), p(201, 200, 200), p(202, 200, 200), p(203, 201, 203), p(300, 50, 200), p(301, 50, 200, 'Z'), p(400, 50, 50)];

  it('finds descendants (deepest first) and session members, never the leader, zombies or strangers', () => {
    assert.deepEqual(sessionMembers(200, { descendants: true }, procs), [203, 201, 202, 300]);
  });

  it('only session members once the leader may have been reaped', () => {
    assert.deepEqual(sessionMembers(200, { descendants: false }, procs), [201, 202, 300]);
  });
});

describe('previous logs', () => {
  it('keeps the last bytes of an over-long log from a line start, and only the newest files', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => `2026-01-01T00:00:00Z stdout F line-${i}`).join('\n') + '\n';
    const paths = homeWith({ 'instances/big-1/container.log': lines });
    assert.equal(await keepPreviousLog(paths, 'big-1', { capBytes: 500, limit: 2 }), true);
    assert.equal(await keepPreviousLog(paths, 'big-1', { capBytes: 500, limit: 2 }), false, 'nothing left to keep');
    const kept = fs.readFileSync(previousLogPath(paths, 'big-1'), 'utf8');
    assert.ok(kept.length <= 500);
    assert.ok(kept.startsWith('2026-01-01T00:00:00Z stdout F line-'));
    assert.ok(kept.endsWith('line-99\n'));
    for (const [i, n] of ['a-1', 'b-1', 'c-1'].entries()) {
      fs.writeFileSync(path.join(paths.previousLogsDir, `${n}.log`), '');
      fs.utimesSync(path.join(paths.previousLogsDir, `${n}.log`), 1000 + i, 1000 + i);
    }
    await boundPreviousLogs(paths.previousLogsDir, 2);
    assert.deepEqual(fs.readdirSync(paths.previousLogsDir).sort(), ['big-1.log', 'c-1.log']);
  });

  it('reads no lines for tail 0', async () => {
    const paths = homeWith({ 'x.log': '2026-01-01T00:00:00Z stdout F one\n' });
    const got = [];
    for await (const l of readLog(path.join(paths.home, 'x.log'), { tail: 0 })) got.push(l);
    assert.deepEqual(got, []);
  });

  const readAll = async (paths: HomePaths, name: string, opts: { tail?: number } = {}, max?: number) => {
    const got: string[] = [];
    for await (const l of readPreviousLog(paths, name, opts, max)) got.push(l.text);
    return got;
  };

  it('refuses names that leave the folder, before any file is touched', async () => {
    for (const bad of ['../../x/app', '..', 'a/b', 'a\\b', '', 'a\0b']) {
      assert.throws(() => checkPreviousLogName(bad), { code: 'usage' }, bad);
    }
    assert.doesNotThrow(() => checkPreviousLogName('web-1'));
    const paths = homeWith({ 'x/app.log': '2026-01-01T00:00:00Z stdout F secret\n', 'logs/previous/.keep': '' });
    await assert.rejects(readAll(paths, '../../x/app'), { code: 'usage', message: '"../../x/app" is not a valid instance name: use lowercase letters, digits and "-"' });
  });

  it('reads only a regular file: a link or a FIFO is "no previous log", at once', async () => {
    const paths = homeWith({ 'secret.log': '2026-01-01T00:00:00Z stdout F secret\n', 'logs/previous/.keep': '' });
    fs.symlinkSync(path.join(paths.home, 'secret.log'), previousLogPath(paths, 'link-1'));
    execFileSync('mkfifo', [previousLogPath(paths, 'fifo-1')]);
    fs.mkdirSync(previousLogPath(paths, 'dir-1'));
    for (const n of ['link-1', 'fifo-1', 'dir-1', 'none-1']) {
      await assert.rejects(readAll(paths, n), { code: 'not-found', message: `instance "${n}" has no previous log` }, n);
    }
  });

  it('reads only the last bytes of a big file, from a line start', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => `2026-01-01T00:00:00Z stdout F line-${String(i).padStart(4, '0')}`).join('\n') + '\n';
    const paths = homeWith({ 'logs/previous/big-1.log': lines });
    const got = await readAll(paths, 'big-1', {}, 1000);
    // Each record is 40 bytes: the last 1000 hold 25; the first may be cut, so it is dropped.
    assert.deepEqual(got, Array.from({ length: 24 }, (_, i) => `line-0${976 + i}`));
    assert.deepEqual(await readAll(paths, 'big-1', { tail: 2 }, 1000), ['line-0998', 'line-0999']);
    assert.deepEqual(await readAll(paths, 'big-1', { tail: 0 }), []);
    assert.equal((await readAll(paths, 'big-1')).length, 1000);
  });
});

