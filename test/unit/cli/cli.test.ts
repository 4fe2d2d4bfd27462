import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { carteWith, ensureSecret } from '../../../examples/metaverse/demo.js';
import { carte } from '../../helpers/cli.js';
import { serviceDoc, yaml } from '../../helpers/manifests.js';
import { CARTE, ROOT, tempDir } from '../../helpers/paths.js';
import { run } from '../../helpers/process.js';

describe('carte CLI', function () {
  this.timeout(30_000);
  let home: string;
  let work: string;
  const file = (name: string, text: string) => {
    fs.writeFileSync(path.join(work, name), text);
    return name;
  };
  // The unit tier never starts containers: commands that converge get --no-start.
  const c = (...args: string[]) => carte(home, ['apply', 'delete', 'rollback'].includes(args[0]!) ? [...args, '--no-start'] : args, { cwd: work });

  beforeEach(() => {
    home = tempDir('carte-home-');
    work = tempDir('carte-work-');
  });
  afterEach(() => {
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('applies a folder, then reports unchanged and configured objects', async () => {
    fs.mkdirSync(path.join(work, 'm'));
    file('m/a.yaml', yaml(serviceDoc('redis'), serviceDoc('login', { dependsOn: ['redis'] })));
    assert.deepEqual(await c('apply', '-f', 'm'), { code: 0, stdout: 'service/redis created\nservice/login created\n', stderr: '' });
    assert.deepEqual(await c('apply', '-f', 'm'), { code: 0, stdout: 'service/redis unchanged\nservice/login unchanged\n', stderr: '' });
    file('m/a.yaml', yaml(serviceDoc('redis'), serviceDoc('login', { dependsOn: ['redis'], replicas: 3 })));
    assert.deepEqual(await c('apply', '-f', 'm'), { code: 0, stdout: 'service/redis unchanged\nservice/login configured\n', stderr: '' });
  });

  it('applies from standard input', async () => {
    const r = await carte(home, ['apply', '-f', '-', '--no-start'], { input: yaml(serviceDoc('a')), cwd: work });
    assert.deepEqual(r, { code: 0, stdout: 'service/a created\n', stderr: '' });
  });

  it('refuses an invalid set with every located problem on stderr, exit 2, and stores nothing', async () => {
    file('good.yaml', yaml(serviceDoc('good')));
    file('bad.yaml', 'apiVersion: carte/v1\nkind: Service\nmetadata: { name: login }\nspec:\n  image: x\n  resources: { memory: 12Q }\n  replicaz: 2\n');
    const r = await c('apply', '-f', 'good.yaml', '-f', 'bad.yaml');
    assert.deepEqual(r, {
      code: 2,
      stdout: '',
      stderr: 'bad.yaml:6:24: spec.resources.memory: "12Q" is not a memory size (use e.g. 128Mi)\n'
        + 'bad.yaml:7:3: spec.replicaz: unknown field "replicaz" (did you mean "replicas"?)\n'
        + 'error: 2 problems in manifests; nothing was applied\n',
    });
    assert.deepEqual(await c('get'), { code: 0, stdout: '', stderr: 'no services\n' });
  });

  it('--dry-run validates and shows, but stores nothing', async () => {
    file('a.yaml', yaml(serviceDoc('a')));
    assert.deepEqual(await c('apply', '-f', 'a.yaml', '--dry-run'), { code: 0, stdout: 'service/a created (dry run)\n', stderr: '' });
    assert.equal((await c('get', '-o', 'json')).stdout, '{\n  "items": []\n}\n');
  });

  it('--prune deletes CLI-applied services missing from the set', async () => {
    file('ab.yaml', yaml(serviceDoc('a'), serviceDoc('b')));
    file('a.yaml', yaml(serviceDoc('a')));
    await c('apply', '-f', 'ab.yaml');
    assert.deepEqual(await c('apply', '-f', 'a.yaml', '--prune', '--dry-run'), { code: 0, stdout: 'service/a unchanged (dry run)\nservice/b pruned (dry run)\n', stderr: '' });
    assert.deepEqual(await c('apply', '-f', 'a.yaml', '--prune'), { code: 0, stdout: 'service/a unchanged\nservice/b pruned\n', stderr: '' });
    assert.deepEqual(JSON.parse((await c('get', '-o', 'json')).stdout).items.map((i: { metadata: { name: string } }) => i.metadata.name), ['a']);
  });

  it('diff shows field-by-field changes', async () => {
    file('a.yaml', yaml(serviceDoc('a', { resources: { memory: '128Mi' } })));
    await c('apply', '-f', 'a.yaml');
    assert.deepEqual(await c('diff', '-f', 'a.yaml'), { code: 0, stdout: 'no changes\n', stderr: '' });
    file('a.yaml', yaml(serviceDoc('a', { resources: { memory: '256Mi' }, env: { DEBUG: '1' } })));
    assert.deepEqual(await c('diff', '-f', 'a.yaml'), {
      code: 0,
      stdout: 'service/a configured\n  + spec.env: { DEBUG: "1" }\n  ~ spec.resources.memory: "128Mi" → "256Mi"\n',
      stderr: '',
    });
  });

  it('get lists services as a table, and as re-appliable YAML', async () => {
    file('a.yaml', yaml(serviceDoc('web', { replicas: 2, ports: [{ port: 80, publish: 8080 }] })));
    await c('apply', '-f', 'a.yaml');
    const table = await c('get');
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^NAME   READY   STATUS        IMAGE        REVISION   SOURCE   AGE\nweb    0\/2     Progressing   test\/web:1   1          cli      \d+s\n$/);
    assert.match((await c('get', 'services', 'web', '-o', 'wide')).stdout, /PORTS.*\n.*80\/tcp→:8080/);
    const asYaml = await c('get', 'svc', 'web', '-o', 'yaml');
    file('again.yaml', asYaml.stdout);
    assert.deepEqual(await c('apply', '-f', 'again.yaml'), { code: 0, stdout: 'service/web unchanged\n', stderr: '' });
  });

  it('get and describe of a missing service exit 1', async () => {
    assert.deepEqual(await c('get', 'nope'), { code: 1, stdout: '', stderr: 'error: service "nope" not found\n' });
    assert.deepEqual(await c('describe', 'service', 'nope'), { code: 1, stdout: '', stderr: 'error: service "nope" not found\n' });
  });

  it('history, rollback and describe follow revisions', async () => {
    file('a.yaml', yaml(serviceDoc('a', { replicas: 1 })));
    await c('apply', '-f', 'a.yaml');
    file('a.yaml', yaml(serviceDoc('a', { replicas: 4 })));
    await c('apply', '-f', 'a.yaml');
    assert.deepEqual(await c('rollback', 'a'), { code: 0, stdout: 'service/a rolled back to revision 1 (now revision 3)\n', stderr: '' });
    const h = await c('history', 'a');
    // Columns are three or more spaces apart; AGE depends on the clock and is left out.
    const cells = h.stdout.trimEnd().split('\n').map((l) => l.split(/\s{3,}/).filter((_, i) => i !== 1));
    assert.deepEqual(cells, [
      ['REVISION', 'SOURCE', 'COMMIT', 'ORIGIN', 'CHANGE'],
      ['1', 'cli', '-', 'a.yaml:4:9', 'created'],
      ['2', 'cli', '-', 'a.yaml:4:9', 'spec.replicas'],
      ['3', 'cli', '-', 'a.yaml:4:9', 'rollback to 1'],
    ]);
    const d = await c('describe', 'a');
    assert.equal(d.code, 0);
    assert.match(d.stdout, /^Name:       a\nStatus:     Progressing, 0\/1 ready\nLabels:     <none>\nSource:     cli\nAllowed from: every service of source cli\nRevision:   3 \(spec [0-9a-f]{16}, template [0-9a-f]{16}\)\n/);
    assert.match(d.stdout, /\nInstances:\n  <none>\nRevisions:\n/);
    assert.match(d.stdout, /\nSpec:\n  image: test\/a:1\n  replicas: 1\n/);
    assert.match(d.stdout, /RolledBack   revision 2 → 3 \(a copy of revision 1\): spec.replicas\n$/);
    assert.deepEqual(await c('rollback', 'a', '--to', 'x'), { code: 2, stdout: '', stderr: 'error: rollback: --to takes a revision number, got "x"\n' });
  });

  it('delete by name and by file, all or nothing', async () => {
    file('ab.yaml', yaml(serviceDoc('a'), serviceDoc('b', { dependsOn: ['a'] })));
    await c('apply', '-f', 'ab.yaml');
    assert.deepEqual(await c('delete', 'a'), {
      code: 1, stdout: '',
      stderr: 'service "b" depends on "a": delete both together, or remove the dependency first\nerror: cannot delete; nothing was deleted\n',
    });
    assert.deepEqual(await c('delete', 'a', 'ghost'), { code: 1, stdout: '', stderr: 'error: service "ghost" not found; nothing was deleted\n' });
    assert.deepEqual(await c('delete', '-f', 'ab.yaml'), { code: 0, stdout: 'service/a deleted\nservice/b deleted\n', stderr: '' });
    assert.deepEqual((await c('events')).stdout.split('\n').slice(1).map((l) => l.split(/\s{3,}/).slice(2).join(' | ')), [
      'service/a | Created | created at revision 1 by cli (ab.yaml:4:9)',
      'service/b | Created | created at revision 1 by cli (ab.yaml:11:9)',
      'service/a | Deleted | deleted by cli',
      'service/b | Deleted | deleted by cli',
      '',
    ]);
  });

  it('two applies at once both land', async () => {
    file('a.yaml', yaml(serviceDoc('a')));
    file('b.yaml', yaml(serviceDoc('b')));
    const [ra, rb] = await Promise.all([c('apply', '-f', 'a.yaml'), c('apply', '-f', 'b.yaml')]);
    assert.deepEqual([ra.code, rb.code], [0, 0]);
    assert.match((await c('get')).stdout, /\na .*\nb .*\n$/);
  });

  it('usage errors exit 2; help and version exit 0', async function () {
    this.timeout(120_000); // about 50 CLI starts: on a loaded machine each can take a second or more
    const missing = await c('apply');
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, "error: required option '-f, --filename <path>' not specified\n(add --help for usage)\n");
    assert.equal((await c('frobnicate')).code, 2);
    assert.equal((await c('get', '-o', 'xml')).stderr, 'error: get: unknown output format "xml" (use wide, json, yaml)\n');
    assert.deepEqual(await c('apply', '-f', 'nothere.yaml'), { code: 2, stdout: '', stderr: 'error: cannot read manifests from "nothere.yaml": no such file or folder\n' });
    const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
    assert.deepEqual(await c('version'), { code: 0, stdout: `carte ${version} (node ${process.version})\n`, stderr: '' });
    for (const cmd of ['apply', 'diff', 'get', 'describe', 'delete', 'history', 'rollback', 'events', 'stop', 'start', 'restart', 'scale', 'status', 'alerts', 'top', 'stats', 'sync', 'state', 'secret', 'policy', 'daemon', 'build', 'images', 'rmi', 'image', 'run', 'logs', 'exec', 'rm', 'gc', 'version',
      'user', 'user add', 'user list', 'user rm', 'user passwd', 'token', 'token create', 'token list', 'token rm', 'audit'].reduce<string[][]>((batches, cmd, i) => {
      if (i % 4 === 0) batches.push([]);
      batches.at(-1)!.push(cmd);
      return batches;
    }, [])) {
      await Promise.all(cmd.map(async (one) => {
        const help = await c(...one.split(' '), '--help');
        assert.equal(help.code, 0, one);
        assert.match(help.stdout, new RegExp(`^Usage: carte ${one}`), one);
      }));
    }
  });

  it('an unusable state file is an error with a way out, not a stack trace', async () => {
    fs.writeFileSync(path.join(home, 'state.json'), 'garbage');
    const r = await c('get');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: failed to read state file .*state\.json: it is not valid JSON .*move it away to start empty\n$/);
  });

  it('the demo manifests in manifests/ are valid once the secret they name is stored (as make demo stores it)', async function () {
    const without = await carte(home, ['apply', '-f', path.join(ROOT, 'manifests'), '--dry-run']);
    assert.equal(without.code, 2);
    assert.deepEqual(without.stderr.trim().split('\n').map((l) => l.replace(/^(?:.*\/)?manifests\/(\w+)\.yaml:\d+:\d+: (\S+): (secret "metaverse" does not exist) .*$/, '$1 $2 $3')), [
      'asset spec.env.TOKEN_SECRET.secret secret "metaverse" does not exist',
      'game spec.env.REDIS_PASSWORD.secret secret "metaverse" does not exist',
      'game spec.env.TOKEN_SECRET.secret secret "metaverse" does not exist',
      'login spec.env.REDIS_PASSWORD.secret secret "metaverse" does not exist',
      'login spec.env.TOKEN_SECRET.secret secret "metaverse" does not exist',
      'map spec.env.REDIS_PASSWORD.secret secret "metaverse" does not exist',
      'map spec.env.TOKEN_SECRET.secret secret "metaverse" does not exist',
      'redis spec.secrets[0].name secret "metaverse" does not exist',
      'error: 8 problems in manifests; nothing would be applied',
    ]);
    if (process.getuid?.() !== 0) this.skip(); // the secret key must be root's
    const keyDir = tempDir('carte-key-');
    try {
      const env = { ...process.env, CARTE_HOME: home, CARTE_SECRET_KEY: path.join(keyDir, 'secret.key') };
      assert.equal(await ensureSecret(carteWith(env), path.join(ROOT, 'manifests')), 'created');
      const r = await run(CARTE, ['apply', '-f', path.join(ROOT, 'manifests'), '--dry-run'], { env: { ...env, NO_COLOR: '1' } });
      assert.equal(r.stderr, '');
      assert.equal(r.code, 0);
      assert.deepEqual(r.stdout.trim().split('\n').sort(), ['asset', 'game', 'login', 'map', 'redis'].map((n) => `service/${n} created (dry run)`));
    } finally {
      fs.rmSync(keyDir, { recursive: true, force: true });
    }
  });
});
