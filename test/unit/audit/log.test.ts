import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cleanDetail, encodeEntry, FileAuditLog } from '../../../src/audit/log.js';
import type { AuditEntry } from '../../../src/audit/types.js';
import { tempDir } from '../../helpers/paths.js';

const entry = (n: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  at: `2026-12-01T10:00:${String(n % 60).padStart(2, '0')}.000Z`,
  who: { kind: 'root', name: 'root' },
  via: 'cli',
  action: 'scale',
  target: `service/s${n}`,
  result: 'ok',
  ...over,
});

describe('audit log (audit.log)', () => {
  let home: string;
  const file = () => path.join(home, 'audit.log');

  beforeEach(() => {
    home = tempDir('carte-audit-');
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('appends one JSON line per entry, 0600, listed newest last, with a limit', async () => {
    const log = new FileAuditLog(home);
    assert.deepEqual(await log.list(), []);
    await log.record(entry(1, { detail: '3 → 5 replicas' }));
    await log.record(entry(2, { who: { kind: 'user', name: 'alice' }, via: 'dashboard', result: 'refused' }));
    await log.record(entry(3, { result: 'failed', detail: 'no service "s3"' }));
    assert.equal(fs.statSync(file()).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(file(), 'utf8'),
      '{"at":"2026-12-01T10:00:01.000Z","who":{"kind":"root","name":"root"},"via":"cli","action":"scale","target":"service/s1","result":"ok","detail":"3 → 5 replicas"}\n' +
      '{"at":"2026-12-01T10:00:02.000Z","who":{"kind":"user","name":"alice"},"via":"dashboard","action":"scale","target":"service/s2","result":"refused"}\n' +
      '{"at":"2026-12-01T10:00:03.000Z","who":{"kind":"root","name":"root"},"via":"cli","action":"scale","target":"service/s3","result":"failed","detail":"no service \\"s3\\""}\n');
    assert.deepEqual((await log.list()).map((e) => e.target), ['service/s1', 'service/s2', 'service/s3']);
    assert.deepEqual((await log.list({ limit: 2 })).map((e) => e.target), ['service/s2', 'service/s3']);
    assert.deepEqual(await log.list({ limit: 0 }), []);
  });

  it('skips a torn last line, and the next entry starts on a line of its own', async () => {
    const log = new FileAuditLog(home);
    await log.record(entry(1));
    fs.appendFileSync(file(), '{"at":"2026-12-01T10:00:02.000Z","who":{"kind":"ro');
    assert.deepEqual((await log.list()).map((e) => e.target), ['service/s1']);
    await log.record(entry(3));
    assert.deepEqual((await log.list()).map((e) => e.target), ['service/s1', 'service/s3']);
  });

  it('rotates past maxBytes, keeping one old file; list reads both', async () => {
    const log = new FileAuditLog(home, { maxBytes: 1000 });
    const line = Buffer.byteLength(encodeEntry(entry(10)));
    const n = 30;
    for (let i = 10; i < 10 + n; i++) await log.record(entry(i));
    const perFile = Math.ceil(1000 / line);
    // Files hold perFile lines each; only the newest two files remain.
    assert.ok(fs.statSync(file()).size <= 1000 + line);
    assert.ok(fs.existsSync(`${file()}.1`));
    assert.deepEqual(fs.readdirSync(home).filter((f) => f.startsWith('audit.log')).sort(), ['audit.log', 'audit.log.1']);
    const listed = (await log.list()).map((e) => e.target);
    const kept = perFile + ((n - 1) % perFile) + 1; // a full old file and the current one
    assert.deepEqual(listed, Array.from({ length: n }, (_, i) => `service/s${10 + i}`).slice(n - kept));
  });

  it('concurrent writers lose and tear no entry', async () => {
    const a = new FileAuditLog(home);
    const b = new FileAuditLog(home);
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).record(entry(i, { detail: 'x'.repeat(300) }))));
    const lines = fs.readFileSync(file(), 'utf8').split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 40);
    assert.deepEqual((await a.list()).map((e) => e.target).sort(), Array.from({ length: 40 }, (_, i) => `service/s${i}`).sort());
  });

  it('details: one line, bounded, no token; every line stays under PIPE_BUF', () => {
    assert.equal(cleanDetail('bad token carte_AbCdEfGh12345678_-xyz given\nagain'), 'bad token carte_… given again');
    assert.equal(cleanDetail('y'.repeat(600)), `${'y'.repeat(499)}…`);
    const huge = encodeEntry(entry(1, { target: '\u0001'.repeat(1000), action: '\u0002'.repeat(1000), detail: '"'.repeat(5000) }));
    assert.ok(Buffer.byteLength(huge) < 4000, String(Buffer.byteLength(huge)));
    assert.ok(huge.endsWith('\n') && !huge.slice(0, -1).includes('\n'));
  });

  it('a write that cannot be made is a clear error', async () => {
    fs.mkdirSync(file());
    await assert.rejects(new FileAuditLog(home).record(entry(1)), { code: 'io', message: `failed to write the audit log ${file()}: EISDIR: illegal operation on a directory, open '${file()}'` });
  });
});
