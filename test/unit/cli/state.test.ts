import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Store } from '../../../src/store/store.js';
import { carte } from '../../helpers/cli.js';
import { tempDir } from '../../helpers/paths.js';

describe('carte state', function () {
  this.timeout(30_000);
  let home: string;
  const c = (...args: string[]) => carte(home, args);
  const gen = (n: number) => path.join(home, 'generations', `state.${n}.json`);

  // Three writes at known times (one second apart from 10:00:01), so every
  // line printed is known: the commands under test only read these files.
  beforeEach(async () => {
    home = tempDir('carte-home-');
    let t = Date.parse('2026-11-01T10:00:00Z');
    const store = Store.open(home, { now: () => new Date((t += 1000)) });
    for (let i = 1; i <= 3; i++) await store.update((d) => void (d.images.n = i));
  });
  afterEach(() => fs.rmSync(home, { recursive: true, force: true }));

  it('verify lists state.json and each generation, ok', async () => {
    assert.deepEqual(await c('state', 'verify'), {
      code: 0,
      stdout:
        'FILE                       GENERATION   WRITTEN                    SIZE   STATUS\n' +
        'state.json                 3            2026-11-01T10:00:03.000Z   277    ok\n' +
        'generations/state.2.json   2            2026-11-01T10:00:02.000Z   277    ok\n' +
        'generations/state.1.json   1            2026-11-01T10:00:01.000Z   277    ok\n',
      stderr: '',
    });
  });

  it('verify says what is damaged, exits 1, and changes nothing', async () => {
    fs.writeFileSync(path.join(home, 'state.json'), '{"version": 1,');
    fs.writeFileSync(gen(2), fs.readFileSync(gen(2), 'utf8').replace('"n": 2', '"n": 7'));
    const r = await c('state', 'verify');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, new RegExp('^' + [
      'FILE                       GENERATION   WRITTEN                    SIZE   STATUS',
      'state.json                 -            \\S+Z   14     damaged: not valid JSON \\(Expected double-quoted property name in JSON at position 14\\)',
      // A damaged file's time is its mtime: its content is not to be trusted.
      'generations/state.2.json   2            \\S+Z   277    damaged: not what carte wrote \\(checksum mismatch: stored sha256:[0-9a-f]{12}…, content sha256:[0-9a-f]{12}…\\)',
      'generations/state.1.json   1            2026-11-01T10:00:01\\.000Z   277    ok',
      'state.json is damaged: the next carte command restores generation 1 \\(or run "carte state restore"\\)',
    ].join('\n') + '\n$'));
    assert.equal(fs.readFileSync(path.join(home, 'state.json'), 'utf8'), '{"version": 1,');
  });

  it('any command recovers a damaged state.json with a warning, and status shows it', async () => {
    fs.writeFileSync(path.join(home, 'state.json'), 'garbage');
    const r = await c('get', '-o', 'json');
    const kept = fs.readdirSync(home).filter((n) => n.startsWith('state.damaged-'));
    assert.equal(kept.length, 1);
    const keptAt = path.join(home, kept[0]!);
    const reason = 'not valid JSON (Unexpected token \'g\', "garbage" is not valid JSON)';
    assert.deepEqual(r, {
      code: 0,
      stdout: '{\n  "items": []\n}\n',
      stderr: `warning: state.json was damaged (${reason}); restored generation 2 written at 2026-11-01T10:00:02.000Z; the damaged file is kept at ${keptAt}\n`,
    });
    const status = await c('status');
    assert.equal(status.stderr, '');
    assert.match(status.stdout.split('\n')[1]!, new RegExp(`^state: recovered at \\S+Z \\(\\d+s ago\\) from generation 2: state\\.json was ${reason.replace(/[()'."]/g, '\\$&')}; the damaged file is kept at ${keptAt.replace(/[.]/g, '\\.')}$`));
    assert.equal((await c('state', 'verify')).code, 0);
  });

  it('restore puts back the newest good generation, or the one named', async () => {
    assert.deepEqual(await c('state', 'restore'), { code: 0, stdout: 'state restored from generation 2 written at 2026-11-01T10:00:02.000Z; it is now generation 4\n', stderr: '' });
    assert.deepEqual(await c('state', 'restore', '1'), { code: 0, stdout: 'state restored from generation 1 written at 2026-11-01T10:00:01.000Z; it is now generation 5\n', stderr: '' });
    assert.equal((await Store.open(home).read()).images.n, 1);
    const events = await c('events');
    assert.match(events.stdout, /Normal {3}store\/state {3}StateRestored {3}restored generation 2 written at 2026-11-01T10:00:02\.000Z\n.*StateRestored {3}restored generation 1 written at 2026-11-01T10:00:01\.000Z\n$/);
  });

  it('restore of a damaged state.json keeps it aside and says where', async () => {
    fs.writeFileSync(path.join(home, 'state.json'), 'garbage');
    const r = await c('state', 'restore', gen(1));
    const kept = fs.readdirSync(home).filter((n) => n.startsWith('state.damaged-'));
    assert.deepEqual(r, {
      code: 0,
      stdout: `state restored from ${gen(1)} (generation 1) written at 2026-11-01T10:00:01.000Z; it is now generation 3\nthe damaged state.json is kept at ${path.join(home, kept[0]!)}\n`,
      stderr: '',
    });
  });

  it('restore refuses a damaged or missing generation, and a word that is neither', async () => {
    fs.writeFileSync(gen(2), '');
    assert.deepEqual(await c('state', 'restore', '2'), { code: 1, stdout: '', stderr: 'error: failed to restore generation 2: it is not valid JSON (Unexpected end of JSON input); "carte state verify" lists the good ones\n' });
    assert.deepEqual(await c('state', 'restore', '9'), { code: 1, stdout: '', stderr: `error: failed to restore generation 9: ${gen(9)} does not exist; "carte state verify" lists the kept generations\n` });
    assert.deepEqual(await c('state', 'restore', 'newest'), { code: 2, stdout: '', stderr: 'error: state restore: "newest" is neither a generation number nor a state file path (see "carte state verify")\n' });
  });

  it('with no good generation, every command fails with what to do and overwrites nothing', async () => {
    fs.rmSync(path.join(home, 'generations'), { recursive: true });
    fs.writeFileSync(path.join(home, 'state.json'), 'garbage');
    assert.deepEqual(await c('get'), {
      code: 1,
      stdout: '',
      stderr: `error: failed to read state file ${home}/state.json: it is not valid JSON (Unexpected token 'g', "garbage" is not valid JSON); ` +
        `no good generation to recover from (${home}/generations holds none): restore a copy you trust with "carte state restore FILE", or move it away to start empty\n`,
    });
    const v = await c('state', 'verify');
    assert.equal(v.code, 1);
    assert.match(v.stdout, /\nstate\.json is damaged and no generation is good: restore a copy you trust with "carte state restore FILE", or move state\.json away to start empty\n$/);
    assert.deepEqual(fs.readdirSync(home).sort(), ['state.json']);
  });
});
