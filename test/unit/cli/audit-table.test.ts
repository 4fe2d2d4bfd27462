// `carte audit`'s table prints what others wrote (names typed at sign-in, a
// hand-edited log): control characters escaped, long cells cut.
import assert from 'node:assert/strict';
import type { AuditEntry } from '../../../src/audit/types.js';
import { AUDIT_HEAD, auditRows, cellText, DETAIL_MAX } from '../../../src/cli/commands/audit.js';
import { table } from '../../../src/cli/output.js';

describe('carte audit: the table', () => {
  it('escapes control characters: a line break cannot forge a row, an ESC cannot reach the terminal', () => {
    assert.equal(cellText('a\nb\r\tc'), 'a\\nb\\r\\tc');
    assert.equal(cellText('\u001b[2J\u0007\u0000\u007f\u009b'), '\\x1b[2J\\x07\\x00\\x7f\\x9b');
    assert.equal(cellText('abc\u202edef\u2028'), 'abc\\u202edef\\u2028');
    assert.equal(cellText('plain name é ✓'), 'plain name é ✓');
  });

  it('cuts long cells with "…", the detail longer than the rest', () => {
    assert.equal(cellText('x'.repeat(64)), 'x'.repeat(64));
    assert.equal(cellText('x'.repeat(65)), `${'x'.repeat(63)}…`);
    const e: AuditEntry = { at: '2026-12-01T10:00:00.123Z', who: { kind: 'user', name: 'u'.repeat(300) }, via: 'dashboard', action: 'login', target: 'user/x', result: 'failed', detail: 'd'.repeat(500) };
    const [row] = auditRows([e]);
    assert.equal(row![1], `user/${'u'.repeat(58)}…`);
    assert.equal(row![6]!.length, DETAIL_MAX);
  });

  it('a forged entry prints as one row', () => {
    const forged: AuditEntry = { at: '2026-12-01T10:00:00.000Z', who: { kind: 'user', name: 'x\n2026-12-01T10:00:01Z   user/root   cli   delete' }, via: 'dashboard', action: 'login', target: 'user/x\u001b]0;pwned\u0007', result: 'failed' };
    const out = table(AUDIT_HEAD, auditRows([forged]));
    assert.equal(out.split('\n').length, 3, out);
    assert.ok(!/[\u0000-\u001f]/.test(out.replace(/\n/g, '')), out);
    assert.ok(out.includes('user/x\\n2026-12-01T10:00:01Z'), out);
  });
});
