// `carte alerts` and the ALERTS section of `carte status`, without a daemon:
// both read the alerts the daemon kept in the state file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { Alert } from '../../../src/alerts/types.js';
import { Store } from '../../../src/store/store.js';
import { carte } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/paths.js';

describe('cli: alerts', () => {
  let home: string;
  const c = (...args: string[]) => carte(home, args);
  const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
  const alert = (rule: Alert['rule'], object: string, firedAgoMs: number, resolvedAgoMs: number | null, message: string): Alert => {
    const firedAt = ago(firedAgoMs);
    return { id: `${rule}:${object}:${firedAt}`, rule, severity: rule === 'disk-low' ? 'critical' : 'warning', object, message, firedAt, resolvedAt: resolvedAgoMs === null ? null : ago(resolvedAgoMs) };
  };

  beforeEach(() => {
    home = tempDir('carte-home-');
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('status lists no alerts as <none>; alerts says there are none', async () => {
    const status = await c('status');
    assert.equal(status.code, 0);
    assert.match(status.stdout, /\n\nALERTS\n<none>\n$/);
    assert.deepEqual(await c('alerts'), { code: 0, stdout: '', stderr: 'no alerts firing or resolved in the last 24h (--all lists every kept one)\n' });
    assert.deepEqual(await c('alerts', '--all'), { code: 0, stdout: '', stderr: 'no alerts\n' });
  });

  it('status shows the firing alerts (as the daemon last saw them); alerts lists recent ones, --all every kept one', async () => {
    const firing = alert('memory-high', 'instance/web-1', 200_000, null, 'working set 30.0Mi of its 32.0Mi memory limit (94%), above 90%');
    const recent = alert('disk-low', 'host', 3_600_000, 1_800_000, '1.0Gi free of 20.0Gi (5%) on CARTE_HOME\'s filesystem, below 10%');
    const old = alert('not-converged', 'service/api', 3 * 86_400_000, 2 * 86_400_000, 'Progressing, 0/1 ready');
    await Store.open(home).update((d) => {
      d.alerts = { active: [firing], resolved: [recent, old] };
    });
    const status = await c('status');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /\n\nALERTS \(as the daemon last saw them\)\nSINCE +SEVERITY +RULE +OBJECT +MESSAGE\n3m\d+s ago +warning +memory-high +instance\/web-1 +working set 30\.0Mi of its 32\.0Mi memory limit \(94%\), above 90%\n$/);

    const list = await c('alerts');
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^FIRED +STATE +SEVERITY +RULE +OBJECT +MESSAGE$/);
    assert.match(lines[1]!, new RegExp(`^${firing.firedAt.replace(/\.\d+Z$/, 'Z')} +firing +warning +memory-high +instance/web-1 +working set`));
    assert.match(lines[2]!, new RegExp(`^${recent.firedAt.replace(/\.\d+Z$/, 'Z')} +resolved 30m ago +critical +disk-low +host +1\\.0Gi free of 20\\.0Gi \\(5%\\)`));
    const all = await c('alerts', '--all');
    assert.equal(all.stdout.trimEnd().split('\n').length, 4);
    assert.match(all.stdout, /\n\S+ +resolved 2d ago +warning +not-converged +service\/api +Progressing, 0\/1 ready\n$/);
    const json = await c('alerts', '-o', 'json');
    assert.deepEqual(JSON.parse(json.stdout), { items: [firing, recent] });
    assert.deepEqual(await c('alerts', '-o', 'yaml'), { code: 2, stdout: '', stderr: 'error: alerts: unknown output format "yaml" (use json)\n' });
  });
});
