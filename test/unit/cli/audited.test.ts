import assert from 'node:assert/strict';
import { auditedCommand, auditedCommands, cliEntry, localRoot, NOT_AUDITED } from '../../../src/cli/audited.js';
import { commandPaths } from '../../../src/cli/main.js';
import { CarteError } from '../../../src/errors.js';

describe('CLI auditing (which commands, what is recorded)', () => {
  it('every command is either audited or declared read-only', () => {
    const known = new Set([...auditedCommands(), ...NOT_AUDITED]);
    const missing = commandPaths().filter((p) => !known.has(p));
    assert.deepEqual(missing, [], `commands neither audited nor listed in NOT_AUDITED (src/cli/audited.ts): ${missing.join(', ')}`);
    const gone = [...known].filter((p) => !commandPaths().includes(p));
    assert.deepEqual(gone, []);
  });

  const cases: Array<[string, string[], unknown[], Record<string, unknown>, ReturnType<typeof auditedCommand>]> = [
    ['scale', ['scale'], ['web'], { replicas: '5' }, { action: 'scale', target: 'service/web', detail: 'replicas 5' }],
    ['apply of two files with --prune', ['apply'], [], { filename: ['a.yaml', '-'], prune: true }, { action: 'apply', target: '-f a.yaml stdin', detail: '--prune' }],
    ['a dry run is not recorded', ['apply'], [], { filename: ['a.yaml'], dryRun: true }, null],
    ['delete by name', ['delete'], [['service', 'a', 'b']], { force: true }, { action: 'delete', target: 'service/a service/b', detail: '--force' }],
    ['secret set names keys, never values', ['secret', 'set'], ['db'], { fromLiteral: ['password=hunter2'], fromFile: ['/etc/x/cert.pem', 'k=/tmp/f'] },
      { action: 'secret.set', target: 'secret/db', detail: 'keys password cert.pem k' }],
    ['secret set from stdin', ['secret', 'set'], ['db'], {}, { action: 'secret.set', target: 'secret/db', detail: 'key value (stdin)' }],
    ['exec records no command line', ['exec'], ['web-1', ['sh', '-c', 'echo s3cret']], {}, { action: 'exec', target: 'instance/web-1' }],
    ['token create', ['token', 'create'], [], { name: 'ci', role: 'operator', expires: '30d' }, { action: 'token.create', target: 'token/ci', detail: 'role operator, expires in 30d' }],
    ['state restore', ['state', 'restore'], [undefined], {}, { action: 'state.restore', target: 'state/newest good generation' }],
    ['a read is not recorded', ['get'], [], {}, null],
  ];
  for (const [name, path, args, opts, want] of cases) {
    it(name, () => assert.deepEqual(auditedCommand(path, args, opts), want));
  }

  it('who: the sudo user, else the login name', () => {
    assert.deepEqual(localRoot({ SUDO_USER: 'dave' }), { kind: 'root', name: 'dave' });
    assert.equal(localRoot({}).kind, 'root');
    assert.ok(localRoot({}).name.length > 0);
  });

  it('an entry: ok with the command\'s detail, failed with the error or the exit code', () => {
    const at = new Date('2026-12-01T10:00:00Z');
    const env = { SUDO_USER: 'dave' };
    const cmd = { action: 'scale', target: 'service/web', detail: 'replicas 5' };
    const base = { at: '2026-12-01T10:00:00.000Z', who: { kind: 'root', name: 'dave' }, via: 'cli', action: 'scale', target: 'service/web' };
    assert.deepEqual(cliEntry(cmd, { exitCode: 0 }, at, env), { ...base, result: 'ok', detail: 'replicas 5' });
    assert.deepEqual(cliEntry(cmd, { error: new CarteError('not-found', 'service "web" not found'), exitCode: 1 }, at, env),
      { ...base, result: 'failed', detail: 'service "web" not found' });
    assert.deepEqual(cliEntry({ action: 'exec', target: 'instance/a' }, { exitCode: 3 }, at, env),
      { ...base, action: 'exec', target: 'instance/a', result: 'failed', detail: 'exit code 3' });
  });
});
